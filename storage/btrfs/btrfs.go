package btrfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
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
const Name = "btrfs"

// Reserved names: <SnapshotDir>/fsrvp-<id> is a directory holding the
// snapshot subvolume "data".
const (
	idPrefix = "fsrvp-"
	dataName = "data"
)

// Config configures a Backend.
type Config struct {
	// SnapshotDir is where snapshots live: a directory on the same btrfs
	// filesystem as the volumes, outside every volume that is snapshotted
	// (a dedicated subvolume, or a directory of the top-level subvolume
	// that is not shared). It is created with mode 0700 if missing.
	SnapshotDir string
	// Recursive accepts volumes with nested subvolumes below their root
	// (mount points stay unsupported): a snapshot of such a volume is a
	// tree of snapshots, each nested subvolume snapshotted into place at
	// its relative path inside the snapshot of the volume. The snapshots
	// of a tree are taken one after the other, not at one instant.
	Recursive bool
	// Logger receives lifecycle messages and warnings; nil discards them.
	Logger *logrus.Entry
}

// Backend is the btrfs storage backend. See the package documentation.
type Backend struct {
	snapDir string
	fsid    [16]byte
	log     *logrus.Entry
	locks   fsutil.IDLocks
	// recursive is Config.Recursive.
	recursive bool
}

var (
	_ storage.Backend       = (*Backend)(nil)
	_ storage.BatchCreator  = (*Backend)(nil)
	_ storage.UsageReporter = (*Backend)(nil)
)

// New checks cfg and returns a Backend. It does not touch existing
// snapshots or leftovers.
func New(cfg Config) (*Backend, error) {
	b := &Backend{log: cfg.Logger, recursive: cfg.Recursive}
	if b.log == nil {
		l := logrus.New()
		l.Out = io.Discard
		b.log = logrus.NewEntry(l)
	}
	b.log = b.log.WithField("backend", Name)
	if !filepath.IsAbs(cfg.SnapshotDir) {
		return nil, fmt.Errorf("btrfs backend: snapshot dir %q is not absolute", cfg.SnapshotDir)
	}
	if err := os.MkdirAll(cfg.SnapshotDir, 0o700); err != nil {
		return nil, fmt.Errorf("btrfs backend: %w", err)
	}
	dir, err := filepath.EvalSymlinks(cfg.SnapshotDir)
	if err != nil {
		return nil, fmt.Errorf("btrfs backend: snapshot dir: %w", err)
	}
	f, err := openDir(dir)
	if err != nil {
		return nil, fmt.Errorf("btrfs backend: snapshot dir: %w", err)
	}
	defer f.Close()
	if err := onBtrfs(f); err != nil {
		return nil, fmt.Errorf("btrfs backend: snapshot dir %s: %w", dir, err)
	}
	if b.fsid, err = fsID(int(f.Fd())); err != nil {
		return nil, fmt.Errorf("btrfs backend: snapshot dir %s: FS_INFO: %w", dir, err)
	}
	b.snapDir = dir
	return b, nil
}

// Name implements storage.Backend.
func (b *Backend) Name() string { return Name }

func openDir(p string) (*os.File, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

func onBtrfs(f *os.File) error {
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return err
	}
	if uint32(st.Type) != superMagic {
		return fmt.Errorf("not on btrfs (filesystem type %#x): %w", st.Type, storage.ErrNotSupported)
	}
	return nil
}

func fstat(f *os.File) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstat(int(f.Fd()), &st)
	return st, err
}

// volumeID is the subvolume UUID, or fsid/treeid for a subvolume without
// one (the top level of filesystems made by old mkfs.btrfs).
func (b *Backend) volumeID(info subvolInfo) string {
	if info.UUID == [16]byte{} {
		return fmt.Sprintf("%s/%d", formatUUID(b.fsid), info.TreeID)
	}
	return formatUUID(info.UUID)
}

