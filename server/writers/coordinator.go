package writers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/client/vss"
	"github.com/fsrvpd/fsrvpd/server/state"
)

// bucket is the state store bucket of the per-set writer status records.
const bucket = "writers"

var (
	// ErrUnknownWriter: no configured writer of that name or id.
	ErrUnknownWriter = errors.New("unknown writer")
	// ErrNoHook: the writer has no hook for that phase.
	ErrNoHook = errors.New("no hook")
)

// Coordinator drives the configured writers through the phases of each
// shadow copy set, keeps the writers' status per set (in the state store
// and in the set's WRITER_STATUS document) and writes the set's documents.
// It is safe for concurrent use.
type Coordinator struct {
	cfg     Config
	writers []Writer
	db      *state.DB
	log     *logrus.Entry
	dir     string

	// freezeFS and thawFS are Freeze and Thaw (replaced in tests).
	freezeFS, thawFS func(string) error

	// OnThaw, if set before the first set, is told every freeze window
	// and the writers' states after it (for metrics). It must be quick.
	OnThaw func(window time.Duration, states []vss.WriterState)

	mu   sync.Mutex
	sets map[uuid.UUID]*setRun
	bg   sync.WaitGroup
}

// New builds a Coordinator; stateDir is the default parent of the
// documents directory. The writers must have passed Validate.
func New(cfg Config, ws []Writer, db *state.DB, stateDir string, log *logrus.Entry) (*Coordinator, error) {
	if cfg.FreezeTimeout.Duration <= 0 {
		cfg.FreezeTimeout.Duration = DefaultFreezeTimeout
	}
	dir := cfg.DocumentsDir
	if dir == "" {
		dir = filepath.Join(stateDir, "vss")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("writers: documents dir: %w", err)
	}
	if log == nil {
		log = logrus.NewEntry(logrus.StandardLogger())
	}
	return &Coordinator{
		cfg: cfg, writers: ws, db: db, log: log.WithField("component", "writers"), dir: dir,
		freezeFS: Freeze, thawFS: Thaw, sets: map[uuid.UUID]*setRun{},
	}, nil
}

// Writers returns the configured writers.
func (c *Coordinator) Writers() []Writer { return c.writers }

// setRun is the writers' progress through one set.
type setRun struct {
	mu      sync.Mutex // serializes the phases of the set
	id      uuid.UUID
	context uint32
	roots   []string
	runs    []*writerRun
	// prepared: Prepare ran (Freeze runs it first otherwise).
	prepared bool
	window   time.Duration
}

// writerRun is one writer's progress through one set.
type writerRun struct {
	w          *Writer
	log        *logrus.Entry
	state      vss.WriterState
	sess       *session
	frozenFS   []string
	annotation []byte
}

func (r *writerRun) fail(p Phase, err error) {
	r.log.WithError(err).WithField("phase", p).Error("writer failed")
	if r.state.State != vss.StateFailed {
		r.state.State, r.state.Phase, r.state.Failure = vss.StateFailed, string(p), err.Error()
	}
}

func (c *Coordinator) setRun(id uuid.UUID, fsrvpContext uint32, roots []string) *setRun {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.sets[id]; s != nil {
		return s
	}
	s := &setRun{id: id, context: fsrvpContext, roots: slices.Clone(roots)}
	for i := range c.writers {
		w := &c.writers[i]
		if !w.involved(roots) {
			continue
		}
		s.runs = append(s.runs, &writerRun{
			w:     w,
			log:   c.log.WithFields(logrus.Fields{"set_id": id, "writer": w.Name}),
			state: vss.WriterState{WriterID: w.WriterID, InstanceID: w.InstanceID, FriendlyName: w.Name, State: vss.StateStable},
		})
	}
	c.sets[id] = s
	return s
}

func (c *Coordinator) env(s *setRun, r *writerRun, p Phase, extra ...string) []string {
	return append(os.Environ(), append([]string{
		"FSRVPD_PHASE=" + string(p),
		"FSRVPD_SET_ID=" + s.id.String(),
		fmt.Sprintf("FSRVPD_CONTEXT=0x%08x", s.context),
		"FSRVPD_VOLUMES=" + strings.Join(s.roots, "\n"),
		"FSRVPD_WRITER_NAME=" + r.w.Name,
		"FSRVPD_WRITER_ID=" + r.w.WriterID,
		"FSRVPD_INSTANCE_ID=" + r.w.InstanceID,
	}, extra...)...)
}

