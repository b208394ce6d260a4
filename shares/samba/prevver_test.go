package samba_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsrvpd/fsrvpd/shares"
	"github.com/fsrvpd/fsrvpd/shares/samba"
	"github.com/fsrvpd/fsrvpd/shares/samba/sambatest"
)

// TestPreviousVersions: an exposed snapshot share appears as a @GMT link in
// its base share's Previous Versions directory, which vfs_shadow_copy2 on
// the base share lists (smbclient allinfo: FSCTL_SRV_ENUM_SNAPS) and opens;
// the snapshot share copies neither shadow:* nor shadow_copy2; a second
// snapshot in the same second gets no link; Remove drops the link; New
// reconciles the directory with the include file.
func TestPreviousVersions(t *testing.T) {
	sambatest.Skip(t)
	root := t.TempDir()
	pv := filepath.Join(root, "pv")
	base := filepath.Join(root, "share1")
	os.MkdirAll(base, 0o777)
	os.WriteFile(filepath.Join(base, "f.txt"), []byte("live"), 0o644)
	srv := sambatest.Start(t, sambatest.Options{Shares: []sambatest.Share{{Name: "Share1", Params: []string{
		"path = " + base, "read only = no", "vfs objects = fileid shadow_copy2",
		"shadow:snapdir = " + filepath.Join(pv, "share1"), "shadow:mountpoint = " + base,
	}}}})
	ctx := context.Background()
	e, err := samba.New(ctx, samba.Config{SMBConf: srv.Conf, IncludeFile: srv.Include, PreviousVersionsDir: pv, RegistryMirror: true})
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 11, 22, 4, 0, 0, 250e6, time.UTC)
	token := "@GMT-2026.11.22-04.00.00"
	link := filepath.Join(pv, "share1", token)
	snap := snapshot(t, srv, "pre-snap")
	name := "Share1@{6f1c0000-0000-0000-0000-0000000000a1}"
	if err := e.Expose(ctx, shares.Share{Name: name, Base: "share1", Path: snap, Created: created}); err != nil {
		t.Fatal(err)
	}
	if tgt, err := os.Readlink(link); err != nil || tgt != snap {
		t.Fatalf("link = %q, %v; want → %s", tgt, err, snap)
	}
	inc, _ := os.ReadFile(srv.Include)
	if strings.Contains(strings.ToLower(string(inc)), "shadow") || !strings.Contains(string(inc), "vfs objects = fileid\n") {
		t.Fatalf("include file copies shadow_copy2 settings:\n%s", inc)
	}
	out, err := srv.SMBClient("share1", "allinfo f.txt")
	if err != nil || !strings.Contains(out, token) {
		t.Fatalf("allinfo does not list %s: %v\n%s", token, err, out)
	}
	out, err = srv.SMBClient("share1", "get "+token+`\f.txt /dev/stdout`)
	if err != nil || !strings.Contains(out, "pre-snap") {
		t.Fatalf("reading through the @GMT token: %v\n%s", err, out)
	}
	// The writable snapshot share works (no absolute snapdir copied into it).
	if out, err := srv.SMBClient(name, "put /etc/hostname new.txt"); err != nil {
		t.Fatalf("write to the snapshot share: %v\n%s", err, out)
	}

	// Same second: no link for the second one, the first keeps its own.
	snap2 := snapshot(t, srv, "second")
	name2 := "Share1@{6f1c0000-0000-0000-0000-0000000000a2}"
	if err := e.Expose(ctx, shares.Share{Name: name2, Base: "share1", Path: snap2, Created: created.Add(500 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	if tgt, _ := os.Readlink(link); tgt != snap {
		t.Fatalf("collision: link → %q, want the first %s", tgt, snap)
	}
	if err := e.Remove(ctx, name2); err != nil {
		t.Fatal(err)
	}
	if tgt, _ := os.Readlink(link); tgt != snap {
		t.Fatalf("removing the second took the first's link: → %q", tgt)
	}

	// Crash leftovers: a stray link, a lost link; New reconciles.
	stray := filepath.Join(pv, "share1", "@GMT-2020.01.01-00.00.00")
	if err := os.Symlink(snap2, stray); err != nil {
		t.Fatal(err)
	}
	os.Remove(link)
	keep := filepath.Join(pv, "share1", "notes.txt")
	os.WriteFile(keep, nil, 0o644)
	e, err = samba.New(ctx, samba.Config{SMBConf: srv.Conf, IncludeFile: srv.Include, PreviousVersionsDir: pv, RegistryMirror: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(stray); !os.IsNotExist(err) {
		t.Fatalf("stray link survived New: %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Fatalf("New removed a file that is not a @GMT link: %v", err)
	}
	if tgt, err := os.Readlink(link); err != nil || tgt != snap {
		t.Fatalf("lost link not restored from the include file: %q, %v", tgt, err)
	}

	if err := e.Remove(ctx, name); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Fatalf("link survived Remove: %v", err)
	}
	if out, _ := srv.SMBClient("share1", "allinfo f.txt"); strings.Contains(out, "@GMT-") {
		t.Fatalf("allinfo still lists a snapshot:\n%s", out)
	}
	if _, err := samba.New(ctx, samba.Config{SMBConf: srv.Conf, IncludeFile: srv.Include, PreviousVersionsDir: "rel"}); err == nil {
		t.Fatal("New accepted a relative PreviousVersionsDir")
	}
}
