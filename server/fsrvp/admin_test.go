package fsrvp

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fsrvpd/fsrvpd/shares"
	"github.com/fsrvpd/fsrvpd/storage"
)

func TestOverviewIsACopy(t *testing.T) {
	h := newHarness(t)
	done := h.upTo(Recovered, CtxNASRollback, "share1", "share2")
	open := h.upTo(Added, CtxBackup, "share1")
	o := h.s.Overview()
	if len(o.Sets) != 2 || o.Sets[0].ID != done.set || o.Sets[1].ID != open.set {
		t.Fatalf("overview %+v", o)
	}
	if o.Sets[0].InCreation || !o.Sets[1].InCreation || !o.ContextSet || o.TimerDeadline.IsZero() || o.ClientAddress != alice.Address {
		t.Fatalf("overview flags %+v", o)
	}
	if got := o.Sets[0].Shares(); len(got) != 2 || got[0] != "share1" || got[1] != "share2" {
		t.Fatalf("shares %v", got)
	}
	o.Sets[0].Copies[0].Mappings[0].Exposed = "changed"
	if info, _ := h.s.SetInfo(done.set); info.Copies[0].Mappings[0].Exposed == "changed" {
		t.Fatal("Overview shares memory with the service")
	}
	if ContextName(CtxNASRollback) != "nas_rollback" || ContextName(CtxBackup|AttrAutoRecovery) != "backup+auto_recovery" || ContextName(7) != "0x00000007" {
		t.Error("ContextName")
	}
}

func TestAdminAbortAndDelete(t *testing.T) {
	h := newHarness(t)
	done := h.upTo(Recovered, CtxNASRollback, "share1")
	open := h.upTo(Added, CtxBackup, "share2")
	if err := h.s.DeleteSet(ctx, open.set, "test", false); !errors.Is(err, ErrSetInUse) {
		t.Fatalf("delete of a set in creation: %v", err)
	}
	if err := h.s.AdminAbort(ctx, done.set, "test"); !errors.Is(err, ErrSetFinished) {
		t.Fatalf("abort of a finished set: %v", err)
	}
	if err := h.s.AdminAbort(ctx, uuid.New(), "test"); !errors.Is(err, ErrNoSuchSet) {
		t.Fatalf("abort of an unknown set: %v", err)
	}
	if err := h.s.AdminAbort(ctx, open.set, "test"); err != nil {
		t.Fatal(err)
	}
	if o := h.s.Overview(); o.ContextSet || !o.TimerDeadline.IsZero() {
		t.Fatalf("the sequence did not end with its last set: %+v", o)
	}
	// The client's own calls see the set gone.
	want(t, "Abort after admin abort", h.s.AbortShadowCopySet(ctx, alice, open.set), FSRVP_E_SHADOWCOPYSET_ID_MISMATCH)
	if h.b.count() != 1 || h.e.count() != 1 {
		t.Fatalf("%d snapshots, %d shares", h.b.count(), h.e.count())
	}
	if err := h.s.DeleteSet(ctx, done.set, "test", false); err != nil {
		t.Fatal(err)
	}
	if h.b.count() != 0 || h.e.count() != 0 || len(h.s.Overview().Sets) != 0 {
		t.Fatalf("left %d snapshots, %d shares", h.b.count(), h.e.count())
	}
	// And the deletion is durable.
	h.restart()
	if len(h.s.Overview().Sets) != 0 {
		t.Fatal("deleted set came back after a restart")
	}
}

// Deleting a finished set, whether by an administrator, the retention
// policy or another client's DeleteShareMapping, does not end a sequence
// that has a context but no set yet (CI once caught the retention loop
// doing so between SetContext and StartShadowCopySet).
func TestDeletingFinishedSetKeepsContext(t *testing.T) {
	h := newHarness(t)
	old := h.upTo(Recovered, CtxNASRollback, "share1")
	older := h.upTo(Recovered, CtxNASRollback, "share2")
	must(t, "SetContext", h.s.SetContext(ctx, alice, CtxBackup))
	if err := h.s.DeleteSet(ctx, old.set, "retention", false); err != nil {
		t.Fatal(err)
	}
	must(t, "DeleteShareMapping by another client", h.s.DeleteShareMapping(ctx, bob, older.set, older.sc["share2"], `\\fsrvpd\share2`))
	if o := h.s.Overview(); !o.ContextSet || o.ClientAddress != alice.Address || o.TimerDeadline.IsZero() {
		t.Fatalf("the sequence ended: %+v", o)
	}
	_, rc := h.s.StartShadowCopySet(ctx, alice, uuid.New())
	must(t, "Start after the deletes", rc)
}

