package fsrvp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sys/unix"

	"github.com/fsrvpd/fsrvpd/server/state"
	"github.com/fsrvpd/fsrvpd/shares"
)

// SyncFS is the default Preparer: it flushes each volume's file system with
// syncfs(2), so data written before Prepare is in the snapshot.
func SyncFS(ctx context.Context, roots []string) error {
	var errs []error
	for _, root := range roots {
		if err := ctx.Err(); err != nil {
			return err
		}
		f, err := os.Open(root)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := unix.Syncfs(int(f.Fd())); err != nil {
			errs = append(errs, fmt.Errorf("syncfs %s: %w", root, err))
		}
		f.Close()
	}
	return errors.Join(errs...)
}

// ReconcileReport says what Reconcile repaired.
type ReconcileReport struct {
	Kept, Released, RolledBack, Dropped int
	OrphanSnapshots, OrphanShares       int
	Reexposed                           int
}

// Reconcile brings the stored state, the backend's snapshots and the
// exposer's shares into agreement at start-up (MS-FSRVP §3.1.3 reloads the
// table; what the table may claim is checked against reality here):
//
//   - Sets of non-persistent contexts (no ATTR_PERSISTENT) are released
//     with their snapshots and shares: they do not outlive the service.
//   - A persistent set interrupted in CreationInProgress is rolled back to
//     Added, its partial snapshots deleted.
//   - A shadow copy whose snapshot has vanished is dropped (and its set
//     when it was the last); a missing exposed share is exposed again.
//   - Snapshots and shares no record claims are orphans and are deleted.
//   - The context and the message sequence timer are restored, so a set
//     reloaded in creation is deleted when the timer expires and can never
//     block new sets for good.
//
// Everything repaired is logged. Reconcile must run before the service
// takes calls.
func (s *Service) Reconcile(ctx context.Context) (ReconcileReport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var rep ReconcileReport

	snaps, err := s.cfg.Backend.List(ctx)
	if err != nil {
		return rep, fmt.Errorf("list snapshots: %w", err)
	}
	haveSnap := make(map[string]bool, len(snaps))
	for _, sn := range snaps {
		haveSnap[sn.ID] = true
	}
	exposed, err := s.cfg.Exposer.List(ctx)
	if err != nil {
		return rep, fmt.Errorf("list shares: %w", err)
	}
	haveShare := make(map[string]bool, len(exposed))
	for _, sh := range exposed {
		haveShare[sh.Name] = true
	}

	wantSnap := map[string]bool{}
	wantShare := map[string]bool{}
	var del []uuid.UUID
	released := false
	for id, set := range s.sets {
		log := s.log.WithField("set_id", id).WithField("status", set.Status)
		if !persistentContext(set.Context) {
			if err := s.destroyLocked(set); err != nil {
				return rep, fmt.Errorf("release set %s: %w", id, err)
			}
			delete(s.sets, id)
			del = append(del, id)
			released = true
			rep.Released++
			log.Info("released non-persistent shadow copy set at start-up")
			continue
		}
		switch set.Status {
		case Started, Added:
			// No snapshot exists yet; any found is an orphan.
		case CreationInProgress:
			for _, sc := range set.Copies {
				if err := s.cfg.Backend.Delete(ctx, sc.snapshotID()); err != nil && !isNotFound(err) {
					return rep, fmt.Errorf("roll back set %s: %w", id, err)
				}
				sc.SnapshotPath = ""
			}
			set.Status = Added
			rep.RolledBack++
			log.Warn("commit was interrupted: rolled back to Added")
		default:
			kept := set.Copies[:0]
			for _, sc := range set.Copies {
				if !haveSnap[sc.snapshotID()] {
					for _, m := range sc.Mappings {
						if m.isExposed() && haveShare[m.Exposed] {
							s.cfg.Exposer.Remove(ctx, m.Exposed)
						}
					}
					log.WithField("shadow_copy_id", sc.ID).Error("snapshot vanished: shadow copy dropped")
					continue
				}
				wantSnap[sc.snapshotID()] = true
				for _, m := range sc.Mappings {
					if !m.isExposed() {
						continue
					}
					wantShare[strings.ToLower(m.Exposed)] = true
					if haveShare[m.Exposed] {
						continue
					}
					path, err := exposedPath(sc, m)
					if err == nil {
						err = s.cfg.Exposer.Expose(ctx, shares.Share{
							Name: m.Exposed, Base: m.Base, Path: path, Created: sc.Created,
							ReadOnly: set.Status == Recovered || !writableContext(set.Context),
							Comment:  "Shadow copy of " + m.Base + " taken " + sc.Created.UTC().Format(time.RFC1123),
						})
					}
					if err != nil {
						return rep, fmt.Errorf("re-expose %s: %w", m.Exposed, err)
					}
					rep.Reexposed++
					log.WithField("share", m.Exposed).Warn("exposed share was missing: exposed again")
				}
				kept = append(kept, sc)
			}
			set.Copies = kept
			if len(set.Copies) == 0 {
				delete(s.sets, id)
				del = append(del, id)
				rep.Dropped++
				continue
			}
			if set.DocsShare != "" {
				wantShare[strings.ToLower(set.DocsShare)] = true
			}
		}
		rep.Kept++
	}

	orphans := findOrphans(snaps, exposed, wantSnap, wantShare)
	if err := s.deleteOrphansLocked(ctx, orphans); err != nil {
		return rep, err
	}
	rep.OrphanSnapshots, rep.OrphanShares = len(orphans.Snapshots), len(orphans.Shares)

	if s.cfg.Writers != nil {
		keep := make([]uuid.UUID, 0, len(s.sets))
		for id := range s.sets {
			keep = append(keep, id)
		}
		s.cfg.Writers.Reconcile(keep)
	}
	if released || (s.g.ContextSet && !persistentContext(s.g.CurrentContext)) {
		s.g.ContextSet, s.g.ClientAddress = false, ""
	}
	deadline := s.g.TimerDeadline
	s.stopTimer()
	if s.g.ContextSet || s.activeSetLocked() {
		now := s.cfg.Now()
		if deadline.IsZero() {
			deadline = now.Add(s.cfg.ShortTimeout)
		}
		s.g.TimerDeadline = deadline
		s.armTimer(max(deadline.Sub(now), 0))
	}

	err = s.cfg.DB.Update(func(tx *state.Tx) error {
		if err := tx.Put(bucketGlobal, keyGlobal, s.g); err != nil {
			return err
		}
		for _, id := range del {
			if err := tx.Delete(bucketSets, id.String()); err != nil {
				return err
			}
		}
		for _, set := range s.sets {
			if err := tx.Put(bucketSets, set.ID.String(), set); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("store reconciled state: %w", err)
	}
	s.log.WithFields(map[string]any{
		"kept": rep.Kept, "released": rep.Released, "rolled_back": rep.RolledBack, "dropped": rep.Dropped,
		"orphan_snapshots": rep.OrphanSnapshots, "orphan_shares": rep.OrphanShares, "reexposed": rep.Reexposed,
	}).Info("state reconciled")
	return rep, nil
}
