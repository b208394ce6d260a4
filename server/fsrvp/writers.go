package fsrvp

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/fsrvpd/fsrvpd/client/vss"
	"github.com/fsrvpd/fsrvpd/server/writers"
	"github.com/fsrvpd/fsrvpd/shares"
)

// Writers coordinates application writers around a set's snapshot
// (*writers.Coordinator). The service calls it only for contexts with
// writers: BACKUP and APP_ROLLBACK, not those with ATTR_NO_WRITERS
// (MS-FSRVP §2.2.2.2: FILE_SHARE_BACKUP and NAS_ROLLBACK).
//
//   - PrepareShadowCopySet runs Prepare (PrepareForFreeze) after flushing;
//   - the commit job runs Freeze, takes the snapshots, and calls the
//     ThawFunc whatever happened (failure, cancellation, timeout), so a
//     thaw always follows a freeze;
//   - ExposeShadowCopySet exposes the set's documents as the hidden
//     read-only share vss.ShareName(set id) (see package client/vss);
//   - deleting the set removes that share and calls Release:
//     BackupComplete when the set is released normally (its last
//     DeleteShareMapping; a finished set deleted at start-up or by an
//     administrator), Abort when the requestor aborts it
//     (AbortShadowCopySet, whatever its state: a failed backup) or when
//     it is deleted unfinished (the message sequence timer, start-up).
type Writers interface {
	Prepare(ctx context.Context, id uuid.UUID, fsrvpContext uint32, roots []string) error
	Freeze(ctx context.Context, id uuid.UUID, fsrvpContext uint32, roots []string) (writers.ThawFunc, error)
	Documents(id uuid.UUID) (dir string, ok bool)
	Release(id uuid.UUID, completed bool)
	Reconcile(keep []uuid.UUID)
}

// usesWriters reports whether sets of context c involve writers.
func (s *Service) usesWriters(c uint32) bool {
	return s.cfg.Writers != nil && c&AttrNoWriters == 0
}

func rootsOf(set *Set) []string {
	roots := make([]string, 0, len(set.Copies))
	for _, sc := range set.Copies {
		roots = append(roots, sc.VolumeRoot)
	}
	return roots
}

// freezeWriters freezes the set's writers before the commit job's
// snapshots; the returned function thaws them and must run exactly once.
// A nil error with a nil function: no writers.
func (s *Service) freezeWriters(ctx context.Context, set *Set) (writers.ThawFunc, error) {
	if !s.usesWriters(set.Context) {
		return nil, nil
	}
	return s.cfg.Writers.Freeze(ctx, set.ID, set.Context, rootsOf(set))
}

// exposeDocumentsLocked exposes the set's documents share, if the set has
// documents, with the permissions of its first mapped share. It returns
// the share's name ("" if none).
func (s *Service) exposeDocumentsLocked(ctx context.Context, set *Set) (string, error) {
	if !s.usesWriters(set.Context) {
		return "", nil
	}
	dir, ok := s.cfg.Writers.Documents(set.ID)
	if !ok || len(set.Copies) == 0 || len(set.Copies[0].Mappings) == 0 {
		return "", nil
	}
	name := vss.ShareName(set.ID)
	err := s.cfg.Exposer.Expose(ctx, shares.Share{
		// No Created: the documents are no Previous Version of the base share.
		Name: name, Base: set.Copies[0].Mappings[0].Base, Path: dir, ReadOnly: true,
		Comment: fmt.Sprintf("Writer documents of shadow copy set %s taken %s", set.ID, set.Created.UTC().Format(time.RFC1123)),
	})
	if err != nil {
		return "", err
	}
	return name, nil
}

// releaseWritersLocked withdraws the documents share of a set being
// deleted and tells the writers: BackupComplete if completed, else Abort.
// Callers hold s.mu.
func (s *Service) releaseWritersLocked(ctx context.Context, set *Set, completed bool) error {
	if set.DocsShare != "" {
		if err := s.cfg.Exposer.Remove(ctx, set.DocsShare); err != nil && !isNotFound(err) {
			return err
		}
	}
	if s.usesWriters(set.Context) {
		s.cfg.Writers.Release(set.ID, completed)
	}
	return nil
}

// Authorized reports whether the caller of ctx may use FSRVP (§3.1.4's
// rule as the AccessPolicy applies it). fsrvpd's private writer-control
// interface (client/writerctl) authorizes its callers with it.
func (h Handler) Authorized(ctx context.Context) bool {
	return h.S.cfg.Access.allows(h.callerOf(ctx))
}