// phase runs phase p of one writer (hook or session) and returns its
// output. bound limits the time (0: the hook's own timeout).
func (c *Coordinator) phase(ctx context.Context, s *setRun, r *writerRun, p Phase, bound time.Duration, extra ...string) ([]byte, error) {
	if r.w.Session.handles(p) {
		if r.sess == nil {
			ss, err := startSession(r.w.Session, c.env(s, r, "session"), r.log)
			if err != nil {
				return nil, err
			}
			r.sess = ss
		}
		return r.sess.call(ctx, p, s.id.String(), bound)
	}
	h, ok := r.w.Hooks[p]
	if !ok {
		return nil, nil
	}
	if bound > 0 && (h.Timeout.Duration <= 0 || h.Timeout.Duration > bound) {
		h.Timeout.Duration = bound
	}
	return runHook(ctx, h, c.env(s, r, p, extra...), DefaultHookTimeout, r.log.WithField("phase", p))
}

// endSession closes a writer's session once it has nothing left to do.
func (r *writerRun) endSession() {
	if r.sess != nil {
		r.sess.close()
		r.sess = nil
	}
}

// requiredFailure is the error of the first required writer that failed.
func (s *setRun) requiredFailure() error {
	for _, r := range s.runs {
		if r.w.Required && r.state.State == vss.StateFailed {
			return fmt.Errorf("required writer %q failed in %s: %s", r.w.Name, r.state.Phase, r.state.Failure)
		}
	}
	return nil
}

// Prepare runs PrepareForFreeze (the prepare phase) of every writer with
// data on the set's volumes, and writes their WRITER_METADATA documents.
// A failing writer is marked failed; only a required one makes Prepare
// fail.
func (c *Coordinator) Prepare(ctx context.Context, id uuid.UUID, fsrvpContext uint32, roots []string) error {
	s := c.setRun(id, fsrvpContext, roots)
	s.mu.Lock()
	defer s.mu.Unlock()
	return c.prepareLocked(ctx, s)
}

func (c *Coordinator) prepareLocked(ctx context.Context, s *setRun) error {
	if err := c.writeMetadata(s); err != nil {
		return err
	}
	for _, r := range s.runs {
		r.state = vss.WriterState{WriterID: r.w.WriterID, InstanceID: r.w.InstanceID, FriendlyName: r.w.Name, State: vss.StateStable}
		if _, err := c.phase(ctx, s, r, PhasePrepare, 0); err != nil {
			r.fail(PhasePrepare, err)
			r.endSession()
			continue
		}
		r.state.Phase = string(PhasePrepare)
	}
	s.prepared = true
	c.saveStatus(s)
	return s.requiredFailure()
}

// ThawFunc ends a freeze: it thaws what is still frozen (unless the freeze
// window already did), runs post-snapshot when the snapshot succeeded,
// writes the set's BACKUP_COMPONENTS and WRITER_STATUS, and returns an
// error when a required writer failed. snapshots are the snapshots' paths.
type ThawFunc func(snapshots []string, snapErr error) error

