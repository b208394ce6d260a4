package zfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/fsrvpd/fsrvpd/storage"
	"github.com/fsrvpd/fsrvpd/storage/internal/fsutil"
)

// plan is one snapshot of a CreateBatch on its way.
type plan struct {
	req     storage.Request
	dataset string
	snap    string
	kind    string // stateSnapdir or stateClone
	clone   string
	made    bool // the snapshot exists
	cloned  bool // the clone exists
	// members are the descendant datasets a recursive snapshot (zfs
	// snapshot -r) takes too; kids those mounted below the volume, which
	// get a clone each. Both are empty for a plain snapshot.
	members []string
	kids    []*kid
}

// kid is a descendant dataset mounted below a volume snapshotted
// recursively.
type kid struct {
	dataset string
	rel     string // its mount point relative to the volume root
	snap    string
	clone   string // <parent clone>/<index>
	mount   string // the clone's mountpoint
	cloned  bool
}

// Create implements storage.Backend: it is a CreateBatch of one.
func (b *Backend) Create(ctx context.Context, vol storage.Volume, id string, opts storage.CreateOptions) (storage.Snapshot, error) {
	s, err := b.CreateBatch(ctx, []storage.Request{{Volume: vol, ID: id, Options: opts}})
	if err != nil {
		return storage.Snapshot{}, err
	}
	return s[0], nil
}

