package btrfs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fsrvpd/fsrvpd/storage"
)

// recursiveVolume makes, on a fresh filesystem, the subvolume vol with a
// file, the nested subvolume vol/a/child with a file and the subvolume
// vol/a/child/grand nested in it with a file, and a Recursive backend.
func recursiveVolume(t *testing.T) (mnt string, b *Backend, vol storage.Volume) {
	t.Helper()
	mnt = loopBtrfs(t)
	b = mustNew(t, Config{SnapshotDir: filepath.Join(mnt, "snaps"), Recursive: true, Logger: loggerFor(t)})
	t.Cleanup(func() { removeAll(t, b) })
	root := subvolume(t, filepath.Join(mnt, "vol"))
	if err := os.MkdirAll(filepath.Join(root, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	child := subvolume(t, filepath.Join(root, "a", "child"))
	grand := subvolume(t, filepath.Join(child, "grand"))
	for p, data := range map[string]string{root: "top", child: "child", grand: "grand"} {
		if err := os.WriteFile(filepath.Join(p, "f"), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, p := range []string{grand, child, root} {
			run(t, "btrfs", "subvolume", "delete", p)
		}
	})
	v, err := b.Volume(t.Context(), filepath.Join(root, "a"))
	if err != nil || v.Root != root {
		t.Fatalf("Volume with nested subvolumes, Recursive: %+v, %v", v, err)
	}
	return mnt, b, v
}

// ourSubvolumes lists the subvolumes of the filesystem below the snapshot
// dir.
func ourSubvolumes(t *testing.T, mnt string) []string {
	t.Helper()
	var got []string
	for _, line := range strings.Split(run(t, "btrfs", "subvolume", "list", mnt), "\n") {
		if i := strings.Index(line, " path "); i >= 0 && strings.Contains(line[i:], "snaps/") {
			got = append(got, line[i+6:])
		}
	}
	return got
}

func TestRecursive(t *testing.T) {
	mnt, b, vol := recursiveVolume(t)

	// Without Recursive the same volume stays unsupported.
	plain := mustNew(t, Config{SnapshotDir: filepath.Join(mnt, "snaps")})
	if _, err := plain.Volume(t.Context(), vol.Root); !errors.Is(err, storage.ErrNotSupported) {
		t.Errorf("Volume with nested subvolumes, not Recursive: %v, want ErrNotSupported", err)
	}

	ro, err := b.Create(t.Context(), vol, "ro", storage.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rw, err := b.Create(t.Context(), vol, "rw", storage.CreateOptions{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []storage.Snapshot{ro, rw} {
		for rel, want := range map[string]string{"f": "top", "a/child/f": "child", "a/child/grand/f": "grand"} {
			if got, err := os.ReadFile(filepath.Join(s.Path, rel)); err != nil || string(got) != want {
				t.Errorf("%s in snapshot %s: %q, %v; want %q", rel, s.ID, got, err, want)
			}
		}
	}
	checkRO := func(s storage.Snapshot, want bool) {
		t.Helper()
		for _, rel := range []string{"f", "a/child/f", "a/child/grand/f", "a/child/new"} {
			err := os.WriteFile(filepath.Join(s.Path, rel), []byte("y"), 0o666)
			if want && !errors.Is(err, unix.EROFS) || !want && err != nil {
				t.Errorf("write %s into %s: %v, want EROFS: %v", rel, s.ID, err, want)
			}
		}
		if got, err := b.Stat(t.Context(), s.ID); err != nil || got.ReadOnly != want || got.Path != s.Path {
			t.Errorf("Stat(%s) = %+v, %v", s.ID, got, err)
		}
	}
	checkRO(ro, true)
	checkRO(rw, false)
	if err := b.SetReadOnly(t.Context(), "rw"); err != nil {
		t.Fatal(err)
	}
	checkRO(rw, true)

	batch, err := b.CreateBatch(t.Context(), []storage.Request{{Volume: vol, ID: "batch"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(batch[0].Path, "a/child/grand/f")); err != nil || string(got) != "grand" {
		t.Errorf("a/child/grand/f in a batch snapshot: %q, %v", got, err)
	}
	if err := b.Delete(t.Context(), "batch"); err != nil {
		t.Fatal(err)
	}

	list, err := b.List(t.Context())
	if err != nil || len(list) != 2 {
		t.Errorf("List = %+v, %v; want the 2 snapshots only", list, err)
	}
	if got := ourSubvolumes(t, mnt); len(got) != 6 {
		t.Errorf("subvolumes below snaps: %q, want 6", got)
	}

	// A half-built tree (crash before the rename) is no snapshot, and
	// List removes it.
	dir, err := b.prepare(vol, "half")
	if err != nil {
		t.Fatal(err)
	}
	src, err := b.openVolume(vol)
	if err != nil {
		t.Fatal(err)
	}
	err = b.buildTree(dir, src, []string{"a/child"}, true)
	src.Close()
	if err := unix.Renameat(int(dir.Fd()), dataName, int(dir.Fd()), buildName); err != nil {
		t.Fatal(err)
	}
	dir.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(t.Context(), "half"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat of a half-built tree: %v, want ErrNotFound", err)
	}
	if list, err := b.List(t.Context()); err != nil || len(list) != 2 {
		t.Errorf("List = %+v, %v; want the 2 snapshots only", list, err)
	}
	if _, err := os.Lstat(b.idDir("half")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("List left the half-built tree: %v", err)
	}

	for _, id := range []string{"ro", "rw"} {
		if err := b.Delete(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	if got := ourSubvolumes(t, mnt); len(got) != 0 {
		t.Errorf("subvolumes left below snaps: %q", got)
	}
	if names, err := os.ReadDir(filepath.Join(mnt, "snaps")); err != nil || len(names) != 0 {
		t.Errorf("snapshot dir after Delete: %v, %v", names, err)
	}
}

// TestRecursiveMountStaysUnsupported: Recursive accepts nested subvolumes,
// not mounts.
func TestRecursiveMountStaysUnsupported(t *testing.T) {
	_, b, vol := recursiveVolume(t)
	mp := filepath.Join(vol.Root, "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mp, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(mp, unix.MNT_DETACH)
	if _, err := b.Volume(t.Context(), vol.Root); !errors.Is(err, storage.ErrNotSupported) {
		t.Errorf("Volume with a mount below, Recursive: %v, want ErrNotSupported", err)
	}
}
