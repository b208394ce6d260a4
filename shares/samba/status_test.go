package samba_test

import (
	"context"
	"testing"
	"time"

	"github.com/fsrvpd/fsrvpd/shares"
	"github.com/fsrvpd/fsrvpd/shares/samba/sambatest"
)

// Connections lists the tree connects on our shares only, and forgets
// them when the client disconnects.
func TestConnections(t *testing.T) {
	srv, e := setup(t, sambatest.Options{})
	ctx := context.Background()
	a := "share1@{6f1c0000-0000-0000-0000-00000000000a}"
	b := "share2@{6f1c0000-0000-0000-0000-00000000000b}"
	for _, n := range []string{a, b} {
		if err := e.Expose(ctx, shares.Share{Name: n, Base: "share1", Path: snapshot(t, srv, n), ReadOnly: true}); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := e.Connections(ctx); err != nil || len(got) != 0 {
		t.Fatalf("before any client: %v, %v", got, err)
	}
	before := time.Now().Add(-time.Second)
	s := session(t, srv)
	fs, err := sambatest.MountSoon(s, a)
	if err != nil {
		t.Fatal(err)
	}
	base, err := s.Mount("share2") // not ours: never listed
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.Connections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Share != a || got[0].Machine != "127.0.0.1" || got[0].Since.Before(before) || got[0].Since.After(time.Now().Add(time.Second)) {
		t.Fatalf("connections %+v, want one to %s from 127.0.0.1", got, a)
	}
	fs.Umount()
	base.Umount()
	if got, err := e.Connections(ctx); err != nil || len(got) != 0 {
		t.Fatalf("after the client left: %v, %v", got, err)
	}
}
