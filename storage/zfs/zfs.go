package zfs

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/storage"
	"github.com/fsrvpd/fsrvpd/storage/internal/fsutil"
)

// Name is the backend's name, as Backend.Name returns it.
const Name = "zfs"

// Reserved names and user properties.
const (
	snapPrefix = "fsrvp-" // <dataset>@fsrvp-<id>, <pool>/<CloneParent>/fsrvp-<id>
	// propState marks a snapshot as ours and says how far its Create got:
	// stateCreating until it is finished, then how it is exposed.
	propState = "org.fsrvpd:state"
	// propID marks a clone as ours and names its snapshot id.
	propID = "org.fsrvpd:id"
	// propReadOnly records that a clone was made read-only (zfs-fuse
	// misreports the readonly property of mounted datasets).
	propReadOnly = "org.fsrvpd:readonly"

	stateCreating = "creating"
	stateSnapdir  = "snapdir" // exposed at <mountpoint>/.zfs/snapshot/fsrvp-<id>
	stateClone    = "clone"   // exposed through a clone

	// DefaultHoldTag is the zfs hold tag of Config.HoldTag.
	DefaultHoldTag = "fsrvpd"
	// DefaultCloneParent is the default of Config.CloneParent.
	DefaultCloneParent = "fsrvp"
)

// Config configures a Backend.
type Config struct {
	// Runner runs zfs and zpool; nil means ExecRunner with Logger.
	Runner Runner
	// Logger receives warnings and lifecycle messages; nil discards them.
	Logger *logrus.Entry
	// ZFSPath and ZpoolPath name the programs; empty means "zfs" and
	// "zpool" on PATH.
	ZFSPath, ZpoolPath string
	// Datasets limits the backend to these datasets and their descendants:
	// Volume refuses others and List reports only their snapshots. Empty
	// means every dataset of every imported pool.
	Datasets []string
	// CloneParent is where clones are made, as a dataset path relative to
	// the pool: <pool>/<CloneParent>/fsrvp-<id>, created when first needed
	// and mounted where it inherits. Datasets below it are never volumes.
	// Empty means DefaultCloneParent. A volume that contains its mount
	// point is unsupported (the clones are datasets mounted below it), so
	// set its mountpoint outside shared trees.
	CloneParent string
	// HoldTag is the tag of the hold that keeps other tools from destroying
	// an exposed snapshot; empty means DefaultHoldTag.
	HoldTag string
	// Recursive accepts volumes with child datasets mounted below their
	// root (other mounts stay unsupported). The snapshot of such a volume
	// is `zfs snapshot -r`, atomic for the whole tree, exposed through
	// clones: the volume's, and one per child mounted below it, mounted at
	// the same relative path inside the volume's clone. A volume without
	// such children is snapshotted as without Recursive.
	Recursive bool
}

// Backend is the ZFS storage backend. See the package documentation.
type Backend struct {
	run         Runner
	zfs, zpool  string
	log         *logrus.Entry
	datasets    []string
	cloneParent string
	holdTag     string
	locks       fsutil.IDLocks
	mountinfo   string // path of the mountinfo file; tests change it
	recursive   bool

	mu           sync.Mutex
	multiSnap    capability // zfs snapshot a@x b@y
	holds        capability // zfs hold / release
	cloneParents map[string]bool
}

// capability is a feature of the zfs program, found out on first use.
type capability int

const (
	capUnknown capability = iota
	capYes
	capNo
)

var (
	_ storage.Backend       = (*Backend)(nil)
	_ storage.BatchCreator  = (*Backend)(nil)
	_ storage.UsageReporter = (*Backend)(nil)
)

