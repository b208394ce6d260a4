package btrfs

import (
	"errors"
	"fmt"
	"os"
	"path"

	"golang.org/x/sys/unix"
)

// buildName is the name, in <SnapshotDir>/fsrvp-<id>, of a recursive
// snapshot while its nested subvolumes are being snapshotted into it. It is
// renamed to dataName once complete, so that a crash never leaves a
// half-built tree that List reports as a snapshot.
const buildName = "building"

// openBeneath opens the directory rel below the directory open as dir,
// following no symlink and never leaving dir.
func openBeneath(dir *os.File, rel string) (*os.File, error) {
	if rel == "" || rel == "." {
		rel = "."
	}
	fd, err := unix.Openat2(int(dir.Fd()), rel, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC | unix.O_NOFOLLOW,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, &os.PathError{Op: "openat2", Path: path.Join(dir.Name(), rel), Err: err}
	}
	return os.NewFile(uintptr(fd), path.Join(dir.Name(), rel)), nil
}

// openSubvolume is openBeneath that also checks that rel is a subvolume
// root.
func openSubvolume(dir *os.File, rel string) (*os.File, error) {
	f, err := openBeneath(dir, rel)
	if err != nil {
		return nil, err
	}
	if st, err := fstat(f); err != nil || st.Ino != firstFreeObjects {
		f.Close()
		return nil, fmt.Errorf("%s is not a subvolume (%v)", f.Name(), err)
	}
	return f, nil
}

// nestedSubvolumes returns every subvolume nested, at any depth, in the
// subvolume whose root is open as root, as paths relative to it; a
// subvolume comes after the one that contains it.
func nestedSubvolumes(root *os.File) ([]string, error) {
	var all []string
	queue := []string{"."}
	for len(queue) > 0 {
		rel := queue[0]
		queue = queue[1:]
		f := root
		if rel != "." {
			var err error
			if f, err = openSubvolume(root, rel); err != nil {
				return nil, err
			}
		}
		kids, err := childSubvolumes(int(f.Fd()))
		if f != root {
			f.Close()
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path.Join(root.Name(), rel), err)
		}
		for _, k := range kids {
			p := path.Join(rel, k)
			all = append(all, p)
			queue = append(queue, p)
		}
	}
	return all, nil
}

// takeTree snapshots src, which has the nested subvolumes kids (as
// nestedSubvolumes returns them), into dir/dataName: the subvolume src
// into dir/buildName, writable; then each nested subvolume into the empty
// directory that stands for it in the copy of its parent; then, unless
// writable, every subvolume of the tree read-only, the nested ones first;
// last the rename of buildName to dataName. The snapshots are taken one
// after the other, not at one instant. On failure the tree is destroyed.
func (b *Backend) takeTree(dir, src *os.File, kids []string, writable bool) error {
	err := b.buildTree(dir, src, kids, writable)
	if err != nil {
		if e := destroyTree(dir, buildName); e != nil {
			b.log.WithError(e).WithField("path", path.Join(dir.Name(), buildName)).Error("Removing a half-built recursive snapshot")
		}
	}
	return err
}

func (b *Backend) buildTree(dir, src *os.File, kids []string, writable bool) error {
	if err := snapCreate(int(dir.Fd()), int(src.Fd()), buildName, false); err != nil {
		return fmt.Errorf("SNAP_CREATE_V2: %w", err)
	}
	built, err := openSubvolume(dir, buildName)
	if err != nil {
		return err
	}
	defer built.Close()
	for _, k := range kids {
		if err := snapshotInto(built, src, k); err != nil {
			return fmt.Errorf("nested subvolume %s: %w", k, err)
		}
	}
	if !writable {
		for i := len(kids) - 1; i >= 0; i-- {
			if err := setReadOnlyAt(built, kids[i]); err != nil {
				return fmt.Errorf("nested subvolume %s: %w", kids[i], err)
			}
		}
		if err := setReadOnlyAt(built, "."); err != nil {
			return err
		}
	}
	if err := unix.Renameat(int(dir.Fd()), buildName, int(dir.Fd()), dataName); err != nil {
		return fmt.Errorf("rename %s to %s: %w", buildName, dataName, err)
	}
	return nil
}

// snapshotInto snapshots the subvolume src/rel to built/rel, replacing the
// empty directory that stands for it there.
func snapshotInto(built, src *os.File, rel string) error {
	from, err := openSubvolume(src, rel)
	if err != nil {
		return err
	}
	defer from.Close()
	parent, err := openBeneath(built, path.Dir(rel))
	if err != nil {
		return err
	}
	defer parent.Close()
	name := path.Base(rel)
	if err := unix.Unlinkat(int(parent.Fd()), name, unix.AT_REMOVEDIR); err != nil && err != unix.ENOENT {
		return fmt.Errorf("rmdir the placeholder: %w", err)
	}
	if err := snapCreate(int(parent.Fd()), int(from.Fd()), name, false); err != nil {
		return fmt.Errorf("SNAP_CREATE_V2: %w", err)
	}
	return nil
}

// setReadOnlyAt sets the read-only flag of the subvolume root/rel.
func setReadOnlyAt(root *os.File, rel string) error {
	f, err := openSubvolume(root, rel)
	if err != nil {
		return err
	}
	defer f.Close()
	flags, err := getFlags(int(f.Fd()))
	if err != nil {
		return fmt.Errorf("SUBVOL_GETFLAGS: %w", err)
	}
	if flags&subvolRDOnly != 0 {
		return nil
	}
	if err := setFlags(int(f.Fd()), flags|subvolRDOnly); err != nil {
		return fmt.Errorf("SUBVOL_SETFLAGS: %w", err)
	}
	return nil
}

// destroyTree deletes the subvolume dir/name and every subvolume nested in
// it, deepest first (SNAP_DESTROY refuses a subvolume that holds others).
// The read-only flag of the subvolumes that hold others is cleared first,
// so that their entries can be removed. A missing dir/name is not an
// error.
func destroyTree(dir *os.File, name string) error {
	root, err := openSubvolume(dir, name)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		// Not a subvolume (or unreadable): let SNAP_DESTROY say why.
		if err := snapDestroy(int(dir.Fd()), name); err != nil && err != unix.ENOENT {
			return fmt.Errorf("SNAP_DESTROY %s: %w", name, err)
		}
		return nil
	}
	kids, err := nestedSubvolumes(root)
	if err == nil && len(kids) > 0 {
		err = destroyNested(root, kids)
	}
	root.Close()
	if err != nil {
		return err
	}
	if err := snapDestroy(int(dir.Fd()), name); err != nil && err != unix.ENOENT {
		return fmt.Errorf("SNAP_DESTROY %s: %w", name, err)
	}
	return nil
}

func destroyNested(root *os.File, kids []string) error {
	for _, rel := range append([]string{"."}, kids...) {
		f, err := openSubvolume(root, rel)
		if err != nil {
			return err
		}
		flags, err := getFlags(int(f.Fd()))
		if err == nil && flags&subvolRDOnly != 0 {
			err = setFlags(int(f.Fd()), flags&^subvolRDOnly)
		}
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: clearing the read-only flag: %w", path.Join(root.Name(), rel), err)
		}
	}
	for i := len(kids) - 1; i >= 0; i-- {
		parent, err := openBeneath(root, path.Dir(kids[i]))
		if err != nil {
			return err
		}
		err = snapDestroy(int(parent.Fd()), path.Base(kids[i]))
		parent.Close()
		if err != nil && err != unix.ENOENT {
			return fmt.Errorf("SNAP_DESTROY %s: %w", path.Join(root.Name(), kids[i]), err)
		}
	}
	return nil
}
