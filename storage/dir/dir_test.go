package dir

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/fsrvpd/fsrvpd/storage"
	"github.com/fsrvpd/fsrvpd/storage/storagetest"
)

func TestSuite(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storagetest.Fixture {
		return newFixture(t, t.TempDir())
	})
}

// newFixture prepares two volumes and a snapshot dir below base.
func newFixture(t *testing.T, base string) storagetest.Fixture {
	t.Helper()
	cfg := Config{
		Volumes:     []string{filepath.Join(base, "vol0"), filepath.Join(base, "vol1")},
		SnapshotDir: filepath.Join(base, "snapshots"),
		Logger:      storagetest.Logger(t),
	}
	for _, v := range cfg.Volumes {
		if err := os.Mkdir(v, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	open := func(t *testing.T) storage.Backend { return mustNew(t, cfg) }
	b := mustNew(t, cfg)
	t.Cleanup(func() { removeAll(t, b) })
	return storagetest.Fixture{
		Backend:            b,
		Volumes:            cfg.Volumes,
		Reopen:             open,
		Crash:              crasher{b},
		ReadOnlyByModeBits: true,
	}
}

func mustNew(t *testing.T, cfg Config) *Backend {
	t.Helper()
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// removeAll deletes every snapshot and leftover, so that t.TempDir can
// remove read-only trees when not running as root.
func removeAll(t *testing.T, b *Backend) {
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

// crasher builds a complete .tmp-<id> and stops before publishing it: the
// worst moment to crash.
type crasher struct{ b *Backend }

func (c crasher) LeaveInterruptedCreate(t *testing.T, vol storage.Volume, id string) {
	t.Helper()
	_, _, err := c.b.build(t.Context(), c.b.log, vol, id, storage.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

func (c crasher) InterruptedCreateExists(t *testing.T, id string) bool {
	_, err := os.Lstat(c.b.tmpDir(id))
	return err == nil
}