// Volume implements storage.Backend. The volume is the subvolume that
// contains path (symlinks resolved): the nearest directory at or above it
// whose inode is 256, the root of every subvolume. The volume is not
// supported if it is on another filesystem than SnapshotDir, if it contains
// SnapshotDir, or if anywhere below its root there is a nested subvolume
// (unless Config.Recursive) or a mount point: its snapshot would hold an
// empty directory in their place.
func (b *Backend) Volume(ctx context.Context, path string) (storage.Volume, error) {
	real, err := storage.ResolvePath(ctx, path)
	if err != nil {
		return storage.Volume{}, err
	}
	root, err := subvolumeRoot(real)
	if err != nil {
		return storage.Volume{}, fmt.Errorf("path %s: %w", path, err)
	}
	f, err := openDir(root)
	if err != nil {
		return storage.Volume{}, err
	}
	defer f.Close()
	if fsid, err := fsID(int(f.Fd())); err != nil {
		return storage.Volume{}, fmt.Errorf("volume %s: FS_INFO: %w", root, err)
	} else if fsid != b.fsid {
		return storage.Volume{}, fmt.Errorf("volume %s is on another btrfs filesystem than %s: %w", root, b.snapDir, storage.ErrNotSupported)
	}
	info, err := getSubvolInfo(int(f.Fd()))
	if err != nil {
		return storage.Volume{}, fmt.Errorf("volume %s: GET_SUBVOL_INFO: %w", root, err)
	}
	if fsutil.Within(root, b.snapDir) {
		return storage.Volume{}, fmt.Errorf("volume %s contains the snapshot dir %s: %w", root, b.snapDir, storage.ErrNotSupported)
	}
	if nested, err := hasChildSubvolumes(int(f.Fd())); err != nil {
		return storage.Volume{}, fmt.Errorf("volume %s: GET_SUBVOL_ROOTREF: %w", root, err)
	} else if nested && !b.recursive {
		return storage.Volume{}, fmt.Errorf("volume %s has nested subvolumes: %w", root, storage.ErrNotSupported)
	}
	if m, err := fsutil.MountBelowIn(mountinfoPath, root); err != nil {
		return storage.Volume{}, fmt.Errorf("volume %s: %w", root, err)
	} else if m != "" {
		return storage.Volume{}, fmt.Errorf("volume %s has a mount point at %s: %w", root, m, storage.ErrNotSupported)
	}
	return storage.Volume{ID: b.volumeID(info), Root: root}, nil
}

// subvolumeRoot walks up from the resolved path p to the root of the
// subvolume holding it.
func subvolumeRoot(p string) (string, error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(p, &fs); err != nil {
		return "", err
	}
	if uint32(fs.Type) != superMagic {
		return "", fmt.Errorf("not on btrfs (filesystem type %#x): %w", fs.Type, storage.ErrNotSupported)
	}
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return "", err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		p = filepath.Dir(p)
		if err := unix.Stat(p, &st); err != nil {
			return "", err
		}
	}
	for st.Ino != firstFreeObjects {
		parent := filepath.Dir(p)
		var pst unix.Stat_t
		if err := unix.Stat(parent, &pst); err != nil {
			return "", err
		}
		if parent == p || pst.Dev != st.Dev {
			// A bind mount of a directory inside a subvolume: the
			// subvolume root is not reachable from here.
			return "", fmt.Errorf("%s is a mount of a directory that is not a subvolume root: %w", p, storage.ErrNotSupported)
		}
		p, st = parent, pst
	}
	return p, nil
}

// openVolume opens the root of vol and checks that it is still the
// subvolume Volume described.
func (b *Backend) openVolume(vol storage.Volume) (*os.File, error) {
	f, err := openDir(vol.Root)
	if err != nil {
		return nil, fmt.Errorf("volume %s: %w: %w", vol.ID, storage.ErrNotFound, err)
	}
	st, err := fstat(f)
	if err == nil && st.Ino != firstFreeObjects {
		err = errors.New("not a subvolume root")
	}
	var info subvolInfo
	if err == nil {
		info, err = getSubvolInfo(int(f.Fd()))
	}
	if err == nil && b.volumeID(info) != vol.ID {
		err = fmt.Errorf("%s is subvolume %s", vol.Root, b.volumeID(info))
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("volume %s: %w: %w", vol.ID, storage.ErrNotFound, err)
	}
	return f, nil
}

// Create implements storage.Backend: it writes the sidecar, then takes the
// snapshot with BTRFS_IOC_SNAP_CREATE_V2 (read-only unless opts.Writable).
func (b *Backend) Create(ctx context.Context, vol storage.Volume, id string, opts storage.CreateOptions) (storage.Snapshot, error) {
	if err := storage.CheckCall(ctx, id); err != nil {
		return storage.Snapshot{}, err
	}
	src, err := b.openVolume(vol)
	if err != nil {
		return storage.Snapshot{}, err
	}
	defer src.Close()
	unlock := b.locks.Lock(id)
	defer unlock()
	dir, err := b.prepare(vol, id)
	if err != nil {
		return storage.Snapshot{}, err
	}
	defer dir.Close()
	start := time.Now()
	if err := b.take(dir, src, id, opts); err != nil {
		return storage.Snapshot{}, err
	}
	s, err := b.stat(id)
	if err != nil {
		return storage.Snapshot{}, err
	}
	b.log.WithFields(logrus.Fields{"snapshot": id, "volume": vol.ID, "read_only": s.ReadOnly,
		"duration_s": time.Since(start).Seconds()}).Info("Snapshot created")
	return s, nil
}

