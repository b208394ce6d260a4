package zfs_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fsrvpd/fsrvpd/storage"
	"github.com/fsrvpd/fsrvpd/storage/storagetest"
	"github.com/fsrvpd/fsrvpd/storage/zfs"
)

// recorder is a Runner that records the argv of every command it passes to
// the exec runner.
type recorder struct {
	zfs.Runner
	mu   sync.Mutex
	cmds []string
}

func (r *recorder) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	r.mu.Lock()
	r.cmds = append(r.cmds, strings.Join(args, " "))
	r.mu.Unlock()
	return r.Runner.Run(ctx, name, args...)
}

func (r *recorder) count(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.cmds {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.cmds = nil
	r.mu.Unlock()
}

// recordingBackend returns a backend on pool/c (volumes c/v0, c/v1) that
// records its commands.
func recordingBackend(t *testing.T, p *storagetest.Pool) (*zfs.Backend, *recorder, []storage.Volume) {
	_, r0 := p.Dataset(t, "c/v0")
	_, r1 := p.Dataset(t, "c/v1")
	rec := &recorder{Runner: zfs.ExecRunner{Logger: storagetest.Logger(t)}}
	cfg := caseConfig(t, p, "c")
	cfg.Runner = rec
	b := newBackend(t, cfg)
	t.Cleanup(func() { deleteAll(t, b) })
	var vols []storage.Volume
	for _, r := range []string{r0, r1} {
		v, err := b.Volume(t.Context(), r)
		if err != nil {
			t.Fatal(err)
		}
		vols = append(vols, v)
	}
	return b, rec, vols
}

func TestCreateBatchOnePool(t *testing.T) {
	p := storagetest.ZFSPool(t)
	b, rec, vols := recordingBackend(t, p)
	rec.reset()
	snaps, err := b.CreateBatch(t.Context(), []storage.Request{
		{Volume: vols[0], ID: "b0"}, {Volume: vols[1], ID: "b1", Options: storage.CreateOptions{Writable: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 2 || snaps[0].ID != "b0" || snaps[1].ID != "b1" || snaps[1].ReadOnly {
		t.Fatalf("CreateBatch = %+v", snaps)
	}
	txg := map[string]bool{}
	for _, s := range []string{p.Name + "/c/v0@fsrvp-b0", p.Name + "/c/v1@fsrvp-b1"} {
		f := strings.Fields(zfsCmd(t, "get", "-Hp", "-o", "value", "createtxg", s))
		txg[f[0]] = true
	}
	switch n := rec.count("snapshot"); n {
	case 1: // OpenZFS: zfs snapshot a@x b@y
		if len(txg) != 1 {
			t.Errorf("one zfs snapshot command, but the snapshots have txgs %v", txg)
		}
	case 3: // zfs-fuse: the two-snapshot command is refused, then one per dataset
		t.Logf("this zfs takes one snapshot per command: batch not atomic (txgs %v)", txg)
		rec.reset()
		if _, err := b.CreateBatch(t.Context(), []storage.Request{{Volume: vols[0], ID: "c0"}, {Volume: vols[1], ID: "c1"}}); err != nil {
			t.Fatal(err)
		}
		if n := rec.count("snapshot"); n != 2 {
			t.Errorf("second batch: %d zfs snapshot commands, want 2 (the refusal is remembered)", n)
		}
	default:
		t.Errorf("%d zfs snapshot commands for a batch of 2 on one pool", n)
	}
}

func TestCreateBatchRollbackAcrossPools(t *testing.T) {
	p1, p2 := storagetest.ZFSPool(t), storagetest.ZFSPool(t)
	_, r1 := p1.Dataset(t, "c/v")
	ds2, r2 := p2.Dataset(t, "c/v")
	rec := &recorder{Runner: zfs.ExecRunner{Logger: storagetest.Logger(t)}}
	b := newBackend(t, zfs.Config{Runner: rec, Logger: storagetest.Logger(t), Datasets: []string{p1.Name + "/c", p2.Name + "/c"}, CloneParent: "c/clones"})
	t.Cleanup(func() { deleteAll(t, b) })
	v1, err := b.Volume(t.Context(), r1)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := b.Volume(t.Context(), r2)
	if err != nil {
		t.Fatal(err)
	}
	// A foreign snapshot with the name the batch wants on the second pool.
	zfsCmd(t, "snapshot", ds2+"@fsrvp-y2")
	_, err = b.CreateBatch(t.Context(), []storage.Request{{Volume: v1, ID: "y1"}, {Volume: v2, ID: "y2"}})
	if !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("CreateBatch over a foreign snapshot: %v, want ErrAlreadyExists", err)
	}
	if out := zfsCmd(t, "list", "-H", "-o", "name", "-t", "all", "-r", p1.Name); strings.Contains(out, "fsrvp-y1") {
		t.Errorf("the snapshot on the first pool survived the failed batch:\n%s", out)
	}
	if l, err := b.List(t.Context()); err != nil || len(l) != 0 {
		t.Errorf("List = %v, %v", l, err)
	}
	// Without the obstacle: one command per pool.
	zfsCmd(t, "destroy", ds2+"@fsrvp-y2")
	rec.reset()
	if _, err := b.CreateBatch(t.Context(), []storage.Request{{Volume: v1, ID: "y1"}, {Volume: v2, ID: "y2"}}); err != nil {
		t.Fatal(err)
	}
	if n := rec.count("snapshot"); n != 2 {
		t.Errorf("%d zfs snapshot commands for one dataset on each of two pools, want 2", n)
	}
}

func TestHoldProtectsExposedSnapshot(t *testing.T) {
	p := storagetest.ZFSPool(t)
	b, _, vols := recordingBackend(t, p)
	s, err := b.Create(t.Context(), vols[0], "held", storage.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	snap := p.Name + "/c/v0@fsrvp-held"
	if got := strings.TrimSpace(zfsCmd(t, "get", "-H", "-o", "value", "userrefs", snap)); got != "1" {
		t.Errorf("userrefs = %q, want 1", got)
	}
	// What a pruning tool does, at its most brutal: destroy the snapshot
	// and whatever depends on it (the clone exposing it, under zfs-fuse).
	out, err := exec.Command("zfs", "destroy", "-R", snap).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "busy") {
		t.Errorf("zfs destroy -R of a held snapshot: %v: %s; want busy", err, out)
	}
	if got := zfsCmd(t, "list", "-H", "-o", "name", "-t", "snapshot", "-r", p.Name); !strings.Contains(got, snap) {
		t.Errorf("the held snapshot was destroyed:\n%s", got)
	}
	if s.Path == "" {
		t.Error("no path")
	}
	if err := b.Delete(t.Context(), "held"); err != nil {
		t.Fatal(err)
	}
	if out := zfsCmd(t, "list", "-H", "-o", "name", "-t", "all", "-r", p.Name); strings.Contains(out, "fsrvp-held") {
		t.Errorf("Delete left:\n%s", out)
	}
}

func TestUsage(t *testing.T) {
	p := storagetest.ZFSPool(t)
	b, _, vols := recordingBackend(t, p)
	f := filepath.Join(vols[0].Root, "data")
	data := make([]byte, 4<<20)
	for i := range data {
		data[i] = byte(i * 31)
	}
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	u, err := b.Usage(t.Context(), vols[0])
	if err != nil || !u.Known || u.SnapshotBytes != 0 || u.VolumeID != vols[0].ID {
		t.Fatalf("Usage before any snapshot = %+v, %v", u, err)
	}
	if _, err := b.Create(t.Context(), vols[0], "u", storage.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(f); err != nil {
		t.Fatal(err)
	}
	zfsCmd(t, "snapshot", p.Name+"/c/v0@sync") // commits the txg, so usedbysnapshots is current
	zfsCmd(t, "destroy", p.Name+"/c/v0@sync")
	u, err = b.Usage(t.Context(), vols[0])
	if err != nil || !u.Known || u.SnapshotBytes < 4<<20 {
		t.Fatalf("Usage after removing 4 MiB held by a snapshot = %+v, %v", u, err)
	}
	t.Logf("usedbysnapshots = %d", u.SnapshotBytes)
}

func TestVolumeChildDataset(t *testing.T) {
	p := storagetest.ZFSPool(t)
	_, root := p.Dataset(t, "c/parent")
	p.Dataset(t, "c/parent/child")
	b := newBackend(t, caseConfig(t, p, "c"))
	for _, path := range []string{root, filepath.Join(root, "child")} {
		if _, err := b.Volume(t.Context(), path); !errors.Is(err, storage.ErrNotSupported) && path == root {
			t.Errorf("Volume(%s) with a child dataset: %v, want ErrNotSupported", path, err)
		}
	}
	if _, err := b.Volume(t.Context(), filepath.Join(root, "child")); err != nil {
		t.Errorf("Volume of the child itself: %v", err)
	}
	other := newBackend(t, caseConfig(t, p, "elsewhere"))
	if _, err := other.Volume(t.Context(), filepath.Join(root, "child")); !errors.Is(err, storage.ErrNotSupported) {
		t.Errorf("Volume out of Config.Datasets: %v, want ErrNotSupported", err)
	}
}