// New checks cfg and returns a Backend. It runs no command.
func New(cfg Config) (*Backend, error) {
	b := &Backend{
		run: cfg.Runner, zfs: cfg.ZFSPath, zpool: cfg.ZpoolPath, log: cfg.Logger,
		cloneParent: cfg.CloneParent, holdTag: cfg.HoldTag, cloneParents: map[string]bool{},
		mountinfo: fsutil.DefaultMountinfo, recursive: cfg.Recursive,
	}
	if b.log == nil {
		l := logrus.New()
		l.Out = io.Discard
		b.log = logrus.NewEntry(l)
	}
	b.log = b.log.WithField("backend", Name)
	if b.run == nil {
		b.run = ExecRunner{Logger: b.log.WithField("subsys", "zfs.cmd")}
	}
	if b.zfs == "" {
		b.zfs = "zfs"
	}
	if b.zpool == "" {
		b.zpool = "zpool"
	}
	if b.cloneParent == "" {
		b.cloneParent = DefaultCloneParent
	}
	if b.holdTag == "" {
		b.holdTag = DefaultHoldTag
	}
	if err := checkDatasetPath(b.cloneParent); err != nil {
		return nil, fmt.Errorf("zfs backend: clone parent: %w", err)
	}
	if strings.ContainsAny(b.holdTag, " \t\n") {
		return nil, fmt.Errorf("zfs backend: hold tag %q has white space", b.holdTag)
	}
	for _, d := range cfg.Datasets {
		if err := checkDatasetPath(d); err != nil {
			return nil, fmt.Errorf("zfs backend: dataset: %w", err)
		}
		b.datasets = append(b.datasets, d)
	}
	return b, nil
}

func checkDatasetPath(p string) error {
	if p == "" || strings.ContainsAny(p, "@# \t\n") || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") ||
		strings.Contains(p, "//") || strings.HasPrefix(p, "-") {
		return fmt.Errorf("%q is not a dataset path", p)
	}
	return nil
}

// Name implements storage.Backend.
func (b *Backend) Name() string { return Name }

func (b *Backend) zfsCmd(ctx context.Context, args ...string) ([]byte, error) {
	return b.run.Run(ctx, b.zfs, args...)
}

func pool(dataset string) string {
	p, _, _ := strings.Cut(dataset, "/")
	return p
}

// cloneParentOf returns the dataset under which the clones of the
// snapshots of pool p live.
func (b *Backend) cloneParentOf(p string) string { return p + "/" + b.cloneParent }

// inScope reports whether the dataset ds may be a volume.
func (b *Backend) inScope(ds string) bool {
	if datasetWithin(b.cloneParentOf(pool(ds)), ds) {
		return false
	}
	if len(b.datasets) == 0 {
		return true
	}
	for _, d := range b.datasets {
		if datasetWithin(d, ds) {
			return true
		}
	}
	return false
}

// datasetWithin reports whether ds is root or one of its descendants.
func datasetWithin(root, ds string) bool {
	return ds == root || strings.HasPrefix(ds, root+"/")
}

