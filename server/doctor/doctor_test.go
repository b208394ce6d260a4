package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsrvpd/fsrvpd/rpc/np"
	"github.com/fsrvpd/fsrvpd/server/config"
	"github.com/fsrvpd/fsrvpd/shares/samba/sambatest"
	"github.com/fsrvpd/fsrvpd/storage/storagetest"
)

func only(t *testing.T, rep Report, check, subject string) Result {
	t.Helper()
	rs := rep.Find(check, subject)
	if len(rs) != 1 {
		var b bytes.Buffer
		rep.WriteText(&b)
		t.Fatalf("want one %s %q result, got %d:\n%s", check, subject, len(rs), b.String())
	}
	return rs[0]
}

func wantStatus(t *testing.T, r Result, s Status, contains string) {
	t.Helper()
	if r.Status != s || !strings.Contains(r.Message, contains) {
		t.Errorf("%s %s: got %s %q, want %s containing %q", r.Check, r.Subject, r.Status, r.Message, s, contains)
	}
	if (s == Warn || s == Fail) && r.Fix == "" && r.Check != "smb.conf" {
		t.Errorf("%s %s: %s without a fix", r.Check, r.Subject, s)
	}
}

func TestExitCode(t *testing.T) {
	for _, c := range []struct {
		st   []Status
		want int
	}{{nil, 0}, {[]Status{OK, Skip}, 0}, {[]Status{OK, Warn}, 1}, {[]Status{Warn, Fail, OK}, 2}} {
		var r Report
		for _, s := range c.st {
			r.Results = append(r.Results, Result{Check: "x", Status: s})
		}
		if got := r.ExitCode(); got != c.want {
			t.Errorf("%v: exit %d, want %d", c.st, got, c.want)
		}
	}
}

// TestTCPOnly runs every check on a TCP-only configuration with the real
// dir backend: a share inside a volume, one outside every volume, one
// missing; a live and a dead TCP address.
func TestTCPOnly(t *testing.T) {
	d := t.TempDir()
	vol := filepath.Join(d, "vol")
	for _, p := range []string{filepath.Join(vol, "good"), filepath.Join(d, "elsewhere")} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	live, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()

	c := config.Default()
	c.Server.StateDir = filepath.Join(d, "state")
	c.Server.Listen = []string{live.Addr().String(), deadAddr}
	c.Server.EndpointMapper = ""
	c.Storage.Dir.Volumes = []string{vol}
	c.Shares = []config.Share{
		{Name: "good", Path: filepath.Join(vol, "good")},
		{Name: "outside", Path: filepath.Join(d, "elsewhere")},
		{Name: "missing", Path: filepath.Join(vol, "missing")},
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	rep := Run(context.Background(), &Env{Config: c, ConfigPath: "test.toml"})

	wantStatus(t, only(t, rep, "config", "test.toml"), OK, "backend dir")
	wantStatus(t, only(t, rep, "backend", "dir"), OK, "ready")
	wantStatus(t, only(t, rep, "share", "good"), OK, "snapshottable")
	wantStatus(t, only(t, rep, "share", "outside"), Fail, "FSRVP_E_NOT_SUPPORTED")
	wantStatus(t, only(t, rep, "share", "missing"), Fail, "does not exist")
	wantStatus(t, only(t, rep, "tcp", live.Addr().String()), OK, "answers")
	wantStatus(t, only(t, rep, "tcp", deadAddr), Warn, "nothing answers")
	wantStatus(t, only(t, rep, "pipe-mode", ""), Skip, "not enabled")
	if got := rep.ExitCode(); got != 2 {
		t.Errorf("exit code %d, want 2", got)
	}

	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Results) != len(rep.Results) {
		t.Fatalf("JSON round trip: %v, %d results", err, len(back.Results))
	}
	var txt bytes.Buffer
	rep.WriteText(&txt)
	if !strings.Contains(txt.String(), "FAIL  share outside: ") || !strings.Contains(txt.String(), "failures") {
		t.Errorf("text report:\n%s", txt.String())
	}
}

func TestBadConfig(t *testing.T) {
	_, err := config.Parse([]byte("[server]\nbogus = 1\n"))
	rep := Run(context.Background(), &Env{Config: config.Default(), ConfigPath: "bad.toml", ConfigErr: err})
	wantStatus(t, only(t, rep, "config", "bad.toml"), Fail, "bogus")
	if rep.ExitCode() != 2 {
		t.Errorf("exit code %d, want 2", rep.ExitCode())
	}
}

