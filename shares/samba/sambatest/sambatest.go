// Package sambatest runs a private smbd for tests: loopback only, on a free
// port, with every Samba directory under a temporary directory, so that
// nothing under /etc or /var/lib/samba is read or changed.
//
// Start skips the test when the host cannot run it (not root, no smbd);
// with FSRVPD_TEST_STRICT=1 in the environment it fails instead.
package sambatest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hirochachacha/go-smb2"
)

// User and Password are the account Start adds to the private passdb.
const (
	User     = "root"
	Password = "fsrvpd-test-pw"
)

// Share is a share of the private configuration.
type Share struct {
	Name string
	// Params are extra "key = value" lines; the path is a fresh directory
	// unless Params sets one.
	Params []string
}

// Options configure Start.
type Options struct {
	// Shares to define; nil means share1 and share2, both writable.
	Shares []Share
	// Global are extra [global] lines.
	Global []string
}

// Server is a running private smbd.
type Server struct {
	Dir     string // root of the private directories
	Conf    string // smb.conf path, to pass with -s
	Include string // the include file named in [global] (initially empty)
	Port    int
	// Paths maps each share name to its directory.
	Paths map[string]string

	cmd  *exec.Cmd
	done chan struct{}
}

// Skip skips (or, with FSRVPD_TEST_STRICT=1, fails) t unless the host can
// run a private smbd and the Samba tools.
func Skip(t testing.TB) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "not root"
	}
	for _, tool := range []string{"smbd", "smbpasswd", "testparm", "tdbtool", "smbclient"} {
		if _, err := exec.LookPath(tool); err != nil && why == "" {
			why = tool + " not installed (apt-get install samba smbclient tdb-tools)"
		}
	}
	if why == "" {
		return
	}
	if os.Getenv("FSRVPD_TEST_STRICT") == "1" {
		t.Fatalf("private smbd: %s", why)
	}
	t.Skipf("private smbd: %s", why)
}

