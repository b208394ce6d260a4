package fsrvp

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/server/state"
	"github.com/fsrvpd/fsrvpd/shares"
	"github.com/fsrvpd/fsrvpd/storage"
)

// Mapping is what GetShareMapping returns, §2.2.1.1.
type Mapping struct {
	SetID, ShadowCopyID uuid.UUID
	ShareNameUNC        string
	ExposedUNC          string
	Created             time.Time
}

func isNotFound(err error) bool {
	return errors.Is(err, storage.ErrNotFound) || errors.Is(err, shares.ErrNotFound) || errors.Is(err, state.ErrNotFound)
}

func (s *Service) opLog(op string, c Caller) *logrus.Entry {
	l := s.log
	if c.Log != nil {
		f := make(logrus.Fields, len(c.Log.Data))
		for k, v := range c.Log.Data {
			if k != "component" {
				f[k] = v
			}
		}
		l = l.WithFields(f)
	}
	return l.WithFields(logrus.Fields{"op": op, "client": c.Address})
}

// admit runs the checks every method starts with: the access check
// (§3.1.4), then NULL / GUID_NULL arguments → E_INVALIDARG.
func (s *Service) admit(c Caller, ids ...uuid.UUID) HResult {
	if !s.cfg.Access.allows(c) {
		s.opLog("access", c).WithFields(logrus.Fields{"user": c.Name, "auth_level": c.AuthLevel, "rpc_auth": c.RPCAuth, "smb_session": c.SMBSession}).
			Info("fsrvp: caller refused (E_ACCESSDENIED): needs an authenticated bind at the minimum level by an administrator or backup operator")
		return E_ACCESSDENIED
	}
	for _, id := range ids {
		if id == uuid.Nil {
			return E_INVALIDARG
		}
	}
	return S_OK
}

// setInLocked looks a set up for a per-set method: an unknown id is
// FSRVP_E_SHADOWCOPYSET_ID_MISMATCH, a status not in states is
// FSRVP_E_BAD_STATE (any status passes when states is empty). Callers hold
// s.mu.
func (s *Service) setInLocked(id uuid.UUID, states ...Status) (*Set, HResult) {
	set := s.sets[id]
	if set == nil {
		return nil, s.unknownSet()
	}
	if len(states) > 0 && !slices.Contains(states, set.Status) {
		return nil, FSRVP_E_BAD_STATE
	}
	return set, S_OK
}

// unknownSet is the code for an unknown ShadowCopySetId.
func (s *Service) unknownSet() HResult {
	if s.cfg.Compat == CompatSamba {
		return E_INVALIDARG
	}
	return FSRVP_E_SHADOWCOPYSET_ID_MISMATCH
}

// GetSupportedVersion, opnum 0, §3.1.4.1.
func (s *Service) GetSupportedVersion(_ context.Context, c Caller) (min, max uint32, rc HResult) {
	if !s.cfg.Access.allows(c) {
		return 0, 0, E_ACCESSDENIED
	}
	return Version1, Version1, S_OK
}