// Volume implements storage.Backend. The volume is the ZFS dataset mounted
// where path is (per /proc/self/mountinfo, confirmed by zfs get); its ID is
// the dataset's guid and its Root the mount point. A path with any mount
// below the dataset's root, child datasets included, is unsupported: a ZFS
// snapshot holds one dataset. With Config.Recursive, mounts of descendant
// datasets below the root are accepted (see childMounts).
func (b *Backend) Volume(ctx context.Context, path string) (storage.Volume, error) {
	real, err := storage.ResolvePath(ctx, path)
	if err != nil {
		return storage.Volume{}, err
	}
	mounts, err := fsutil.ReadMountinfo(b.mountinfo)
	if err != nil {
		return storage.Volume{}, err
	}
	m, ok := fsutil.MountOf(mounts, real)
	if !ok || !isZFS(m) {
		return storage.Volume{}, fmt.Errorf("path %s is not on ZFS (%s): %w", path, m.FSType, storage.ErrNotSupported)
	}
	for _, o := range mounts {
		if o.Point != m.Point && fsutil.Within(m.Point, o.Point) && !(b.recursive && b.isChildMount(m, o)) {
			return storage.Volume{}, fmt.Errorf("dataset %s has a mount point at %s: %w", m.Source, o.Point, storage.ErrNotSupported)
		}
	}
	if b.recursive && datasetWithin(m.Source, b.cloneParentOf(pool(m.Source))) {
		return storage.Volume{}, fmt.Errorf("dataset %s contains the clone parent %s: %w", m.Source, b.cloneParentOf(pool(m.Source)), storage.ErrNotSupported)
	}
	if !b.inScope(m.Source) {
		return storage.Volume{}, fmt.Errorf("dataset %s is not managed by fsrvpd: %w", m.Source, storage.ErrNotSupported)
	}
	props, err := b.get(ctx, []string{"type", "guid", propID}, m.Source)
	if err != nil {
		return storage.Volume{}, fmt.Errorf("path %s: %w", path, err)
	}
	p := props[m.Source]
	if p["type"] != "filesystem" || p[propID] != "" {
		return storage.Volume{}, fmt.Errorf("dataset %s is a %s or a clone of fsrvpd: %w", m.Source, p["type"], storage.ErrNotSupported)
	}
	id := p["guid"]
	if id == "" {
		id = m.Source
	}
	return storage.Volume{ID: id, Root: m.Point}, nil
}

// isZFS reports whether m is a ZFS mount, native or zfs-fuse.
func isZFS(m fsutil.Mount) bool { return m.FSType == "zfs" || m.FSType == "fuse.zfs" }

// isChildMount reports whether o, a mount below the volume mounted as m, is
// a descendant dataset of m's that a recursive snapshot covers: a ZFS mount
// of a dataset below m.Source, not a clone of ours.
func (b *Backend) isChildMount(m, o fsutil.Mount) bool {
	return isZFS(o) && o.Source != m.Source && datasetWithin(m.Source, o.Source) &&
		!datasetWithin(b.cloneParentOf(pool(m.Source)), o.Source)
}

// childMounts returns the mounts of descendant datasets below the volume
// mounted as m, parents first (by mount point).
func (b *Backend) childMounts(mounts []fsutil.Mount, m fsutil.Mount) []fsutil.Mount {
	var kids []fsutil.Mount
	for _, o := range mounts {
		if o.Point != m.Point && fsutil.Within(m.Point, o.Point) && b.isChildMount(m, o) {
			kids = append(kids, o)
		}
	}
	slices.SortStableFunc(kids, func(x, y fsutil.Mount) int { return strings.Compare(x.Point, y.Point) })
	return kids
}

// props are the properties of datasets, by dataset name then property
// name. A property that is unset ("-") is absent.
type props map[string]map[string]string

// get runs zfs get -Hp for the given properties of datasets (recursively if
// recursive), or of every dataset if there are none.
func (b *Backend) get(ctx context.Context, names []string, datasets ...string) (props, error) {
	return b.getArgs(ctx, false, names, datasets)
}

func (b *Backend) getArgs(ctx context.Context, recursive bool, names []string, datasets []string) (props, error) {
	flags := "-Hp"
	if recursive {
		flags = "-Hrp"
	}
	args := append([]string{"get", flags, "-o", "name,property,value", strings.Join(names, ",")}, datasets...)
	out, err := b.zfsCmd(ctx, args...)
	if err != nil {
		return nil, err
	}
	return parseGet(out)
}

// parseGet parses the output of zfs get -H -o name,property,value.
func parseGet(out []byte) (props, error) {
	p := props{}
	for i, line := range strings.Split(string(out), "\n") {
		if line == "" {
			continue
		}
		f := strings.SplitN(line, "\t", 3)
		if len(f) != 3 {
			return nil, fmt.Errorf("zfs get: line %d: %q: want 3 tab-separated fields", i+1, line)
		}
		m := p[f[0]]
		if m == nil {
			m = map[string]string{}
			p[f[0]] = m
		}
		if f[2] != "-" {
			m[f[1]] = f[2]
		}
	}
	return p, nil
}
