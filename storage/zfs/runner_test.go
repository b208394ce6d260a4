package zfs

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/fsrvpd/fsrvpd/storage"
	"github.com/fsrvpd/fsrvpd/storage/internal/fsutil"
	"github.com/fsrvpd/fsrvpd/storage/storagetest"
)

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		stderr string
		want   error
	}{
		{"cannot open 'tank/x': dataset does not exist", storage.ErrNotFound},
		{"could not find any snapshots to destroy; check snapshot names.", storage.ErrNotFound},
		{"cannot open 'nopool': no such pool", storage.ErrNotFound},
		{"cannot create snapshot 'tank/a@s': dataset already exists", storage.ErrAlreadyExists},
		{"cannot hold snapshot 'tank/a@s': tag already exists on this dataset", storage.ErrAlreadyExists},
		{"cannot destroy 'tank/a@s': dataset is busy", ErrBusy},
		{"cannot destroy 'tank': pool or dataset is busy", ErrBusy},
		{"cannot release 'fsrvpd' from 'tank/a@s': no such tag on this dataset", ErrNoSuchTag},
		{"too many arguments\nusage:\n\tsnapshot [-r] …", ErrUsage},
		{"invalid option 'p'\nusage:\n\tlist [-rH] …", ErrUsage},
		{"unrecognized command 'hold'", ErrUsage},
		{"connect: No such file or directory\nPlease make sure that the zfs-fuse daemon is running.\ninternal error: failed to initialize ZFS library", ErrUnavailable},
		{"The ZFS modules are not loaded.\nTry running '/sbin/modprobe zfs' as root to load them.\n/dev/zfs and /proc/self/mounts are required.", ErrUnavailable},
		{"cannot create snapshot: out of space", nil},
	} {
		err := error(&CommandError{Args: []string{"zfs"}, Stderr: c.stderr, Err: errors.New("exit status 1")})
		for _, s := range []error{storage.ErrNotFound, storage.ErrAlreadyExists, ErrBusy, ErrNoSuchTag, ErrUsage, ErrUnavailable} {
			if got := errors.Is(err, s); got != (s == c.want) {
				t.Errorf("%q: errors.Is(%v) = %v", c.stderr, s, got)
			}
		}
	}
}

func TestExecRunner(t *testing.T) {
	storagetest.RequireCommand(t, "sh")
	r := ExecRunner{Logger: storagetest.Logger(t)}
	out, err := r.Run(t.Context(), "sh", "-c", "echo out; echo \"cannot open 'x': dataset does not exist\" >&2; exit 3")
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitCode != 3 || string(out) != "out\n" || !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Run = %q, %#v", out, err)
	}
	if want := "sh -c"; !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "dataset does not exist") {
		t.Errorf("Error() = %q", err)
	}
	if out, err := r.Run(t.Context(), "sh", "-c", "echo $LC_ALL"); err != nil || string(out) != "C\n" {
		t.Errorf("LC_ALL: %q, %v", out, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := r.Run(ctx, "sh", "-c", "true"); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled Run: %v", err)
	}
}

func TestParseGet(t *testing.T) {
	p, err := parseGet([]byte("tank/a\tguid\t123\ntank/a\torg.fsrvpd:state\t-\ntank/my vol\tmountpoint\t/mnt/my vol\twith tab\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p["tank/a"]["guid"] != "123" || len(p["tank/a"]) != 1 || p["tank/my vol"]["mountpoint"] != "/mnt/my vol\twith tab" {
		t.Errorf("parseGet = %v", p)
	}
	if _, err := parseGet([]byte("tank/a guid 123\n")); err == nil {
		t.Error("parseGet accepted a line without tabs")
	}
}

// TestIsZFS checks which mountinfo lines are ZFS mounts; the parsing itself
// is tested in storage/internal/fsutil.
func TestIsZFS(t *testing.T) {
	in := "36 35 98:0 /mnt1 /mnt/my\\040pool rw,noatime master:1 - fuse.zfs tank/my\\040ds rw\n" +
		"37 36 0:5 / /mnt/my\\040pool/ro ro,relatime - zfs tank/ro rw,xattr\n" +
		"38 1 0:6 / /tmp rw shared:2 - tmpfs tmpfs rw\n"
	ms, err := fsutil.ParseMountinfo(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 || !isZFS(ms[0]) || !isZFS(ms[1]) || isZFS(ms[2]) {
		t.Fatalf("isZFS of %+v", ms)
	}
}

// TestParseState checks which snapshots a scan reports finished.
func TestParseState(t *testing.T) {
	b, err := New(Config{Datasets: []string{"tank/share"}})
	if err != nil {
		t.Fatal(err)
	}
	all, err := parseGet([]byte(strings.Join([]string{
		"tank/share\tguid\t42", "tank/share\tmountpoint\t/srv/share", "tank/share\ttype\tfilesystem",
		"tank/share@fsrvp-done\torg.fsrvpd:state\tsnapdir", "tank/share@fsrvp-done\tcreation\t1700000000",
		"tank/share@fsrvp-rw\torg.fsrvpd:state\tclone",
		"tank/fsrvp/fsrvp-rw\torigin\ttank/share@fsrvp-rw", "tank/fsrvp/fsrvp-rw\torg.fsrvpd:id\trw",
		"tank/fsrvp/fsrvp-rw\ttype\tfilesystem", "tank/fsrvp/fsrvp-rw\tmountpoint\t/tank/fsrvp/fsrvp-rw",
		"tank/fsrvp/fsrvp-rw\treadonly\toff",
		"tank/share@fsrvp-half\torg.fsrvpd:state\tcreating",
		"tank/share@fsrvp-noclone\torg.fsrvpd:state\tclone",
		"tank/share@fsrvp-foreign\tcreation\t1",
		"tank/other@fsrvp-outofscope\torg.fsrvpd:state\tsnapdir",
	}, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	st := b.parseState(all)
	if e := st.finished("done"); e == nil || e.s.Path != "/srv/share/.zfs/snapshot/fsrvp-done" || !e.s.ReadOnly || e.s.VolumeID != "42" || e.s.Created.Unix() != 1700000000 {
		t.Errorf("done: %+v", e)
	}
	if e := st.finished("rw"); e == nil || e.s.Path != "/tank/fsrvp/fsrvp-rw" || e.s.ReadOnly || e.clone != "tank/fsrvp/fsrvp-rw" {
		t.Errorf("rw: %+v", e)
	}
	for _, id := range []string{"half", "noclone"} {
		if es := st.byID[id]; len(es) != 1 || es[0].finished {
			t.Errorf("%s: %+v, want one leftover", id, es)
		}
	}
	for _, id := range []string{"foreign", "outofscope"} {
		if es := st.byID[id]; len(es) != 0 {
			t.Errorf("%s: %+v, want nothing", id, es)
		}
	}
}
