package dir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/fsrvpd/fsrvpd/storage"
)

// CopyStats counts what Create did with the entries of volumes.
type CopyStats struct {
	Files    uint64 // regular files
	Dirs     uint64 // directories, the volume root included
	Symlinks uint64
	// Cloned files were shared with FICLONE (reflink); Copied files had their
	// bytes copied. Cloned+Copied == Files.
	Cloned uint64
	Copied uint64
	// Bytes is the size of all regular files, cloned or copied.
	Bytes uint64
	// Skipped counts sockets, devices and FIFOs, which are not copied.
	Skipped uint64
	// OwnerLost and XattrsLost count entries whose owner or extended
	// attributes could not be set (not root, or unsupported by the
	// filesystem of SnapshotDir).
	OwnerLost  uint64
	XattrsLost uint64
}

func (s *CopyStats) add(o CopyStats) {
	s.Files += o.Files
	s.Dirs += o.Dirs
	s.Symlinks += o.Symlinks
	s.Cloned += o.Cloned
	s.Copied += o.Copied
	s.Bytes += o.Bytes
	s.Skipped += o.Skipped
	s.OwnerLost += o.OwnerLost
	s.XattrsLost += o.XattrsLost
}

func (s CopyStats) fields() logrus.Fields {
	return logrus.Fields{
		"files": s.Files, "dirs": s.Dirs, "symlinks": s.Symlinks,
		"cloned": s.Cloned, "copied": s.Copied, "bytes": s.Bytes,
		"skipped": s.Skipped, "owner_lost": s.OwnerLost, "xattrs_lost": s.XattrsLost,
	}
}

// copier copies one volume tree. It walks the source through directory file
// descriptors opened with O_NOFOLLOW and openat(2), so a symlink in the
// volume, even one swapped in during the copy, is copied as a symlink and
// never followed.
type copier struct {
	ctx      context.Context
	log      *logrus.Entry
	dev      uint64 // st_dev of the volume root: a directory elsewhere is a mount
	readOnly bool   // clear the write bits of the copies
	noClone  bool   // FICLONE failed as unsupported: copy the rest
	stats    CopyStats
}

const (
	openDir  = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	openFile = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NONBLOCK
)

// copyTree copies the directory src to dst, which must not exist.
func (c *copier) copyTree(src, dst string) error {
	fd, err := unix.Open(src, openDir, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: src, Err: err}
	}
	d := os.NewFile(uintptr(fd), src)
	defer d.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "fstat", Path: src, Err: err}
	}
	c.dev = st.Dev
	return c.copyDir(d, &st, dst)
}

// copyDir copies the open directory src, described by st, to dst.
func (c *copier) copyDir(src *os.File, st *unix.Stat_t, dst string) error {
	if err := os.Mkdir(dst, 0o700); err != nil {
		return err
	}
	c.stats.Dirs++
	entries, err := src.ReadDir(-1)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		if err := c.copyEntry(src, e.Name(), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	out, err := os.Open(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	return c.finish(int(src.Fd()), int(out.Fd()), dst, st)
}

// copyEntry copies the entry name of the directory parent to dst.
func (c *copier) copyEntry(parent *os.File, name, dst string) error {
	pfd := int(parent.Fd())
	srcPath := filepath.Join(parent.Name(), name)
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "lstat", Path: srcPath, Err: err}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if st.Dev != c.dev {
			return fmt.Errorf("%s is a mount point or a nested volume: %w", srcPath, storage.ErrNotSupported)
		}
		fd, err := unix.Openat(pfd, name, openDir, 0)
		if err != nil {
			return &os.PathError{Op: "open", Path: srcPath, Err: err}
		}
		d := os.NewFile(uintptr(fd), srcPath)
		defer d.Close()
		if err := unix.Fstat(fd, &st); err != nil {
			return &os.PathError{Op: "fstat", Path: srcPath, Err: err}
		}
		return c.copyDir(d, &st, dst)
	case unix.S_IFREG:
		return c.copyFile(pfd, name, srcPath, dst)
	case unix.S_IFLNK:
		return c.copySymlink(pfd, name, srcPath, dst, &st)
	default:
		c.stats.Skipped++
		c.log.WithField("path", srcPath).Warn("Skipping a socket, device or FIFO: snapshots hold only files, directories and symlinks")
		return nil
	}
}

func (c *copier) copyFile(pfd int, name, srcPath, dst string) error {
	fd, err := unix.Openat(pfd, name, openFile, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: srcPath, Err: err}
	}
	in := os.NewFile(uintptr(fd), srcPath)
	defer in.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "fstat", Path: srcPath, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%s changed type during the snapshot", srcPath)
	}
	// O_NONBLOCK only guarded the open against a FIFO swapped in.
	if err := unix.SetNonblock(fd, false); err != nil {
		return &os.PathError{Op: "fcntl", Path: srcPath, Err: err}
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	if err := c.cloneOrCopy(in, out); err != nil {
		return err
	}
	c.stats.Files++
	c.stats.Bytes += uint64(st.Size)
	if err := c.finish(fd, int(out.Fd()), dst, &st); err != nil {
		return err
	}
	return out.Close()
}

