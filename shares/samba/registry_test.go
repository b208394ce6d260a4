package samba_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fsrvpd/fsrvpd/shares"
	"github.com/fsrvpd/fsrvpd/shares/samba"
	"github.com/fsrvpd/fsrvpd/shares/samba/sambatest"
)

func netConf(t *testing.T, srv *sambatest.Server, args ...string) string {
	t.Helper()
	out, err := exec.Command("net", append([]string{"-s", srv.Conf, "conf"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("net conf %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestRegistryMirror: with registry shares = yes (sambatest's smb.conf),
// each snapshot share has a registry copy for srvsvc, kept in step by
// SetReadOnly and Remove, and reconciled with the include file by New.
func TestRegistryMirror(t *testing.T) {
	srv, e := setup(t, sambatest.Options{})
	ctx := context.Background()
	name := "share1@{6f1c0000-0000-0000-0000-00000000000a}"
	hidden := "share1@{6f1c0000-0000-0000-0000-00000000000b}$"
	start := time.Now()
	if err := e.Expose(ctx, shares.Share{Name: name, Base: "share1", Path: snapshot(t, srv, "x"), Comment: "copy"}); err != nil {
		t.Fatal(err)
	}
	t.Logf("Expose with registry copy: %v", time.Since(start))
	if err := e.Expose(ctx, shares.Share{Name: hidden, Base: "share1", Path: snapshot(t, srv, "y"), ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	out := netConf(t, srv, "showshare", name)
	for _, want := range []string{"read only = no", "comment = copy", "fsrvpd:include = " + srv.Include} {
		if !strings.Contains(out, want) {
			t.Fatalf("registry copy lacks %q:\n%s", want, out)
		}
	}
	if out := netConf(t, srv, "showshare", hidden); !strings.Contains(out, "browseable = no") || !strings.Contains(out, "read only = yes") {
		t.Fatalf("hidden share's registry copy:\n%s", out)
	}
	start = time.Now()
	if err := e.SetReadOnly(ctx, name, true); err != nil {
		t.Fatal(err)
	}
	t.Logf("SetReadOnly with registry copy: %v", time.Since(start))
	if out := netConf(t, srv, "getparm", name, "read only"); strings.TrimSpace(out) != "yes" {
		t.Fatalf("registry read only = %q", out)
	}
	start = time.Now()
	if err := e.Remove(ctx, hidden); err != nil {
		t.Fatal(err)
	}
	t.Logf("Remove with registry copy: %v", time.Since(start))
	if out := netConf(t, srv, "listshares"); strings.Contains(out, hidden) || !strings.Contains(out, name) {
		t.Fatalf("registry shares after Remove:\n%s", out)
	}
	// A crash's leftovers: a stray copy marked as ours, and ours lost.
	// Another marker (another include file) is left alone.
	stray := "share1@{6f1c0000-0000-0000-0000-00000000000c}"
	foreign := "share1@{6f1c0000-0000-0000-0000-00000000000d}"
	netConf(t, srv, "addshare", stray, srv.Dir, "writeable=n", "guest_ok=n")
	netConf(t, srv, "setparm", stray, "fsrvpd:include", srv.Include)
	netConf(t, srv, "addshare", foreign, srv.Dir, "writeable=n", "guest_ok=n")
	netConf(t, srv, "setparm", foreign, "fsrvpd:include", srv.Include+".other")
	netConf(t, srv, "delshare", name)
	if _, err := samba.New(ctx, samba.Config{SMBConf: srv.Conf, IncludeFile: srv.Include, RegistryMirror: true}); err != nil {
		t.Fatal(err)
	}
	out = netConf(t, srv, "listshares")
	if strings.Contains(out, stray) || !strings.Contains(out, name) || !strings.Contains(out, foreign) {
		t.Fatalf("registry shares after New:\n%s", out)
	}
	if out := netConf(t, srv, "getparm", name, "read only"); strings.TrimSpace(out) != "yes" {
		t.Fatalf("re-added registry copy: read only = %q", out)
	}
	// List repairs too.
	netConf(t, srv, "delshare", name)
	if _, err := e.List(ctx); err != nil {
		t.Fatal(err)
	}
	if out := netConf(t, srv, "listshares"); !strings.Contains(out, name) {
		t.Fatalf("registry shares after List:\n%s", out)
	}
}
