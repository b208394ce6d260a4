package fsrvp

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/shares"
)

// exposedPath is where mapping m of sc is found inside the snapshot: the
// share's path relative to its volume root, below the snapshot's path.
func exposedPath(sc *ShadowCopy, m *MappedShare) (string, error) {
	rel, err := filepath.Rel(sc.VolumeRoot, m.Path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("share path %s is not below volume %s", m.Path, sc.VolumeRoot)
	}
	return filepath.Join(sc.SnapshotPath, rel), nil
}

// ExposeShadowCopySet, opnum 5, §3.1.4.6. Every mapping becomes a share
// named share@{ShadowCopyId}, read-write only for ATTR_AUTO_RECOVERY sets.
// If any share cannot be created, or the whole exposure takes longer than
// the timeout, the shares made are withdrawn and the set stays Committed.
func (s *Service) ExposeShadowCopySet(ctx context.Context, c Caller, setID uuid.UUID, timeoutMs uint32) HResult {
	if rc := s.admit(c, setID); rc != S_OK {
		return rc
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	set, rc := s.setInLocked(setID, Committed)
	if rc != S_OK {
		return rc
	}
	s.stopTimer()
	start := time.Now()
	next := set.clone()
	var made []string
	undo := func() {
		for _, name := range made {
			if err := s.cfg.Exposer.Remove(context.Background(), name); err != nil {
				s.log.WithError(err).WithField("share", name).Error("withdrawing exposed share failed")
			}
		}
	}
	rc = S_OK
expose:
	for _, sc := range next.Copies {
		for _, m := range sc.Mappings {
			path, err := exposedPath(sc, m)
			if err != nil {
				s.log.WithError(err).Error("cannot expose")
				rc = VSS_E_UNEXPECTED
				break expose
			}
			name := exposedName(m.Base, sc.ID.String())
			err = s.cfg.Exposer.Expose(ctx, shares.Share{
				Name: name, Base: m.Base, Path: path, Created: sc.Created,
				ReadOnly: !writableContext(next.Context),
				Comment:  fmt.Sprintf("Shadow copy of %s taken %s", m.Base, sc.Created.UTC().Format(time.RFC1123)),
			})
			if err != nil {
				s.log.WithError(err).WithField("share", name).Error("expose failed")
				rc = providerCode(err)
				break expose
			}
			made = append(made, name)
			m.Exposed = name
		}
	}
	if rc == S_OK {
		docs, err := s.exposeDocumentsLocked(ctx, next)
		if err != nil {
			s.log.WithError(err).WithField("share", docs).Error("exposing the writer documents failed")
			rc = providerCode(err)
		} else if docs != "" {
			made = append(made, docs)
			next.DocsShare = docs
		}
	}
	if rc == S_OK && time.Since(start) > waitTimeout(timeoutMs, DefaultLongTimeout) {
		rc = FSRVP_E_WAIT_TIMEOUT
	}
	s.startTimer(s.cfg.ShortTimeout)
	g := s.g
	if rc == S_OK {
		next.Status = Exposed
		if s.finished(next) && !s.activeSetLocked(setID) {
			// compat = "samba": an Exposed set ends the sequence.
			s.g.ContextSet, s.g.ClientAddress = false, ""
			s.stopTimer()
		}
		if err := s.persist(s.g, []*Set{next}, nil); err != nil {
			rc = VSS_E_UNEXPECTED
		}
	}
	if rc != S_OK {
		undo()
		s.g = g
		s.startTimer(s.cfg.ShortTimeout)
		s.persist(s.g, nil, nil)
		return rc
	}
	s.sets[setID] = next
	s.opLog("ExposeShadowCopySet", c).WithField("set_id", setID).WithField("shares", made).Info("shadow copy set exposed")
	return S_OK
}

// RecoveryCompleteShadowCopySet, opnum 6, §3.1.4.7: the writable copies of
// an ATTR_AUTO_RECOVERY set become read-only for good, and the sequence
// ends.
func (s *Service) RecoveryCompleteShadowCopySet(ctx context.Context, c Caller, setID uuid.UUID) HResult {
	if rc := s.admit(c, setID); rc != S_OK {
		return rc
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	set, rc := s.setInLocked(setID, Exposed)
	if rc != S_OK {
		return rc
	}
	s.stopTimer()
	if set.Context&AttrNoAutoRecovery == 0 {
		for _, sc := range set.Copies {
			for _, m := range sc.Mappings {
				if err := s.cfg.Exposer.SetReadOnly(ctx, m.Exposed, true); err != nil {
					s.log.WithError(err).WithField("share", m.Exposed).Error("cannot make share read-only")
					s.startTimer(s.cfg.ShortTimeout)
					return providerCode(err)
				}
			}
			if err := s.cfg.Backend.SetReadOnly(ctx, sc.snapshotID()); err != nil {
				s.log.WithError(err).WithField("shadow_copy_id", sc.ID).Error("cannot make snapshot read-only")
				s.startTimer(s.cfg.ShortTimeout)
				return providerCode(err)
			}
		}
	}
	next := set.clone()
	next.Status = Recovered
	g := s.g
	s.g.ContextSet, s.g.ClientAddress = false, ""
	if err := s.persist(s.g, []*Set{next}, nil); err != nil {
		s.g = g
		s.startTimer(s.cfg.ShortTimeout)
		return VSS_E_UNEXPECTED
	}
	s.sets[setID] = next
	s.opLog("RecoveryCompleteShadowCopySet", c).WithField("set_id", setID).Info("recovery complete")
	return S_OK
}

// AbortShadowCopySet, opnum 7, §3.1.4.8: the set is deleted in whatever
// state it is, with its shares and snapshots. The spec sets ContextSet to
// FALSE; this server does so only when no other set is left in creation,
// so aborting an old Recovered set cannot end a newer sequence.
func (s *Service) AbortShadowCopySet(_ context.Context, c Caller, setID uuid.UUID) HResult {
	if rc := s.admit(c, setID); rc != S_OK {
		return rc
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	set, rc := s.setInLocked(setID)
	if rc != S_OK {
		return rc
	}
	set.abortWriters = true
	if err := s.removeSetLocked(set, true, nil); err != nil {
		set.abortWriters = false
		if errors.Is(err, errPersist) {
			return VSS_E_UNEXPECTED
		}
		return providerCode(err)
	}
	s.opLog("AbortShadowCopySet", c).WithField("set_id", setID).Info("shadow copy set aborted")
	return S_OK
}

// IsPathSupported, opnum 8, §3.1.4.9. OwnerMachineName is our own name:
// the host named in ShareName is never looked up.
func (s *Service) IsPathSupported(ctx context.Context, c Caller, shareName string) (supported bool, owner string, rc HResult) {
	if !s.cfg.Access.allows(c) {
		return false, "", E_ACCESSDENIED
	}
	if shareName == "" {
		return false, "", E_INVALIDARG
	}
	if _, _, rc := s.resolveShare(ctx, shareName); rc != S_OK {
		return false, "", rc
	}
	return true, s.cfg.ServerName, S_OK
}

// IsPathShadowCopied, opnum 9, §3.1.4.10: is the share's volume in a set
// that has been committed? No compatibility bits apply to our backends.
func (s *Service) IsPathShadowCopied(ctx context.Context, c Caller, shareName string) (present bool, compat int32, rc HResult) {
	if !s.cfg.Access.allows(c) {
		return false, 0, E_ACCESSDENIED
	}
	if shareName == "" {
		return false, 0, E_INVALIDARG
	}
	_, vol, rc := s.resolveShare(ctx, shareName)
	if rc != S_OK {
		return false, 0, rc
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, set := range s.sets {
		if set.Status < Committed {
			continue
		}
		if set.copyByVolume(vol.ID) != nil {
			return true, 0, S_OK
		}
	}
	return false, 0, S_OK
}

// GetShareMapping, opnum 10, §3.1.4.11. Level is checked first; the share
// is matched by share name, whatever host the client put in the UNC.
func (s *Service) GetShareMapping(_ context.Context, c Caller, scID, setID uuid.UUID, shareName string, level uint32) (Mapping, HResult) {
	if !s.cfg.Access.allows(c) {
		return Mapping{}, E_ACCESSDENIED
	}
	if level != 1 || scID == uuid.Nil || setID == uuid.Nil || shareName == "" {
		return Mapping{}, E_INVALIDARG
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.sets[setID]
	if set == nil {
		return Mapping{}, s.unknownSet()
	}
	if set.Status != Exposed {
		return Mapping{}, FSRVP_E_BAD_STATE
	}
	s.stopTimer()
	defer func() {
		s.startTimer(s.cfg.LongTimeout)
		s.persist(s.g, nil, nil)
	}()
	sc := set.copyByID(scID)
	if sc == nil {
		return Mapping{}, E_INVALIDARG
	}
	_, name, ok := parseUNC(shareName)
	if !ok {
		return Mapping{}, E_INVALIDARG
	}
	_, m := sc.mappingOf(name)
	if m == nil {
		return Mapping{}, E_INVALIDARG
	}
	out := Mapping{SetID: setID, ShadowCopyID: scID, ShareNameUNC: m.ShareName, Created: sc.Created}
	if m.isExposed() {
		out.ExposedUNC = uncOf(s.cfg.ServerName, m.Exposed)
		if s.cfg.Compat == CompatSamba {
			out.ExposedUNC = m.Exposed
		}
	}
	return out, S_OK
}

// DeleteShareMapping, opnum 11, §3.1.4.12: withdraws one exposed share; the
// snapshot goes with the last mapping of its shadow copy, and the set with
// its last shadow copy.
func (s *Service) DeleteShareMapping(ctx context.Context, c Caller, setID, scID uuid.UUID, shareName string) HResult {
	if !s.cfg.Access.allows(c) {
		return E_ACCESSDENIED
	}
	if setID == uuid.Nil || scID == uuid.Nil || shareName == "" {
		return E_INVALIDARG
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.sets[setID]
	if set == nil {
		return FSRVP_E_OBJECT_NOT_FOUND
	}
	if set.Status != Exposed && set.Status != Recovered {
		return FSRVP_E_BAD_STATE
	}
	next := set.clone()
	sc := next.copyByID(scID)
	if sc == nil {
		if s.cfg.Compat == CompatSamba {
			return E_INVALIDARG
		}
		return FSRVP_E_OBJECT_NOT_FOUND
	}
	_, name, ok := parseUNC(shareName)
	if !ok {
		return E_INVALIDARG
	}
	i, m := sc.mappingOf(name)
	if m == nil {
		return FSRVP_E_OBJECT_NOT_FOUND
	}
	log := s.opLog("DeleteShareMapping", c).WithFields(logrus.Fields{"set_id": setID, "shadow_copy_id": scID, "share": m.Exposed})
	if m.isExposed() {
		if err := s.cfg.Exposer.Remove(ctx, m.Exposed); err != nil && !isNotFound(err) {
			log.WithError(err).Error("removing exposed share failed")
			return providerCode(err)
		}
	}
	sc.Mappings = append(sc.Mappings[:i], sc.Mappings[i+1:]...)
	if len(sc.Mappings) == 0 {
		if err := s.cfg.Backend.Delete(ctx, sc.snapshotID()); err != nil && !isNotFound(err) {
			log.WithError(err).Error("deleting snapshot failed")
			return providerCode(err)
		}
		for k, x := range next.Copies {
			if x == sc {
				next.Copies = append(next.Copies[:k], next.Copies[k+1:]...)
				break
			}
		}
	}
	put, del := []*Set{next}, []uuid.UUID(nil)
	if len(next.Copies) == 0 {
		if err := s.releaseWritersLocked(ctx, next, true); err != nil {
			log.WithError(err).Error("removing the writer documents share failed")
		}
		put, del = nil, []uuid.UUID{setID}
		delete(s.sets, setID)
	} else {
		s.sets[setID] = next
	}
	s.endSequenceIfIdleLocked(!s.finished(set))
	if err := s.persist(s.g, put, del); err != nil {
		return VSS_E_UNEXPECTED
	}
	log.Info("share mapping deleted")
	return S_OK
}