// sambaConfig is fsrvpd's configuration behind the private smbd s, btrfs
// backend with its snapshot directory on mnt.
func sambaConfig(t *testing.T, s *sambatest.Server, socketDir, mnt string) config.Config {
	c := config.Default()
	c.Server.Listen, c.Server.EndpointMapper = nil, ""
	c.Server.StateDir = filepath.Join(t.TempDir(), "state")
	c.Samba.Enabled = true
	c.Samba.SMBConf, c.Samba.IncludeFile, c.Samba.SocketDir = s.Conf, s.Include, socketDir
	c.Storage.Backend = "btrfs"
	c.Storage.Btrfs.SnapshotDir = filepath.Join(mnt, "snapshots")
	if err := os.MkdirAll(c.Storage.Btrfs.SnapshotDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSambaDcerpcdOwnsSocket is the broken setup of the issue: Samba's
// rpcd_fsrvp neither diverted nor redirected, samba-dcerpcd (started by a
// real smbd for an rpcclient call) bound \PIPE\FssagentRpc's socket, and a
// share on a path that is not a btrfs subvolume.
func TestSambaDcerpcdOwnsSocket(t *testing.T) {
	mnt := storagetest.LoopBtrfs(t)
	good := storagetest.Subvolume(t, filepath.Join(mnt, "good"))
	bad := t.TempDir() // not on btrfs
	storagetest.RequireCommand(t, "rpcclient")
	if _, err := os.Stat("/usr/libexec/samba/rpcd_fsrvp"); err != nil {
		storagetest.Require(t, "Samba's rpcd_fsrvp", false, "/usr/libexec/samba/rpcd_fsrvp missing (diverted?)")
	}
	s := sambatest.Start(t, sambatest.Options{Shares: []sambatest.Share{
		{Name: "good", Params: []string{"path = " + good}},
		{Name: "bad", Params: []string{"path = " + bad}},
	}})
	// Any pipe makes smbd start samba-dcerpcd, which binds every helper's
	// sockets in the ncalrpc dir, fssagentrpc included.
	out, err := exec.Command("rpcclient", "-s", s.Conf, "-p", strings.TrimPrefix(s.Addr(), "127.0.0.1:"),
		"-U", sambatest.User+"%"+sambatest.Password, "-c", "srvinfo", "127.0.0.1").CombinedOutput()
	if err != nil {
		t.Fatalf("rpcclient srvinfo: %v\n%s", err, out)
	}
	sock := filepath.Join(s.Dir, "ncalrpc", "np", "fssagentrpc")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("samba-dcerpcd did not bind %s", sock)
		}
		time.Sleep(50 * time.Millisecond)
	}

	c := sambaConfig(t, s, filepath.Join(s.Dir, "ncalrpc"), mnt)
	rep := Run(context.Background(), &Env{Config: c, ConfigPath: "test.toml"})
	var b bytes.Buffer
	rep.WriteText(&b)
	t.Logf("\n%s", b.String())

	wantStatus(t, only(t, rep, "pipe-mode", ""), Fail, "samba-dcerpcd would replace")
	wantStatus(t, only(t, rep, "pipe-socket", sock), Fail, "samba-dcerpcd")
	wantStatus(t, only(t, rep, "share", "good"), OK, "snapshottable")
	wantStatus(t, only(t, rep, "share", "bad"), Fail, "not snapshottable by the btrfs backend")
	// sambatest's smb.conf has a second include after fsrvpd's.
	wantStatus(t, only(t, rep, "smb.conf", "include"), Warn, "after include")
	if rep.ExitCode() != 2 {
		t.Errorf("exit code %d, want 2", rep.ExitCode())
	}
}

