package fsrvp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/shares"
	"github.com/fsrvpd/fsrvpd/storage"
)

// This file is the administrative side of the Service: a read-only view of
// the sets (the protocol has no enumerate call), abort and delete entry
// points that take the same locked paths and state store as
// AbortShadowCopySet, and the search for orphans that Reconcile also uses.

// Errors of the administrative entry points.
var (
	// ErrNoSuchSet: no shadow copy set has that id.
	ErrNoSuchSet = errors.New("no such shadow copy set")
	// ErrSetInUse: the set is still in a creation sequence (delete refuses
	// it; abort it instead) or, for abort, already finished (delete it).
	ErrSetInUse = errors.New("shadow copy set is in a creation sequence")
	// ErrSetFinished: abort was asked for a finished set.
	ErrSetFinished = errors.New("shadow copy set is finished")
	// ErrSetConnected: SMB clients have shares of the set connected;
	// DeleteSet refuses it unless forced.
	ErrSetConnected = errors.New("SMB clients are connected to its shares")
	// errPersist: the state store could not be written.
	errPersist = errors.New("state store write failed")
)

// SetInfo is a deep copy of one set plus what only the service knows.
type SetInfo struct {
	Set
	// InCreation is true while the set's creation sequence is running: the
	// protocol still uses it (§3.1.1.1 states before Recovered).
	InCreation bool `json:"in_creation"`
	// CommitRunning is true while its snapshot job runs.
	CommitRunning bool `json:"commit_running"`
}

// Shares are the base share names of the set, in order.
func (i SetInfo) Shares() []string {
	var out []string
	for _, sc := range i.Copies {
		for _, m := range sc.Mappings {
			out = append(out, m.Base)
		}
	}
	return out
}

// Overview is a consistent picture of the service: every set and the
// global state of §3.1.1.
type Overview struct {
	Sets           []SetInfo `json:"sets"`
	ContextSet     bool      `json:"context_set"`
	CurrentContext uint32    `json:"current_context"`
	ClientAddress  string    `json:"client_address,omitempty"`
	// TimerDeadline is when the message sequence timer fires (zero: off).
	TimerDeadline time.Time `json:"timer_deadline,omitzero"`
}

// ContextName names an FSRVP context value (§2.2.2.1) with its recovery
// attribute, e.g. "nas_rollback" or "backup+auto_recovery".
func ContextName(c uint32) string {
	var name string
	switch c &^ recoveryAttrs {
	case CtxBackup:
		name = "backup"
	case CtxFileShareBackup:
		name = "file_share_backup"
	case CtxNASRollback:
		name = "nas_rollback"
	case CtxAppRollback:
		name = "app_rollback"
	default:
		return fmt.Sprintf("0x%08x", c)
	}
	switch {
	case c&AttrAutoRecovery != 0:
		name += "+auto_recovery"
	case c&AttrNoAutoRecovery != 0:
		name += "+no_auto_recovery"
	}
	return name
}

// Persistent reports whether sets of context c survive a restart and are
// subject to retention (NAS_ROLLBACK, APP_ROLLBACK).
func Persistent(c uint32) bool { return persistentContext(c) }

// Overview returns every set, sorted by creation time, and the global
// state. It changes nothing.
func (s *Service) Overview() Overview {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := Overview{ContextSet: s.g.ContextSet, CurrentContext: s.g.CurrentContext, ClientAddress: s.g.ClientAddress, TimerDeadline: s.g.TimerDeadline}
	for _, set := range s.sets {
		o.Sets = append(o.Sets, s.infoLocked(set))
	}
	slices.SortFunc(o.Sets, func(a, b SetInfo) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID.String(), b.ID.String())
	})
	return o
}

// SetInfo returns one set, or false if there is none of that id.
func (s *Service) SetInfo(id uuid.UUID) (SetInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.sets[id]
	if set == nil {
		return SetInfo{}, false
	}
	return s.infoLocked(set), true
}

func (s *Service) infoLocked(set *Set) SetInfo {
	return SetInfo{Set: *set.clone(), InCreation: !s.finished(set), CommitRunning: s.jobs[set.ID] != nil}
}

