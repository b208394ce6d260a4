package scmp

// prune.go: which shadow copies to delete so that a volume stays within its
// storage association (MS-SCMP §3.1.4.4.1/2: "the server MAY automatically
// delete shadow copies ... that reclaims space for newer shadow copies";
// Windows deletes the oldest first, and beyond MaxShadowCopies).

import (
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"
)

// Candidate is one shadow copy of a volume as the pruner sees it.
type Candidate struct {
	ID      uuid.UUID
	Created time.Time
	// Bytes is the space deleting it frees, or -1 when the backend only
	// knows the volume's total (the caller then measures again).
	Bytes int64
	// Pinned shadow copies belong to an FSRVP set still in use; they are
	// never deleted.
	Pinned bool
}

// Deletion is one decided deletion and why.
type Deletion struct {
	ID     uuid.UUID
	Reason string
}

// Decision is the outcome of Decide.
type Decision struct {
	Delete []Deletion
	// Remeasure: a deletion of unknown size was decided and the limits may
	// still be exceeded; measure the usage again and decide again.
	Remeasure bool
	// Over: the limits are still exceeded after the deletions, because
	// the remaining shadow copies are pinned.
	Over bool
}

// Decide picks the oldest unpinned shadow copies to delete until at most
// maxCount remain and used ≤ maxBytes (maxBytes < 0: no size limit). It is
// a pure function: the caller deletes, logs and, if Remeasure, calls again
// with the new figures.
func Decide(copies []Candidate, used, maxBytes int64, maxCount int) Decision {
	cs := append([]Candidate(nil), copies...)
	sort.SliceStable(cs, func(i, j int) bool {
		if !cs[i].Created.Equal(cs[j].Created) {
			return cs[i].Created.Before(cs[j].Created)
		}
		return cs[i].ID.String() < cs[j].ID.String()
	})
	count := len(cs)
	over := func() (bool, string) {
		if count > maxCount {
			return true, fmt.Sprintf("%d shadow copies, at most %d", count, maxCount)
		}
		if maxBytes >= 0 && used > maxBytes {
			return true, fmt.Sprintf("%d bytes used, at most %d", used, maxBytes)
		}
		return false, ""
	}
	var d Decision
	for _, c := range cs {
		o, why := over()
		if !o {
			return d
		}
		if c.Pinned {
			continue
		}
		d.Delete = append(d.Delete, Deletion{ID: c.ID, Reason: why})
		count--
		if c.Bytes < 0 {
			if o, _ := over(); o && count <= maxCount {
				// Only the size is exceeded, by an amount this deletion
				// changes in a way we cannot know.
				d.Remeasure = true
				return d
			}
			continue
		}
		used -= c.Bytes
	}
	d.Over, _ = over()
	return d
}