// Freeze runs the freeze phase of the set's writers (after their prepare,
// if Prepare was not called), then FIFREEZE of their fsfreeze mount
// points, and returns the function that thaws them. The freeze window,
// from here to the end of the thaw, is bounded by the freeze timeout: when
// it passes, the writers are thawed and marked failed, whatever the
// caller is doing. The returned ThawFunc must be called exactly once, also
// when Freeze returns an error (then it only thaws).
func (c *Coordinator) Freeze(ctx context.Context, id uuid.UUID, fsrvpContext uint32, roots []string) (ThawFunc, error) {
	s := c.setRun(id, fsrvpContext, roots)
	s.mu.Lock()
	if !s.prepared {
		if err := c.prepareLocked(ctx, s); err != nil {
			s.mu.Unlock()
			return func([]string, error) error { return err }, err
		}
	}
	start := time.Now()
	deadline := start.Add(c.cfg.FreezeTimeout.Duration)
	var thawOnce sync.Once
	var windowErr error // set inside thawOnce, read after it
	thawAll := func(why string, expired bool) {
		thawOnce.Do(func() {
			if expired {
				windowErr = fmt.Errorf("freeze window of %s exceeded", c.cfg.FreezeTimeout.Duration)
			}
			c.thawLocked(s, why)
			s.window = time.Since(start)
			for _, r := range s.runs {
				r.state.FreezeWindowMicroseconds = s.window.Microseconds()
			}
			c.log.WithFields(logrus.Fields{"set_id": s.id, "freeze_window_s": s.window.Seconds(), "writers": len(s.runs), "reason": why}).Info("writers thawed")
		})
	}
	var frozen []*writerRun
	for _, r := range s.runs {
		if r.state.State == vss.StateFailed {
			continue
		}
		frozen = append(frozen, r)
		if _, err := c.phase(ctx, s, r, PhaseFreeze, time.Until(deadline)); err != nil {
			r.fail(PhaseFreeze, err)
			continue
		}
		for _, mp := range r.w.FSFreeze {
			if err := c.freezeFS(mp); err != nil {
				r.fail(PhaseFreeze, err)
				break
			}
			r.frozenFS = append(r.frozenFS, mp)
		}
		if r.state.State != vss.StateFailed {
			r.state.Phase = string(PhaseFreeze)
		}
	}
	// Thaw in reverse order of freezing; only what was frozen.
	s.runs = append(reverse(frozen), without(s.runs, frozen)...)
	c.saveStatus(s)
	// The window: thaw at the deadline if the caller has not.
	stop := make(chan struct{})
	go func() {
		select {
		case <-time.After(time.Until(deadline)):
			thawAll("freeze window exceeded", true)
		case <-stop:
		}
	}()
	err := s.requiredFailure()
	thaw := func(snapshots []string, snapErr error) error {
		close(stop)
		thawAll("snapshot done", false)
		defer s.mu.Unlock()
		for _, r := range s.runs {
			if windowErr != nil && slices.Contains(frozen, r) {
				r.fail(PhaseThaw, windowErr)
			}
			if snapErr == nil && r.state.State != vss.StateFailed {
				out, perr := c.phase(context.Background(), s, r, PhasePostSnapshot, 0, "FSRVPD_SNAPSHOTS="+strings.Join(snapshots, "\n"))
				if perr != nil {
					r.fail(PhasePostSnapshot, perr)
				} else {
					r.annotation = out
					r.state.Phase = string(PhasePostSnapshot)
				}
			}
			r.endSession()
		}
		if snapErr != nil {
			// A retried Commit prepares and freezes again.
			s.prepared = false
		}
		c.saveStatus(s)
		if c.OnThaw != nil && len(s.runs) > 0 {
			c.OnThaw(s.window, c.status(s).Writers)
		}
		if err := c.writeComponents(s, snapErr == nil); err != nil {
			c.log.WithError(err).WithField("set_id", s.id).Error("cannot write BACKUP_COMPONENTS")
		}
		return s.requiredFailure()
	}
	return thaw, err
}

// thawLocked thaws file systems then runs the thaw phase of every writer
// whose freeze was attempted (s.runs is in thaw order).
func (c *Coordinator) thawLocked(s *setRun, why string) {
	for _, r := range s.runs {
		for i := len(r.frozenFS) - 1; i >= 0; i-- {
			if err := c.thawFS(r.frozenFS[i]); err != nil {
				r.fail(PhaseThaw, err)
			}
		}
		r.frozenFS = nil
	}
	for _, r := range s.runs {
		if r.state.Phase != string(PhaseFreeze) && !(r.state.State == vss.StateFailed && r.state.Phase == string(PhaseFreeze)) {
			continue
		}
		if r.w.Session.handles(PhaseThaw) && r.sess == nil {
			continue // the session died: its locks went with it
		}
		if _, err := c.phase(context.Background(), s, r, PhaseThaw, 0); err != nil {
			r.fail(PhaseThaw, err)
			r.endSession()
			continue
		}
		if r.state.State != vss.StateFailed {
			r.state.Phase = string(PhaseThaw)
		}
	}
}

func reverse(rs []*writerRun) []*writerRun {
	out := slices.Clone(rs)
	slices.Reverse(out)
	return out
}

