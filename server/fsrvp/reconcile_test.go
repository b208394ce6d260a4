package fsrvp

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fsrvpd/fsrvpd/shares"
	"github.com/fsrvpd/fsrvpd/storage"
)

func TestRestartReleasesNonPersistentSets(t *testing.T) {
	h := newHarness(t)
	c := h.upTo(Exposed, CtxBackup, "share1", "share2")
	h.restart()
	if _, ok := h.status(c.set); ok || h.b.count() != 0 || h.e.count() != 0 {
		t.Fatalf("backup set survived restart: snapshots %d shares %d", h.b.count(), h.e.count())
	}
	// A new sequence is accepted at once, from any client.
	must(t, "SetContext", h.s.SetContext(ctx, bob, CtxBackup))
	_, rc := h.s.StartShadowCopySet(ctx, bob, uuid.New())
	must(t, "Start", rc)
}

func TestRestartKeepsPersistentSets(t *testing.T) {
	h := newHarness(t)
	old := h.upTo(Recovered, CtxNASRollback, "share2")
	c := h.upTo(Exposed, CtxAppRollback|AttrAutoRecovery, "share1")
	h.restart()
	for _, id := range []uuid.UUID{old.set, c.set} {
		if _, ok := h.status(id); !ok {
			t.Fatalf("persistent set %v lost at restart", id)
		}
	}
	m, rc := h.s.GetShareMapping(ctx, alice, c.sc["share1"], c.set, `\\h\share1`, 1)
	must(t, "GetShareMapping after restart", rc)
	if m.ExposedUNC == "" {
		t.Fatal("mapping lost its exposed name")
	}
	// The sequence goes on where it was: same client, same context.
	must(t, "RecoveryComplete after restart", h.s.RecoveryCompleteShadowCopySet(ctx, alice, c.set))
	must(t, "Delete", h.s.DeleteShareMapping(ctx, alice, old.set, old.sc["share2"], `\\h\share2`))
	if h.b.count() != 1 || h.e.count() != 1 {
		t.Fatalf("snapshots %d shares %d", h.b.count(), h.e.count())
	}
}

// crashMidCommit leaves the store saying CreationInProgress with one of two
// snapshots taken, as a kill -9 during Commit does.
func (h *harness) crashMidCommit(context uint32) created {
	h.t.Helper()
	c := h.upTo(Added, context, "share1", "share2")
	h.s.mu.Lock()
	set := h.s.sets[c.set].clone()
	set.Status = CreationInProgress
	if err := h.s.persist(h.s.g, []*Set{set}, nil); err != nil {
		h.t.Fatal(err)
	}
	sc := set.Copies[0]
	h.s.mu.Unlock()
	if _, err := h.b.Create(ctx, storage.Volume{ID: sc.VolumeID, Root: sc.VolumeRoot}, sc.snapshotID(), storage.CreateOptions{}); err != nil {
		h.t.Fatal(err)
	}
	return c
}

func TestRestartRollsBackInterruptedCommit(t *testing.T) {
	h := newHarness(t)
	c := h.crashMidCommit(CtxNASRollback)
	h.restart()
	if h.b.count() != 0 {
		t.Fatalf("%d snapshots left by the interrupted commit", h.b.count())
	}
	if st, ok := h.status(c.set); !ok || st != Added {
		t.Fatalf("status after restart %v %v, want Added", st, ok)
	}
	must(t, "Commit after restart", h.s.CommitShadowCopySet(ctx, alice, c.set, 0))
	if h.b.count() != 2 {
		t.Fatalf("%d snapshots", h.b.count())
	}
}

func TestRestartAfterInterruptedBackupCommitAcceptsNewSet(t *testing.T) {
	h := newHarness(t)
	h.crashMidCommit(CtxBackup)
	h.restart()
	if h.b.count() != 0 || len(h.s.sets) != 0 {
		t.Fatalf("snapshots %d sets %d after restart", h.b.count(), len(h.s.sets))
	}
	h.upTo(Exposed, CtxBackup, "share1")
}

func TestRestartRemovesOrphansAndRepairs(t *testing.T) {
	h := newHarness(t)
	c := h.upTo(Exposed, CtxNASRollback, "share1", "share2")
	// Orphans: a snapshot and a share nobody claims.
	if _, err := h.b.Create(ctx, h.b.vols[0], "0badc0de-0000-0000-0000-000000000000", storage.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := h.e.Expose(ctx, shares.Share{Name: "share9@{x}", Path: "/x"}); err != nil {
		t.Fatal(err)
	}
	// A share of a kept set went missing, and a snapshot vanished.
	name1 := "share1@{" + c.sc["share1"].String() + "}"
	h.e.Remove(ctx, name1)
	h.b.Delete(ctx, c.sc["share2"].String())

	h.restart()
	if _, ok := h.e.get("share9@{x}"); ok {
		t.Fatal("orphan share kept")
	}
	if _, err := h.b.Stat(ctx, "0badc0de-0000-0000-0000-000000000000"); err == nil {
		t.Fatal("orphan snapshot kept")
	}
	if _, ok := h.e.get(name1); !ok {
		t.Fatal("missing share of a kept set not exposed again")
	}
	if h.e.count() != 1 || h.b.count() != 1 {
		t.Fatalf("shares %d snapshots %d, want 1 and 1", h.e.count(), h.b.count())
	}
	h.s.mu.Lock()
	n := len(h.s.sets[c.set].Copies)
	h.s.mu.Unlock()
	if n != 1 {
		t.Fatalf("shadow copy with a vanished snapshot kept (%d copies)", n)
	}
}

func TestRestartRearmsTimerSoCommittedSetCannotWedge(t *testing.T) {
	// Samba's wedge: a Committed set reloaded at start-up blocked every new
	// set for good. Here the stored timer deadline is re-armed.
	h := newHarness(t, func(c *Config) { c.ShortTimeout = 100 * time.Millisecond })
	c := h.upTo(Committed, CtxNASRollback, "share1")
	h.restart()
	eventually(t, "committed set expired after restart", func() bool { _, ok := h.status(c.set); return !ok })
	if h.b.count() != 0 {
		t.Fatalf("%d snapshots left", h.b.count())
	}
	h.upTo(Exposed, CtxBackup, "share1")
}
