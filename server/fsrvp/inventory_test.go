package fsrvp

import (
	"errors"
	"testing"
	"time"
)

// TestInventoryAndRelease: ShadowCopies lists committed copies with their
// set and pin state; ReleaseShadowCopy refuses a pinned one, and for a
// finished set removes share, snapshot and record, the set with its last
// copy, durably; the Committed hook reports the volumes.
func TestInventoryAndRelease(t *testing.T) {
	got := make(chan []string, 4)
	h := newHarness(t, func(c *Config) { c.Committed = func(v []string) { got <- v } })
	a := h.upTo(Exposed, CtxNASRollback, "share1", "share2")
	select {
	case v := <-got:
		if len(v) != 2 {
			t.Errorf("Committed volumes %v", v)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no Committed call")
	}
	inv := h.s.ShadowCopies()
	if len(inv) != 2 {
		t.Fatalf("inventory %+v", inv)
	}
	for _, sc := range inv {
		if sc.SetID != a.set || sc.SetSize != 2 || !sc.Pinned || sc.SnapshotPath == "" || sc.Created.IsZero() || sc.SnapshotID != sc.ID.String() {
			t.Errorf("inventory entry %+v", sc)
		}
	}
	if err := h.s.ReleaseShadowCopy(ctx, a.sc["share1"], "test"); !errors.Is(err, ErrPinned) {
		t.Fatalf("release of a pinned copy: %v", err)
	}
	must(t, "RecoveryComplete", h.s.RecoveryCompleteShadowCopySet(ctx, alice, a.set))
	if err := h.s.ReleaseShadowCopy(ctx, a.sc["share1"], "test"); err != nil {
		t.Fatal(err)
	}
	if h.b.count() != 1 || h.e.count() != 1 || len(h.s.ShadowCopies()) != 1 {
		t.Fatalf("after one release: snapshots %d shares %d", h.b.count(), h.e.count())
	}
	h.restart()
	if inv := h.s.ShadowCopies(); len(inv) != 1 || inv[0].ID != a.sc["share2"] || inv[0].Pinned {
		t.Fatalf("after restart %+v", inv)
	}
	if err := h.s.ReleaseShadowCopy(ctx, a.sc["share2"], "test"); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.status(a.set); ok || h.b.count() != 0 || h.e.count() != 0 {
		t.Fatalf("set left: snapshots %d shares %d", h.b.count(), h.e.count())
	}
	if err := h.s.ReleaseShadowCopy(ctx, a.sc["share2"], "test"); err == nil {
		t.Fatal("second release succeeded")
	}
}
