package zfs_test

import (
	"os"
	"testing"

	"github.com/fsrvpd/fsrvpd/storage/storagetest"
)

// TestMain runs the tests with storagetest.ZFSMain, which stops the
// zfs-fuse daemon that storagetest.ZFSPool may start.
func TestMain(m *testing.M) { os.Exit(storagetest.ZFSMain(m)) }

// zfsCmd runs zfs and fails the test if it fails.
func zfsCmd(t testing.TB, args ...string) string {
	t.Helper()
	return storagetest.RunCommand(t, append([]string{"zfs"}, args...)...)
}
