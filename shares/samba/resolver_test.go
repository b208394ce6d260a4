package samba

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/fsrvpd/fsrvpd/shares"
)

// TestResolverMissReread: lookups of unknown names do not run testparm on
// every call, and a share added in an included file (smb.conf's mtime
// unchanged) is still found once the cache is a second old.
func TestResolverMissReread(t *testing.T) {
	if _, err := exec.LookPath("testparm"); err != nil {
		if os.Getenv("FSRVPD_TEST_STRICT") == "1" {
			t.Fatal("testparm not installed (apt-get install samba-common-bin)")
		}
		t.Skip("testparm not installed")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "smb.conf")
	extra := filepath.Join(dir, "extra.conf")
	for _, d := range []string{"a", "late"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(extra, "[a]\n\tpath = "+filepath.Join(dir, "a")+"\n")
	write(conf, "[global]\n\tworkgroup = TEST\n\tinclude = "+extra+"\n")
	ctx := context.Background()
	sm := samba{conf: conf}
	g, err := sm.globals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r := newResolver(sm, g, time.Minute, "")
	if b, err := r.Lookup(ctx, "A"); err != nil || b.Name != "a" {
		t.Fatalf("Lookup(A) = %+v, %v", b, err)
	}
	before := r.loads
	for range 50 {
		if _, err := r.Lookup(ctx, "missing"); !errors.Is(err, shares.ErrNotFound) {
			t.Fatalf("Lookup(missing): %v, want ErrNotFound", err)
		}
	}
	if n := r.loads - before; n > 1 {
		t.Errorf("50 lookups of an unknown name read the configuration %d times within a second", n)
	}

	st, _ := os.Stat(conf)
	write(extra, "[a]\n\tpath = "+filepath.Join(dir, "a")+"\n[late]\n\tpath = "+filepath.Join(dir, "late")+"\n")
	if st2, _ := os.Stat(conf); !st2.ModTime().Equal(st.ModTime()) {
		t.Fatal("smb.conf changed")
	}
	time.Sleep(missReread + 100*time.Millisecond)
	if b, err := r.Lookup(ctx, "late"); err != nil || b.Name != "late" {
		t.Fatalf("Lookup(late) after adding it to the included file = %+v, %v", b, err)
	}
}