func (c *copier) cloneOrCopy(in, out *os.File) error {
	if !c.noClone {
		err := unix.IoctlFileClone(int(out.Fd()), int(in.Fd()))
		if err == nil {
			c.stats.Cloned++
			return nil
		}
		if !cloneUnsupported(err) {
			return fmt.Errorf("clone %s: %w", in.Name(), err)
		}
		c.noClone = true
		c.log.WithError(err).Debug("FICLONE unsupported, copying file contents")
	}
	// *os.File.ReadFrom uses copy_file_range(2) where it can.
	if _, err := io.Copy(out, in); err != nil {
		return fmt.Errorf("copy %s: %w", in.Name(), err)
	}
	c.stats.Copied++
	return nil
}

// cloneUnsupported reports whether FICLONE failed because the filesystems
// cannot share extents, rather than because of an I/O error.
func cloneUnsupported(err error) bool {
	for _, e := range []error{unix.EOPNOTSUPP, unix.ENOTTY, unix.EXDEV, unix.EINVAL, unix.ENOSYS, unix.EPERM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (c *copier) copySymlink(pfd int, name, srcPath, dst string, st *unix.Stat_t) error {
	buf := make([]byte, st.Size+1)
	for {
		n, err := unix.Readlinkat(pfd, name, buf)
		if err != nil {
			return &os.PathError{Op: "readlink", Path: srcPath, Err: err}
		}
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	if err := os.Symlink(string(buf), dst); err != nil {
		return err
	}
	c.stats.Symlinks++
	return c.finish(-1, -1, dst, st)
}

// finish copies the owner, extended attributes, permissions and times of
// the source (srcFd, st) onto dst, in that order: chown clears set-id bits
// and setting an ACL changes the mode. srcFd and dstFd are -1 for symlinks,
// whose extended attributes are not copied.
func (c *copier) finish(srcFd, dstFd int, dst string, st *unix.Stat_t) error {
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		if !errors.Is(err, unix.EPERM) {
			return &os.PathError{Op: "lchown", Path: dst, Err: err}
		}
		c.stats.OwnerLost++
	}
	if srcFd >= 0 {
		if err := c.copyXattrs(srcFd, dstFd, dst); err != nil {
			return err
		}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		mode := st.Mode & 0o7777
		if c.readOnly {
			mode &^= 0o222
		}
		if err := unix.Fchmodat(unix.AT_FDCWD, dst, mode, 0); err != nil {
			return &os.PathError{Op: "chmod", Path: dst, Err: err}
		}
	}
	times := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, times, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimes", Path: dst, Err: err}
	}
	return nil
}

func (c *copier) copyXattrs(srcFd, dstFd int, dst string) error {
	names, err := listXattrs(srcFd)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil
		}
		return &os.PathError{Op: "listxattr", Path: dst, Err: err}
	}
	lost := false
	for _, name := range names {
		val, err := getXattr(srcFd, name)
		if errors.Is(err, unix.ENODATA) {
			continue // removed since the listing
		}
		if err != nil {
			return &os.PathError{Op: "getxattr " + name, Path: dst, Err: err}
		}
		if err := unix.Fsetxattr(dstFd, name, val, 0); err != nil {
			if !errors.Is(err, unix.ENOTSUP) && !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EACCES) {
				return &os.PathError{Op: "setxattr " + name, Path: dst, Err: err}
			}
			lost = true
		}
	}
	if lost {
		c.stats.XattrsLost++
	}
	return nil
}

func listXattrs(fd int) ([]string, error) {
	buf, err := growRead(func(b []byte) (int, error) { return unix.Flistxattr(fd, b) })
	if err != nil || len(buf) == 0 {
		return nil, err
	}
	var names []string
	for start := 0; start < len(buf); {
		end := start
		for end < len(buf) && buf[end] != 0 {
			end++
		}
		if end > start {
			names = append(names, string(buf[start:end]))
		}
		start = end + 1
	}
	return names, nil
}

func getXattr(fd int, name string) ([]byte, error) {
	return growRead(func(b []byte) (int, error) { return unix.Fgetxattr(fd, name, b) })
}

// growRead calls a list/get xattr function, first with a nil buffer to learn
// the size, then with buffers large enough, retrying on ERANGE.
func growRead(f func([]byte) (int, error)) ([]byte, error) {
	for {
		n, err := f(nil)
		if err != nil || n == 0 {
			return nil, err
		}
		buf := make([]byte, n)
		n, err = f(buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// makeWritable adds owner write and search permission to every directory
// below root, so that a read-only tree can be removed by a non-root owner.
func makeWritable(root string) error {
	return filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o700 != 0o700 {
			return os.Chmod(path, info.Mode().Perm()|0o700)
		}
		return nil
	})
}

// clearWriteBits removes every write permission bit below root, symlinks
// excepted, directories last so that a non-root owner can still walk them.
func clearWriteBits(root string) error {
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&os.ModeSymlink != 0 {
			return nil
		}
		if d.IsDir() {
			dirs = append(dirs, path)
			return nil
		}
		return chmodNoWrite(path)
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := chmodNoWrite(dirs[i]); err != nil {
			return err
		}
	}
	return nil
}

// chmodNoWrite clears the write bits of path, keeping its times: the ctime
// changes, but the mtime a client sees does not.
func chmodNoWrite(path string) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	if st.Mode&0o222 == 0 {
		return nil
	}
	if err := unix.Chmod(path, st.Mode&0o7777&^0o222); err != nil {
		return &os.PathError{Op: "chmod", Path: path, Err: err}
	}
	return nil
}
