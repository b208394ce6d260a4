package storagetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsrvpd/fsrvpd/storage"
)

// Factory prepares a fresh, empty backend for one test case. It registers
// its own cleanup with t.Cleanup.
type Factory func(t *testing.T) Fixture

// Fixture is what a Factory prepared.
type Fixture struct {
	// Backend is the backend under test.
	Backend storage.Backend
	// Volumes are the roots of at least two distinct volumes of Backend,
	// writable and empty.
	Volumes []string
	// Reopen returns a new Backend on the same volumes and snapshot store,
	// as a restarted daemon would. Nil skips ListAfterReopen (a failure in
	// strict mode).
	Reopen func(t *testing.T) storage.Backend
	// Crash leaves the traces of an interrupted Create. Nil skips
	// CrashLeftovers (a failure in strict mode).
	Crash CrashSimulator
	// ReadOnlyByModeBits says that the backend makes snapshots read-only by
	// clearing write permission bits, which root ignores. As root the suite
	// then checks the bits instead of attempting writes, and it compares the
	// modes of read-only snapshots without their write bits.
	ReadOnlyByModeBits bool
}

// CrashSimulator is implemented by a backend's test helpers, which know
// its internals.
type CrashSimulator interface {
	// LeaveInterruptedCreate leaves on disk what a Create of id on vol
	// interrupted by a crash at the worst moment leaves.
	LeaveInterruptedCreate(t *testing.T, vol storage.Volume, id string)
	// InterruptedCreateExists reports whether such traces of id remain.
	InterruptedCreateExists(t *testing.T, id string) bool
}

// Case is one named conformance test.
type Case struct {
	Name string
	Test func(t *testing.T, fx Fixture)
}

// Cases are the tests Run runs, in order.
var Cases = []Case{
	{"VolumeOfRootAndSubdir", testVolumeOfRootAndSubdir},
	{"VolumeNotFound", testVolumeNotFound},
	{"VolumeNotSupported", testVolumeNotSupported},
	{"NestedMount", testNestedMount},
	{"CreateListStatDelete", testCreateListStatDelete},
	{"PointInTime", testPointInTime},
	{"WritableKeepsModes", testWritableKeepsModes},
	{"ReadOnlySnapshot", testReadOnlySnapshot},
	{"WritableThenSetReadOnly", testWritableThenSetReadOnly},
	{"DuplicateID", testDuplicateID},
	{"InvalidID", testInvalidID},
	{"Missing", testMissing},
	{"ManyPerSecond", testManyPerSecond},
	{"ConcurrentCreates", testConcurrentCreates},
	{"ConcurrentSameID", testConcurrentSameID},
	{"CanceledCreate", testCanceledCreate},
	{"CrashLeftovers", testCrashLeftovers},
	{"ListAfterReopen", testListAfterReopen},
}

// Run runs every Case as a parallel subtest, each on its own Fixture.
func Run(t *testing.T, f Factory) {
	for _, c := range Cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			fx := f(t)
			if len(fx.Volumes) < 2 || fx.Volumes[0] == fx.Volumes[1] {
				t.Fatalf("factory returned volumes %q, want two distinct ones", fx.Volumes)
			}
			c.Test(t, fx)
		})
	}
}

func volume(t *testing.T, b storage.Backend, path string) storage.Volume {
	t.Helper()
	v, err := b.Volume(t.Context(), path)
	if err != nil {
		t.Fatalf("Volume(%s): %v", path, err)
	}
	return v
}

func create(t *testing.T, b storage.Backend, vol storage.Volume, id string, opts storage.CreateOptions) storage.Snapshot {
	t.Helper()
	s, err := b.Create(t.Context(), vol, id, opts)
	if err != nil {
		t.Fatalf("Create(%s, %s): %v", vol.Root, id, err)
	}
	if s.ID != id || s.VolumeID != vol.ID || s.VolumeRoot != vol.Root || s.ReadOnly == opts.Writable || s.Created.IsZero() || s.Path == "" {
		t.Fatalf("Create(%s, %s, %+v) = %+v", vol.Root, id, opts, s)
	}
	return s
}

func listed(t *testing.T, b storage.Backend) map[string]storage.Snapshot {
	t.Helper()
	list, err := b.List(t.Context())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	m := make(map[string]storage.Snapshot, len(list))
	for _, s := range list {
		if _, dup := m[s.ID]; dup {
			t.Fatalf("List reports %s twice", s.ID)
		}
		m[s.ID] = s
	}
	return m
}

