package dir

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fsrvpd/fsrvpd/storage"
)

// TestCopyDetails covers what the shared suite cannot ask of every backend:
// extended attributes, skipped special files, hard links and a directory on
// another device that appears after Volume.
func TestCopyDetails(t *testing.T) {
	fx := newFixture(t, t.TempDir())
	b, root := fx.Backend.(*Backend), fx.Volumes[0]
	file := filepath.Join(root, "attrs")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	xattr := unix.Setxattr(file, "user.DOSATTRIB", []byte("0x20"), 0)
	if err := unix.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(file, filepath.Join(root, "hardlink")); err != nil {
		t.Fatal(err)
	}
	vol, err := b.Volume(t.Context(), root)
	if err != nil {
		t.Fatal(err)
	}
	before := b.Stats()
	s, err := b.Create(t.Context(), vol, "details", storage.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Stats().Skipped - before.Skipped; got != 1 {
		t.Errorf("Skipped = %d, want 1 (the FIFO)", got)
	}
	if _, err := os.Lstat(filepath.Join(s.Path, "fifo")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the FIFO was copied: %v", err)
	}
	var a, h unix.Stat_t
	if err := unix.Stat(filepath.Join(s.Path, "attrs"), &a); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(filepath.Join(s.Path, "hardlink"), &h); err != nil {
		t.Fatal(err)
	}
	if a.Ino == h.Ino {
		t.Errorf("hard links are documented as copied to separate files")
	}
	if xattr == nil {
		buf := make([]byte, 16)
		n, err := unix.Getxattr(filepath.Join(s.Path, "attrs"), "user.DOSATTRIB", buf)
		if err != nil || string(buf[:n]) != "0x20" {
			t.Errorf("user.DOSATTRIB in the snapshot: %q, %v", buf[:n], err)
		}
	} else {
		t.Logf("no user xattrs on this filesystem: %v", xattr)
	}

	if os.Geteuid() != 0 {
		return
	}
	mnt := filepath.Join(root, "late-mount")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	if _, err := b.Create(t.Context(), vol, "late", storage.CreateOptions{}); !errors.Is(err, storage.ErrNotSupported) {
		t.Fatalf("Create over a mount that appeared after Volume: %v, want ErrNotSupported", err)
	}
	if list, err := b.List(t.Context()); err != nil || len(list) != 1 {
		t.Fatalf("List after a failed Create = %v, %v", list, err)
	}
	if _, err := os.Lstat(b.tmpDir("late")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed Create left %s: %v", b.tmpDir("late"), err)
	}
}
