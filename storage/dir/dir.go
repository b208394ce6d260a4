package dir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/fsrvpd/fsrvpd/storage"
	"github.com/fsrvpd/fsrvpd/storage/internal/fsutil"
)

// mountinfoPath is read by Volume; a variable so tests can point it at a
// fixture.
var mountinfoPath = fsutil.DefaultMountinfo

// Name is the backend's name, as Backend.Name returns it.
const Name = "dir"

// Reserved names in SnapshotDir.
const (
	finalPrefix = "fsrvp-" // a finished snapshot: fsrvp-<id>/{meta.json,data/}
	tmpPrefix   = ".tmp-"  // a Create or Delete in progress, or its leftovers
	dataName    = "data"
)

// Config configures a Backend.
type Config struct {
	// Volumes are the roots of the directory trees that can be snapshotted.
	// They must be absolute, must exist and must not nest inside each other.
	Volumes []string
	// SnapshotDir is where snapshots live. It is created with mode 0700 if
	// missing (an existing directory keeps its mode: a Samba that serves the
	// snapshots as non-root users needs search permission on it). It must
	// not be inside a volume, and it should be on the same filesystem as the
	// volumes for Create to clone files instead of copying them.
	SnapshotDir string
	// Logger receives warnings and lifecycle messages; nil discards them.
	Logger *logrus.Entry
}

// Backend is the dir storage backend. See the package documentation.
type Backend struct {
	roots   []string // cleaned, symlinks resolved
	snapDir string
	log     *logrus.Entry
	locks   fsutil.IDLocks

	statsMu sync.Mutex
	stats   CopyStats
}

var _ storage.Backend = (*Backend)(nil)

// New checks cfg and returns a Backend. It does not touch existing
// snapshots or leftovers.
func New(cfg Config) (*Backend, error) {
	b := &Backend{log: cfg.Logger}
	if b.log == nil {
		l := logrus.New()
		l.Out = io.Discard
		b.log = logrus.NewEntry(l)
	}
	b.log = b.log.WithField("backend", Name)
	if len(cfg.Volumes) == 0 {
		return nil, errors.New("dir backend: no volumes configured")
	}
	for _, v := range cfg.Volumes {
		root, err := resolveDir(v)
		if err != nil {
			return nil, fmt.Errorf("dir backend: volume: %w", err)
		}
		for _, other := range b.roots {
			if fsutil.Within(other, root) || fsutil.Within(root, other) {
				return nil, fmt.Errorf("dir backend: volumes %s and %s nest", other, root)
			}
		}
		b.roots = append(b.roots, root)
	}
	if !filepath.IsAbs(cfg.SnapshotDir) {
		return nil, fmt.Errorf("dir backend: snapshot dir %q is not absolute", cfg.SnapshotDir)
	}
	if err := os.MkdirAll(cfg.SnapshotDir, 0o700); err != nil {
		return nil, fmt.Errorf("dir backend: %w", err)
	}
	snapDir, err := resolveDir(cfg.SnapshotDir)
	if err != nil {
		return nil, fmt.Errorf("dir backend: snapshot dir: %w", err)
	}
	for _, root := range b.roots {
		if fsutil.Within(root, snapDir) || fsutil.Within(snapDir, root) {
			return nil, fmt.Errorf("dir backend: snapshot dir %s and volume %s nest", snapDir, root)
		}
	}
	b.snapDir = snapDir
	return b, nil
}

// resolveDir returns the clean, symlink-free form of the absolute directory
// path p.
func resolveDir(p string) (string, error) {
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("%q is not absolute", p)
	}
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(r)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%s is not a directory", r)
	}
	return r, nil
}

// Name implements storage.Backend.
func (b *Backend) Name() string { return Name }

// Stats returns the totals of every Create of this Backend so far.
func (b *Backend) Stats() CopyStats {
	b.statsMu.Lock()
	defer b.statsMu.Unlock()
	return b.stats
}

// Volume implements storage.Backend. The volume is the configured root that
// contains path after symlinks are resolved; its ID is that root.
func (b *Backend) Volume(ctx context.Context, path string) (storage.Volume, error) {
	real, err := storage.ResolvePath(ctx, path)
	if err != nil {
		return storage.Volume{}, err
	}
	root := b.rootOf(real)
	if root == "" {
		return storage.Volume{}, fmt.Errorf("path %s is on no configured volume: %w", path, storage.ErrNotSupported)
	}
	m, err := fsutil.MountBelowIn(mountinfoPath, root)
	if err != nil {
		return storage.Volume{}, fmt.Errorf("volume %s: %w", root, err)
	}
	if m != "" {
		return storage.Volume{}, fmt.Errorf("volume %s has a mount point at %s: %w", root, m, storage.ErrNotSupported)
	}
	return storage.Volume{ID: root, Root: root}, nil
}

// rootOf returns the configured root that contains the resolved path p, or
// "". Roots do not nest, so at most one matches.
func (b *Backend) rootOf(p string) string {
	for _, r := range b.roots {
		if fsutil.Within(r, p) {
			return r
		}
	}
	return ""
}

