package fsrvp

// inventory.go: what other services (SCMP, MS-SCMP §3.1.1) learn about the
// shadow copies FSRVP made, and the one change they may make: release a
// shadow copy of a finished set to reclaim its space.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"
)

// ShadowCopyInfo describes one committed shadow copy.
type ShadowCopyInfo struct {
	ID    uuid.UUID
	SetID uuid.UUID
	// SetSize is the number of shadow copies of the set.
	SetSize int
	// Context is the set's FSRVP context (attribute bits).
	Context uint32
	// VolumeID and VolumeRoot identify the backend volume; SnapshotID is
	// the backend's snapshot id.
	VolumeID, VolumeRoot, SnapshotID string
	SnapshotPath                     string
	Created                          time.Time
	// Pinned is true while the set's creation sequence is not finished
	// (Committed or Exposed, before RecoveryComplete): a client is still
	// working with it, and it must not be released.
	Pinned bool
}

// ShadowCopies lists the committed shadow copies of every set.
func (s *Service) ShadowCopies() []ShadowCopyInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ShadowCopyInfo
	for _, set := range s.sets {
		if set.Status < Committed {
			continue
		}
		for _, sc := range set.Copies {
			out = append(out, ShadowCopyInfo{
				ID: sc.ID, SetID: set.ID, SetSize: len(set.Copies), Context: set.Context,
				VolumeID: sc.VolumeID, VolumeRoot: sc.VolumeRoot, SnapshotID: sc.snapshotID(),
				SnapshotPath: sc.SnapshotPath, Created: sc.Created, Pinned: !s.finished(set),
			})
		}
	}
	return out
}

// ErrPinned is returned by ReleaseShadowCopy for a shadow copy whose set's
// creation sequence is still running.
var ErrPinned = errors.New("shadow copy set in use")

// ReleaseShadowCopy deletes one shadow copy of a finished set as the
// DeleteShareMapping of its last share would (§3.1.4.12): its exposed
// shares are removed, then its snapshot, and the set goes with its last
// shadow copy. why is logged. Errors: ErrPinned, or an error wrapping
// ErrNotFound-like conditions from the backend.
func (s *Service) ReleaseShadowCopy(ctx context.Context, id uuid.UUID, why string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for setID, set := range s.sets {
		if set.copyByID(id) == nil || set.Status < Committed {
			continue
		}
		if !s.finished(set) {
			return fmt.Errorf("shadow copy %s: %w", id, ErrPinned)
		}
		next := set.clone()
		sc := next.copyByID(id)
		log := s.log.WithFields(logrus.Fields{"set_id": setID, "shadow_copy_id": id, "reason": why})
		for _, m := range sc.Mappings {
			if m.isExposed() {
				if err := s.cfg.Exposer.Remove(ctx, m.Exposed); err != nil && !isNotFound(err) {
					return fmt.Errorf("remove share %s: %w", m.Exposed, err)
				}
			}
		}
		if err := s.cfg.Backend.Delete(ctx, sc.snapshotID()); err != nil && !isNotFound(err) {
			return fmt.Errorf("delete snapshot %s: %w", sc.snapshotID(), err)
		}
		for k, x := range next.Copies {
			if x == sc {
				next.Copies = append(next.Copies[:k], next.Copies[k+1:]...)
				break
			}
		}
		put, del := []*Set{next}, []uuid.UUID(nil)
		if len(next.Copies) == 0 {
			put, del = nil, []uuid.UUID{setID}
			delete(s.sets, setID)
		} else {
			s.sets[setID] = next
		}
		if err := s.persist(s.g, put, del); err != nil {
			return err
		}
		log.Info("shadow copy released")
		return nil
	}
	return fmt.Errorf("shadow copy %s: not found", id)
}
