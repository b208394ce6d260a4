package storagetest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// LoopBtrfs makes a btrfs filesystem in a 512 MiB sparse image, mounts it
// on a loop device and returns the mount point. The filesystem is
// unmounted and the loop device detached when the test ends. It needs root,
// btrfs-progs and the btrfs filesystem (Require rules apply).
func LoopBtrfs(t testing.TB) string {
	t.Helper()
	RequireRoot(t)
	RequireFilesystem(t, "btrfs")
	RequireCommand(t, "mkfs.btrfs")
	RequireCommand(t, "btrfs")
	RequireCommand(t, "losetup")
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
	RunCommand(t, "mkfs.btrfs", "-q", "-f", img)
	dev := strings.TrimSpace(RunCommand(t, "losetup", "--find", "--show", img))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v\n%s", dev, err, out)
		}
	})
	if err := unix.Mount(dev, mnt, "btrfs", 0, ""); err != nil {
		t.Fatalf("mount %s on %s: %v", dev, mnt, err)
	}
	t.Cleanup(func() {
		var err error
		for range 50 {
			if err = unix.Unmount(mnt, 0); !errors.Is(err, unix.EBUSY) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			// Still busy (a leaked file descriptor): detach it so that
			// no mount outlives the test, and fail.
			t.Errorf("unmount %s: %v (detaching it)", mnt, err)
			unix.Unmount(mnt, unix.MNT_DETACH)
		}
	})
	return mnt
}

// Subvolume creates the btrfs subvolume path with the btrfs CLI.
func Subvolume(t testing.TB, path string) string {
	t.Helper()
	RunCommand(t, "btrfs", "subvolume", "create", path)
	return path
}

// RunCommand runs a setup command and fails the test if it fails.
func RunCommand(t testing.TB, argv ...string) string {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%q: %v\n%s", argv, err, out)
	}
	return string(out)
}