// AdminAbort deletes a set that is still in its creation sequence, with
// its snapshots and shares, exactly as AbortShadowCopySet (§3.1.4.8) does.
// A finished set is refused with ErrSetFinished: DeleteSet removes those.
// who names the administrator for the log.
func (s *Service) AdminAbort(_ context.Context, id uuid.UUID, who string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.sets[id]
	if set == nil {
		return fmt.Errorf("%s: %w", id, ErrNoSuchSet)
	}
	if s.finished(set) {
		return fmt.Errorf("%s is %s: %w; delete it instead", id, set.Status, ErrSetFinished)
	}
	return s.removeSetLocked(set, true, logrus.Fields{"op": "admin abort", "by": who})
}

// DeleteSet deletes a finished set (Recovered, or Exposed in compat =
// "samba") with its shares and snapshots. A set still in a creation
// sequence is refused with ErrSetInUse, so that neither an administrator
// nor the retention policy pulls a set from under a running client.
// Unless force, a set whose exposed shares SMB clients have connected is
// refused with ErrSetConnected (when the exposer can tell; see
// Connections): removing the shares would disconnect them mid-read. So
// is a set whose connections cannot be listed, with the reason.
func (s *Service) DeleteSet(ctx context.Context, id uuid.UUID, who string, force bool) error {
	s.mu.Lock()
	err := s.deletableLocked(id)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if !force {
		conns, err := s.Connections(ctx, id)
		if err != nil {
			if errors.Is(err, ErrNoSuchSet) {
				return err
			}
			return fmt.Errorf("%s: cannot tell whether SMB clients use its shares: %w", id, err)
		}
		if len(conns) > 0 {
			return fmt.Errorf("%s: %w (%s)", id, ErrSetConnected, DescribeConnections(conns))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.deletableLocked(id); err != nil { // it may have changed meanwhile
		return err
	}
	return s.removeSetLocked(s.sets[id], false, logrus.Fields{"op": "delete", "by": who})
}

// deletableLocked refuses what DeleteSet may not delete: an unknown set, or
// one in a creation sequence or with a commit job running.
func (s *Service) deletableLocked(id uuid.UUID) error {
	set := s.sets[id]
	if set == nil {
		return fmt.Errorf("%s: %w", id, ErrNoSuchSet)
	}
	if !s.finished(set) || s.jobs[id] != nil {
		return fmt.Errorf("%s is %s: %w; abort it instead", id, set.Status, ErrSetInUse)
	}
	return nil
}

// removeSetLocked deletes set's shares and snapshots, then its record,
// and, when endSequence, ends the sequence if no set is left in creation.
// It is the path of AbortShadowCopySet and of the administrative deletes.
// Callers hold s.mu.
func (s *Service) removeSetLocked(set *Set, endSequence bool, f logrus.Fields) error {
	if err := s.destroyLocked(set); err != nil {
		s.log.WithError(err).WithFields(f).WithField("set_id", set.ID).Error("cannot delete shadow copy set")
		return err
	}
	delete(s.sets, set.ID)
	s.endSequenceIfIdleLocked(endSequence)
	if err := s.persist(s.g, nil, []uuid.UUID{set.ID}); err != nil {
		return fmt.Errorf("%w: %v", errPersist, err)
	}
	if f != nil {
		s.log.WithFields(f).WithField("set_id", set.ID).Info("shadow copy set deleted")
	}
	return nil
}

// Orphans are snapshots and exposed shares of ours that no set claims.
type Orphans struct {
	Snapshots []storage.Snapshot `json:"snapshots"`
	Shares    []shares.Share     `json:"shares"`
}

// findOrphans returns the snapshots and shares not in the want sets.
func findOrphans(snaps []storage.Snapshot, exposed []shares.Share, wantSnap, wantShare map[string]bool) Orphans {
	o := Orphans{Snapshots: []storage.Snapshot{}, Shares: []shares.Share{}}
	for _, sn := range snaps {
		if !wantSnap[sn.ID] {
			o.Snapshots = append(o.Snapshots, sn)
		}
	}
	for _, sh := range exposed {
		if !wantShare[strings.ToLower(sh.Name)] {
			o.Shares = append(o.Shares, sh)
		}
	}
	slices.SortFunc(o.Snapshots, func(a, b storage.Snapshot) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(o.Shares, func(a, b shares.Share) int { return strings.Compare(a.Name, b.Name) })
	return o
}

// deleteOrphansLocked removes the shares, then the snapshots, of o. It is
// the path of Reconcile and of CollectOrphans. Callers hold s.mu.
func (s *Service) deleteOrphansLocked(ctx context.Context, o Orphans) error {
	for _, sh := range o.Shares {
		if err := s.cfg.Exposer.Remove(ctx, sh.Name); err != nil && !isNotFound(err) {
			return fmt.Errorf("remove orphan share %s: %w", sh.Name, err)
		}
		s.log.WithField("share", sh.Name).Warn("orphan share removed")
	}
	for _, sn := range o.Snapshots {
		if err := s.cfg.Backend.Delete(ctx, sn.ID); err != nil && !isNotFound(err) {
			return fmt.Errorf("delete orphan snapshot %s: %w", sn.ID, err)
		}
		s.log.WithField("snapshot", sn.ID).WithField("path", sn.Path).Warn("orphan snapshot deleted")
	}
	return nil
}

// orphansLocked lists the backend's snapshots and the exposer's shares and
// returns those no set claims. Every shadow copy of every set claims its
// snapshot, whatever the set's state (a running commit's snapshots
// included), every mapping its exposed share, and a set its writer
// documents share. Callers hold s.mu.
func (s *Service) orphansLocked(ctx context.Context) (Orphans, error) {
	snaps, err := s.cfg.Backend.List(ctx)
	if err != nil {
		return Orphans{}, fmt.Errorf("list snapshots: %w", err)
	}
	exposed, err := s.cfg.Exposer.List(ctx)
	if err != nil {
		return Orphans{}, fmt.Errorf("list shares: %w", err)
	}
	wantSnap, wantShare := map[string]bool{}, map[string]bool{}
	for _, set := range s.sets {
		set.addShareNames(wantShare)
		for _, sc := range set.Copies {
			wantSnap[sc.snapshotID()] = true
		}
	}
	return findOrphans(snaps, exposed, wantSnap, wantShare), nil
}

// Orphans lists the snapshots and shares that belong to no set: left by a
// crash the start-up Reconcile could not clean, or made behind the
// daemon's back in its naming.
func (s *Service) Orphans(ctx context.Context) (Orphans, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.orphansLocked(ctx)
}

// CollectOrphans finds the orphans and, unless dryRun, deletes them
// (shares first). It returns what it found.
func (s *Service) CollectOrphans(ctx context.Context, dryRun bool, who string) (Orphans, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.orphansLocked(ctx)
	if err != nil || dryRun {
		return o, err
	}
	s.log.WithFields(logrus.Fields{"op": "gc", "by": who, "snapshots": len(o.Snapshots), "shares": len(o.Shares)}).Info("collecting orphans")
	return o, s.deleteOrphansLocked(ctx, o)
}

// Connections returns the SMB tree connects to set id's exposed shares
// (its mappings' shares and its writer documents share) as the exposer
// reports them, or nil when the exposer cannot tell (it is no
// shares.ConnectionLister: TCP-only deployments serve no SMB). The exposer
// is asked without holding the service's lock.
func (s *Service) Connections(ctx context.Context, id uuid.UUID) ([]shares.Connection, error) {
	s.mu.Lock()
	set := s.sets[id]
	names := map[string]bool{}
	if set != nil {
		set.addShareNames(names)
	}
	s.mu.Unlock()
	if set == nil {
		return nil, fmt.Errorf("%s: %w", id, ErrNoSuchSet)
	}
	cl, ok := s.cfg.Exposer.(shares.ConnectionLister)
	if !ok || len(names) == 0 {
		return nil, nil
	}
	all, err := cl.Connections(ctx)
	if err != nil {
		return nil, err
	}
	var out []shares.Connection
	for _, c := range all {
		if names[strings.ToLower(c.Share)] {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b shares.Connection) int {
		return cmp.Or(strings.Compare(strings.ToLower(a.Share), strings.ToLower(b.Share)), strings.Compare(a.Machine, b.Machine), a.Since.Compare(b.Since))
	})
	return out, nil
}

// DescribeConnections says who is connected where, for messages: "a@{…}
// from 192.0.2.1, 192.0.2.7; b@{…} from 192.0.2.1". Input sorted by share,
// ignoring case (as Connections returns it).
func DescribeConnections(conns []shares.Connection) string {
	var b strings.Builder
	for i, c := range conns {
		switch {
		case i == 0:
			b.WriteString(c.Share + " from " + c.Machine)
		case strings.EqualFold(c.Share, conns[i-1].Share):
			b.WriteString(", " + c.Machine)
		default:
			b.WriteString("; " + c.Share + " from " + c.Machine)
		}
	}
	return b.String()
}