// CreateBatch implements storage.BatchCreator. The snapshots of one pool are
// taken by a single `zfs snapshot -o org.fsrvpd:state=creating a@x b@y …`,
// at one transaction group; where zfs takes one snapshot per command
// (zfs-fuse) they are taken one after the other, and a warning says so
// once. Then each snapshot gets the hold, and the clone that exposes it
// when it is writable or the dataset has no reachable .zfs/snapshot
// directory; last, org.fsrvpd:state records how it is exposed, which marks
// it finished. If any step fails, everything made is destroyed.
func (b *Backend) CreateBatch(ctx context.Context, reqs []storage.Request) ([]storage.Snapshot, error) {
	ids := make([]string, len(reqs))
	for i, r := range reqs {
		if err := storage.CheckID(r.ID); err != nil {
			return nil, err
		}
		if slices.Contains(ids[:i], r.ID) {
			return nil, fmt.Errorf("snapshot %s twice in a batch: %w", r.ID, storage.ErrAlreadyExists)
		}
		ids[i] = r.ID
	}
	if len(reqs) == 0 {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	unlock := b.locks.Lock(ids...)
	defer unlock()

	plans, err := b.prepare(ctx, reqs)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	snaps, err := b.make(ctx, plans)
	if err != nil {
		b.rollback(ctx, plans)
		return nil, err
	}
	for _, s := range snaps {
		b.log.WithFields(logrus.Fields{"snapshot": s.ID, "volume": s.VolumeRoot, "path": s.Path, "read_only": s.ReadOnly}).Info("Snapshot created")
	}
	b.log.WithFields(logrus.Fields{"count": len(snaps), "duration_s": time.Since(start).Seconds()}).Debug("Batch created")
	return snaps, nil
}

// prepare resolves the volumes of reqs, checks that their ids are free,
// removes the leftovers of interrupted Creates of those ids, and plans the
// names.
func (b *Backend) prepare(ctx context.Context, reqs []storage.Request) ([]*plan, error) {
	mounts, err := fsutil.ReadMountinfo(b.mountinfo)
	if err != nil {
		return nil, err
	}
	st, err := b.scan(ctx)
	if err != nil {
		return nil, err
	}
	plans := make([]*plan, len(reqs))
	for i, r := range reqs {
		ds := ""
		for _, m := range mounts {
			if m.Point == r.Volume.Root && isZFS(m) {
				ds = m.Source
			}
		}
		p, ok := st.props[ds]
		if ds == "" || !ok || !b.inScope(ds) || (p["guid"] != r.Volume.ID && ds != r.Volume.ID) {
			return nil, fmt.Errorf("volume %s at %s: %w", r.Volume.ID, r.Volume.Root, storage.ErrNotFound)
		}
		if st.finished(r.ID) != nil {
			return nil, fmt.Errorf("snapshot %s: %w", r.ID, storage.ErrAlreadyExists)
		}
		for _, e := range st.byID[r.ID] {
			b.log.WithFields(logrus.Fields{"snapshot": r.ID, "dataset": e.dataset}).Warn("Removing the leftovers of an interrupted Create")
			if err := b.destroy(ctx, e); err != nil {
				return nil, fmt.Errorf("snapshot %s: leftovers: %w", r.ID, err)
			}
		}
		pl := &plan{req: r, dataset: ds, snap: ds + "@" + snapPrefix + r.ID, kind: stateSnapdir}
		if b.recursive {
			b.planChildren(pl, mounts, st)
		}
		// .zfs/snapshot shows one dataset: a recursive snapshot is cloned.
		if r.Options.Writable || len(pl.kids) > 0 || !hasSnapdir(r.Volume.Root) {
			pl.kind = stateClone
			pl.clone = b.cloneParentOf(pool(ds)) + "/" + snapPrefix + r.ID
			for i, k := range pl.kids {
				k.clone = pl.clone + "/" + strconv.Itoa(i)
			}
		}
		plans[i] = pl
	}
	return plans, nil
}

// planChildren fills in the members and kids of pl, a plan of
// Config.Recursive: if descendant datasets of pl.dataset are mounted below
// the volume, the snapshot is recursive. Descendants created after the scan
// are snapshotted by zfs snapshot -r without a hold.
func (b *Backend) planChildren(pl *plan, mounts []fsutil.Mount, st *state) {
	var m fsutil.Mount
	for _, o := range mounts {
		if o.Point == pl.req.Volume.Root && isZFS(o) && o.Source == pl.dataset {
			m = o
		}
	}
	for _, o := range b.childMounts(mounts, m) {
		rel, _ := filepath.Rel(m.Point, o.Point)
		pl.kids = append(pl.kids, &kid{dataset: o.Source, rel: rel, snap: o.Source + "@" + snapPrefix + pl.req.ID})
	}
	if len(pl.kids) == 0 {
		return
	}
	for name, p := range st.props {
		if !strings.Contains(name, "@") && name != pl.dataset && datasetWithin(pl.dataset, name) &&
			(p["type"] == "filesystem" || p["type"] == "volume") {
			pl.members = append(pl.members, name)
		}
	}
	slices.Sort(pl.members)
}

// hasSnapdir reports whether the snapshots of the dataset mounted at root
// are reachable below root/.zfs/snapshot (OpenZFS; zfs-fuse has no .zfs).
func hasSnapdir(root string) bool {
	fi, err := os.Stat(filepath.Join(root, ".zfs", "snapshot"))
	return err == nil && fi.IsDir()
}

// make takes the planned snapshots and returns them finished.
func (b *Backend) make(ctx context.Context, plans []*plan) ([]storage.Snapshot, error) {
	byPool := groupBy(plans, func(p *plan) string { return pool(p.dataset) })
	for _, g := range byPool {
		syncfs(b.log, g)
		// The recursive snapshots of a pool with one command, the others
		// with another: zfs snapshot -r applies to every name.
		for _, sub := range groupBy(g, func(p *plan) string { return strconv.FormatBool(len(p.kids) > 0) }) {
			if err := b.snapshot(ctx, sub, len(sub[0].kids) > 0); err != nil {
				return nil, err
			}
		}
	}
	for _, g := range byPool {
		if err := b.hold(ctx, g); err != nil {
			return nil, err
		}
	}
	for _, p := range plans {
		if p.kind == stateClone {
			if err := b.makeClone(ctx, p); err != nil {
				return nil, err
			}
		}
	}
	for _, g := range groupBy(plans, func(p *plan) string { return pool(p.dataset) + "\x00" + p.kind }) {
		args := []string{"set", propState + "=" + g[0].kind}
		for _, p := range g {
			args = append(args, p.snap)
		}
		if _, err := b.zfsCmd(ctx, args...); err != nil {
			return nil, err
		}
	}
	var names []string
	for _, p := range plans {
		names = append(names, p.snap)
		if p.clone != "" {
			names = append(names, p.clone)
		}
	}
	got, err := b.get(ctx, []string{"creation", "mountpoint"}, names...)
	if err != nil {
		return nil, err
	}
	snaps := make([]storage.Snapshot, len(plans))
	for i, p := range plans {
		s := storage.Snapshot{
			ID: p.req.ID, VolumeID: p.req.Volume.ID, VolumeRoot: p.req.Volume.Root,
			Path: snapdirPath(p.req.Volume.Root, p.req.ID), ReadOnly: !p.req.Options.Writable,
			Created: parseCreation(got[p.snap]["creation"]),
		}
		if p.clone != "" {
			s.Path = got[p.clone]["mountpoint"]
		}
		if s.Created.IsZero() || !filepath.IsAbs(s.Path) {
			return nil, fmt.Errorf("snapshot %s: zfs reports creation %q, path %q", p.snap, got[p.snap]["creation"], s.Path)
		}
		snaps[i] = s
	}
	return snaps, nil
}

// groupBy splits plans by key, keeping the order of first appearance.
func groupBy(plans []*plan, key func(*plan) string) [][]*plan {
	var groups [][]*plan
	index := map[string]int{}
	for _, p := range plans {
		k := key(p)
		i, ok := index[k]
		if !ok {
			i = len(groups)
			index[k] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], p)
	}
	return groups
}