func same(a, b storage.Snapshot) bool {
	return a.ID == b.ID && a.VolumeID == b.VolumeID && a.VolumeRoot == b.VolumeRoot &&
		a.Path == b.Path && a.ReadOnly == b.ReadOnly && a.Created.Equal(b.Created)
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v, want %v", what, err, target)
	}
}

func testVolumeOfRootAndSubdir(t *testing.T, fx Fixture) {
	b := fx.Backend
	sub := filepath.Join(fx.Volumes[0], "share", "sub")
	mustDo(t, os.MkdirAll(sub, 0o755))
	mustDo(t, os.WriteFile(filepath.Join(sub, "marker"), []byte("sub"), 0o644))
	root := volume(t, b, fx.Volumes[0])
	if v := volume(t, b, sub); v != root {
		t.Fatalf("Volume(%s) = %+v, want the volume of its root %+v", sub, v, root)
	}
	if v := volume(t, b, fx.Volumes[0]+"/share/../share/sub/"); v != root {
		t.Fatalf("Volume of an unclean path = %+v, want %+v", v, root)
	}
	link := filepath.Join(t.TempDir(), "link")
	mustDo(t, os.Symlink(sub, link))
	if v := volume(t, b, link); v != root {
		t.Fatalf("Volume through a symlink = %+v, want %+v", v, root)
	}
	other := volume(t, b, fx.Volumes[1])
	if other.ID == root.ID {
		t.Fatalf("volumes %s and %s share the ID %s", fx.Volumes[0], fx.Volumes[1], root.ID)
	}
	s := create(t, b, root, "subdir", storage.CreateOptions{})
	rel, err := filepath.Rel(root.Root, sub)
	mustDo(t, err)
	data, err := os.ReadFile(filepath.Join(s.Path, rel, "marker"))
	if err != nil || string(data) != "sub" {
		t.Fatalf("snapshot path + relative path of the subdir: %q, %v", data, err)
	}
}

func testVolumeNotFound(t *testing.T, fx Fixture) {
	_, err := fx.Backend.Volume(t.Context(), filepath.Join(fx.Volumes[0], "no", "such", "dir"))
	wantErr(t, "Volume of a missing path", err, storage.ErrNotFound)
}

func testVolumeNotSupported(t *testing.T, fx Fixture) {
	_, err := fx.Backend.Volume(t.Context(), t.TempDir())
	wantErr(t, "Volume of a directory outside every volume", err, storage.ErrNotSupported)
	_, err = fx.Backend.Volume(t.Context(), "relative/path")
	wantErr(t, "Volume of a relative path", err, storage.ErrNotSupported)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = fx.Backend.Volume(ctx, fx.Volumes[0])
	wantErr(t, "Volume with a canceled context", err, context.Canceled)
}

func testCreateListStatDelete(t *testing.T, fx Fixture) {
	b := fx.Backend
	if got := listed(t, b); len(got) != 0 {
		t.Fatalf("a fresh backend lists %v", got)
	}
	vol := volume(t, b, fx.Volumes[0])
	s := create(t, b, vol, "one", storage.CreateOptions{})
	st, err := b.Stat(t.Context(), "one")
	if err != nil || !same(st, s) {
		t.Fatalf("Stat = %+v, %v; want %+v", st, err, s)
	}
	if l := listed(t, b); len(l) != 1 || !same(l["one"], s) {
		t.Fatalf("List = %+v, want [%+v]", l, s)
	}
	mustDo(t, b.Delete(t.Context(), "one"))
	if l := listed(t, b); len(l) != 0 {
		t.Fatalf("List after Delete = %+v", l)
	}
	_, err = b.Stat(t.Context(), "one")
	wantErr(t, "Stat after Delete", err, storage.ErrNotFound)
	if _, err := os.Lstat(s.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("snapshot path %s after Delete: %v", s.Path, err)
	}
	create(t, b, vol, "one", storage.CreateOptions{})
}

func testPointInTime(t *testing.T, fx Fixture) {
	b := fx.Backend
	populate(t, fx.Volumes[0])
	want := scan(t, fx.Volumes[0])
	s := create(t, b, volume(t, b, fx.Volumes[0]), "pit", storage.CreateOptions{})
	mutate(t, fx.Volumes[0])
	if fx.ReadOnlyByModeBits {
		want = want.withoutWriteBits()
	}
	if d := diff(want, scan(t, s.Path)); d != "" {
		t.Errorf("snapshot differs from the volume at Create:\n%s", d)
	}
}