// Start starts a private smbd and stops it when the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	Skip(t)
	// A short directory: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "fsrvpd-smb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &Server{Dir: dir, Conf: filepath.Join(dir, "smb.conf"), Include: filepath.Join(dir, "fsrvpd-shares.conf"),
		Port: freePort(t), Paths: map[string]string{}}
	for _, d := range []string{"private", "lock", "state", "cache", "pid", "ncalrpc", "logs", "shares"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{s.Include, s.Include + ".bench"} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if o.Shares == nil {
		o.Shares = []Share{{Name: "share1", Params: []string{"read only = no"}}, {Name: "share2", Params: []string{"read only = no"}}}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `[global]
	netbios name = FSRVPDTEST
	workgroup = FSRVPDWG
	server role = standalone server
	map to guest = never
	smb ports = %d
	interfaces = 127.0.0.1
	bind interfaces only = yes
	disable netbios = yes
	private dir = %[2]s/private
	lock directory = %[2]s/lock
	state directory = %[2]s/state
	cache directory = %[2]s/cache
	pid directory = %[2]s/pid
	ncalrpc dir = %[2]s/ncalrpc
	passdb backend = tdbsam:%[2]s/private/passdb.tdb
	log file = %[2]s/logs/log.%%m
	log level = 1
	max log size = 0
	load printers = no
	printing = bsd
	printcap name = /dev/null
	disable spoolss = yes
	registry shares = yes
`, s.Port, dir)
	for _, l := range o.Global {
		// USERSHARES stands for a usershare directory under Dir.
		if strings.Contains(l, "USERSHARES") {
			us := filepath.Join(dir, "usershares")
			if err := os.Mkdir(us, 0o1770); err != nil {
				t.Fatal(err)
			}
			os.Chmod(us, 0o1770|os.ModeSticky)
			l = strings.ReplaceAll(l, "USERSHARES", us)
		}
		fmt.Fprintf(&b, "\t%s\n", l)
	}
	fmt.Fprintf(&b, "\tinclude = %s\n", s.Include)
	// A second include for benchmarks of other writers of a shares file.
	fmt.Fprintf(&b, "\tinclude = %s.bench\n", s.Include)
	for _, sh := range o.Shares {
		p := filepath.Join(dir, "shares", strings.NewReplacer("$", "_", "/", "_").Replace(sh.Name))
		fmt.Fprintf(&b, "\n[%s]\n", sh.Name)
		hasPath := false
		for _, l := range sh.Params {
			if k, v, ok := strings.Cut(l, "="); ok && strings.TrimSpace(strings.ToLower(k)) == "path" {
				hasPath, p = true, strings.TrimSpace(v)
			}
			fmt.Fprintf(&b, "\t%s\n", l)
		}
		if !hasPath {
			fmt.Fprintf(&b, "\tpath = %s\n", p)
		}
		if err := os.MkdirAll(p, 0o777); err != nil {
			t.Fatal(err)
		}
		s.Paths[sh.Name] = p
	}
	if err := os.WriteFile(s.Conf, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	pw := exec.Command("smbpasswd", "-c", s.Conf, "-s", "-a", User)
	pw.Stdin = strings.NewReader(Password + "\n" + Password + "\n")
	if out, err := pw.CombinedOutput(); err != nil {
		t.Fatalf("smbpasswd: %v\n%s", err, out)
	}
	// Its own process group: smbd signals its whole group when it exits.
	s.cmd = exec.Command("smbd", "--foreground", "--no-process-group", "-s", s.Conf, "-l", filepath.Join(dir, "logs"))
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s.cmd.Stdout, s.cmd.Stderr = os.Stderr, os.Stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("smbd: %v", err)
	}
	s.done = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(s.Stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr(), 100*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-s.done:
			t.Fatalf("smbd exited: %v", s.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("smbd did not listen on %s", s.Addr())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Addr is host:port of the server.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// Stop stops smbd and every helper started with this configuration
// (samba-dcerpcd, rpcd_*), found by the configuration path in their command
// lines. It is idempotent.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	pids := s.ownPIDs()
	s.cmd.Process.Signal(syscall.SIGTERM)
	for _, p := range pids {
		syscall.Kill(p, syscall.SIGTERM)
	}
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	deadline := time.Now().Add(3 * time.Second)
	for len(s.ownPIDs()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for _, p := range s.ownPIDs() {
		syscall.Kill(p, syscall.SIGKILL)
	}
}

// ownPIDs lists the processes whose command line names s.Conf.
func (s *Server) ownPIDs() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cl, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for _, a := range bytes.Split(cl, []byte{0}) {
			if string(a) == s.Conf || string(a) == "--configfile="+s.Conf {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// SMBClient runs smbclient against share with the test account and returns
// its combined output.
func (s *Server) SMBClient(share string, commands string) (string, error) {
	args := []string{"-s", s.Conf, "//127.0.0.1/" + share, "-p", strconv.Itoa(s.Port), "-U", User + "%" + Password, "-c", commands}
	out, err := exec.Command("smbclient", args...).CombinedOutput()
	return string(out), err
}

// ListShares runs smbclient -L and returns the share names it prints.
func (s *Server) ListShares() ([]string, error) {
	out, err := exec.Command("smbclient", "-s", s.Conf, "-L", "//127.0.0.1", "-p", strconv.Itoa(s.Port),
		"-U", User+"%"+Password, "-g").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("smbclient -L: %v: %s", err, out)
	}
	var names []string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Split(l, "|"); len(f) >= 2 && f[0] == "Disk" || len(f) >= 2 && f[0] == "IPC" {
			names = append(names, f[1])
		}
	}
	return names, nil
}

// Session opens an SMB2 session to the smbd at addr as user (NTLM) and
// logs off when the test ends.
func Session(t testing.TB, addr, user, password string) *smb2.Session {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	d := &smb2.Dialer{Initiator: &smb2.NTLMInitiator{User: user, Password: password}}
	s, err := d.Dial(conn)
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Logoff() })
	return s
}

// MountSoon mounts share over s, retrying for up to 5 s: smbd applies the
// reload that publishes a new share asynchronously.
func MountSoon(s *smb2.Session, share string) (*smb2.Share, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		fs, err := s.Mount(share)
		if err == nil || time.Now().After(deadline) {
			return fs, err
		}
		time.Sleep(time.Millisecond) // fine-grained: BenchmarkExpose times how soon it is served
	}
}
