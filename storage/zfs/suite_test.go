package zfs_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fsrvpd/fsrvpd/storage"
	"github.com/fsrvpd/fsrvpd/storage/storagetest"
	"github.com/fsrvpd/fsrvpd/storage/zfs"
)

// caseConfig is the backend configuration of one fixture: the datasets
// below pool/<c>, clones in pool/<c>/clones.
func caseConfig(t testing.TB, p *storagetest.Pool, c string) zfs.Config {
	return zfs.Config{
		Logger:      storagetest.Logger(t),
		Datasets:    []string{p.Name + "/" + c},
		CloneParent: c + "/clones",
	}
}

func newBackend(t testing.TB, cfg zfs.Config) *zfs.Backend {
	t.Helper()
	b, err := zfs.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSuite(t *testing.T) { runSuite(t, false) }

// TestSuiteRecursive runs the suite with Config.Recursive: a volume without
// child datasets behaves as without it.
func TestSuiteRecursive(t *testing.T) { runSuite(t, true) }

func runSuite(t *testing.T, recursive bool) {
	p := storagetest.ZFSPool(t)
	var n atomic.Int32
	storagetest.Run(t, func(t *testing.T) storagetest.Fixture {
		c := fmt.Sprintf("c%d", n.Add(1))
		_, r0 := p.Dataset(t, c+"/v0")
		_, r1 := p.Dataset(t, c+"/v1")
		cfg := caseConfig(t, p, c)
		cfg.Recursive = recursive
		b := newBackend(t, cfg)
		t.Cleanup(func() {
			deleteAll(t, newBackend(t, cfg))
			if err := storagetest.RetryBusy("zfs", "destroy", "-r", p.Name+"/"+c); err != nil {
				t.Error(err)
			}
		})
		return storagetest.Fixture{
			Backend: b,
			Volumes: []string{r0, r1},
			Reopen:  func(t *testing.T) storage.Backend { return newBackend(t, cfg) },
			Crash:   crash{pool: p},
		}
	})
}

// deleteAll deletes every snapshot b lists.
func deleteAll(t testing.TB, b *zfs.Backend) {
	t.Helper()
	ctx := context.Background() // t.Context is canceled in cleanups
	list, err := b.List(ctx)
	if err != nil {
		t.Errorf("cleanup: List: %v", err)
	}
	for _, s := range list {
		if err := b.Delete(ctx, s.ID); err != nil {
			t.Errorf("cleanup: Delete(%s): %v", s.ID, err)
		}
	}
}

// crash simulates a Create interrupted after `zfs snapshot` and the hold,
// before the clone and the final state.
type crash struct{ pool *storagetest.Pool }

func (c crash) LeaveInterruptedCreate(t *testing.T, vol storage.Volume, id string) {
	ds := c.datasetAt(t, vol.Root)
	zfsCmd(t, "snapshot", "-o", "org.fsrvpd:state=creating", ds+"@fsrvp-"+id)
	zfsCmd(t, "hold", zfs.DefaultHoldTag, ds+"@fsrvp-"+id)
}

func (c crash) InterruptedCreateExists(t *testing.T, id string) bool {
	out := zfsCmd(t, "list", "-H", "-o", "name", "-t", "all", "-r", c.pool.Name)
	for _, l := range strings.Split(out, "\n") {
		if strings.HasSuffix(l, "@fsrvp-"+id) || strings.HasSuffix(l, "/fsrvp-"+id) {
			return true
		}
	}
	return false
}

func (c crash) datasetAt(t *testing.T, root string) string {
	out, err := exec.Command("findmnt", "-n", "-o", "SOURCE", "--mountpoint", root).Output()
	if err != nil {
		t.Fatalf("findmnt %s: %v", root, err)
	}
	return strings.TrimSpace(string(out))
}
