package scmp_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fsrvpd/fsrvpd/server/scmp"
	"github.com/fsrvpd/fsrvpd/server/state"
	"github.com/fsrvpd/fsrvpd/shares"
	"github.com/fsrvpd/fsrvpd/storage"
	"github.com/fsrvpd/fsrvpd/storage/storagetest"
	"github.com/fsrvpd/fsrvpd/storage/zfs"
)

// TestZFSUsedBySnapshots: on ZFS the association's used space is the
// dataset's usedbysnapshots, and a maximum below it deletes the oldest
// snapshots, measuring again after each (waiting for ZFS to free), until
// the rest fits.
func TestZFSUsedBySnapshots(t *testing.T) {
	p := storagetest.ZFSPool(t)
	storagetest.RunCommand(t, "zfs", "create", p.Name+"/v")
	root := filepath.Join(p.Mountpoint, "v")
	if err := os.Mkdir(filepath.Join(root, "s"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := zfs.New(zfs.Config{Datasets: []string{p.Name}, Logger: storagetest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	bv, err := b.Volume(t.Context(), filepath.Join(root, "s"))
	if err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(root, "s", "big")
	data := make([]byte, 8<<20)
	for i := range data {
		data[i] = byte(i * 31)
	}
	var ids []string
	for range 3 {
		if err := os.WriteFile(big, data, 0o644); err != nil {
			t.Fatal(err)
		}
		storagetest.RunCommand(t, "sync")
		id := uuid.New().String()
		if _, err := b.Create(t.Context(), bv, id, storage.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		time.Sleep(1100 * time.Millisecond) // ZFS creation times have 1 s resolution
	}
	if err := os.WriteFile(big, data, 0o644); err != nil {
		t.Fatal(err)
	}
	storagetest.RunCommand(t, "sync")
	// zfs-fuse accounts the last write a few seconds after sync(1): wait
	// until the three snapshots hold their 8 MiB each.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		u, err := b.Usage(t.Context(), bv)
		if err == nil && u.Known && u.SnapshotBytes >= 3*int64(len(data))-(1<<20) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("usedbysnapshots never reached 3 x 8 MiB: %+v, %v", u, err)
		}
	}

	db, err := state.Open(filepath.Join(t.TempDir(), "state.db"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, _ := shares.NewStatic([]shares.BaseShare{{Name: "s", Path: filepath.Join(root, "s")}})
	m := scmp.New(scmp.Config{Backend: b, Shares: res, Inventory: backendInventory{b}, DB: db, MinDiffArea: -1, Logger: storagetest.Logger(t)})
	v, err := m.Lookup(t.Context(), "s")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.AddDiffArea(t.Context(), v, v, -1); err != nil {
		t.Fatal(err)
	}
	das, err := m.DiffAreas(t.Context())
	u, uerr := b.Usage(t.Context(), bv)
	if err != nil || uerr != nil || len(das) != 1 || !u.Known || das[0].Used != u.SnapshotBytes ||
		das[0].Used < 3*int64(len(data))-(1<<20) || das[0].Used > 4*int64(len(data)) {
		t.Fatalf("diff area %+v, usage %+v (%v, %v); want about %d bytes", das, u, err, uerr, 3*len(data))
	}
	t.Logf("usedbysnapshots %d", u.SnapshotBytes)
	if err := m.ChangeDiffAreaMaximumSize(t.Context(), v, v, 12<<20); err != nil {
		t.Fatal(err)
	}
	if got := snapshotIDs(t, b); len(got) != 1 || got[0] != ids[2] {
		t.Fatalf("left %v, want only the newest %s (of %v)", got, ids[2], ids)
	}
}
