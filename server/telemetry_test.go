package server

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fsrvpd/fsrvpd/server/fsrvp"
	"github.com/fsrvpd/fsrvpd/server/metrics"
	"github.com/fsrvpd/fsrvpd/server/state"
	"github.com/fsrvpd/fsrvpd/shares"
	"github.com/fsrvpd/fsrvpd/shares/registry"
	"github.com/fsrvpd/fsrvpd/storage"
	"github.com/fsrvpd/fsrvpd/storage/dir"
)

// usageBackend reports a fixed snapshot usage per volume, as btrfs with
// qgroups and zfs do.
type usageBackend struct {
	storage.Backend
	bytes map[string]int64
}

func (u usageBackend) Usage(_ context.Context, v storage.Volume) (storage.VolumeUsage, error) {
	b, ok := u.bytes[v.Root]
	return storage.VolumeUsage{VolumeID: v.ID, SnapshotBytes: b, Known: ok}, nil
}

func TestTelemetryVolumeGauges(t *testing.T) {
	d := t.TempDir()
	v1, v2 := filepath.Join(d, "v1"), filepath.Join(d, "v2")
	for _, p := range []string{v1 + "/s1", v2 + "/s2"} {
		os.MkdirAll(p, 0o755)
	}
	be, err := dir.New(dir.Config{Volumes: []string{v1, v2}, SnapshotDir: filepath.Join(d, "snaps")})
	if err != nil {
		t.Fatal(err)
	}
	ub := usageBackend{Backend: be, bytes: map[string]int64{v1: 4096}} // v2: unknown
	db, err := state.Open(filepath.Join(d, "db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reg, err := registry.Open(filepath.Join(d, "shares.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, _ := shares.NewStatic([]shares.BaseShare{{Name: "s1", Path: v1 + "/s1"}, {Name: "s2", Path: v2 + "/s2"}})
	var svc *fsrvp.Service
	tel := newTelemetry(func() *fsrvp.Service { return svc }, ub)
	svc, err = fsrvp.New(fsrvp.Config{Backend: ub, Shares: res, Exposer: reg, DB: db, Observer: tel, Access: fsrvp.AccessPolicy{AllowUnauthenticated: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	ctx, c := context.Background(), fsrvp.Caller{Address: "127.0.0.1"}
	if rc := svc.SetContext(ctx, c, fsrvp.CtxNASRollback); rc != fsrvp.S_OK {
		t.Fatal(rc)
	}
	set, _ := svc.StartShadowCopySet(ctx, c, uuid.New())
	for _, s := range []string{`\\x\s1`, `\\x\s2`} {
		if _, rc := svc.AddToShadowCopySet(ctx, c, set, s); rc != fsrvp.S_OK {
			t.Fatal(rc)
		}
	}
	if rc := svc.CommitShadowCopySet(ctx, c, set, 0); rc != fsrvp.S_OK {
		t.Fatal(rc)
	}
	// A stray snapshot on v2.
	vol, _ := be.Volume(ctx, v2)
	if _, err := be.Create(ctx, vol, "stray", storage.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := func(f func() []metrics.Sample) map[string]float64 {
		m := map[string]float64{}
		for _, s := range f() {
			m[s.Labels[0]] = s.Value
		}
		return m
	}
	if m := got(tel.snapshots); m[v1] != 1 || m[v2] != 1 || len(m) != 2 {
		t.Errorf("snapshots %v", m)
	}
	if m := got(tel.bytes); m[v1] != 4096 || len(m) != 1 {
		t.Errorf("bytes %v", m)
	}
	if m := got(tel.orphanGauge); m["snapshot"] != 1 || m["share"] != 0 {
		t.Errorf("orphans %v", m)
	}
	if m := got(tel.sets); m["CreationInProgress"] != 0 || m["Committed"] != 1 || len(m) != 6 {
		t.Errorf("sets %v", m)
	}
	if tel.freeze.Count() != 1 || tel.jobs.Value("ok") != 1 {
		t.Errorf("freeze window count %d, jobs %v", tel.freeze.Count(), tel.jobs.Value("ok"))
	}
}
