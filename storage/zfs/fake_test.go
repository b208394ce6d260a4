package zfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/fsrvpd/fsrvpd/storage"
	"github.com/fsrvpd/fsrvpd/storage/storagetest"
)

// fakeRunner answers commands with a function and records them.
type fakeRunner struct {
	mu     sync.Mutex
	calls  []string
	answer func(args []string) (string, string) // stdout, stderr (non-empty fails)
}

func (f *fakeRunner) Run(_ context.Context, name string, args ...string) ([]byte, error) {
	f.mu.Lock()
	f.calls = append(f.calls, strings.Join(args, " "))
	f.mu.Unlock()
	out, stderr := f.answer(args)
	if stderr != "" {
		return nil, &CommandError{Args: append([]string{name}, args...), Stderr: stderr, ExitCode: 1, Err: errors.New("exit status 1")}
	}
	return []byte(out), nil
}

// matching returns the recorded calls that start with prefix.
func (f *fakeRunner) matching(prefix string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var m []string
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			m = append(m, c)
		}
	}
	return m
}

// fakePools is a zfs with datasets tank/a, tank/b and other/c mounted at
// /fake/<name>, answering scans, the final get and everything else with
// success unless fail returns an error message for the command.
func fakePools(t *testing.T, fail func(args []string) string) (*Backend, *fakeRunner, []storage.Volume) {
	t.Helper()
	mi := filepath.Join(t.TempDir(), "mountinfo")
	lines := ""
	var vols []storage.Volume
	for i, ds := range []string{"tank/a", "tank/b", "other/c"} {
		root := "/fake/" + ds
		lines += fmt.Sprintf("%d 1 0:%d / %s rw,relatime - fuse.zfs %s rw\n", 40+i, 40+i, root, ds)
		vols = append(vols, storage.Volume{ID: fmt.Sprint(1000 + i), Root: root})
	}
	if err := os.WriteFile(mi, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	f := &fakeRunner{}
	f.answer = func(args []string) (string, string) {
		if fail != nil {
			if msg := fail(args); msg != "" {
				return "", msg
			}
		}
		if args[0] != "get" {
			return "", ""
		}
		var b strings.Builder
		if args[1] == "-Hrp" { // scan
			for i, ds := range []string{"tank/a", "tank/b", "other/c"} {
				fmt.Fprintf(&b, "%s\ttype\tfilesystem\n%s\tguid\t%d\n%s\tmountpoint\t/fake/%s\n%s\torg.fsrvpd:state\t-\n", ds, ds, 1000+i, ds, ds, ds)
			}
			return b.String(), ""
		}
		for _, name := range args[5:] { // creation,mountpoint of the new snapshots and clones
			fmt.Fprintf(&b, "%s\tcreation\t1700000000\n", name)
			if !strings.Contains(name, "@") {
				fmt.Fprintf(&b, "%s\tmountpoint\t/fake/%s\n", name, name)
			} else {
				fmt.Fprintf(&b, "%s\tmountpoint\t-\n", name)
			}
		}
		return b.String(), ""
	}
	b, err := New(Config{Runner: f, Logger: storagetest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	b.mountinfo = mi
	return b, f, vols
}

func batch(vols []storage.Volume) []storage.Request {
	return []storage.Request{
		{Volume: vols[0], ID: "x1"},
		{Volume: vols[2], ID: "x3", Options: storage.CreateOptions{Writable: true}},
		{Volume: vols[1], ID: "x2"},
	}
}

func TestCreateBatchOneSnapshotPerPool(t *testing.T) {
	b, f, vols := fakePools(t, nil)
	snaps, err := b.CreateBatch(t.Context(), batch(vols))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"snapshot -o org.fsrvpd:state=creating tank/a@fsrvp-x1 tank/b@fsrvp-x2",
		"snapshot -o org.fsrvpd:state=creating other/c@fsrvp-x3",
	}
	if got := f.matching("snapshot"); !slices.Equal(got, want) {
		t.Errorf("snapshot commands:\n%q\nwant\n%q", got, want)
	}
	if got := f.matching("hold"); !slices.Equal(got, []string{"hold fsrvpd tank/a@fsrvp-x1 tank/b@fsrvp-x2", "hold fsrvpd other/c@fsrvp-x3"}) {
		t.Errorf("hold commands: %q", got)
	}
	wantClones := []string{
		"clone -o org.fsrvpd:id=x1 -o readonly=on -o org.fsrvpd:readonly=on tank/a@fsrvp-x1 tank/fsrvp/fsrvp-x1",
		"clone -o org.fsrvpd:id=x3 other/c@fsrvp-x3 other/fsrvp/fsrvp-x3",
		"clone -o org.fsrvpd:id=x2 -o readonly=on -o org.fsrvpd:readonly=on tank/b@fsrvp-x2 tank/fsrvp/fsrvp-x2",
	}
	if got := f.matching("clone"); !slices.Equal(got, wantClones) {
		t.Errorf("clone commands:\n%q\nwant\n%q", got, wantClones)
	}
	if got := f.matching("set"); len(got) != 2 || got[0] != "set org.fsrvpd:state=clone tank/a@fsrvp-x1 tank/b@fsrvp-x2" {
		t.Errorf("set commands: %q", got)
	}
	for i, id := range []string{"x1", "x3", "x2"} {
		s := snaps[i]
		if s.ID != id || s.ReadOnly != (id != "x3") || s.Created.Unix() != 1700000000 || !strings.HasSuffix(s.Path, "/fsrvp-"+id) {
			t.Errorf("snapshot %d = %+v", i, s)
		}
	}
}

func TestCreateBatchRollback(t *testing.T) {
	b, f, vols := fakePools(t, func(args []string) string {
		if args[0] == "snapshot" && strings.HasPrefix(args[len(args)-1], "other/") {
			return "cannot create snapshot 'other/c@fsrvp-x3': out of space"
		}
		return ""
	})
	_, err := b.CreateBatch(t.Context(), batch(vols))
	var ce *CommandError
	if !errors.As(err, &ce) || !strings.Contains(ce.Stderr, "out of space") {
		t.Fatalf("CreateBatch: %v, want the snapshot error", err)
	}
	want := []string{"destroy tank/b@fsrvp-x2", "destroy tank/a@fsrvp-x1"}
	if got := f.matching("destroy"); !slices.Equal(got, want) {
		t.Errorf("rollback destroys %q, want %q", got, want)
	}
	if got := f.matching("release"); len(got) != 2 {
		t.Errorf("rollback releases %q", got)
	}
	if got := f.matching("clone"); len(got) != 0 {
		t.Errorf("clones after a failed snapshot: %q", got)
	}
}

func TestCreateBatchFallbacks(t *testing.T) {
	b, f, vols := fakePools(t, func(args []string) string {
		switch {
		case args[0] == "snapshot" && len(args) > 4:
			return "too many arguments\nusage:\n\tsnapshot [-r] [-o property=value] ... <filesystem@snapname|volume@snapname>"
		case args[0] == "hold" || args[0] == "release":
			return "unrecognized command 'hold'\nusage: zfs command args ..."
		}
		return ""
	})
	reqs := batch(vols)
	if _, err := b.CreateBatch(t.Context(), reqs); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateBatch(t.Context(), []storage.Request{{Volume: vols[0], ID: "y1"}, {Volume: vols[1], ID: "y2"}}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"snapshot -o org.fsrvpd:state=creating tank/a@fsrvp-x1 tank/b@fsrvp-x2",
		"snapshot -o org.fsrvpd:state=creating tank/a@fsrvp-x1",
		"snapshot -o org.fsrvpd:state=creating tank/b@fsrvp-x2",
		"snapshot -o org.fsrvpd:state=creating other/c@fsrvp-x3",
		"snapshot -o org.fsrvpd:state=creating tank/a@fsrvp-y1",
		"snapshot -o org.fsrvpd:state=creating tank/b@fsrvp-y2",
	}
	if got := f.matching("snapshot"); !slices.Equal(got, want) {
		t.Errorf("snapshot commands:\n%q\nwant\n%q", got, want)
	}
	if got := f.matching("hold"); len(got) != 1 {
		t.Errorf("hold tried %d times, want once", len(got))
	}
}

func TestCreateBatchChecks(t *testing.T) {
	b, f, vols := fakePools(t, nil)
	cases := []struct {
		reqs []storage.Request
		want error
	}{
		{[]storage.Request{{Volume: vols[0], ID: "a b"}}, storage.ErrInvalidID},
		{[]storage.Request{{Volume: vols[0], ID: "d"}, {Volume: vols[1], ID: "d"}}, storage.ErrAlreadyExists},
		{[]storage.Request{{Volume: storage.Volume{ID: "999", Root: "/fake/tank/a"}, ID: "e"}}, storage.ErrNotFound},
		{[]storage.Request{{Volume: storage.Volume{ID: "1000", Root: "/elsewhere"}, ID: "e"}}, storage.ErrNotFound},
	}
	for _, c := range cases {
		if _, err := b.CreateBatch(t.Context(), c.reqs); !errors.Is(err, c.want) {
			t.Errorf("CreateBatch(%+v): %v, want %v", c.reqs, err, c.want)
		}
	}
	if got := f.matching("snapshot"); len(got) != 0 {
		t.Errorf("snapshots taken: %q", got)
	}
}
