package fsrvp

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/client/vss"
	"github.com/fsrvpd/fsrvpd/server/state"
	"github.com/fsrvpd/fsrvpd/server/writers"
)

// writerHarness is a harness whose Service drives one real Coordinator
// with a writer on /v1 whose hooks append their phase to a log file.
type writerHarness struct {
	*harness
	co  *writers.Coordinator
	log string
}

func newWriterHarness(t *testing.T, freeze time.Duration, mod ...func(*writers.Writer)) *writerHarness {
	t.Helper()
	dir := t.TempDir()
	wh := &writerHarness{log: filepath.Join(dir, "phases")}
	hook := func(extra string) writers.Hook {
		return writers.Hook{Command: []string{"sh", "-c", `echo "$FSRVPD_PHASE" >> ` + wh.log + extra}}
	}
	w := writers.Writer{
		Name: "ledger", WriterID: uuid.NewString(), InstanceID: uuid.NewString(), Volumes: []string{"/v1"},
		Components: []writers.Component{{Type: "filegroup", Name: "data", Files: []writers.FileSpec{{Path: "/v1/a", Filespec: "*"}}}},
		Hooks:      map[writers.Phase]writers.Hook{},
	}
	for _, p := range []writers.Phase{writers.PhasePrepare, writers.PhaseFreeze, writers.PhaseThaw, writers.PhaseBackupComplete, writers.PhaseAbort} {
		w.Hooks[p] = hook("")
	}
	w.Hooks[writers.PhasePostSnapshot] = hook(`; echo "lsn=42"`)
	for _, m := range mod {
		m(&w)
	}
	if err := writers.Validate(writers.Config{}, []writers.Writer{w}); err != nil {
		t.Fatal(err)
	}
	db, err := state.Open(filepath.Join(dir, "writers.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	l := logrus.New()
	l.SetOutput(testWriter{t})
	wh.co, err = writers.New(writers.Config{FreezeTimeout: writers.Duration{Duration: freeze}}, []writers.Writer{w}, db, dir, logrus.NewEntry(l))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wh.co.Close)
	wh.harness = newHarness(t, func(c *Config) { c.Writers = wh.co })
	return wh
}

func (wh *writerHarness) phases() string {
	b, _ := os.ReadFile(wh.log)
	return strings.Join(strings.Fields(string(b)), " ")
}

func (wh *writerHarness) writerState(id uuid.UUID) vss.WriterState {
	wh.t.Helper()
	st, err := wh.co.Status(id)
	if err != nil || len(st.Writers) != 1 {
		wh.t.Fatalf("status %+v %v", st, err)
	}
	return st.Writers[0]
}

func TestWritersAroundTheSnapshot(t *testing.T) {
	wh := newWriterHarness(t, 10*time.Second)
	c := wh.upTo(Exposed, CtxBackup, "share1", "share2")
	if got := wh.phases(); got != "prepare freeze thaw post-snapshot" {
		t.Fatalf("phases %q", got)
	}
	ws := wh.writerState(c.set)
	if ws.Failed() || ws.FreezeWindowMicroseconds <= 0 {
		t.Errorf("writer %+v", ws)
	}
	docs := vss.ShareName(c.set)
	sh, ok := wh.e.shares[docs]
	if !ok || !sh.ReadOnly || sh.Path != wh.co.Dir(c.set) {
		t.Fatalf("documents share %+v %v in %v", sh, ok, wh.e.shares)
	}
	data, err := os.ReadFile(filepath.Join(sh.Path, vss.BackupComponentsFile))
	if err != nil {
		t.Fatal(err)
	}
	bc, err := vss.ParseBackupComponents(data)
	if err != nil {
		t.Fatal(err)
	}
	comp, err := bc.Component(ws.WriterID, "", "data")
	if err != nil {
		t.Fatal(err)
	}
	md, _ := comp.Metadata()
	if !comp.BackupSucceeded || string(md) != "lsn=42\n" {
		t.Errorf("component %+v metadata %q", comp, md)
	}
	if _, err := os.Stat(filepath.Join(sh.Path, vss.WriterMetadataFile(ws.InstanceID))); err != nil {
		t.Error(err)
	}
	// The set goes with its last mapping: BackupComplete, documents gone.
	must(t, "Delete share1", wh.s.DeleteShareMapping(ctx, alice, c.set, c.sc["share1"], `\\fsrvpd\share1`))
	if _, ok := wh.e.shares[docs]; !ok {
		t.Fatal("documents share withdrawn while the set lives")
	}
	must(t, "Delete share2", wh.s.DeleteShareMapping(ctx, alice, c.set, c.sc["share2"], `\\fsrvpd\share2`))
	if _, ok := wh.e.shares[docs]; ok {
		t.Fatal("documents share left behind")
	}
	eventually(t, "backup-complete", func() bool { return strings.HasSuffix(wh.phases(), "backup-complete") })
	eventually(t, "documents removed", func() bool { _, err := os.Stat(sh.Path); return os.IsNotExist(err) })
}

func TestNoWritersContextsSkipWriters(t *testing.T) {
	wh := newWriterHarness(t, 10*time.Second)
	c := wh.upTo(Exposed, CtxFileShareBackup, "share1")
	if got := wh.phases(); got != "" {
		t.Fatalf("writers ran for FILE_SHARE_BACKUP: %q", got)
	}
	if _, ok := wh.e.shares[vss.ShareName(c.set)]; ok {
		t.Fatal("documents share for a set without writers")
	}
	// A set on a volume the writer has no data on does not involve it.
	must(t, "Abort", wh.s.AbortShadowCopySet(ctx, alice, c.set))
	c = wh.upTo(Exposed, CtxBackup, "share2")
	if got := wh.phases(); got != "" {
		t.Fatalf("writer of /v1 ran for /v2: %q", got)
	}
	if _, ok := wh.e.shares[vss.ShareName(c.set)]; ok {
		t.Fatal("documents share for a set no writer is involved in")
	}
}

func TestThawOnCommitFailure(t *testing.T) {
	wh := newWriterHarness(t, 10*time.Second)
	c := wh.upTo(Added, CtxBackup, "share1")
	wh.b.failVolume["vol:/v1"] = errors.New("disk on fire")
	want(t, "failing commit", wh.s.CommitShadowCopySet(ctx, alice, c.set, 0), VSS_E_UNEXPECTED_PROVIDER_ERROR)
	if got := wh.phases(); got != "prepare freeze thaw" {
		t.Fatalf("phases %q", got)
	}
	must(t, "Abort", wh.s.AbortShadowCopySet(ctx, alice, c.set))
	eventually(t, "abort hook", func() bool { return strings.HasSuffix(wh.phases(), "thaw abort") })
}

func TestThawAtTheEndOfTheFreezeWindow(t *testing.T) {
	wh := newWriterHarness(t, time.Second)
	c := wh.upTo(Added, CtxBackup, "share1")
	wh.b.gate = make(chan struct{})
	want(t, "slow commit", wh.s.CommitShadowCopySet(ctx, alice, c.set, 1), FSSAGENT_E_TIMEOUT)
	// The snapshot is still blocked, but the window thaws the writer.
	eventually(t, "thaw while the snapshot hangs", func() bool { return strings.HasSuffix(wh.phases(), "freeze thaw") })
	close(wh.b.gate)
	must(t, "repeated Commit", wh.s.CommitShadowCopySet(ctx, alice, c.set, 0))
	ws := wh.writerState(c.set)
	if !ws.Failed() || !strings.Contains(ws.Failure, "freeze window") {
		t.Fatalf("writer %+v", ws)
	}
	if strings.Contains(wh.phases(), "post-snapshot") {
		t.Fatal("post-snapshot ran for a failed writer")
	}
}

func TestRequiredWriterFailsTheCommit(t *testing.T) {
	wh := newWriterHarness(t, 10*time.Second, func(w *writers.Writer) {
		w.Required = true
		w.Hooks[writers.PhaseFreeze] = writers.Hook{Command: []string{"sh", "-c", "echo no lock >&2; exit 3"}}
	})
	c := wh.upTo(Added, CtxBackup, "share1")
	if rc := wh.s.CommitShadowCopySet(ctx, alice, c.set, 0); rc == S_OK {
		t.Fatal("commit succeeded without its required writer")
	}
	if wh.b.count() != 0 {
		t.Fatalf("%d snapshots left", wh.b.count())
	}
	// The failed freeze is thawed all the same.
	if got := wh.phases(); got != "prepare thaw" {
		t.Fatalf("phases %q", got)
	}
	if ws := wh.writerState(c.set); !ws.Failed() || ws.Phase != "freeze" || !strings.Contains(ws.Failure, "no lock") {
		t.Fatalf("writer %+v", ws)
	}
}

func TestOptionalWriterFailureKeepsTheSnapshot(t *testing.T) {
	wh := newWriterHarness(t, 10*time.Second, func(w *writers.Writer) {
		w.Hooks[writers.PhaseFreeze] = writers.Hook{Command: []string{"sleep", "5"}, Timeout: writers.Duration{Duration: 100 * time.Millisecond}}
	})
	c := wh.upTo(Committed, CtxBackup, "share1")
	if wh.b.count() != 1 {
		t.Fatalf("%d snapshots", wh.b.count())
	}
	if ws := wh.writerState(c.set); !ws.Failed() || !strings.Contains(ws.Failure, "timed out") {
		t.Fatalf("writer %+v", ws)
	}
}

// The message sequence timer deletes an Exposed BACKUP set: its documents
// share goes, and the writers get Abort (the sequence never finished).
func TestTimerExpiryReleasesWriters(t *testing.T) {
	wh := newWriterHarness(t, 10*time.Second)
	wh.s.mu.Lock()
	wh.s.cfg.ShortTimeout = 50 * time.Millisecond
	wh.s.mu.Unlock()
	c := wh.upTo(Exposed, CtxBackup, "share1")
	docs := vss.ShareName(c.set)
	eventually(t, "set deleted by the timer", func() bool { _, ok := wh.status(c.set); return !ok })
	wh.e.mu.Lock()
	_, left := wh.e.shares[docs]
	wh.e.mu.Unlock()
	if left {
		t.Fatal("documents share outlived the set")
	}
	eventually(t, "abort", func() bool { return strings.HasSuffix(wh.phases(), "post-snapshot abort") })
	eventually(t, "documents removed", func() bool { _, err := os.Stat(wh.co.Dir(c.set)); return os.IsNotExist(err) })
}

// A requestor whose backup failed aborts its Recovered set: the writers
// get Abort, not BackupComplete.
func TestAbortOfRecoveredSetAbortsWriters(t *testing.T) {
	wh := newWriterHarness(t, 10*time.Second)
	c := wh.upTo(Recovered, CtxBackup, "share1")
	must(t, "Abort", wh.s.AbortShadowCopySet(ctx, alice, c.set))
	eventually(t, "abort", func() bool { return strings.HasSuffix(wh.phases(), "post-snapshot abort") })
}

// A restart releases a non-persistent set with its documents, and keeps an
// APP_ROLLBACK (persistent) set's documents share.
func TestRestartWithWriterDocuments(t *testing.T) {
	wh := newWriterHarness(t, 10*time.Second)
	keep := wh.upTo(Recovered, CtxAppRollback, "share1")
	gone := wh.upTo(Exposed, CtxBackup, "share1")
	wh.restart()
	wh.e.mu.Lock()
	_, kept := wh.e.shares[vss.ShareName(keep.set)]
	_, left := wh.e.shares[vss.ShareName(gone.set)]
	wh.e.mu.Unlock()
	if !kept || left {
		t.Fatalf("after restart: APP_ROLLBACK documents share %v, BACKUP documents share %v", kept, left)
	}
	if _, err := os.Stat(filepath.Join(wh.co.Dir(keep.set), vss.BackupComponentsFile)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "released set's documents removed", func() bool { _, err := os.Stat(wh.co.Dir(gone.set)); return os.IsNotExist(err) })
}
