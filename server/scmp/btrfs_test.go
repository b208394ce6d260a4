package scmp_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/google/uuid"

	"github.com/fsrvpd/fsrvpd/server/fsrvp"
	"github.com/fsrvpd/fsrvpd/server/scmp"
	"github.com/fsrvpd/fsrvpd/server/state"
	"github.com/fsrvpd/fsrvpd/shares"
	"github.com/fsrvpd/fsrvpd/storage"
	"github.com/fsrvpd/fsrvpd/storage/btrfs"
	"github.com/fsrvpd/fsrvpd/storage/storagetest"
)

// backendInventory lists a backend's snapshots as unpinned FSRVP shadow
// copies (one set each) and releases them by deleting the snapshot.
type backendInventory struct{ b storage.Backend }

func (i backendInventory) ShadowCopies() []fsrvp.ShadowCopyInfo {
	list, _ := i.b.List(context.Background())
	var out []fsrvp.ShadowCopyInfo
	for _, s := range list {
		id := uuid.MustParse(s.ID)
		out = append(out, fsrvp.ShadowCopyInfo{ID: id, SetID: id, SetSize: 1, VolumeID: s.VolumeID, VolumeRoot: s.VolumeRoot,
			SnapshotID: s.ID, SnapshotPath: s.Path, Created: s.Created})
	}
	return out
}

func (i backendInventory) ReleaseShadowCopy(ctx context.Context, id uuid.UUID, _ string) error {
	return i.b.Delete(ctx, id.String())
}

// TestBtrfsQgroupUsage: on btrfs with quotas the association's used space
// is the qgroups' exclusive bytes of the snapshots, and a maximum below it
// deletes the oldest snapshots, measuring again after each, until the rest
// fits; without quotas only the count is enforced.
func TestBtrfsQgroupUsage(t *testing.T) {
	mnt := storagetest.LoopBtrfs(t)
	vol := storagetest.Subvolume(t, filepath.Join(mnt, "vol"))
	if err := os.Mkdir(filepath.Join(vol, "s"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := btrfs.New(btrfs.Config{SnapshotDir: filepath.Join(mnt, "snaps"), Logger: storagetest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	storagetest.RunCommand(t, "btrfs", "quota", "enable", mnt)
	storagetest.RunCommand(t, "btrfs", "quota", "rescan", "-w", mnt)
	bv, err := b.Volume(t.Context(), vol)
	if err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(vol, "s", "big")
	data := make([]byte, 8<<20)
	for i := range data {
		data[i] = byte(i * 31)
	}
	var ids []string
	for range 3 {
		if err := os.WriteFile(big, data, 0o644); err != nil { // new extents each time
			t.Fatal(err)
		}
		id := uuid.New().String()
		if _, err := b.Create(t.Context(), bv, id, storage.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := os.WriteFile(big, data, 0o644); err != nil {
		t.Fatal(err)
	}
	storagetest.RunCommand(t, "sync")
	t.Cleanup(func() {
		list, _ := b.List(context.Background())
		for _, s := range list {
			b.Delete(context.Background(), s.ID)
		}
	})

	db, err := state.Open(filepath.Join(t.TempDir(), "state.db"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, _ := shares.NewStatic([]shares.BaseShare{{Name: "s", Path: filepath.Join(vol, "s")}})
	m := scmp.New(scmp.Config{Backend: b, Shares: res, Inventory: backendInventory{b}, DB: db, MinDiffArea: -1,
		Logger: storagetest.Logger(t)})
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
		das[0].Used < 3*int64(len(data)) || das[0].Used > 4*int64(len(data)) {
		t.Fatalf("diff area %+v, usage %+v (%v, %v); want about %d bytes", das, u, err, uerr, 3*len(data))
	}
	// 12 MiB: after the oldest goes 16 MiB remain, after the second 8 MiB.
	if err := m.ChangeDiffAreaMaximumSize(t.Context(), v, v, 12<<20); err != nil {
		t.Fatal(err)
	}
	if got := snapshotIDs(t, b); len(got) != 1 || got[0] != ids[2] {
		t.Fatalf("left %v, want only the newest %s (of %v)", got, ids[2], ids)
	}

	// Quotas off: the used space is unknown, so a tiny maximum deletes
	// nothing (the apparent size would count shared data).
	storagetest.RunCommand(t, "btrfs", "quota", "disable", mnt)
	if err := m.ChangeDiffAreaMaximumSize(t.Context(), v, v, 1); err != nil {
		t.Fatal(err)
	}
	if got := snapshotIDs(t, b); len(got) != 1 {
		t.Fatalf("quotas off: left %v", got)
	}
}

func snapshotIDs(t *testing.T, b storage.Backend) []string {
	list, err := b.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range list {
		out = append(out, s.ID)
	}
	sort.Strings(out)
	return out
}