func (b *Backend) finalDir(id string) string { return filepath.Join(b.snapDir, finalPrefix+id) }
func (b *Backend) tmpDir(id string) string   { return filepath.Join(b.snapDir, tmpPrefix+id) }

// Create implements storage.Backend. It copies the volume into
// .tmp-<id>/data, writes .tmp-<id>/meta.json, flushes the filesystem with
// syncfs(2), renames .tmp-<id> to fsrvp-<id> and fsyncs SnapshotDir.
func (b *Backend) Create(ctx context.Context, vol storage.Volume, id string, opts storage.CreateOptions) (storage.Snapshot, error) {
	if err := storage.CheckCall(ctx, id); err != nil {
		return storage.Snapshot{}, err
	}
	if b.rootOf(vol.Root) != vol.Root || vol.ID != vol.Root {
		return storage.Snapshot{}, fmt.Errorf("volume %s: %w", vol.ID, storage.ErrNotFound)
	}
	unlock := b.locks.Lock(id)
	defer unlock()
	final := b.finalDir(id)
	if _, err := os.Lstat(final); err == nil {
		return storage.Snapshot{}, fmt.Errorf("snapshot %s: %w", id, storage.ErrAlreadyExists)
	} else if !errors.Is(err, os.ErrNotExist) {
		return storage.Snapshot{}, err
	}
	log := b.log.WithFields(logrus.Fields{"snapshot": id, "volume": vol.ID})
	start := time.Now()
	m, stats, err := b.build(ctx, log, vol, id, opts)
	b.statsMu.Lock()
	b.stats.add(stats)
	b.statsMu.Unlock()
	if err == nil {
		err = b.publish(id)
	}
	if err != nil {
		if rerr := b.removeTree(b.tmpDir(id)); rerr != nil {
			log.WithError(rerr).Error("Cleaning up after a failed snapshot")
		}
		return storage.Snapshot{}, fmt.Errorf("snapshot %s of %s: %w", id, vol.Root, err)
	}
	log.WithFields(stats.fields()).WithField("duration_s", time.Since(start).Seconds()).Info("Snapshot created")
	if stats.OwnerLost+stats.XattrsLost > 0 {
		log.WithFields(stats.fields()).Warn("Snapshot lacks some owners or extended attributes (not root, or unsupported by the snapshot filesystem)")
	}
	return b.snapshot(m), nil
}

// build makes .tmp-<id> with the data and meta.json of a snapshot, ready to
// be published. A crash during or after build leaves only .tmp-<id>.
func (b *Backend) build(ctx context.Context, log *logrus.Entry, vol storage.Volume, id string, opts storage.CreateOptions) (meta, CopyStats, error) {
	tmp := b.tmpDir(id)
	if err := b.removeTree(tmp); err != nil {
		return meta{}, CopyStats{}, fmt.Errorf("remove leftovers: %w", err)
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return meta{}, CopyStats{}, err
	}
	m := meta{
		Version:    metaVersion,
		ID:         id,
		VolumeID:   vol.ID,
		VolumeRoot: vol.Root,
		Created:    time.Now().UTC(),
		ReadOnly:   !opts.Writable,
	}
	c := &copier{ctx: ctx, log: log, readOnly: m.ReadOnly}
	if err := c.copyTree(vol.Root, filepath.Join(tmp, dataName)); err != nil {
		return meta{}, c.stats, err
	}
	if err := os.WriteFile(filepath.Join(tmp, metaName), encodeMeta(m), 0o600); err != nil {
		return meta{}, c.stats, err
	}
	return m, c.stats, nil
}

// publish makes .tmp-<id> durable and renames it to fsrvp-<id>.
func (b *Backend) publish(id string) error {
	d, err := os.Open(b.tmpDir(id))
	if err != nil {
		return err
	}
	err = unix.Syncfs(int(d.Fd()))
	d.Close()
	if err != nil {
		return fmt.Errorf("syncfs %s: %w", b.snapDir, err)
	}
	if err := os.Rename(b.tmpDir(id), b.finalDir(id)); err != nil {
		return err
	}
	return syncDir(b.snapDir)
}

func (b *Backend) snapshot(m meta) storage.Snapshot {
	return storage.Snapshot{
		ID:         m.ID,
		VolumeID:   m.VolumeID,
		VolumeRoot: m.VolumeRoot,
		Path:       filepath.Join(b.finalDir(m.ID), dataName),
		ReadOnly:   m.ReadOnly,
		Created:    m.Created,
	}
}

// SetReadOnly implements storage.Backend. It clears the write bits of the
// data tree, then records read_only in meta.json; a crash in between is
// repaired by calling it again.
func (b *Backend) SetReadOnly(ctx context.Context, id string) error {
	if err := storage.CheckCall(ctx, id); err != nil {
		return err
	}
	unlock := b.locks.Lock(id)
	defer unlock()
	m, err := b.stat(id)
	if err != nil {
		return err
	}
	if m.ReadOnly {
		return nil
	}
	final := b.finalDir(id)
	if err := clearWriteBits(filepath.Join(final, dataName)); err != nil {
		return fmt.Errorf("snapshot %s: %w", id, err)
	}
	m.ReadOnly = true
	if err := writeFileAtomic(final, metaName, encodeMeta(m), 0o600); err != nil {
		return fmt.Errorf("snapshot %s: %w", id, err)
	}
	b.log.WithField("snapshot", id).Info("Snapshot made read-only")
	return nil
}