// DeleteSet refuses a set whose exposed shares (or documents share) SMB
// clients have connected, or whose connections cannot be listed; force
// deletes it anyway. Connections to other shares do not count.
func TestDeleteSetWithConnectedClients(t *testing.T) {
	h := newHarness(t)
	a := h.upTo(Recovered, CtxNASRollback, "share1", "share2")
	b := h.upTo(Recovered, CtxNASRollback, "share1")
	info, _ := h.s.SetInfo(a.set)
	exposed := info.Copies[1].Mappings[0].Exposed
	other, _ := h.s.SetInfo(b.set)
	h.e.connect(other.Copies[0].Mappings[0].Exposed, "192.0.2.9") // b's, not a's
	h.e.connect("share1", "192.0.2.9")                            // a base share
	h.e.connect(strings.ToUpper(exposed), "192.0.2.7")            // names compare without case
	h.e.connect(exposed, "192.0.2.8")

	conns, err := h.s.Connections(ctx, a.set)
	if err != nil || len(conns) != 2 || conns[0].Machine != "192.0.2.7" || conns[1].Machine != "192.0.2.8" {
		t.Fatalf("Connections = %+v, %v", conns, err)
	}
	err = h.s.DeleteSet(ctx, a.set, "test", false)
	if !errors.Is(err, ErrSetConnected) || !strings.Contains(err.Error(), "from 192.0.2.7, 192.0.2.8") {
		t.Fatalf("delete with clients connected: %v", err)
	}
	if _, ok := h.s.SetInfo(a.set); !ok || h.b.count() != 3 || h.e.count() != 3 {
		t.Fatalf("refused delete removed something: %d snapshots, %d shares", h.b.count(), h.e.count())
	}
	h.e.connErr = errors.New("smbstatus: not found")
	if err := h.s.DeleteSet(ctx, a.set, "test", false); err == nil || errors.Is(err, ErrSetConnected) || !strings.Contains(err.Error(), "smbstatus: not found") {
		t.Fatalf("delete when connections cannot be listed: %v", err)
	}
	if err := h.s.DeleteSet(ctx, a.set, "test", true); err != nil {
		t.Fatalf("forced delete: %v", err)
	}
	if _, err := h.s.Connections(ctx, a.set); !errors.Is(err, ErrNoSuchSet) {
		t.Fatalf("Connections of a deleted set: %v", err)
	}
	// In use beats connected: a set in creation is refused as such.
	open := h.upTo(Exposed, CtxBackup, "share2")
	info, _ = h.s.SetInfo(open.set)
	h.e.connErr = nil
	h.e.connect(info.Copies[0].Mappings[0].Exposed, "192.0.2.7")
	if err := h.s.DeleteSet(ctx, open.set, "test", false); !errors.Is(err, ErrSetInUse) {
		t.Fatalf("delete of a set in creation: %v", err)
	}
}

