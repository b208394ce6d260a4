package storagetest

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fsrvpd/fsrvpd/storage"
)

// testNestedMount mounts a tmpfs below a volume, at a path with a space
// (escaped as \040 in /proc/self/mountinfo). A snapshot would not include
// the mount, so the volume is unsupported as a whole.
func testNestedMount(t *testing.T, fx Fixture) {
	RequireRoot(t)
	RequireFilesystem(t, "tmpfs")
	b := fx.Backend
	sibling := filepath.Join(fx.Volumes[0], "sibling")
	mnt := filepath.Join(fx.Volumes[0], "sub dir", "mnt point")
	mustDo(t, os.MkdirAll(sibling, 0o755))
	mustDo(t, os.MkdirAll(mnt, 0o755))
	volume(t, b, fx.Volumes[0])
	Mount(t, "tmpfs", mnt, "tmpfs", "size=1m")
	mustDo(t, os.WriteFile(filepath.Join(mnt, "f"), []byte("on tmpfs"), 0o644))

	for _, p := range []string{fx.Volumes[0], sibling, filepath.Dir(mnt), mnt} {
		_, err := b.Volume(t.Context(), p)
		wantErr(t, "Volume("+p+") with a mount below the volume root", err, storage.ErrNotSupported)
	}
	volume(t, b, fx.Volumes[1])
}

// Mount mounts source on target and unmounts it when the test ends.
func Mount(t testing.TB, source, target, fstype, data string) {
	t.Helper()
	if err := unix.Mount(source, target, fstype, 0, data); err != nil {
		t.Fatalf("mount %s on %s: %v", fstype, target, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", target, err)
		}
	})
}