// SetContext, opnum 1, §3.1.4.2.
func (s *Service) SetContext(_ context.Context, c Caller, context uint32) HResult {
	if !s.cfg.Access.allows(c) {
		return E_ACCESSDENIED
	}
	if !ValidContext(context) {
		return FSRVP_E_UNSUPPORTED_CONTEXT
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	log := s.opLog("SetContext", c)
	g := s.g
	if g.ContextSet {
		if c.Address != g.ClientAddress {
			return FSRVP_E_SHADOW_COPY_SET_IN_PROGRESS
		}
		// Same client again: it lost track of its sequence. Discard every
		// set still in creation and count the retry (§3.1.4.2 step 3).
		s.purgeLocked("SetContext retry by the same client")
		s.g.ContextSet, s.g.ClientAddress = false, ""
		s.g.RetryCount++
		if s.cfg.RetryLimit > 0 && s.g.RetryCount > s.cfg.RetryLimit {
			s.stopTimer()
			if err := s.persist(s.g, nil, nil); err != nil {
				return VSS_E_UNEXPECTED
			}
			log.WithField("retries", s.g.RetryCount).Warn("SetContext retry limit reached")
			return FSRVP_E_SHADOW_COPY_SET_IN_PROGRESS
		}
	} else {
		s.g.RetryCount = 0
	}
	s.g.ClientAddress, s.g.CurrentContext, s.g.ContextSet = c.Address, context, true
	s.startTimer(s.cfg.ShortTimeout)
	if err := s.persist(s.g, nil, nil); err != nil {
		return VSS_E_UNEXPECTED
	}
	log.WithField("context", context).Debug("context set")
	return S_OK
}

// StartShadowCopySet, opnum 2, §3.1.4.3. Besides the spec's checks, a
// client other than the one that set the context is refused with
// FSRVP_E_SHADOW_COPY_SET_IN_PROGRESS, so one client cannot start a set in
// another's sequence.
func (s *Service) StartShadowCopySet(_ context.Context, c Caller, clientSetID uuid.UUID) (uuid.UUID, HResult) {
	if !s.cfg.Access.allows(c) {
		return uuid.Nil, E_ACCESSDENIED
	}
	if clientSetID == uuid.Nil { // note <7>
		return uuid.Nil, E_INVALIDARG
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.g.ContextSet {
		return uuid.Nil, FSRVP_E_BAD_STATE
	}
	if s.activeSetLocked() || c.Address != s.g.ClientAddress {
		return uuid.Nil, FSRVP_E_SHADOW_COPY_SET_IN_PROGRESS
	}
	s.stopTimer()
	set := &Set{ID: uuid.New(), Status: Started, Context: s.g.CurrentContext, Created: s.cfg.Now()}
	s.startTimer(s.cfg.ShortTimeout)
	if err := s.persist(s.g, []*Set{set}, nil); err != nil {
		return uuid.Nil, VSS_E_UNEXPECTED
	}
	s.sets[set.ID] = set
	s.opLog("StartShadowCopySet", c).WithField("set_id", set.ID).Info("shadow copy set started")
	return set.ID, S_OK
}

// resolveShare finds the base share and the volume behind an FSRVP share
// name: the share checks of §3.1.4.4 steps 1-2, §3.1.4.8 and §3.1.4.9.
func (s *Service) resolveShare(ctx context.Context, unc string) (shares.BaseShare, storage.Volume, HResult) {
	_, name, ok := parseUNC(unc)
	if !ok {
		return shares.BaseShare{}, storage.Volume{}, E_INVALIDARG
	}
	base, err := s.cfg.Shares.Lookup(ctx, name)
	if err != nil {
		if errors.Is(err, shares.ErrNotFound) {
			return base, storage.Volume{}, FSRVP_E_OBJECT_NOT_FOUND
		}
		s.log.WithError(err).WithField("share", name).Error("share lookup failed")
		return base, storage.Volume{}, VSS_E_UNEXPECTED
	}
	vol, err := s.cfg.Backend.Volume(ctx, base.Path)
	if err != nil {
		s.log.WithError(err).WithField("share", base.Name).Debug("share cannot be shadow copied")
		return base, vol, providerCode(err)
	}
	return base, vol, S_OK
}

// AddToShadowCopySet, opnum 3, §3.1.4.4. The share checks come before the
// set checks, as the spec orders them. ClientShadowCopyId is ignored (note
// <8>).
func (s *Service) AddToShadowCopySet(ctx context.Context, c Caller, setID uuid.UUID, shareName string) (uuid.UUID, HResult) {
	if rc := s.admit(c, setID); rc != S_OK || shareName == "" {
		return uuid.Nil, cmp.Or(rc, E_INVALIDARG)
	}
	base, vol, rc := s.resolveShare(ctx, shareName)
	if rc != S_OK {
		return uuid.Nil, rc
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	set, rc := s.setInLocked(setID, Started, Added)
	if rc != S_OK {
		return uuid.Nil, rc
	}
	s.stopTimer()
	next := set.clone()
	var scID uuid.UUID
	if sc := next.copyByVolume(vol.ID); sc != nil {
		if _, m := sc.mappingOf(base.Name); m != nil || s.cfg.SameVolume == SameVolumeReject {
			s.startTimer(s.cfg.ShortTimeout)
			s.persist(s.g, nil, nil)
			return uuid.Nil, FSRVP_E_OBJECT_ALREADY_EXISTS
		}
		sc.Mappings = append(sc.Mappings, &MappedShare{ShareName: shareName, Base: base.Name, Path: base.Path})
		scID = sc.ID
	} else {
		sc := &ShadowCopy{
			ID: uuid.New(), VolumeID: vol.ID, VolumeRoot: vol.Root, Created: s.cfg.Now(),
			Mappings: []*MappedShare{{ShareName: shareName, Base: base.Name, Path: base.Path}},
		}
		next.Copies = append(next.Copies, sc)
		scID = sc.ID
	}
	next.Status = Added
	s.startTimer(s.cfg.LongTimeout)
	if err := s.persist(s.g, []*Set{next}, nil); err != nil {
		return uuid.Nil, VSS_E_UNEXPECTED
	}
	s.sets[setID] = next
	s.opLog("AddToShadowCopySet", c).WithFields(logrus.Fields{"set_id": setID, "shadow_copy_id": scID, "share": base.Name, "volume": vol.ID}).Info("share added to set")
	return scID, S_OK
}

// waitTimeout converts an FSRVP TimeOutInMilliseconds. Zero takes the
// Windows client's value for the method (notes <11>-<13>).
func waitTimeout(ms uint32, def time.Duration) time.Duration {
	if ms == 0 {
		return def
	}
	return time.Duration(ms) * time.Millisecond
}

// PrepareShadowCopySet, opnum 12, §3.1.4.12. Preparation flushes the
// volumes of the set; the set stays Added.
func (s *Service) PrepareShadowCopySet(ctx context.Context, c Caller, setID uuid.UUID, timeoutMs uint32) HResult {
	if rc := s.admit(c, setID); rc != S_OK {
		return rc
	}
	s.mu.Lock()
	set, rc := s.setInLocked(setID, Added)
	if rc != S_OK {
		s.mu.Unlock()
		return rc
	}
	s.stopTimer()
	roots := make([]string, 0, len(set.Copies))
	for _, sc := range set.Copies {
		roots = append(roots, sc.VolumeRoot)
	}
	s.mu.Unlock()

	done := make(chan error, 1)
	setContext := set.Context
	go func() {
		err := s.cfg.Prepare(context.WithoutCancel(ctx), roots)
		if err == nil && s.usesWriters(setContext) {
			err = s.cfg.Writers.Prepare(context.WithoutCancel(ctx), setID, setContext, roots)
		}
		done <- err
	}()
	rc = S_OK
	select {
	case err := <-done:
		if err != nil {
			s.log.WithError(err).WithField("set_id", setID).Error("prepare failed")
			rc = providerCode(err)
		}
	case <-time.After(waitTimeout(timeoutMs, DefaultLongTimeout)):
		rc = FSRVP_E_WAIT_TIMEOUT
	case <-ctx.Done():
		rc = FSRVP_E_WAIT_FAILED
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if rc == S_OK {
		s.startTimer(s.cfg.LongTimeout)
	} else {
		s.startTimer(s.cfg.ShortTimeout)
	}
	if err := s.persist(s.g, nil, nil); err != nil && rc == S_OK {
		return VSS_E_UNEXPECTED
	}
	return rc
}

// commitJob takes the snapshots of one set outside the service mutex.
type commitJob struct {
	done   chan struct{}
	cancel context.CancelFunc
	err    error
	snaps  map[uuid.UUID]storage.Snapshot
}

type task struct {
	id  uuid.UUID
	vol storage.Volume
}

// createParallel takes one snapshot per task with concurrent Creates, the
// fallback for backends without storage.BatchCreator. If any fails, those
// taken are deleted again and the first error is returned.
func (s *Service) createParallel(ctx context.Context, tasks []task, opts storage.CreateOptions, out map[uuid.UUID]storage.Snapshot) error {
	type result struct {
		id   uuid.UUID
		snap storage.Snapshot
		err  error
	}
	results := make(chan result, len(tasks))
	for _, t := range tasks {
		go func() {
			snap, err := s.cfg.Backend.Create(ctx, t.vol, t.id.String(), opts)
			results <- result{t.id, snap, err}
		}()
	}
	var first error
	for range tasks {
		r := <-results
		if r.err != nil {
			if first == nil {
				first = r.err
			}
			s.log.WithError(r.err).WithField("shadow_copy_id", r.id).Error("snapshot failed")
			continue
		}
		out[r.id] = r.snap
	}
	if first != nil {
		for id := range out {
			if err := s.cfg.Backend.Delete(context.Background(), id.String()); err != nil && !isNotFound(err) {
				s.log.WithError(err).WithField("shadow_copy_id", id).Error("rollback of snapshot failed")
			}
		}
	}
	return first
}

// startCommitLocked launches the snapshot job of set. All shadow copies are
// taken in parallel, as close to one instant as the backend allows; if any
// fails, the ones taken are deleted again, so a failed job leaves nothing.
func (s *Service) startCommitLocked(set *Set) *commitJob {
	ctx, cancel := context.WithCancel(context.Background())
	j := &commitJob{done: make(chan struct{}), cancel: cancel, snaps: map[uuid.UUID]storage.Snapshot{}}
	tasks := make([]task, 0, len(set.Copies))
	for _, sc := range set.Copies {
		tasks = append(tasks, task{sc.ID, storage.Volume{ID: sc.VolumeID, Root: sc.VolumeRoot}})
	}
	opts := storage.CreateOptions{Writable: writableContext(set.Context)}
	log := s.log.WithField("set_id", set.ID)
	s.jobs[set.ID] = j
	frozenSet := set.clone()
	go func() {
		defer close(j.done)
		defer cancel()
		thaw, err := s.freezeWriters(ctx, frozenSet)
		if thaw != nil {
			// The thaw runs whatever happens to the snapshots.
			defer func() {
				var paths []string
				for _, t := range tasks {
					if sn, ok := j.snaps[t.id]; ok {
						paths = append(paths, sn.Path)
					}
				}
				if terr := thaw(paths, j.err); terr != nil && j.err == nil {
					log.WithError(terr).Error("required writer failed: snapshots dropped")
					for id := range j.snaps {
						if err := s.cfg.Backend.Delete(context.Background(), id.String()); err != nil && !isNotFound(err) {
							log.WithError(err).WithField("shadow_copy_id", id).Error("rollback of snapshot failed")
						}
					}
					j.err, j.snaps = terr, nil
				}
			}()
		}
		if err != nil {
			j.err = err
			log.WithError(err).Error("required writer failed to freeze")
			return
		}
		start := time.Now()
		defer func() { s.observer().SnapshotsTaken(set.ID, len(tasks), time.Since(start), j.err) }()
		if bc, ok := s.cfg.Backend.(storage.BatchCreator); ok {
			reqs := make([]storage.Request, len(tasks))
			for i, t := range tasks {
				reqs[i] = storage.Request{Volume: t.vol, ID: t.id.String(), Options: opts}
			}
			snaps, err := bc.CreateBatch(ctx, reqs)
			if err != nil {
				j.err = err
				log.WithError(err).Error("snapshots failed")
				return
			}
			for i, t := range tasks {
				j.snaps[t.id] = snaps[i]
			}
		} else {
			j.err = s.createParallel(ctx, tasks, opts, j.snaps)
			if j.err != nil {
				j.snaps = nil
				return
			}
		}
		log.WithField("duration_s", time.Since(start).Seconds()).Debug("snapshots taken")
	}()
	return j
}

// CommitShadowCopySet, opnum 4, §3.1.4.5. The snapshots are taken by a
// background job; if it does not finish within the timeout the call returns
// FSSAGENT_E_TIMEOUT and the set stays CreationInProgress, and a repeated
// Commit waits for the same job. A job that fails leaves the set
// CreationInProgress with nothing taken, and a repeated Commit retries.
func (s *Service) CommitShadowCopySet(ctx context.Context, c Caller, setID uuid.UUID, timeoutMs uint32) HResult {
	if rc := s.admit(c, setID); rc != S_OK {
		return rc
	}
	s.mu.Lock()
	set, rc := s.setInLocked(setID, Added, CreationInProgress)
	if rc != S_OK {
		s.mu.Unlock()
		return rc
	}
	s.stopTimer()
	j := s.jobs[setID]
	if j == nil {
		if set.Status == Added {
			next := set.clone()
			next.Status = CreationInProgress
			if err := s.persist(s.g, []*Set{next}, nil); err != nil {
				s.startTimer(s.cfg.ShortTimeout)
				s.mu.Unlock()
				return VSS_E_UNEXPECTED
			}
			s.sets[setID], set = next, next
		}
		j = s.startCommitLocked(set)
	}
	s.mu.Unlock()

	timedOut := false
	select {
	case <-j.done:
	case <-time.After(waitTimeout(timeoutMs, 60*time.Second)):
		timedOut = true
	case <-ctx.Done():
		timedOut = true
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.startTimer(s.cfg.ShortTimeout)
	set = s.sets[setID]
	if set == nil || s.jobs[setID] != j {
		// Aborted or expired while we waited.
		s.persist(s.g, nil, nil)
		return FSRVP_E_WAIT_FAILED
	}
	if timedOut {
		s.persist(s.g, nil, nil)
		return FSSAGENT_E_TIMEOUT
	}
	delete(s.jobs, setID)
	if j.err != nil {
		s.persist(s.g, nil, nil)
		return providerCode(j.err)
	}
	next := set.clone()
	next.Status = Committed
	for _, sc := range next.Copies {
		sc.SnapshotPath = j.snaps[sc.ID].Path
	}
	if err := s.persist(s.g, []*Set{next}, nil); err != nil {
		// Not durable: undo the snapshots so nothing is leaked.
		for id := range j.snaps {
			s.cfg.Backend.Delete(context.Background(), id.String())
		}
		return VSS_E_UNEXPECTED
	}
	s.sets[setID] = next
	s.opLog("CommitShadowCopySet", c).WithField("set_id", setID).WithField("shadow_copies", len(next.Copies)).Info("shadow copy set committed")
	if f := s.cfg.Committed; f != nil {
		vols := make([]string, len(next.Copies))
		for i, sc := range next.Copies {
			vols[i] = sc.VolumeID
		}
		go f(vols)
	}
	return S_OK
}