func testWritableKeepsModes(t *testing.T, fx Fixture) {
	b := fx.Backend
	populate(t, fx.Volumes[1])
	want := scan(t, fx.Volumes[1])
	s := create(t, b, volume(t, b, fx.Volumes[1]), "w", storage.CreateOptions{Writable: true})
	mutate(t, fx.Volumes[1])
	if d := diff(want, scan(t, s.Path)); d != "" {
		t.Errorf("writable snapshot differs from the volume at Create:\n%s", d)
	}
}

// checkReadOnly checks that the snapshot at path, made from a populated
// volume, cannot be written through.
func checkReadOnly(t *testing.T, fx Fixture, path string) {
	t.Helper()
	if fx.ReadOnlyByModeBits && os.Geteuid() == 0 {
		if w := writeBits(t, path); len(w) > 0 {
			t.Errorf("read-only snapshot has write bits on %q", w)
		}
		return
	}
	before := scan(t, path)
	if done := tryWrite(path); len(done) > 0 {
		t.Errorf("writes through a read-only snapshot succeeded: %s", strings.Join(done, ", "))
	}
	if d := diff(before, scan(t, path)); d != "" {
		t.Errorf("read-only snapshot changed:\n%s", d)
	}
}

func testReadOnlySnapshot(t *testing.T, fx Fixture) {
	b := fx.Backend
	populate(t, fx.Volumes[0])
	s := create(t, b, volume(t, b, fx.Volumes[0]), "ro", storage.CreateOptions{})
	checkReadOnly(t, fx, s.Path)
	if st, err := b.Stat(t.Context(), "ro"); err != nil || !st.ReadOnly {
		t.Fatalf("Stat = %+v, %v; want read-only", st, err)
	}
	mustDo(t, b.SetReadOnly(t.Context(), "ro"))
}

func testWritableThenSetReadOnly(t *testing.T, fx Fixture) {
	b := fx.Backend
	populate(t, fx.Volumes[0])
	s := create(t, b, volume(t, b, fx.Volumes[0]), "rw", storage.CreateOptions{Writable: true})
	if l := listed(t, b); l["rw"].ReadOnly {
		t.Fatalf("List reports a writable snapshot read-only")
	}
	mustDo(t, os.WriteFile(filepath.Join(s.Path, "recovered.txt"), []byte("auto-recovery\n"), 0o644))
	mustDo(t, os.Remove(filepath.Join(s.Path, "empty")))
	mustDo(t, b.SetReadOnly(t.Context(), "rw"))
	st, err := b.Stat(t.Context(), "rw")
	if err != nil || !st.ReadOnly || st.Path != s.Path || !st.Created.Equal(s.Created) {
		t.Fatalf("Stat after SetReadOnly = %+v, %v; want read-only %+v", st, err, s)
	}
	if l := listed(t, b); !l["rw"].ReadOnly {
		t.Fatalf("List after SetReadOnly reports the snapshot writable")
	}
	data, err := os.ReadFile(filepath.Join(s.Path, "recovered.txt"))
	if err != nil || string(data) != "auto-recovery\n" {
		t.Fatalf("write made before SetReadOnly: %q, %v", data, err)
	}
	checkReadOnly(t, fx, s.Path)
	mustDo(t, b.SetReadOnly(t.Context(), "rw"))
}

func testDuplicateID(t *testing.T, fx Fixture) {
	b := fx.Backend
	v0, v1 := volume(t, b, fx.Volumes[0]), volume(t, b, fx.Volumes[1])
	s := create(t, b, v0, "dup", storage.CreateOptions{})
	_, err := b.Create(t.Context(), v0, "dup", storage.CreateOptions{})
	wantErr(t, "Create of a taken id", err, storage.ErrAlreadyExists)
	_, err = b.Create(t.Context(), v1, "dup", storage.CreateOptions{Writable: true})
	wantErr(t, "Create of an id taken on another volume", err, storage.ErrAlreadyExists)
	if st, err := b.Stat(t.Context(), "dup"); err != nil || !same(st, s) {
		t.Fatalf("the first snapshot changed: Stat = %+v, %v; want %+v", st, err, s)
	}
}

