package samba_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hirochachacha/go-smb2"

	"github.com/fsrvpd/fsrvpd/shares"
	"github.com/fsrvpd/fsrvpd/shares/samba"
	"github.com/fsrvpd/fsrvpd/shares/samba/sambatest"
)

func setup(t testing.TB, o sambatest.Options) (*sambatest.Server, *samba.Exposer) {
	srv := sambatest.Start(t, o)
	e, err := samba.New(context.Background(), samba.Config{SMBConf: srv.Conf, IncludeFile: srv.Include, RegistryMirror: true})
	if err != nil {
		t.Fatal(err)
	}
	return srv, e
}

// snapshot makes a directory standing in for a snapshot, holding f.txt.
func snapshot(t testing.TB, srv *sambatest.Server, content string) string {
	d, err := os.MkdirTemp(srv.Dir, "snap")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(d, 0o777)
	if err := os.WriteFile(filepath.Join(d, "f.txt"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

// session opens an SMB2 session to srv as the test user.
func session(t testing.TB, srv *sambatest.Server) *smb2.Session {
	return sambatest.Session(t, srv.Addr(), sambatest.User, sambatest.Password)
}

func TestExposeReadOnlyAndRemove(t *testing.T) {
	srv, e := setup(t, sambatest.Options{})
	ctx := context.Background()
	b, err := e.Resolver().Lookup(ctx, "SHARE1")
	if err != nil || b.Name != "share1" || b.Path != srv.Paths["share1"] {
		t.Fatalf("Lookup = %+v, %v", b, err)
	}
	if _, err := e.Resolver().Lookup(ctx, "nosuch"); !errors.Is(err, shares.ErrNotFound) {
		t.Fatalf("Lookup(nosuch) = %v", err)
	}
	name := "share1@{6f1c0000-0000-0000-0000-000000000001}"
	snap := snapshot(t, srv, "pre-snap")
	if err := e.Expose(ctx, shares.Share{Name: name, Base: "share1", Path: snap, ReadOnly: true, Comment: "Shadow copy of share1"}); err != nil {
		t.Fatal(err)
	}
	if err := e.Expose(ctx, shares.Share{Name: strings.ToUpper(name), Base: "share1", Path: snap}); !errors.Is(err, shares.ErrExists) {
		t.Fatalf("second Expose = %v", err)
	}
	if err := e.Expose(ctx, shares.Share{Name: "x@{1}", Base: "nosuch", Path: snap}); !errors.Is(err, shares.ErrNotFound) {
		t.Fatalf("Expose on a missing base = %v", err)
	}
	out, err := srv.SMBClient(name, "get f.txt /dev/stdout")
	if err != nil || !strings.Contains(out, "pre-snap") {
		t.Fatalf("reading the snapshot: %v\n%s", err, out)
	}
	if out, _ := srv.SMBClient(name, "put /etc/hostname new.txt"); !strings.Contains(out, "NT_STATUS_ACCESS_DENIED") {
		t.Fatalf("write to a read-only share: %s", out)
	}
	if names, err := srv.ListShares(); err != nil || !slices.Contains(names, name) {
		t.Fatalf("smbclient -L = %v, %v", names, err)
	}
	if l, _ := e.List(ctx); len(l) != 1 || l[0].Name != name || !l[0].ReadOnly || l[0].Base != "share1" || l[0].Path != snap {
		t.Fatalf("List = %+v", l)
	}
	if _, err := e.Resolver().Lookup(ctx, name); !errors.Is(err, shares.ErrNotFound) {
		t.Fatalf("a snapshot share is not a base: %v", err)
	}
	// List (shares.Lister, for SCMP's volumes): the bases, not the snapshot share.
	list, err := e.Resolver().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, b := range list {
		listed = append(listed, b.Name)
		if strings.EqualFold(b.Name, name) || (b.Name == "share1" && b.Path != srv.Paths["share1"]) {
			t.Errorf("List entry %+v", b)
		}
	}
	if !slices.Contains(listed, "share1") || !slices.IsSorted(listed) {
		t.Errorf("List = %v", listed)
	}
	if err := e.Remove(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := e.Remove(ctx, name); !errors.Is(err, shares.ErrNotFound) {
		t.Fatalf("second Remove = %v", err)
	}
	if out, _ := srv.SMBClient(name, "ls"); !strings.Contains(out, "NT_STATUS_BAD_NETWORK_NAME") {
		t.Fatalf("connect after Remove: %s", out)
	}
	if names, _ := srv.ListShares(); slices.Contains(names, name) {
		t.Fatalf("smbclient -L still lists it: %v", names)
	}
	if l, _ := e.List(ctx); len(l) != 0 {
		t.Fatalf("List = %+v", l)
	}
}

func TestWritableSetReadOnlyInSession(t *testing.T) {
	srv, e := setup(t, sambatest.Options{})
	ctx := context.Background()
	s := session(t, srv) // the requester's session exists before the share
	if _, err := s.Mount("share1"); err != nil {
		t.Fatal(err)
	}
	name := "share1@{6f1c0000-0000-0000-0000-000000000002}"
	if err := e.Expose(ctx, shares.Share{Name: name, Base: "share1", Path: snapshot(t, srv, "x")}); err != nil {
		t.Fatal(err)
	}
	fs, err := sambatest.MountSoon(s, name)
	if err != nil {
		t.Fatalf("mount on an existing session: %v", err)
	}
	if err := fs.WriteFile("new.txt", []byte("rw"), 0o644); err != nil {
		t.Fatalf("write to a writable share: %v", err)
	}
	if err := e.SetReadOnly(ctx, name, true); err != nil {
		t.Fatal(err)
	}
	fs2, err := sambatest.MountSoon(s, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := fs2.WriteFile("new2.txt", []byte("rw"), 0o644); err == nil {
		t.Fatal("write to a share made read-only succeeded")
	}
	if err := fs.WriteFile("new3.txt", []byte("rw"), 0o644); err == nil {
		t.Fatal("write through a tree connect made before SetReadOnly succeeded")
	}
	if l, _ := e.List(ctx); len(l) != 1 || !l[0].ReadOnly {
		t.Fatalf("List = %+v", l)
	}
	if err := e.SetReadOnly(ctx, "nosuch", true); !errors.Is(err, shares.ErrNotFound) {
		t.Fatalf("SetReadOnly(nosuch) = %v", err)
	}
}

func TestRemoveClosesOpenConnections(t *testing.T) {
	srv, e := setup(t, sambatest.Options{})
	ctx := context.Background()
	name := "share2@{6f1c0000-0000-0000-0000-000000000003}"
	if err := e.Expose(ctx, shares.Share{Name: name, Base: "share2", Path: snapshot(t, srv, "x"), ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	fs, err := session(t, srv).Mount(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.ReadFile("f.txt"); err != nil {
		t.Fatal(err)
	}
	if err := e.Remove(ctx, name); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		_, err := fs.ReadFile("f.txt")
		if err != nil {
			t.Logf("open tree connect after Remove: %v", err)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the tree connect survived Remove")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHiddenBase(t *testing.T) {
	srv, e := setup(t, sambatest.Options{Shares: []sambatest.Share{{Name: "x$", Params: []string{"read only = no", "vfs objects = acl_xattr"}}}})
	ctx := context.Background()
	name := "x$@{6f1c0000-0000-0000-0000-000000000004}$"
	if err := e.Expose(ctx, shares.Share{Name: name, Base: "X$", Path: snapshot(t, srv, "hidden"), ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	names, err := srv.ListShares()
	if err != nil || slices.Contains(names, name) || !slices.Contains(names, "x$") {
		t.Fatalf("smbclient -L = %v, %v", names, err)
	}
	if out, err := srv.SMBClient(name, "get f.txt /dev/stdout"); err != nil || !strings.Contains(out, "hidden") {
		t.Fatalf("reading the hidden snapshot: %v\n%s", err, out)
	}
	out, err := exec.Command("testparm", "-s", "--suppress-prompt", "--section-name="+name, srv.Conf).Output()
	if err != nil || !strings.Contains(string(out), "vfs objects = acl_xattr") {
		t.Fatalf("base parameters not copied: %v\n%s", err, out)
	}
}

// A base share whose name is not ASCII is exposed, served and withdrawn
// like any other (smb.conf, the include file and the registry are UTF-8;
// SMB carries names in UTF-16).
func TestNonASCIIShareName(t *testing.T) {
	srv, e := setup(t, sambatest.Options{Shares: []sambatest.Share{{Name: "Données", Params: []string{"read only = no"}}, {Name: "資料"}}})
	ctx := context.Background()
	for i, base := range []string{"Données", "資料"} {
		name := base + "@{6f1c0000-0000-0000-0000-00000000010" + string(rune('0'+i)) + "}"
		if err := e.Expose(ctx, shares.Share{Name: name, Base: base, Path: snapshot(t, srv, base), ReadOnly: true}); err != nil {
			t.Fatal(err)
		}
		fs, err := sambatest.MountSoon(session(t, srv), name)
		if err != nil {
			t.Fatalf("mount %s: %v", name, err)
		}
		if data, err := fs.ReadFile("f.txt"); err != nil || string(data) != base {
			t.Fatalf("%s: f.txt = %q, %v", name, data, err)
		}
		fs.Umount()
		if err := e.Remove(ctx, name); err != nil {
			t.Fatal(err)
		}
		if err := goneSoon(session(t, srv), name); err != nil {
			t.Fatal(err)
		}
	}
	if list, err := e.List(ctx); err != nil || len(list) != 0 {
		t.Fatalf("left %v, %v", list, err)
	}
}