func without(all, some []*writerRun) []*writerRun {
	var out []*writerRun
	for _, r := range all {
		if !slices.Contains(some, r) {
			out = append(out, r)
		}
	}
	return out
}

// FreezeWindow is the last measured freeze window of set id.
func (c *Coordinator) FreezeWindow(id uuid.UUID) (time.Duration, bool) {
	c.mu.Lock()
	s := c.sets[id]
	c.mu.Unlock()
	if s == nil {
		return 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.window, s.window > 0
}

// Status returns the writers' status of set id, from the state store.
func (c *Coordinator) Status(id uuid.UUID) (*vss.WriterStatus, error) {
	var st vss.WriterStatus
	err := c.db.View(func(tx *state.Tx) error { return tx.Get(bucket, id.String(), &st) })
	if err != nil {
		return nil, err
	}
	return &st, nil
}

func (c *Coordinator) status(s *setRun) *vss.WriterStatus {
	st := &vss.WriterStatus{Version: vss.Version, SetID: s.id.String()}
	for _, r := range s.runs {
		st.Writers = append(st.Writers, r.state)
	}
	return st
}

// saveStatus stores the writers' status in the state store and in
// WRITER_STATUS.xml. Errors are logged: they do not change the outcome.
func (c *Coordinator) saveStatus(s *setRun) {
	if len(s.runs) == 0 {
		return // no writer has data on the set's volumes: no documents
	}
	st := c.status(s)
	if err := c.db.Update(func(tx *state.Tx) error { return tx.Put(bucket, s.id.String(), st) }); err != nil {
		c.log.WithError(err).WithField("set_id", s.id).Error("cannot store writer status")
	}
	if err := c.writeDoc(s.id, vss.WriterStatusFile, st); err != nil {
		c.log.WithError(err).WithField("set_id", s.id).Error("cannot write WRITER_STATUS")
	}
}

// Dir is the directory of set id's documents.
func (c *Coordinator) Dir(id uuid.UUID) string { return filepath.Join(c.dir, id.String()) }

// Documents returns the directory of set id's documents and whether it
// has any (a set without writers has none).
func (c *Coordinator) Documents(id uuid.UUID) (string, bool) {
	dir := c.Dir(id)
	_, err := os.Stat(filepath.Join(dir, vss.WriterStatusFile))
	return dir, err == nil
}

func (c *Coordinator) writeDoc(id uuid.UUID, name string, doc any) error {
	data, err := vss.Marshal(doc)
	if err != nil {
		return err
	}
	path := filepath.Join(c.Dir(id), filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (c *Coordinator) writeMetadata(s *setRun) error {
	if len(s.runs) == 0 {
		return nil
	}
	for _, r := range s.runs {
		md, err := r.w.Metadata()
		if err != nil {
			return fmt.Errorf("writer %q: %w", r.w.Name, err)
		}
		if err := c.writeDoc(s.id, vss.WriterMetadataFile(r.w.InstanceID), md); err != nil {
			return fmt.Errorf("writer %q: %w", r.w.Name, err)
		}
	}
	return nil
}

// writeComponents writes BACKUP_COMPONENTS: every component of every
// writer of the set, backupSucceeded="yes" when the snapshot holds a
// consistent image of it (the snapshot succeeded and its writer did not
// fail), with the writer's annotation as BACKUP_METADATA. The requestor
// keeps its own copy and records its backup's outcome there.
func (c *Coordinator) writeComponents(s *setRun, snapOK bool) error {
	if len(s.runs) == 0 {
		return nil
	}
	bc := vss.NewBackupComponents(vss.BackupFull, false)
	for _, r := range s.runs {
		md, err := r.w.Metadata()
		if err != nil {
			return err
		}
		wc := vss.WriterComponents{WriterID: r.w.WriterID, InstanceID: r.w.InstanceID}
		for _, comp := range md.Components() {
			bcomp := vss.BackupComponent{
				ComponentType: comp.Type, LogicalPath: comp.LogicalPath, ComponentName: comp.ComponentName,
				BackupSucceeded: vss.YesNo(snapOK && r.state.State != vss.StateFailed),
			}
			if len(r.annotation) > 0 {
				bcomp.SetMetadata(r.annotation)
			}
			wc.Components = append(wc.Components, bcomp)
		}
		bc.Writers = append(bc.Writers, wc)
	}
	if err := bc.Validate(); err != nil {
		return err
	}
	return c.writeDoc(s.id, vss.BackupComponentsFile, bc)
}

// Release ends set id for its writers: backup-complete when the backup
// completed, abort otherwise; then the set's documents
// and status record are deleted. It returns at once: the hooks run in the
// background (Close waits for them).
func (c *Coordinator) Release(id uuid.UUID, completed bool) {
	c.mu.Lock()
	s := c.sets[id]
	delete(c.sets, id)
	c.mu.Unlock()
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		if s != nil {
			s.mu.Lock()
			p := PhaseAbort
			if completed {
				p = PhaseBackupComplete
			}
			for _, r := range s.runs {
				if _, err := c.phase(context.Background(), s, r, p, 0); err != nil {
					r.log.WithError(err).WithField("phase", p).Error("writer failed")
				}
				r.endSession()
			}
			s.mu.Unlock()
		}
		c.forget(id)
	}()
}

func (c *Coordinator) forget(id uuid.UUID) {
	if err := os.RemoveAll(c.Dir(id)); err != nil {
		c.log.WithError(err).WithField("set_id", id).Error("cannot remove the set's documents")
	}
	if err := c.db.Update(func(tx *state.Tx) error { return tx.Delete(bucket, id.String()) }); err != nil {
		c.log.WithError(err).WithField("set_id", id).Error("cannot delete writer status")
	}
}

// Reconcile runs at start-up: it thaws every configured fsfreeze mount
// point (a crash may have left one frozen; thawing a thawed file system
// is harmless) and deletes the documents and status of sets not in keep.
func (c *Coordinator) Reconcile(keep []uuid.UUID) {
	for _, w := range c.writers {
		for _, mp := range w.FSFreeze {
			if err := c.thawFS(mp); err == nil {
				c.log.WithField("mount_point", mp).Warn("file system was frozen at start-up: thawed")
			}
		}
	}
	entries, _ := os.ReadDir(c.dir)
	for _, e := range entries {
		id, err := uuid.Parse(e.Name())
		if err != nil || !slices.Contains(keep, id) {
			os.RemoveAll(filepath.Join(c.dir, e.Name()))
		}
	}
	var stale []string
	c.db.View(func(tx *state.Tx) error {
		return tx.ForEach(bucket, func(key string, _ json.RawMessage) error {
			if id, err := uuid.Parse(key); err != nil || !slices.Contains(keep, id) {
				stale = append(stale, key)
			}
			return nil
		})
	})
	if len(stale) > 0 {
		c.db.Update(func(tx *state.Tx) error {
			for _, k := range stale {
				tx.Delete(bucket, k)
			}
			return nil
		})
	}
}

// RunService runs the service-stop or service-start hook of the writer
// named name (friendly name, writer id or instance id), for a
// STOP_RESTART_SERVICE restore.
func (c *Coordinator) RunService(ctx context.Context, name string, p Phase) error {
	if p != PhaseServiceStop && p != PhaseServiceStart {
		return fmt.Errorf("phase %q is not a service phase", p)
	}
	for i := range c.writers {
		w := &c.writers[i]
		if !strings.EqualFold(w.Name, name) && !strings.EqualFold(w.WriterID, name) && !strings.EqualFold(w.InstanceID, name) {
			continue
		}
		h, ok := w.Hooks[p]
		if !ok {
			return fmt.Errorf("writer %q: %s: %w", w.Name, p, ErrNoHook)
		}
		env := append(os.Environ(), "FSRVPD_PHASE="+string(p), "FSRVPD_WRITER_NAME="+w.Name, "FSRVPD_WRITER_ID="+w.WriterID, "FSRVPD_INSTANCE_ID="+w.InstanceID)
		_, err := runHook(ctx, h, env, DefaultHookTimeout, c.log.WithFields(logrus.Fields{"writer": w.Name, "phase": p}))
		return err
	}
	return fmt.Errorf("%q: %w", name, ErrUnknownWriter)
}

// Close waits for background releases.
func (c *Coordinator) Close() { c.bg.Wait() }