func testInvalidID(t *testing.T, fx Fixture) {
	b := fx.Backend
	vol := volume(t, b, fx.Volumes[0])
	for _, id := range []string{"", "../x", "a/b", ".", "..", "-lead", "a b", "a_b", "snap@{x}", "é", strings.Repeat("a", 65)} {
		_, err := b.Create(t.Context(), vol, id, storage.CreateOptions{})
		wantErr(t, fmt.Sprintf("Create(%q)", id), err, storage.ErrInvalidID)
		wantErr(t, fmt.Sprintf("Stat(%q)", id), second(b.Stat(t.Context(), id)), storage.ErrInvalidID)
		wantErr(t, fmt.Sprintf("Delete(%q)", id), b.Delete(t.Context(), id), storage.ErrInvalidID)
		wantErr(t, fmt.Sprintf("SetReadOnly(%q)", id), b.SetReadOnly(t.Context(), id), storage.ErrInvalidID)
	}
	create(t, b, vol, strings.Repeat("a", 64), storage.CreateOptions{})
	if l := listed(t, b); len(l) != 1 {
		t.Fatalf("List = %v, want only the 64-character id", l)
	}
}

func second[T any](_ T, err error) error { return err }

func testMissing(t *testing.T, fx Fixture) {
	b := fx.Backend
	create(t, b, volume(t, b, fx.Volumes[0]), "present", storage.CreateOptions{})
	wantErr(t, "Delete of a missing id", b.Delete(t.Context(), "missing"), storage.ErrNotFound)
	wantErr(t, "Stat of a missing id", second(b.Stat(t.Context(), "missing")), storage.ErrNotFound)
	wantErr(t, "SetReadOnly of a missing id", b.SetReadOnly(t.Context(), "missing"), storage.ErrNotFound)
	mustDo(t, b.Delete(t.Context(), "present"))
	wantErr(t, "second Delete", b.Delete(t.Context(), "present"), storage.ErrNotFound)
}

// testManyPerSecond takes snapshots faster than a clock with one-second
// resolution can tell apart (Samba's btrfs module names them by time).
func testManyPerSecond(t *testing.T, fx Fixture) {
	b := fx.Backend
	vol := volume(t, b, fx.Volumes[0])
	mustDo(t, os.WriteFile(filepath.Join(fx.Volumes[0], "f"), []byte("x"), 0o644))
	paths := map[string]bool{}
	for i := range 20 {
		s := create(t, b, vol, fmt.Sprintf("burst-%02d", i), storage.CreateOptions{Writable: i%2 == 0})
		if paths[s.Path] {
			t.Fatalf("snapshot %s reuses the path %s", s.ID, s.Path)
		}
		paths[s.Path] = true
	}
	l := listed(t, b)
	for i := range 20 {
		id := fmt.Sprintf("burst-%02d", i)
		if s, ok := l[id]; !ok || s.ReadOnly == (i%2 == 0) {
			t.Errorf("List: %s = %+v, %v", id, s, ok)
		}
	}
	if len(l) != 20 {
		t.Errorf("List reports %d snapshots, want 20", len(l))
	}
}

func testConcurrentCreates(t *testing.T, fx Fixture) {
	b := fx.Backend
	const perVolume = 4
	errs := make(chan error, perVolume*len(fx.Volumes))
	for vi, root := range fx.Volumes {
		mustDo(t, os.WriteFile(filepath.Join(root, "which"), []byte(root), 0o644))
		vol := volume(t, b, root)
		for i := range perVolume {
			go func() {
				_, err := b.Create(t.Context(), vol, fmt.Sprintf("v%d-%d", vi, i), storage.CreateOptions{})
				errs <- err
			}()
		}
	}
	for range perVolume * len(fx.Volumes) {
		mustDo(t, <-errs)
	}
	l := listed(t, b)
	if len(l) != perVolume*len(fx.Volumes) {
		t.Fatalf("List reports %d snapshots, want %d", len(l), perVolume*len(fx.Volumes))
	}
	for vi, root := range fx.Volumes {
		for i := range perVolume {
			s := l[fmt.Sprintf("v%d-%d", vi, i)]
			data, err := os.ReadFile(filepath.Join(s.Path, "which"))
			if err != nil || string(data) != root {
				t.Errorf("snapshot %s holds %q, %v; want the content of %s", s.ID, data, err, root)
			}
		}
	}
}