// A set whose commit job runs is in use: delete refuses it, abort cancels
// the job and leaves nothing; its snapshots are never orphans.
func TestAdminDuringCommit(t *testing.T) {
	h := newHarness(t)
	c := h.upTo(Added, CtxNASRollback, "share1")
	h.b.gate = make(chan struct{})
	want(t, "slow commit", h.s.CommitShadowCopySet(ctx, alice, c.set, 1), FSSAGENT_E_TIMEOUT)
	info, _ := h.s.SetInfo(c.set)
	if !info.CommitRunning || !info.InCreation {
		t.Fatalf("info %+v", info)
	}
	if err := h.s.DeleteSet(ctx, c.set, "test", false); !errors.Is(err, ErrSetInUse) {
		t.Fatalf("delete during commit: %v", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); time.Sleep(10 * time.Millisecond); close(h.b.gate) }()
	if err := h.s.AdminAbort(ctx, c.set, "test"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if h.b.count() != 0 {
		t.Fatalf("%d snapshots leaked", h.b.count())
	}
}

func TestOrphansAndCollect(t *testing.T) {
	h := newHarness(t)
	keep := h.upTo(Exposed, CtxBackup, "share1")
	// Behind the service's back: a snapshot and a share.
	vol := storage.Volume{ID: "vol:/v2", Root: "/v2"}
	if _, err := h.b.Create(ctx, vol, "stray", storage.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := h.e.Expose(ctx, shares.Share{Name: "share2@{stray}", Base: "share2", Path: "/snaps/stray"}); err != nil {
		t.Fatal(err)
	}
	o, err := h.s.Orphans(ctx)
	if err != nil || len(o.Snapshots) != 1 || o.Snapshots[0].ID != "stray" || len(o.Shares) != 1 || o.Shares[0].Name != "share2@{stray}" {
		t.Fatalf("orphans %+v %v", o, err)
	}
	if o, err := h.s.CollectOrphans(ctx, true, "test"); err != nil || len(o.Snapshots) != 1 || h.b.count() != 2 {
		t.Fatalf("dry run: %+v %v, %d snapshots", o, err, h.b.count())
	}
	if _, err := h.s.CollectOrphans(ctx, false, "test"); err != nil {
		t.Fatal(err)
	}
	if h.b.count() != 1 || h.e.count() != 1 {
		t.Fatalf("after gc: %d snapshots %d shares", h.b.count(), h.e.count())
	}
	if st, ok := h.status(keep.set); !ok || st != Exposed {
		t.Fatal("gc touched a set")
	}
	if o, _ := h.s.Orphans(ctx); len(o.Snapshots)+len(o.Shares) != 0 {
		t.Fatalf("orphans left: %+v", o)
	}
}

// recorder is an Observer for tests.
type recorder struct {
	mu      sync.Mutex
	calls   []CallEvent
	jobs    int
	expired []int
}

func (r *recorder) FSRVPCall(ev CallEvent) { r.mu.Lock(); r.calls = append(r.calls, ev); r.mu.Unlock() }
func (r *recorder) SnapshotsTaken(_ uuid.UUID, n int, _ time.Duration, err error) {
	r.mu.Lock()
	if err == nil {
		r.jobs += n
	}
	r.mu.Unlock()
}
func (r *recorder) TimerExpired(n int) { r.mu.Lock(); r.expired = append(r.expired, n); r.mu.Unlock() }

func TestObserverJobsAndTimer(t *testing.T) {
	rec := &recorder{}
	h := newHarness(t, func(c *Config) {
		c.Observer = rec
		c.ShortTimeout = 50 * time.Millisecond
		c.LongTimeout = 50 * time.Millisecond
	})
	h.upTo(Committed, CtxBackup, "share1", "share2")
	eventually(t, "timer expiry", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.expired) == 1
	})
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.jobs != 2 || rec.expired[0] != 1 {
		t.Fatalf("jobs %d expired %v", rec.jobs, rec.expired)
	}
}

// A set's writer documents share is claimed by the set: neither gc nor the
// start-up Reconcile takes it for an orphan.
func TestDocumentsShareIsNoOrphan(t *testing.T) {
	wh := newWriterHarness(t, 10*time.Second)
	c := wh.upTo(Recovered, CtxBackup|AttrNoAutoRecovery, "share1")
	info, _ := wh.s.SetInfo(c.set)
	if info.DocsShare == "" {
		t.Fatal("no documents share")
	}
	if o, err := wh.s.CollectOrphans(ctx, false, "test"); err != nil || len(o.Shares)+len(o.Snapshots) != 0 {
		t.Fatalf("gc found %+v %v", o, err)
	}
	if _, ok := wh.e.get(info.DocsShare); !ok {
		t.Fatal("gc removed the documents share")
	}
}
