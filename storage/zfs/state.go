package zfs

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fsrvpd/fsrvpd/storage"
)

// scanProps are the properties scan reads.
var scanProps = []string{"type", "guid", "mountpoint", "origin", "creation", "readonly", propState, propID, propReadOnly}

// entry is what ZFS holds of one snapshot id on one dataset: the snapshot
// <dataset>@fsrvp-<id> marked with propState, and its clone if any.
type entry struct {
	id       string
	dataset  string
	snap     string // <dataset>@fsrvp-<id>
	clone    string // "" if there is none
	state    string // propState of the snapshot
	finished bool
	s        storage.Snapshot // valid if finished
	// cloneMount is the mountpoint of clone.
	cloneMount string
	// members are the snapshots of the descendant datasets taken with
	// this one by `zfs snapshot -r` (Config.Recursive), with their clones.
	members []*entry
}

// state is the result of a scan: the snapshots of the backend, by id
// (finished ones first), and the properties read.
type state struct {
	byID  map[string][]*entry
	props props
}

// scan reads the properties of every dataset and snapshot in scope, and of
// the clone parents, with one zfs get per root.
func (b *Backend) scan(ctx context.Context) (*state, error) {
	all := props{}
	if len(b.datasets) == 0 {
		p, err := b.getArgs(ctx, true, scanProps, nil)
		if err != nil {
			return nil, err
		}
		all = p
	} else {
		p, err := b.getArgs(ctx, true, scanProps, b.datasets)
		if err != nil {
			return nil, err
		}
		all = p
		seen := map[string]bool{}
		for _, d := range b.datasets {
			cp := b.cloneParentOf(pool(d))
			if seen[cp] || b.covered(cp) {
				continue
			}
			seen[cp] = true
			p, err := b.getArgs(ctx, true, scanProps, []string{cp})
			if errors.Is(err, storage.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			for k, v := range p {
				all[k] = v
			}
		}
	}
	return b.parseState(all), nil
}

// covered reports whether a scan of the configured datasets includes ds.
func (b *Backend) covered(ds string) bool {
	for _, d := range b.datasets {
		if datasetWithin(d, ds) {
			return true
		}
	}
	return false
}

func (b *Backend) parseState(all props) *state {
	st := &state{byID: map[string][]*entry{}, props: all}
	clones := map[string]string{} // origin snapshot -> clone
	for name, p := range all {
		if p[propID] != "" && p["origin"] != "" && p["type"] == "filesystem" {
			clones[p["origin"]] = name
		}
	}
	entries := map[string]*entry{} // by snapshot name
	for name, p := range all {
		ds, snapName, ok := strings.Cut(name, "@")
		id, ours := strings.CutPrefix(snapName, snapPrefix)
		if !ok || !ours || !storage.ValidID.MatchString(id) || p[propState] == "" || !b.inScope(ds) {
			continue
		}
		e := &entry{id: id, dataset: ds, snap: name, state: p[propState]}
		if c := clones[name]; c != "" && all[c][propID] == id {
			e.clone = c
			e.cloneMount = all[c]["mountpoint"]
		}
		entries[name] = e
	}
	// The snapshot of a descendant dataset under the same id is a member
	// of the snapshot of its topmost ancestor (zfs snapshot -r): the ids
	// are unique, so it cannot be a snapshot of its own.
	tops := map[string]*entry{}
	for name, e := range entries {
		for d := parentDataset(e.dataset); d != ""; d = parentDataset(d) {
			if a := entries[d+"@"+snapPrefix+e.id]; a != nil {
				tops[name] = a
			}
		}
	}
	for name, top := range tops {
		top.members = append(top.members, entries[name])
		delete(entries, name)
	}
	for _, e := range entries {
		id, ds, p := e.id, e.dataset, all[e.snap]
		dp := all[ds]
		e.s = storage.Snapshot{
			ID:         id,
			VolumeID:   dp["guid"],
			VolumeRoot: dp["mountpoint"],
			Created:    parseCreation(p["creation"]),
		}
		if e.s.VolumeID == "" {
			e.s.VolumeID = ds
		}
		switch {
		case e.state == stateSnapdir:
			e.finished = true
			e.s.Path = snapdirPath(e.s.VolumeRoot, id)
			e.s.ReadOnly = true
		case e.state == stateClone && e.clone != "":
			cp := all[e.clone]
			e.finished = true
			e.s.Path = cp["mountpoint"]
			e.s.ReadOnly = cp["readonly"] == "on" || cp[propReadOnly] == "on"
		}
		if e.finished {
			st.byID[id] = append([]*entry{e}, st.byID[id]...)
		} else {
			st.byID[id] = append(st.byID[id], e)
		}
	}
	return st
}

// parentDataset returns the parent of dataset ds, or "" for a pool.
func parentDataset(ds string) string {
	i := strings.LastIndexByte(ds, '/')
	if i < 0 {
		return ""
	}
	return ds[:i]
}

// finished returns the finished snapshot of id, or nil.
func (st *state) finished(id string) *entry {
	if es := st.byID[id]; len(es) > 0 && es[0].finished {
		return es[0]
	}
	return nil
}

func snapdirPath(root, id string) string {
	return filepath.Join(root, ".zfs", "snapshot", snapPrefix+id)
}

// parseCreation parses the creation property as zfs get -p prints it
// (seconds since the epoch).
func parseCreation(v string) time.Time {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(n, 0)
}