// Delete implements storage.Backend. It renames fsrvp-<id> to .tmp-<id>
// first, so that a crash mid-removal leaves only leftovers that List
// removes.
func (b *Backend) Delete(ctx context.Context, id string) error {
	if err := storage.CheckCall(ctx, id); err != nil {
		return err
	}
	unlock := b.locks.Lock(id)
	defer unlock()
	final, tmp := b.finalDir(id), b.tmpDir(id)
	_, ferr := os.Lstat(final)
	_, terr := os.Lstat(tmp)
	switch {
	case errors.Is(ferr, os.ErrNotExist) && errors.Is(terr, os.ErrNotExist):
		return fmt.Errorf("snapshot %s: %w", id, storage.ErrNotFound)
	case ferr == nil:
		if err := b.removeTree(tmp); err != nil {
			return fmt.Errorf("snapshot %s: remove leftovers: %w", id, err)
		}
		if err := os.Rename(final, tmp); err != nil {
			return fmt.Errorf("snapshot %s: %w", id, err)
		}
		if err := syncDir(b.snapDir); err != nil {
			return fmt.Errorf("snapshot %s: %w", id, err)
		}
	case !errors.Is(ferr, os.ErrNotExist):
		return fmt.Errorf("snapshot %s: %w", id, ferr)
	}
	if err := b.removeTree(tmp); err != nil {
		return fmt.Errorf("snapshot %s: %w", id, err)
	}
	b.log.WithField("snapshot", id).Info("Snapshot deleted")
	return nil
}

// removeTree removes path, which may be read-only, and succeeds if it does
// not exist.
func (b *Backend) removeTree(path string) error {
	if err := os.RemoveAll(path); err == nil {
		return nil
	}
	if err := makeWritable(path); err != nil {
		return err
	}
	return os.RemoveAll(path)
}

// Stat implements storage.Backend.
func (b *Backend) Stat(ctx context.Context, id string) (storage.Snapshot, error) {
	if err := storage.CheckCall(ctx, id); err != nil {
		return storage.Snapshot{}, err
	}
	m, err := b.stat(id)
	if err != nil {
		return storage.Snapshot{}, err
	}
	return b.snapshot(m), nil
}

func (b *Backend) stat(id string) (meta, error) {
	m, err := readMeta(b.finalDir(id))
	if errors.Is(err, os.ErrNotExist) {
		if _, derr := os.Lstat(b.finalDir(id)); errors.Is(derr, os.ErrNotExist) {
			return meta{}, fmt.Errorf("snapshot %s: %w", id, storage.ErrNotFound)
		}
	}
	if err != nil {
		return meta{}, fmt.Errorf("snapshot %s: %w", id, err)
	}
	if m.ID != id {
		return meta{}, fmt.Errorf("snapshot %s: meta.json names snapshot %q", id, m.ID)
	}
	return m, nil
}

// List implements storage.Backend. It also removes the leftovers of
// interrupted Creates and Deletes (.tmp-<id>) whose id is not busy in this
// Backend; a SnapshotDir must therefore be used by one Backend at a time.
// An fsrvp-<id> entry whose meta.json is unreadable is logged and skipped.
func (b *Backend) List(ctx context.Context) ([]storage.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(b.snapDir)
	if err != nil {
		return nil, err
	}
	var list []storage.Snapshot
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, finalPrefix):
			id := strings.TrimPrefix(name, finalPrefix)
			if storage.CheckID(id) != nil {
				continue
			}
			m, err := b.stat(id)
			if errors.Is(err, storage.ErrNotFound) {
				continue // deleted since ReadDir
			}
			if err != nil {
				b.log.WithError(err).WithField("snapshot", id).Warn("Ignoring an unreadable snapshot")
				continue
			}
			list = append(list, b.snapshot(m))
		case strings.HasPrefix(name, tmpPrefix):
			id := strings.TrimPrefix(name, tmpPrefix)
			if storage.CheckID(id) == nil {
				b.removeLeftovers(id)
			}
		}
	}
	return list, nil
}

// removeLeftovers removes .tmp-<id> unless an operation on id is running.
// Failures are logged: the next List retries.
func (b *Backend) removeLeftovers(id string) {
	unlock, ok := b.locks.TryLock(id)
	if !ok {
		return
	}
	defer unlock()
	if _, err := os.Lstat(b.tmpDir(id)); err != nil {
		return // published or removed since ReadDir
	}
	log := b.log.WithField("snapshot", id)
	if err := b.removeTree(b.tmpDir(id)); err != nil {
		log.WithError(err).Error("Removing the leftovers of an interrupted snapshot")
		return
	}
	log.Warn("Removed the leftovers of an interrupted snapshot")
}