// prepare makes the directory fsrvp-<id> (or reuses the leftovers of an
// interrupted Create) with its meta xattr, and returns it open. The caller
// holds the lock of id.
func (b *Backend) prepare(vol storage.Volume, id string) (*os.File, error) {
	err := os.Mkdir(b.idDir(id), 0o700)
	if errors.Is(err, os.ErrExist) {
		if _, err := os.Lstat(b.snapPath(id)); err == nil {
			return nil, fmt.Errorf("snapshot %s: %w", id, storage.ErrAlreadyExists)
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id, err)
	}
	dir, err := openDir(b.idDir(id))
	if err == nil {
		err = destroyTree(dir, buildName) // a half-built recursive snapshot
		if err != nil {
			dir.Close()
		}
	}
	if err == nil {
		err = writeMeta(int(dir.Fd()), meta{Version: metaVersion, ID: id, VolumeID: vol.ID, VolumeRoot: vol.Root})
		if err != nil {
			dir.Close()
		}
	}
	if err != nil {
		b.removeIDDir(id)
		return nil, fmt.Errorf("snapshot %s: %w", id, err)
	}
	return dir, nil
}

// take snapshots src into dir, made by prepare. On failure it removes dir,
// unless the snapshot turned out to exist.
func (b *Backend) take(dir, src *os.File, id string, opts storage.CreateOptions) error {
	var kids []string
	if b.recursive {
		var err error
		if kids, err = nestedSubvolumes(src); err != nil {
			b.removeIDDir(id)
			return fmt.Errorf("snapshot %s of %s: %w", id, src.Name(), err)
		}
	}
	if len(kids) > 0 {
		if err := b.takeTree(dir, src, kids, opts.Writable); err != nil {
			b.removeIDDir(id)
			return fmt.Errorf("snapshot %s of %s: %w", id, src.Name(), err)
		}
		return nil
	}
	err := snapCreate(int(dir.Fd()), int(src.Fd()), dataName, !opts.Writable)
	switch {
	case err == nil:
		return nil
	case err == unix.EEXIST:
		return fmt.Errorf("snapshot %s: %w", id, storage.ErrAlreadyExists)
	case err == unix.EXDEV:
		err = fmt.Errorf("%w: %w", storage.ErrNotSupported, err)
	}
	b.removeIDDir(id)
	return fmt.Errorf("snapshot %s of %s: SNAP_CREATE_V2: %w", id, src.Name(), err)
}

// removeIDDir removes the directory of id, which holds no subvolume.
func (b *Backend) removeIDDir(id string) {
	if err := os.Remove(b.idDir(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		b.log.WithError(err).WithField("snapshot", id).Error("Removing the directory of a failed snapshot")
	}
}

// SetReadOnly implements storage.Backend with BTRFS_IOC_SUBVOL_SETFLAGS.
func (b *Backend) SetReadOnly(ctx context.Context, id string) error {
	if err := storage.CheckCall(ctx, id); err != nil {
		return err
	}
	unlock := b.locks.Lock(id)
	defer unlock()
	f, err := b.openSnapshot(id)
	if err != nil {
		return err
	}
	defer f.Close()
	flags, err := getFlags(int(f.Fd()))
	if err != nil {
		return fmt.Errorf("snapshot %s: SUBVOL_GETFLAGS: %w", id, err)
	}
	if flags&subvolRDOnly != 0 {
		return nil
	}
	// The nested subvolumes of a recursive snapshot first: the read-only
	// flag of the snapshot of the volume says that the whole tree is.
	kids, err := nestedSubvolumes(f)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", id, err)
	}
	for i := len(kids) - 1; i >= 0; i-- {
		if err := setReadOnlyAt(f, kids[i]); err != nil {
			return fmt.Errorf("snapshot %s: nested subvolume %s: %w", id, kids[i], err)
		}
	}
	if err := setFlags(int(f.Fd()), flags|subvolRDOnly); err != nil {
		return fmt.Errorf("snapshot %s: SUBVOL_SETFLAGS: %w", id, err)
	}
	b.log.WithField("snapshot", id).Info("Snapshot made read-only")
	return nil
}

// openSnapshot opens the subvolume of snapshot id.
func (b *Backend) openSnapshot(id string) (*os.File, error) {
	f, err := openDir(b.snapPath(id))
	if errors.Is(err, unix.ENOENT) {
		return nil, fmt.Errorf("snapshot %s: %w", id, storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id, err)
	}
	if st, err := fstat(f); err != nil || st.Ino != firstFreeObjects {
		f.Close()
		return nil, fmt.Errorf("snapshot %s: %s is not a subvolume (%v)", id, f.Name(), err)
	}
	return f, nil
}