func testConcurrentSameID(t *testing.T, fx Fixture) {
	b := fx.Backend
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		vol := volume(t, b, fx.Volumes[i%2])
		go func() {
			_, err := b.Create(t.Context(), vol, "contended", storage.CreateOptions{})
			errs <- err
		}()
	}
	won := 0
	for range n {
		switch err := <-errs; {
		case err == nil:
			won++
		case !errors.Is(err, storage.ErrAlreadyExists):
			t.Errorf("concurrent Create of one id: %v, want nil or ErrAlreadyExists", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d concurrent Creates of one id succeeded, want 1", won)
	}
	if l := listed(t, b); len(l) != 1 {
		t.Fatalf("List = %v, want one snapshot", l)
	}
}

// testCanceledCreate: a Create whose context is done may succeed (it was
// fast) or fail, but a failure must leave nothing.
func testCanceledCreate(t *testing.T, fx Fixture) {
	b := fx.Backend
	populate(t, fx.Volumes[0])
	vol := volume(t, b, fx.Volumes[0])
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := b.Create(ctx, vol, "canceled", storage.CreateOptions{}); err == nil {
		mustDo(t, b.Delete(t.Context(), "canceled"))
	}
	if l := listed(t, b); len(l) != 0 {
		t.Fatalf("List after a canceled Create = %v", l)
	}
	wantErr(t, "Stat after a canceled Create", second(b.Stat(t.Context(), "canceled")), storage.ErrNotFound)
	create(t, b, vol, "canceled", storage.CreateOptions{})
}

func testCrashLeftovers(t *testing.T, fx Fixture) {
	Require(t, "a CrashSimulator", fx.Crash != nil, "the factory provides none")
	b := fx.Backend
	populate(t, fx.Volumes[0])
	vol := volume(t, b, fx.Volumes[0])
	create(t, b, vol, "done", storage.CreateOptions{})
	for _, id := range []string{"crash-list", "crash-delete", "crash-create"} {
		fx.Crash.LeaveInterruptedCreate(t, vol, id)
		if !fx.Crash.InterruptedCreateExists(t, id) {
			t.Fatalf("the simulator left no trace of %s", id)
		}
	}

	// Delete of an interrupted id removes its leftovers, and only once.
	mustDo(t, b.Delete(t.Context(), "crash-delete"))
	if fx.Crash.InterruptedCreateExists(t, "crash-delete") {
		t.Errorf("Delete left the leftovers of crash-delete")
	}
	wantErr(t, "second Delete of crash-delete", b.Delete(t.Context(), "crash-delete"), storage.ErrNotFound)

	// Create of an interrupted id succeeds.
	s := create(t, b, vol, "crash-create", storage.CreateOptions{})
	if _, err := os.Stat(filepath.Join(s.Path, "hello.txt")); err != nil {
		t.Errorf("snapshot made over leftovers: %v", err)
	}

	// List reports only finished snapshots and removes the leftovers.
	wantErr(t, "Stat of an interrupted id", second(b.Stat(t.Context(), "crash-list")), storage.ErrNotFound)
	l := listed(t, b)
	if _, ok := l["crash-list"]; ok || len(l) != 2 {
		t.Fatalf("List = %v, want done and crash-create", l)
	}
	if fx.Crash.InterruptedCreateExists(t, "crash-list") {
		t.Errorf("List left the leftovers of crash-list")
	}
}

func testListAfterReopen(t *testing.T, fx Fixture) {
	Require(t, "Fixture.Reopen", fx.Reopen != nil, "the factory provides none")
	b := fx.Backend
	want := map[string]storage.Snapshot{}
	for i, root := range fx.Volumes {
		mustDo(t, os.WriteFile(filepath.Join(root, "f"), []byte(root), 0o644))
		s := create(t, b, volume(t, b, root), fmt.Sprintf("keep-%d", i), storage.CreateOptions{Writable: i == 0})
		want[s.ID] = s
	}
	create(t, b, volume(t, b, fx.Volumes[0]), "gone", storage.CreateOptions{})
	mustDo(t, b.Delete(t.Context(), "gone"))

	b2 := fx.Reopen(t)
	got := listed(t, b2)
	if len(got) != len(want) {
		t.Fatalf("reopened List = %v, want %v", got, want)
	}
	for id, s := range want {
		if !same(got[id], s) {
			t.Errorf("reopened List: %+v, want %+v", got[id], s)
		}
		if st, err := b2.Stat(t.Context(), id); err != nil || !same(st, s) {
			t.Errorf("reopened Stat(%s) = %+v, %v; want %+v", id, st, err, s)
		}
	}
	mustDo(t, b2.SetReadOnly(t.Context(), "keep-0"))
	mustDo(t, b2.Delete(t.Context(), "keep-1"))
	if l := listed(t, b); len(l) != 1 || !l["keep-0"].ReadOnly {
		t.Fatalf("first backend after changes by the second: List = %v", l)
	}
}
