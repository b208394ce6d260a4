package samba_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsrvpd/fsrvpd/shares"
	"github.com/fsrvpd/fsrvpd/shares/samba"
	"github.com/fsrvpd/fsrvpd/shares/samba/sambatest"
)

func sddl(t *testing.T, conf, share string) string {
	out, err := exec.Command("sharesec", "-s", conf, share, "--viewsddl").CombinedOutput()
	if err != nil {
		t.Fatalf("sharesec %s: %v\n%s", share, err, out)
	}
	_, sd, _ := strings.Cut(strings.TrimSpace(string(out)), ":")
	return sd
}

func sdKeys(t *testing.T, dir string) string {
	out, err := exec.Command("tdbtool", filepath.Join(dir, "state", "share_info.tdb"), "keys").CombinedOutput()
	if err != nil {
		t.Fatalf("tdbtool: %v\n%s", err, out)
	}
	return string(out)
}

func TestSecurityDescriptorCopiedAndDeleted(t *testing.T) {
	srv, e := setup(t, sambatest.Options{})
	ctx := context.Background()
	const backupOps = "S-1-5-32-551:ALLOWED/0x0/READ"
	if out, err := exec.Command("sharesec", "-s", srv.Conf, "share1", "--replace=S-1-1-0:ALLOWED/0x0/FULL,"+backupOps).CombinedOutput(); err != nil {
		t.Fatalf("sharesec: %v\n%s", err, out)
	}
	want := sddl(t, srv.Conf, "share1")
	name := "share1@{6f1c0000-0000-0000-0000-000000000005}"
	if err := e.Expose(ctx, shares.Share{Name: name, Base: "share1", Path: snapshot(t, srv, "x"), ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	// A later change of the base does not reach the snapshot share.
	exec.Command("sharesec", "-s", srv.Conf, "share1", "--replace=S-1-1-0:ALLOWED/0x0/READ").Run()
	if got := sddl(t, srv.Conf, name); got != want {
		t.Fatalf("snapshot share SD = %s, want the base's %s", got, want)
	}
	if !strings.Contains(want, "BO") {
		t.Fatalf("base SD %s lacks the Backup Operators ACE", want)
	}
	if err := e.Remove(ctx, name); err != nil {
		t.Fatal(err)
	}
	if keys := sdKeys(t, srv.Dir); strings.Contains(keys, "@{") {
		t.Fatalf("share_info.tdb keeps the removed share's SD:\n%s", keys)
	}
}

// TestReopenAndCrash: List survives a new Exposer; a crash after the SD was
// stored but before the share was published (the journal line written, the
// section not) leaves nothing behind once New has run.
func TestReopenAndCrash(t *testing.T) {
	srv, e := setup(t, sambatest.Options{})
	ctx := context.Background()
	exec.Command("sharesec", "-s", srv.Conf, "share2", "--replace=S-1-1-0:ALLOWED/0x0/READ").Run()
	name := "share2@{6f1c0000-0000-0000-0000-000000000006}"
	if err := e.Expose(ctx, shares.Share{Name: name, Base: "share2", Path: snapshot(t, srv, "x"), ReadOnly: true, Comment: "Shadow copy of share2"}); err != nil {
		t.Fatal(err)
	}
	before, _ := e.List(ctx)
	e2, err := samba.New(ctx, samba.Config{SMBConf: srv.Conf, IncludeFile: srv.Include, RegistryMirror: true})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := e2.List(ctx)
	if len(after) != 1 || after[0] != before[0] {
		t.Fatalf("List after reopen = %+v, want %+v", after, before)
	}
	// Simulate the crash: an SD for a share that is only journalled.
	stray := "share2@{6f1c0000-0000-0000-0000-000000000007}"
	exec.Command("tdbtool", filepath.Join(srv.Dir, "state", "share_info.tdb"), "store", "SECDESC/"+stray+`\00`, `\01\00`).Run()
	data, _ := os.ReadFile(srv.Include)
	data = []byte(strings.Replace(string(data), "\n", "\n# fsrvpd-pending: "+stray+"\n", 1))
	if err := os.WriteFile(srv.Include, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sdKeys(t, srv.Dir), stray) {
		t.Fatal("simulated crash: SD not stored")
	}
	e3, err := samba.New(ctx, samba.Config{SMBConf: srv.Conf, IncludeFile: srv.Include, RegistryMirror: true})
	if err != nil {
		t.Fatal(err)
	}
	if keys := sdKeys(t, srv.Dir); strings.Contains(keys, stray) || !strings.Contains(keys, name) {
		t.Fatalf("after New: share_info.tdb keys\n%s", keys)
	}
	if l, _ := e3.List(ctx); len(l) != 1 || l[0].Name != name {
		t.Fatalf("List = %+v", l)
	}
	if data, _ := os.ReadFile(srv.Include); strings.Contains(string(data), "pending") {
		t.Fatalf("journal not cleared:\n%s", data)
	}
	// The daemon's reconcile removes what it does not know.
	if err := e3.Remove(ctx, name); err != nil {
		t.Fatal(err)
	}
	if out, _ := srv.SMBClient(name, "ls"); !strings.Contains(out, "NT_STATUS_BAD_NETWORK_NAME") {
		t.Fatalf("connect after Remove: %s", out)
	}
}