// syncfs flushes the filesystems of the volumes of g, so that what was
// written through the page cache is in the snapshots.
func syncfs(log *logrus.Entry, g []*plan) {
	for _, p := range g {
		fd, err := unix.Open(p.req.Volume.Root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == nil {
			err = unix.Syncfs(fd)
			unix.Close(fd)
		}
		if err != nil {
			log.WithError(err).WithField("volume", p.req.Volume.Root).Warn("syncfs before the snapshot failed")
		}
	}
}

// snapshot takes the snapshots of g, datasets of one pool, with one command
// if this zfs can.
func (b *Backend) snapshot(ctx context.Context, g []*plan, recursive bool) error {
	args := []string{"snapshot", "-o", propState + "=" + stateCreating}
	if recursive {
		args = []string{"snapshot", "-r", "-o", propState + "=" + stateCreating}
	}
	if len(g) > 1 && b.capability(&b.multiSnap) != capNo {
		all := slices.Clone(args)
		for _, p := range g {
			all = append(all, p.snap)
		}
		_, err := b.zfsCmd(ctx, all...)
		if err == nil {
			b.setCapability(&b.multiSnap, capYes, "")
			for _, p := range g {
				p.made = true
			}
			return nil
		}
		if !errors.Is(err, ErrUsage) {
			return err
		}
		b.setCapability(&b.multiSnap, capNo,
			"zfs snapshot takes one snapshot per command: the snapshots of a batch on one pool are taken one after the other, not at one instant")
	}
	for _, p := range g {
		if _, err := b.zfsCmd(ctx, append(slices.Clone(args), p.snap)...); err != nil {
			return err
		}
		p.made = true
	}
	return nil
}

// hold puts the hold tag on the snapshots of g, with one command.
func (b *Backend) hold(ctx context.Context, g []*plan) error {
	if b.capability(&b.holds) == capNo {
		return nil
	}
	args := []string{"hold", b.holdTag}
	for _, p := range g {
		args = append(args, p.snap)
		for _, m := range p.members {
			args = append(args, m+"@"+snapPrefix+p.req.ID)
		}
	}
	_, err := b.zfsCmd(ctx, args...)
	switch {
	case err == nil:
		b.setCapability(&b.holds, capYes, "")
		return nil
	case errors.Is(err, ErrUsage):
		b.setCapability(&b.holds, capNo, "zfs has no holds: tools that prune snapshots may destroy exposed ones")
		return nil
	}
	return err
}

// makeClone clones p's snapshot, creating the clone parent if needed.
func (b *Backend) makeClone(ctx context.Context, p *plan) error {
	parent := b.cloneParentOf(pool(p.dataset))
	b.mu.Lock()
	ok := b.cloneParents[parent]
	b.mu.Unlock()
	if !ok {
		_, err := b.zfsCmd(ctx, "create", parent)
		if err != nil && !errors.Is(err, storage.ErrAlreadyExists) {
			return err
		}
		b.mu.Lock()
		b.cloneParents[parent] = true
		b.mu.Unlock()
	}
	args := []string{"clone", "-o", propID + "=" + p.req.ID}
	if !p.req.Options.Writable {
		args = append(args, "-o", "readonly=on", "-o", propReadOnly+"=on")
	}
	if _, err := b.zfsCmd(ctx, append(slices.Clone(args), p.snap, p.clone)...); err != nil {
		return err
	}
	p.cloned = true
	if !p.req.Options.Writable {
		b.readOnlyMount(ctx, p.clone)
	}
	if len(p.kids) == 0 {
		return nil
	}
	// Each child mounted below the volume: a clone mounted at the same
	// relative path below the volume's clone, parents first, where the
	// copy of the parent holds the empty directory of its mount point.
	got, err := b.get(ctx, []string{"mountpoint"}, p.clone)
	if err != nil {
		return err
	}
	mp := got[p.clone]["mountpoint"]
	if !filepath.IsAbs(mp) {
		return fmt.Errorf("clone %s: mountpoint %q", p.clone, mp)
	}
	for _, k := range p.kids {
		k.mount = filepath.Join(mp, k.rel)
		kargs := append(slices.Clone(args), "-o", "mountpoint="+k.mount, k.snap, k.clone)
		if _, err := b.zfsCmd(ctx, kargs...); err != nil {
			return err
		}
		k.cloned = true
		if !p.req.Options.Writable {
			b.readOnlyMount(ctx, k.clone)
		}
	}
	return nil
}

// readOnlyMount makes the mount of the read-only clone ds read-only in the
// kernel if zfs left it read-write. zfs-fuse does: its readonly=on refuses
// writes but not open(O_WRONLY). A failure is logged: zfs still refuses
// the writes.
func (b *Backend) readOnlyMount(ctx context.Context, ds string) {
	mounts, err := fsutil.ReadMountinfo(b.mountinfo)
	if err != nil {
		b.log.WithError(err).Warn("Reading mountinfo")
		return
	}
	for _, m := range mounts {
		if m.Source != ds || !isZFS(m) || m.ReadOnly {
			continue
		}
		err := unix.Mount("", m.Point, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, "")
		log := b.log.WithFields(logrus.Fields{"dataset": ds, "path": m.Point})
		if err != nil {
			log.WithError(err).Warn("Cannot make the mount of a read-only clone read-only")
		} else {
			log.Debug("Mount of a read-only clone made read-only")
		}
	}
}

// rollback destroys what a failed CreateBatch made, logging failures.
func (b *Backend) rollback(ctx context.Context, plans []*plan) {
	ctx = context.WithoutCancel(ctx)
	for i := len(plans) - 1; i >= 0; i-- {
		p := plans[i]
		if !p.made {
			continue
		}
		e := &entry{id: p.req.ID, dataset: p.dataset, snap: p.snap, state: stateCreating}
		if p.cloned {
			e.clone = p.clone
		}
		kids := map[string]*kid{}
		for _, k := range p.kids {
			kids[k.dataset] = k
		}
		for _, m := range p.members {
			me := &entry{id: p.req.ID, dataset: m, snap: m + "@" + snapPrefix + p.req.ID}
			if k := kids[m]; k != nil && k.cloned {
				me.clone, me.cloneMount = k.clone, k.mount
			}
			e.members = append(e.members, me)
		}
		if err := b.destroy(ctx, e); err != nil {
			b.log.WithError(err).WithField("snapshot", p.snap).Error("Removing a snapshot of a failed Create")
		}
	}
}

func (b *Backend) capability(c *capability) capability {
	b.mu.Lock()
	defer b.mu.Unlock()
	return *c
}

// setCapability records what a command told of c, and logs warning the
// first time c turns out to be missing.
func (b *Backend) setCapability(c *capability, v capability, warning string) {
	b.mu.Lock()
	old := *c
	*c = v
	b.mu.Unlock()
	if v == capNo && old != capNo {
		b.log.Warn(warning)
	}
}

// destroy removes what e holds: the clone, the hold, then the snapshot.
// What is already gone is not an error. For a recursive snapshot, the
// snapshot is first marked creating again (a crash midway leaves a
// leftover, not a snapshot with missing children), then the clones of the
// members go, deepest mount first, then the clone of e; then the members'
// snapshots, then e's.
func (b *Backend) destroy(ctx context.Context, e *entry) error {
	if len(e.members) > 0 {
		if e.state != stateCreating {
			if _, err := b.zfsCmd(ctx, "set", propState+"="+stateCreating, e.snap); err != nil {
				return err
			}
		}
		ms := slices.Clone(e.members)
		slices.SortStableFunc(ms, func(x, y *entry) int { return strings.Compare(y.cloneMount, x.cloneMount) })
		for _, m := range ms {
			if m.clone != "" {
				if err := b.destroyDataset(ctx, m.clone); err != nil {
					return err
				}
			}
		}
	}
	if e.clone != "" {
		if err := b.destroyDataset(ctx, e.clone); err != nil {
			return err
		}
	}
	for _, m := range e.members {
		if err := b.destroySnapshot(ctx, m); err != nil {
			return err
		}
	}
	return b.destroySnapshot(ctx, e)
}

// destroySnapshot releases the hold of e's snapshot and destroys it.
func (b *Backend) destroySnapshot(ctx context.Context, e *entry) error {
	if b.capability(&b.holds) != capNo {
		_, err := b.zfsCmd(ctx, "release", b.holdTag, e.snap)
		switch {
		case errors.Is(err, ErrUsage):
			b.setCapability(&b.holds, capNo, "zfs has no holds: tools that prune snapshots may destroy exposed ones")
		case err != nil && !errors.Is(err, ErrNoSuchTag) && !errors.Is(err, storage.ErrNotFound):
			return err
		}
	}
	return b.destroyDataset(ctx, e.snap)
}

// busyTimeout bounds how long destroyDataset retries a busy dataset.
const busyTimeout = 5 * time.Second

// destroyDataset runs zfs destroy, retrying while zfs reports the dataset
// busy for up to busyTimeout: zfs-fuse unmounts a clone and then fails
// with "dataset is busy" until its FUSE session is torn down. A dataset
// that is gone is not an error.
func (b *Backend) destroyDataset(ctx context.Context, name string) error {
	deadline := time.Now().Add(busyTimeout)
	for delay := 20 * time.Millisecond; ; delay = min(2*delay, 500*time.Millisecond) {
		_, err := b.zfsCmd(ctx, "destroy", name)
		if err == nil || errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		if !errors.Is(err, ErrBusy) || time.Now().Add(delay).After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
	}
}

// SetReadOnly implements storage.Backend: `zfs set readonly=on` on the
// clone, recorded in org.fsrvpd:readonly.
func (b *Backend) SetReadOnly(ctx context.Context, id string) error {
	if err := storage.CheckID(id); err != nil {
		return err
	}
	unlock := b.locks.Lock(id)
	defer unlock()
	st, err := b.scan(ctx)
	if err != nil {
		return err
	}
	e := st.finished(id)
	if e == nil {
		return fmt.Errorf("snapshot %s: %w", id, storage.ErrNotFound)
	}
	if e.s.ReadOnly {
		return nil
	}
	// The clones of the members first: the clone of e says that the whole
	// tree is read-only.
	var clones []string
	for _, m := range e.members {
		if m.clone != "" {
			clones = append(clones, m.clone)
		}
	}
	for _, c := range append(clones, e.clone) {
		for _, prop := range []string{"readonly=on", propReadOnly + "=on"} {
			if _, err := b.zfsCmd(ctx, "set", prop, c); err != nil {
				return fmt.Errorf("snapshot %s: %w", id, err)
			}
		}
		b.readOnlyMount(ctx, c)
	}
	b.log.WithFields(logrus.Fields{"snapshot": id, "clone": e.clone}).Info("Snapshot made read-only")
	return nil
}

// Delete implements storage.Backend: it destroys the clone, releases the
// hold and destroys the snapshot, leftovers of an interrupted Create
// included.
func (b *Backend) Delete(ctx context.Context, id string) error {
	if err := storage.CheckID(id); err != nil {
		return err
	}
	unlock := b.locks.Lock(id)
	defer unlock()
	st, err := b.scan(ctx)
	if err != nil {
		return err
	}
	es := st.byID[id]
	if len(es) == 0 {
		return fmt.Errorf("snapshot %s: %w", id, storage.ErrNotFound)
	}
	for _, e := range es {
		if err := b.destroy(ctx, e); err != nil {
			return fmt.Errorf("snapshot %s: %w", id, err)
		}
	}
	b.log.WithField("snapshot", id).Info("Snapshot deleted")
	return nil
}

// Stat implements storage.Backend.
func (b *Backend) Stat(ctx context.Context, id string) (storage.Snapshot, error) {
	if err := storage.CheckID(id); err != nil {
		return storage.Snapshot{}, err
	}
	st, err := b.scan(ctx)
	if err != nil {
		return storage.Snapshot{}, err
	}
	if e := st.finished(id); e != nil {
		return e.s, nil
	}
	return storage.Snapshot{}, fmt.Errorf("snapshot %s: %w", id, storage.ErrNotFound)
}

// List implements storage.Backend. It destroys the leftovers of
// interrupted Creates, except those of ids a Create of this Backend is
// working on.
func (b *Backend) List(ctx context.Context) ([]storage.Snapshot, error) {
	st, err := b.scan(ctx)
	if err != nil {
		return nil, err
	}
	var list []storage.Snapshot
	for id, es := range st.byID {
		if es[0].finished {
			list = append(list, es[0].s)
			es = es[1:]
		}
		if len(es) == 0 {
			continue
		}
		unlock, ok := b.locks.TryLock(id)
		if !ok {
			continue
		}
		for _, e := range es {
			log := b.log.WithFields(logrus.Fields{"snapshot": id, "dataset": e.dataset})
			log.Warn("Removing the leftovers of an interrupted Create")
			if err := b.destroy(ctx, e); err != nil {
				log.WithError(err).Error("Removing leftovers")
			}
		}
		unlock()
	}
	return list, nil
}

// Usage implements storage.UsageReporter with the usedbysnapshots property
// of the volume's dataset (all its snapshots, not only fsrvpd's). Known is
// false if zfs does not report it.
func (b *Backend) Usage(ctx context.Context, vol storage.Volume) (storage.VolumeUsage, error) {
	u := storage.VolumeUsage{VolumeID: vol.ID}
	mounts, err := fsutil.ReadMountinfo(b.mountinfo)
	if err != nil {
		return u, err
	}
	m, ok := fsutil.MountOf(mounts, vol.Root)
	if !ok || m.Point != vol.Root || !isZFS(m) || !b.inScope(m.Source) {
		return u, fmt.Errorf("volume %s at %s: %w", vol.ID, vol.Root, storage.ErrNotFound)
	}
	p, err := b.get(ctx, []string{"guid", "usedbysnapshots"}, m.Source)
	if errors.Is(err, ErrUsage) {
		return u, nil
	}
	if err != nil {
		return u, err
	}
	if g := p[m.Source]["guid"]; g != vol.ID && m.Source != vol.ID {
		return u, fmt.Errorf("volume %s at %s: %w", vol.ID, vol.Root, storage.ErrNotFound)
	}
	if n, err := strconv.ParseInt(p[m.Source]["usedbysnapshots"], 10, 64); err == nil {
		u.SnapshotBytes, u.Known = n, true
	}
	return u, nil
}
