package storagetest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// entry is what the suite compares between a volume and its snapshot.
type entry struct {
	Type  fs.FileMode // fs.ModeDir, fs.ModeSymlink or 0
	Perm  fs.FileMode // permission and set-id/sticky bits
	Size  int64
	Sum   [sha256.Size]byte // regular files
	Link  string            // symlinks
	Mtime time.Time
	UID   uint32
	GID   uint32
}

func (e entry) String() string {
	return fmt.Sprintf("type=%v perm=%v size=%d sum=%x link=%q mtime=%s uid=%d gid=%d",
		e.Type, e.Perm, e.Size, e.Sum[:4], e.Link, e.Mtime.UTC().Format(time.RFC3339Nano), e.UID, e.GID)
}

// manifest maps slash-separated paths relative to a tree root to entries.
type manifest map[string]entry

// scan records the tree at root without following symlinks.
func scan(t *testing.T, root string) manifest {
	t.Helper()
	m := manifest{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		st := info.Sys().(*syscall.Stat_t)
		e := entry{
			Type:  info.Mode().Type(),
			Perm:  info.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky),
			Mtime: info.ModTime(),
			UID:   st.Uid,
			GID:   st.Gid,
		}
		switch {
		case e.Type == fs.ModeSymlink:
			e.Link, err = os.Readlink(path)
			e.Perm = 0 // meaningless on Linux
		case e.Type.IsRegular():
			e.Size = info.Size()
			var data []byte
			data, err = os.ReadFile(path)
			e.Sum = sha256.Sum256(data)
		case e.Type == fs.ModeDir:
			if rel == "." {
				// The snapshot root's times and modes belong to the
				// backend's mechanism (a subvolume or dataset root).
				return nil
			}
		}
		m[filepath.ToSlash(rel)] = e
		return err
	})
	if err != nil {
		t.Fatalf("scan %s: %v", root, err)
	}
	return m
}

// withoutWriteBits is m as a backend that clears write bits shows it.
func (m manifest) withoutWriteBits() manifest {
	out := make(manifest, len(m))
	for k, e := range m {
		if e.Type != fs.ModeSymlink {
			e.Perm &^= 0o222
		}
		out[k] = e
	}
	return out
}

// diff describes how got differs from want, or returns "".
func diff(want, got manifest) string {
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		w, wok := want[k]
		g, gok := got[k]
		switch {
		case !gok:
			fmt.Fprintf(&b, "missing %s\n", k)
		case !wok:
			fmt.Fprintf(&b, "unexpected %s\n", k)
		case w.String() != g.String():
			fmt.Fprintf(&b, "%s:\n\twant %v\n\tgot  %v\n", k, w, g)
		}
	}
	return b.String()
}

// populate writes the sample tree the suite snapshots: modes, nested and
// empty directories, empty and large files, and symlinks that are relative,
// absolute, dangling and pointing out of the volume.
func populate(t *testing.T, root string) {
	t.Helper()
	big := make([]byte, 3<<20+123)
	for i := range big {
		big[i] = byte(i*7 + i>>11)
	}
	files := []struct {
		path string
		data []byte
		perm fs.FileMode
	}{
		{"hello.txt", []byte("hello\n"), 0o644},
		{"script.sh", []byte("#!/bin/sh\necho hi\n"), 0o755},
		{"private", []byte("secret\n"), 0o600},
		{"empty", nil, 0o644},
		{"big.bin", big, 0o640},
		{"a/b/c/deep.txt", []byte("deep\n"), 0o644},
		{"space dir/file with space", []byte("spaces\n"), 0o644},
		{"readonly.txt", []byte("r/o\n"), 0o444},
	}
	for _, f := range files {
		p := filepath.Join(root, f.path)
		mustDo(t, os.MkdirAll(filepath.Dir(p), 0o755))
		mustDo(t, os.WriteFile(p, f.data, 0o600))
		mustDo(t, os.Chmod(p, f.perm))
	}
	mustDo(t, os.MkdirAll(filepath.Join(root, "emptydir"), 0o755))
	mustDo(t, os.Mkdir(filepath.Join(root, "closed"), 0o700))
	mustDo(t, os.Chmod(filepath.Join(root, "a/b"), 0o750))
	for link, target := range map[string]string{
		"link-rel":      "hello.txt",
		"a/link-up":     "../hello.txt",
		"link-abs":      "/etc/hostname",
		"link-dangling": "does/not/exist",
		"link-escape":   "../../../../outside",
		"link-dir":      "a/b",
	} {
		mustDo(t, os.Symlink(target, filepath.Join(root, link)))
	}
	if os.Geteuid() == 0 {
		mustDo(t, os.Lchown(filepath.Join(root, "private"), 1234, 5678))
		mustDo(t, os.Lchown(filepath.Join(root, "link-rel"), 1234, 5678))
		mustDo(t, os.Chown(filepath.Join(root, "closed"), 4321, 8765))
	}
	// Distinct, whole-second times in the past, files before directories.
	old := time.Date(2020, 2, 29, 12, 34, 56, 0, time.UTC)
	mustDo(t, os.Chtimes(filepath.Join(root, "hello.txt"), old, old))
	mustDo(t, os.Chtimes(filepath.Join(root, "a/b/c"), old.Add(time.Hour), old.Add(time.Hour)))
}

// mutate changes the tree written by populate in every way populate's
// content could be lost or leak into a snapshot.
func mutate(t *testing.T, root string) {
	t.Helper()
	mustDo(t, os.WriteFile(filepath.Join(root, "hello.txt"), []byte("changed\n"), 0o644))
	mustDo(t, os.WriteFile(filepath.Join(root, "new.txt"), []byte("new\n"), 0o644))
	mustDo(t, os.WriteFile(filepath.Join(root, "a/b/c/new.txt"), []byte("new\n"), 0o644))
	mustDo(t, os.Remove(filepath.Join(root, "empty")))
	mustDo(t, os.Chmod(filepath.Join(root, "script.sh"), 0o600))
	mustDo(t, os.Remove(filepath.Join(root, "link-rel")))
	mustDo(t, os.Symlink("script.sh", filepath.Join(root, "link-rel")))
	f, err := os.OpenFile(filepath.Join(root, "big.bin"), os.O_WRONLY, 0)
	mustDo(t, err)
	_, err = f.WriteAt([]byte("overwritten"), 1<<20)
	mustDo(t, err)
	mustDo(t, f.Close())
}

// tryWrite attempts every kind of write in a snapshot tree made by
// populate and returns the ones that succeeded.
func tryWrite(path string) []string {
	var done []string
	if err := os.WriteFile(filepath.Join(path, "created-in-snapshot"), []byte("x"), 0o644); err == nil {
		done = append(done, "create a file")
	}
	if f, err := os.OpenFile(filepath.Join(path, "hello.txt"), os.O_WRONLY|os.O_APPEND, 0); err == nil {
		f.Close()
		done = append(done, "open a file for writing")
	}
	if err := os.Mkdir(filepath.Join(path, "a/mkdir-in-snapshot"), 0o755); err == nil {
		done = append(done, "make a directory")
	}
	if err := os.Remove(filepath.Join(path, "private")); err == nil || errors.Is(err, fs.ErrNotExist) {
		done = append(done, "remove a file")
	}
	return done
}

// writeBits lists the entries below root, symlinks excepted, that have a
// write permission bit.
func writeBits(t *testing.T, root string) []string {
	t.Helper()
	var found []string
	for p, e := range scan(t, root) {
		if e.Type != fs.ModeSymlink && e.Perm&0o222 != 0 {
			found = append(found, p)
		}
	}
	sort.Strings(found)
	return found
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
