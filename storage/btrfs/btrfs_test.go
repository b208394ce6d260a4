package btrfs

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/fsrvpd/fsrvpd/storage"
	"github.com/fsrvpd/fsrvpd/storage/storagetest"
)

func TestSuite(t *testing.T) {
	mnt := loopBtrfs(t)
	storagetest.Run(t, func(t *testing.T) storagetest.Fixture {
		return newFixture(t, mnt, false)
	})
}

// TestSuiteRecursive runs the suite with Config.Recursive: a volume without
// nested subvolumes behaves as without it.
func TestSuiteRecursive(t *testing.T) {
	mnt := loopBtrfs(t)
	storagetest.Run(t, func(t *testing.T) storagetest.Fixture {
		return newFixture(t, mnt, true)
	})
}

// newFixture makes, in a fresh directory of the filesystem mounted at mnt,
// two subvolumes vol0 and vol1 and a SnapshotDir snaps.
func newFixture(t *testing.T, mnt string, recursive bool) storagetest.Fixture {
	t.Helper()
	base, err := os.MkdirTemp(mnt, "case-")
	if err != nil {
		t.Fatal(err)
	}
	vols := []string{subvolume(t, filepath.Join(base, "vol0")), subvolume(t, filepath.Join(base, "vol1"))}
	cfg := Config{SnapshotDir: filepath.Join(base, "snaps"), Recursive: recursive, Logger: storagetest.Logger(t)}
	b := mustNew(t, cfg)
	t.Cleanup(func() {
		removeAll(t, b)
		for _, v := range vols {
			run(t, "btrfs", "subvolume", "delete", v)
		}
		if err := os.RemoveAll(base); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return storagetest.Fixture{
		Backend: b,
		Volumes: vols,
		Reopen:  func(t *testing.T) storage.Backend { return mustNew(t, cfg) },
		Crash:   crasher{b},
	}
}

func mustNew(t testing.TB, cfg Config) *Backend {
	t.Helper()
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// removeAll deletes every snapshot and leftover of b.
func removeAll(t testing.TB, b *Backend) {
	list, err := b.List(context.Background())
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	for _, s := range list {
		if err := b.Delete(context.Background(), s.ID); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
}

// crasher leaves what a crash between prepare and the snapshot ioctl
// leaves: fsrvp-<id> with its meta xattr and no subvolume. A crash during
// the ioctl leaves that or a finished snapshot, since the ioctl commits a
// transaction.
type crasher struct{ b *Backend }

func (c crasher) LeaveInterruptedCreate(t *testing.T, vol storage.Volume, id string) {
	t.Helper()
	dir, err := c.b.prepare(vol, id)
	if err != nil {
		t.Fatal(err)
	}
	dir.Close()
}

func (c crasher) InterruptedCreateExists(t *testing.T, id string) bool {
	_, err := os.Lstat(c.b.idDir(id))
	return err == nil
}