// Delete implements storage.Backend: BTRFS_IOC_SNAP_DESTROY, then rmdir of
// fsrvp-<id>, then an fsync of SnapshotDir, which commits the deletion.
func (b *Backend) Delete(ctx context.Context, id string) error {
	if err := storage.CheckCall(ctx, id); err != nil {
		return err
	}
	unlock := b.locks.Lock(id)
	defer unlock()
	if _, err := os.Lstat(b.idDir(id)); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("snapshot %s: %w", id, storage.ErrNotFound)
	}
	if err := b.destroy(id); err != nil {
		return err
	}
	b.log.WithField("snapshot", id).Info("Snapshot deleted")
	return nil
}

// destroy removes the subvolume (with the subvolumes nested in it) and the
// directory of id, whichever exist.
func (b *Backend) destroy(id string) error {
	dir, err := openDir(b.idDir(id))
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", id, err)
	}
	err = destroyTree(dir, dataName)
	if err == nil {
		err = destroyTree(dir, buildName)
	}
	dir.Close()
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", id, err)
	}
	if err := os.Remove(b.idDir(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("snapshot %s: %w", id, err)
	}
	return syncDir(b.snapDir)
}

func syncDir(p string) error {
	d, err := openDir(p)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", p, err)
	}
	return nil
}

// Stat implements storage.Backend.
func (b *Backend) Stat(ctx context.Context, id string) (storage.Snapshot, error) {
	if err := storage.CheckCall(ctx, id); err != nil {
		return storage.Snapshot{}, err
	}
	return b.stat(id)
}

// stat describes snapshot id from its subvolume (creation time, read-only
// flag) and its meta xattr (volume).
func (b *Backend) stat(id string) (storage.Snapshot, error) {
	f, err := b.openSnapshot(id)
	if err != nil {
		return storage.Snapshot{}, err
	}
	defer f.Close()
	info, err := getSubvolInfo(int(f.Fd()))
	if err != nil {
		return storage.Snapshot{}, fmt.Errorf("snapshot %s: GET_SUBVOL_INFO: %w", id, err)
	}
	m, err := b.readMeta(id)
	if err != nil {
		return storage.Snapshot{}, fmt.Errorf("snapshot %s: %w", id, err)
	}
	return storage.Snapshot{
		ID:         id,
		VolumeID:   m.VolumeID,
		VolumeRoot: m.VolumeRoot,
		Path:       b.snapPath(id),
		ReadOnly:   info.Flags&rootSubvolRDOnly != 0,
		Created:    info.Otime.time(),
	}, nil
}

// List implements storage.Backend. It also removes the directories without
// a subvolume (the leftovers of interrupted Creates and Deletes) whose id is
// not busy in this Backend. A snapshot whose meta xattr is unreadable is
// logged and skipped.
func (b *Backend) List(ctx context.Context) ([]storage.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(b.snapDir)
	if err != nil {
		return nil, err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return nil, err
	}
	var list []storage.Snapshot
	for _, name := range names {
		id, ok := strings.CutPrefix(name, idPrefix)
		if !ok || storage.CheckID(id) != nil {
			continue
		}
		s, err := b.stat(id)
		if errors.Is(err, storage.ErrNotFound) {
			b.removeLeftovers(id) // or deleted since Readdirnames
			continue
		}
		if err != nil {
			b.log.WithError(err).WithField("snapshot", id).Warn("Ignoring an unreadable snapshot")
			continue
		}
		list = append(list, s)
	}
	return list, nil
}

// removeLeftovers removes the directory of id if it holds no subvolume and
// no operation on id is running. Failures are logged: the next List
// retries.
func (b *Backend) removeLeftovers(id string) {
	unlock, ok := b.locks.TryLock(id)
	if !ok {
		return
	}
	defer unlock()
	if _, err := os.Lstat(b.idDir(id)); err != nil {
		return // deleted since Readdirnames
	}
	if _, err := os.Lstat(b.snapPath(id)); !errors.Is(err, os.ErrNotExist) {
		return // created since Readdirnames, or unreadable
	}
	log := b.log.WithField("snapshot", id)
	if dir, err := openDir(b.idDir(id)); err == nil {
		err = destroyTree(dir, buildName) // a half-built recursive snapshot
		dir.Close()
		if err != nil {
			log.WithError(err).Error("Removing the leftovers of an interrupted snapshot")
			return
		}
	}
	if err := os.Remove(b.idDir(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		log.WithError(err).Error("Removing the leftovers of an interrupted snapshot")
		return
	}
	log.Warn("Removed the leftovers of an interrupted snapshot")
}
