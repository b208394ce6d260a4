package dir

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fsrvpd/fsrvpd/storage"
	"github.com/fsrvpd/fsrvpd/storage/storagetest"
)

// The suite again on filesystems that share extents, where Create clones.
func TestSuiteBtrfs(t *testing.T) { runOn(t, loopFS(t, "btrfs", "mkfs.btrfs", "-q")) }
func TestSuiteXFS(t *testing.T)   { runOn(t, loopFS(t, "xfs", "mkfs.xfs", "-q", "-m", "reflink=1")) }

func runOn(t *testing.T, mnt string) {
	storagetest.Run(t, func(t *testing.T) storagetest.Fixture {
		base, err := os.MkdirTemp(mnt, "case-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := os.RemoveAll(base); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
		return newFixture(t, base)
	})
}

// TestReflink checks that Create clones every file on btrfs and XFS, and
// falls back to copying where the volume and SnapshotDir are on different
// filesystems.
func TestReflink(t *testing.T) {
	for _, c := range []struct {
		name, fstype string
		mkfs         []string
	}{
		{"btrfs", "btrfs", []string{"mkfs.btrfs", "-q"}},
		{"XFS", "xfs", []string{"mkfs.xfs", "-q", "-m", "reflink=1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			mnt := loopFS(t, c.fstype, c.mkfs...)
			same := newFixture(t, mnt)
			checkCopies(t, same, true)
			other := newFixture(t, t.TempDir())
			other.Volumes[0] = filepath.Join(mnt, "vol0")
			cfg := Config{Volumes: other.Volumes, SnapshotDir: filepath.Join(t.TempDir(), "snaps"), Logger: storagetest.Logger(t)}
			b := mustNew(t, cfg)
			t.Cleanup(func() { removeAll(t, b) })
			other.Backend = b
			checkCopies(t, other, false)
		})
	}
}

func checkCopies(t *testing.T, fx storagetest.Fixture, wantClone bool) {
	t.Helper()
	b := fx.Backend.(*Backend)
	dir := filepath.Join(fx.Volumes[0], "f")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprint(i)), make([]byte, 4096*(i+1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	vol, err := b.Volume(t.Context(), fx.Volumes[0])
	if err != nil {
		t.Fatal(err)
	}
	before := b.Stats()
	if _, err := b.Create(t.Context(), vol, "reflink", storage.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := b.Stats()
	cloned, copied := got.Cloned-before.Cloned, got.Copied-before.Copied
	if wantClone && (cloned != 10 || copied != 0) || !wantClone && (cloned != 0 || copied != 10) {
		t.Fatalf("cloned %d, copied %d files; want clones: %v", cloned, copied, wantClone)
	}
}

// loopFS makes a file system of type fstype in a sparse image with the
// mkfs command line, loop-mounts it and returns the mount point. It is
// unmounted (and the loop device released) when the test ends.
func loopFS(t *testing.T, fstype string, mkfs ...string) string {
	t.Helper()
	storagetest.RequireRoot(t)
	storagetest.RequireFilesystem(t, fstype)
	storagetest.RequireCommand(t, mkfs[0])
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "fs.img"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 512<<20); err != nil {
		t.Fatal(err)
	}
	run(t, append(mkfs, img)...)
	run(t, "mount", "-o", "loop", "-t", fstype, img, mnt)
	t.Cleanup(func() {
		// The loop device was set up with autoclear by mount(8): unmounting
		// releases it.
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	return mnt
}

func run(t *testing.T, argv ...string) {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%q: %v\n%s", argv, err, out)
	}
}