// TestSambaRedirect is a working setup: smbd redirected to fsrvpd's
// socket directory, where this process listens as fsrvpd would.
func TestSambaRedirect(t *testing.T) {
	mnt := storagetest.LoopBtrfs(t)
	good := storagetest.Subvolume(t, filepath.Join(mnt, "good"))
	sockDir, err := os.MkdirTemp("", "fsrvpd-doctor")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockDir)
	s := sambatest.Start(t, sambatest.Options{
		Shares: []sambatest.Share{{Name: "good", Params: []string{"path = " + good}}},
		Global: []string{"external_rpc_pipe:socket_dir = " + sockDir},
	})
	c := sambaConfig(t, s, sockDir, mnt)
	l, err := np.Listen(c.PipeSocket(), np.Options{Logger: storagetest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	self, _ := os.ReadFile("/proc/self/comm")
	rep := Run(context.Background(), &Env{Config: c, ConfigPath: "test.toml", OwnNames: []string{strings.TrimSpace(string(self))}})
	var b bytes.Buffer
	rep.WriteText(&b)
	t.Logf("\n%s", b.String())
	wantStatus(t, only(t, rep, "pipe-mode", "redirect"), OK, "fsrvpd links Samba's other pipes")
	wantStatus(t, only(t, rep, "pipe-socket", c.PipeSocket()), OK, "fsrvpd (pid")
	wantStatus(t, only(t, rep, "share", "good"), OK, "snapshottable")
	wantStatus(t, only(t, rep, "samba-dcerpcd", ""), OK, "")
}

// TestBtrfsShareCapabilities asks the real btrfs backend about a plain
// subvolume, one with a nested subvolume, one with a filesystem mounted
// inside, and a directory off btrfs; then again with recursive = true.
func TestBtrfsShareCapabilities(t *testing.T) {
	mnt := storagetest.LoopBtrfs(t)
	plain := storagetest.Subvolume(t, filepath.Join(mnt, "plain"))
	nested := storagetest.Subvolume(t, filepath.Join(mnt, "nested"))
	storagetest.Subvolume(t, filepath.Join(nested, "inner"))
	mounted := storagetest.Subvolume(t, filepath.Join(mnt, "mounted"))
	if err := os.Mkdir(filepath.Join(mounted, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	storagetest.Mount(t, "tmpfs", filepath.Join(mounted, "tmp"), "tmpfs", "size=1m")
	off := t.TempDir()

	c := config.Default()
	c.Server.Listen, c.Server.EndpointMapper = nil, ""
	c.Server.UnixSocket = filepath.Join(t.TempDir(), "fsrvpd.sock")
	c.Server.StateDir = filepath.Join(t.TempDir(), "state")
	c.Storage.Backend = "btrfs"
	c.Storage.Btrfs.SnapshotDir = filepath.Join(mnt, "snapshots")
	os.Mkdir(c.Storage.Btrfs.SnapshotDir, 0o700)
	c.Shares = []config.Share{{Name: "plain", Path: plain}, {Name: "nested", Path: nested}, {Name: "mounted", Path: mounted}, {Name: "off", Path: off}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	rep := Run(context.Background(), &Env{Config: c, ConfigPath: "test.toml"})
	wantStatus(t, only(t, rep, "share", "plain"), OK, "snapshottable")
	r := only(t, rep, "share", "nested")
	wantStatus(t, r, Fail, "nested subvolumes")
	if !strings.Contains(r.Fix, "recursive = true") {
		t.Errorf("nested: fix %q does not name recursive = true", r.Fix)
	}
	r = only(t, rep, "share", "mounted")
	wantStatus(t, r, Fail, "mount point")
	if !strings.Contains(r.Fix, "move the mounted filesystem") {
		t.Errorf("mounted: fix %q", r.Fix)
	}
	wantStatus(t, only(t, rep, "share", "off"), Fail, "not on btrfs")

	c.Storage.Btrfs.Recursive = true
	rep = Run(context.Background(), &Env{Config: c, ConfigPath: "test.toml"})
	wantStatus(t, only(t, rep, "share", "nested"), OK, "snapshottable")
	wantStatus(t, only(t, rep, "share", "mounted"), Fail, "mount point")
}

// TestZFSShareCapabilities asks the real zfs backend (zfs-fuse or the
// kernel module) about a dataset, a dataset with a child dataset mounted
// inside, a dataset outside [storage.zfs] datasets, and a directory off
// ZFS; then again with recursive = true.
func TestZFSShareCapabilities(t *testing.T) {
	p := storagetest.ZFSPool(t)
	_, plain := p.Dataset(t, "managed/plain")
	_, parent := p.Dataset(t, "managed/parent")
	p.Dataset(t, "managed/parent/child")
	_, other := p.Dataset(t, "other")
	off := t.TempDir()

	c := config.Default()
	c.Server.Listen, c.Server.EndpointMapper = nil, ""
	c.Server.UnixSocket = filepath.Join(t.TempDir(), "fsrvpd.sock")
	c.Server.StateDir = filepath.Join(t.TempDir(), "state")
	c.Storage.Backend = "zfs"
	c.Storage.ZFS.Datasets = []string{p.Name + "/managed"}
	c.Shares = []config.Share{{Name: "plain", Path: plain}, {Name: "parent", Path: parent}, {Name: "other", Path: other}, {Name: "off", Path: off}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	rep := Run(context.Background(), &Env{Config: c, ConfigPath: "test.toml"})
	var b bytes.Buffer
	rep.WriteText(&b)
	t.Logf("\n%s", b.String())
	wantStatus(t, only(t, rep, "backend", "zfs"), OK, "ready")
	wantStatus(t, only(t, rep, "share", "plain"), OK, "snapshottable")
	r := only(t, rep, "share", "parent")
	wantStatus(t, r, Fail, "has a mount point")
	if !strings.Contains(r.Fix, "recursive = true") {
		t.Errorf("parent: fix %q does not name recursive = true", r.Fix)
	}
	r = only(t, rep, "share", "other")
	wantStatus(t, r, Fail, "not managed by fsrvpd")
	if !strings.Contains(r.Fix, "datasets") {
		t.Errorf("other: fix %q", r.Fix)
	}
	wantStatus(t, only(t, rep, "share", "off"), Fail, "not on ZFS")

	c.Storage.ZFS.Recursive = true
	rep = Run(context.Background(), &Env{Config: c, ConfigPath: "test.toml"})
	wantStatus(t, only(t, rep, "share", "parent"), OK, "snapshottable")
}
