package btrfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/fsrvpd/fsrvpd/storage"
	"github.com/fsrvpd/fsrvpd/storage/storagetest"
)

// setup makes a filesystem with n subvolumes vol<i> and a backend whose
// SnapshotDir is a directory of the top level.
func setup(t testing.TB, n int) (mnt string, b *Backend, vols []storage.Volume) {
	t.Helper()
	mnt = loopBtrfs(t)
	b = mustNew(t, Config{SnapshotDir: filepath.Join(mnt, "snaps"), Logger: loggerFor(t)})
	t.Cleanup(func() { removeAll(t, b) })
	for i := range n {
		root := subvolume(t, filepath.Join(mnt, fmt.Sprintf("vol%d", i)))
		v, err := b.Volume(t.Context(), root)
		if err != nil {
			t.Fatal(err)
		}
		vols = append(vols, v)
	}
	return mnt, b, vols
}

func loggerFor(t testing.TB) *logrus.Entry {
	if _, ok := t.(*testing.B); ok {
		return nil // benchmarks: no log lines in the timings
	}
	return storagetest.Logger(t)
}

func TestVolumeIsSubvolume(t *testing.T) {
	mnt, b, vols := setup(t, 1)
	sub := filepath.Join(vols[0].Root, "share", "sub")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{vols[0].Root, sub, filepath.Join(sub, "..")} {
		v, err := b.Volume(t.Context(), p)
		if err != nil || v != vols[0] {
			t.Errorf("Volume(%s) = %+v, %v; want %+v", p, v, err, vols[0])
		}
	}
	show := run(t, "btrfs", "subvolume", "show", vols[0].Root)
	if !strings.Contains(show, vols[0].ID) {
		t.Errorf("volume ID %s is not the subvolume UUID:\n%s", vols[0].ID, show)
	}
	// A directory of the top level: the top level has nested subvolumes.
	plain := filepath.Join(mnt, "plain")
	if err := os.Mkdir(plain, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Volume(t.Context(), plain); !errors.Is(err, storage.ErrNotSupported) {
		t.Errorf("Volume of a directory of the top level: %v, want ErrNotSupported", err)
	}
	// A bind mount of a subdirectory hides the subvolume root.
	bind := filepath.Join(t.TempDir(), "bind")
	if err := os.Mkdir(bind, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(sub, bind, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(bind, unix.MNT_DETACH)
	if _, err := b.Volume(t.Context(), bind); !errors.Is(err, storage.ErrNotSupported) {
		t.Errorf("Volume of a bind-mounted subdirectory: %v, want ErrNotSupported", err)
	}
}

func TestNestedSubvolume(t *testing.T) {
	_, b, vols := setup(t, 1)
	dir := filepath.Join(vols[0].Root, "a")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(vols[0].Root, "other")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	nested := subvolume(t, filepath.Join(dir, "nested"))
	defer run(t, "btrfs", "subvolume", "delete", nested)
	for _, p := range []string{vols[0].Root, dir, other} {
		if _, err := b.Volume(t.Context(), p); !errors.Is(err, storage.ErrNotSupported) {
			t.Errorf("Volume(%s) with a nested subvolume: %v, want ErrNotSupported", p, err)
		}
	}
	v, err := b.Volume(t.Context(), nested)
	if err != nil || v.Root != nested || v.ID == vols[0].ID {
		t.Errorf("Volume of the nested subvolume = %+v, %v", v, err)
	}
}

func TestReadOnlyIsEnforced(t *testing.T) {
	_, b, vols := setup(t, 1)
	if err := os.WriteFile(filepath.Join(vols[0].Root, "f"), []byte("x"), 0o666); err != nil {
		t.Fatal(err)
	}
	ro, err := b.Create(t.Context(), vols[0], "ro", storage.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rw, err := b.Create(t.Context(), vols[0], "rw", storage.CreateOptions{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	checkRO := func(path string, want bool) {
		t.Helper()
		err := os.WriteFile(filepath.Join(path, "f"), []byte("y"), 0o666)
		if want && !errors.Is(err, unix.EROFS) || !want && err != nil {
			t.Errorf("write into %s: %v, want EROFS: %v", path, err, want)
		}
		prop := strings.TrimSpace(run(t, "btrfs", "property", "get", "-ts", path, "ro"))
		if prop != fmt.Sprintf("ro=%v", want) {
			t.Errorf("btrfs property get %s: %q, want ro=%v", path, prop, want)
		}
	}
	checkRO(ro.Path, true)
	checkRO(rw.Path, false)
	if err := b.SetReadOnly(t.Context(), "rw"); err != nil {
		t.Fatal(err)
	}
	checkRO(rw.Path, true)
	if s, err := b.Stat(t.Context(), "rw"); err != nil || !s.ReadOnly {
		t.Errorf("Stat after SetReadOnly = %+v, %v", s, err)
	}
}

func TestCreateBatch(t *testing.T) {
	const n = 4
	_, b, vols := setup(t, n)
	reqs := func(prefix string) []storage.Request {
		var r []storage.Request
		for i, v := range vols {
			if err := os.WriteFile(filepath.Join(v.Root, "which"), []byte(v.Root), 0o644); err != nil {
				t.Fatal(err)
			}
			r = append(r, storage.Request{Volume: v, ID: fmt.Sprintf("%s-%d", prefix, i), Options: storage.CreateOptions{Writable: i == 0}})
		}
		return r
	}
	got, err := b.CreateBatch(t.Context(), reqs("ok"))
	if err != nil || len(got) != n {
		t.Fatalf("CreateBatch = %v, %v", got, err)
	}
	for i, s := range got {
		data, err := os.ReadFile(filepath.Join(s.Path, "which"))
		if s.ID != fmt.Sprintf("ok-%d", i) || s.VolumeID != vols[i].ID || s.ReadOnly != (i != 0) || err != nil || string(data) != vols[i].Root {
			t.Errorf("snapshot %d = %+v, holding %q, %v", i, s, data, err)
		}
	}

	// An id taken before the batch: nothing is taken.
	r := reqs("taken")
	r[2].ID = "ok-1"
	_, err = b.CreateBatch(t.Context(), r)
	wantOnly(t, b, err, storage.ErrAlreadyExists, n)
	// Two requests of one id.
	r = reqs("twice")
	r[3].ID = r[0].ID
	_, err = b.CreateBatch(t.Context(), r)
	wantOnly(t, b, err, storage.ErrAlreadyExists, n)
	// One ioctl failing among the parallel ones: the others are destroyed.
	beforeSnapCreate = func(id string) {
		if id == "late-2" {
			os.Mkdir(b.snapPath(id), 0o700)
		}
	}
	defer func() { beforeSnapCreate = func(string) {} }()
	_, err = b.CreateBatch(t.Context(), reqs("late"))
	os.Remove(b.snapPath("late-2"))
	if err == nil || !strings.Contains(err.Error(), "rolled back") {
		t.Errorf("CreateBatch with a failing ioctl: %v, want a rollback", err)
	}
	wantOnly(t, b, err, storage.ErrAlreadyExists, n)
	for i := range n {
		if _, err := os.Lstat(b.idDir(fmt.Sprintf("late-%d", i))); err == nil {
			t.Errorf("late-%d: directory left after the rollback", i)
		}
	}
}

// wantOnly checks that err is target and that only the n snapshots of the
// first batch exist.
func wantOnly(t *testing.T, b *Backend, err, target error, n int) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("CreateBatch: %v, want %v", err, target)
	}
	list, err := b.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		if !strings.HasPrefix(s.ID, "ok-") {
			t.Errorf("left after a failed batch: %+v", s)
		}
	}
	if len(list) != n {
		t.Errorf("List has %d snapshots, want %d", len(list), n)
	}
}

func TestUsage(t *testing.T) {
	mnt, b, vols := setup(t, 2)
	u, err := b.Usage(t.Context(), vols[0])
	if err != nil || u.Known || u.VolumeID != vols[0].ID {
		t.Fatalf("Usage without quotas = %+v, %v; want unknown", u, err)
	}
	run(t, "btrfs", "quota", "enable", mnt)
	run(t, "btrfs", "quota", "rescan", "-w", mnt)
	big := filepath.Join(vols[0].Root, "big")
	data := make([]byte, 8<<20)
	for i := range data {
		data[i] = byte(i * 31)
	}
	if err := os.WriteFile(big, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"u1", "u2"} {
		if _, err := b.Create(t.Context(), vols[0], id, storage.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(big, data, 0o644); err != nil { // rewrite: new extents
			t.Fatal(err)
		}
	}
	if _, err := b.Create(t.Context(), vols[1], "other", storage.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	run(t, "sync")
	u, err = b.Usage(t.Context(), vols[0])
	if err != nil || !u.Known || u.SnapshotBytes < 2*int64(len(data)) || u.SnapshotBytes > 3*int64(len(data)) {
		t.Errorf("Usage with quotas = %+v, %v; want about %d bytes", u, err, 2*len(data))
	}
	t.Logf("usage: %+v", u)
	u, err = b.Usage(t.Context(), vols[1])
	if err != nil || !u.Known || u.SnapshotBytes > 1<<20 {
		t.Errorf("Usage of a volume with an unchanged snapshot = %+v, %v", u, err)
	}
	t.Logf("usage: %+v", u)
}
