// Package kdctest runs a real Kerberos KDC for tests: a Samba Active
// Directory domain controller (Debian's samba 4.17, `samba-tool domain
// provision`) in a private directory, serving only on 127.0.0.1 with random
// ports. It provides what fsrvpd's Kerberos and winbind tests need:
//
//   - a realm (FSRVP.TEST, NetBIOS domain FSRVPTEST) with Administrator
//     (Domain Admins) and the users a test adds;
//   - a service account with fsrvpd's principal cifs/fsrvp.fsrvp.test,
//     AES keys only, exported to a keytab;
//   - a krb5.conf for clients that names the KDC's port;
//   - Samba's winbindd (the DC's own), reachable by ntlm_auth and wbinfo
//     through the default socket directory /run/samba/winbindd; it needs
//     the DC's samr and lsarpc servers (service "rpc", no endpoint mapper,
//     a TCP port from 49152-49999 on 127.0.0.1).
//
// Provisioning takes about 12 s, so a test binary shares one DC (Shared,
// SharedWinbind) and stops it from TestMain (Main). The winbindd socket
// directory is global, so a DC with winbind holds a lock while it runs:
// such DCs of test binaries running at the same time take turns. DCs
// without winbind (the KDC only) run side by side.
package kdctest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fsrvpd/fsrvpd/storage/storagetest"
)

// The realm's names and passwords. They protect nothing: the DC listens on
// loopback only and lives in a temporary directory.
const (
	Realm         = "FSRVP.TEST"
	Domain        = "FSRVPTEST"
	DNSDomain     = "fsrvp.test"
	AdminUser     = "Administrator"
	AdminPassword = "Adm1n.Passw0rd.x"
	ServiceUser   = "fsrvpsvc"
	ServiceHost   = "fsrvp.fsrvp.test"
	// ServicePrincipal is the principal fsrvpd accepts tickets for.
	ServicePrincipal = "cifs/" + ServiceHost
)

// DC is a running domain controller.
type DC struct {
	Dir       string // the provision's target directory
	SMBConf   string // its smb.conf (for ntlm_auth --configfile)
	Krb5Conf  string // a krb5.conf for clients, KDC on KDCAddr
	KDCAddr   string // 127.0.0.1:port
	Keytab    string // the service principal's keys (AES)
	DomainSID string

	cmd     *exec.Cmd
	winbind bool
	ports   []int // the KDC's and kpasswd's
	lock    *os.File
	stopped chan struct{}
}

// Requirements skips (or, strict, fails) the test unless a DC can run.
func Requirements(t testing.TB) {
	t.Helper()
	storagetest.RequireRoot(t)
	storagetest.RequireCommand(t, "samba")
	storagetest.RequireCommand(t, "samba-tool")
	storagetest.RequireCommand(t, "winbindd")
	_, err := os.Stat("/usr/bin/python3")
	storagetest.Require(t, "python3", err == nil, "/usr/bin/python3 missing (samba-tool needs it)")
}

// Options says what a DC runs besides the KDC.
type Options struct {
	// Winbind runs the DC's winbindd (with its samr and lsarpc servers),
	// for ntlm_auth and wbinfo.
	Winbind bool
}

type sharedDC struct {
	once sync.Once
	dc   *DC
	err  error
}

var shared [2]sharedDC // without, with winbind

// Shared returns the test binary's DC (KDC only), starting it on first use.
func Shared(t testing.TB) *DC { return share(t, Options{}) }

// SharedWinbind is Shared with winbind.
func SharedWinbind(t testing.TB) *DC { return share(t, Options{Winbind: true}) }

func share(t testing.TB, o Options) *DC {
	t.Helper()
	Requirements(t)
	s := &shared[0]
	if o.Winbind {
		s = &shared[1]
	}
	s.once.Do(func() { s.dc, s.err = Start(o) })
	if s.err != nil {
		t.Fatalf("kdctest: %v", s.err)
	}
	return s.dc
}

// Main runs the tests and stops the shared DCs: call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	for i := range shared {
		if dc := shared[i].dc; dc != nil {
			dc.Stop()
		}
	}
	os.Exit(code)
}

// freePort returns a free TCP port of 127.0.0.1 below the kernel's
// ephemeral range (32768 and up), so that the listeners other tests open on
// port 0 while samba starts cannot take it.
func freePort() (int, error) {
	for range 100 {
		port := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			l.Close()
			return port, nil
		}
	}
	return 0, errors.New("kdctest: no free port in 20000-31999")
}

// listensOn reports whether process pid has a TCP socket listening on
// 127.0.0.1:port (from the /proc/<pid>/net/tcp of its network namespace and
// its descriptors): the KDC's port may answer for another process that
// took it.
func listensOn(pid, port int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid)) // its network namespace
	if err != nil {
		return false
	}
	want := fmt.Sprintf("0100007F:%04X", port)
	inodes := map[string]bool{}
	for _, l := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) > 9 && f[1] == want && f[3] == "0A" { // LISTEN
			inodes["socket:["+f[9]+"]"] = true
		}
	}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		if target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && inodes[target] {
			return true
		}
	}
	return false
}

func run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, lastLines(out, 5))
	}
	return nil
}

func lastLines(b []byte, n int) string {
	l := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// Start provisions a domain in a new temporary directory and starts it.
// The caller must Stop it.
func Start(o Options) (dc *DC, err error) {
	dir, err := os.MkdirTemp("", "fsrvpd-kdc-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The winbindd socket directory is global: one DC with winbind at a
	// time.
	var lock *os.File
	if o.Winbind {
		if err := os.MkdirAll("/run/lock", 0o755); err != nil {
			return nil, err
		}
		lock, err = os.OpenFile("/run/lock/fsrvpd-kdctest.lock", os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, err
		}
		if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
			lock.Close()
			return nil, err
		}
		defer func() {
			if err != nil {
				lock.Close()
			}
		}()
	}

	target := filepath.Join(dir, "dc")
	if err := run(ctx, "samba-tool", "domain", "provision", "--use-rfc2307",
		"--realm="+Realm, "--domain="+Domain, "--server-role=dc", "--dns-backend=NONE",
		"--adminpass="+AdminPassword, "--targetdir="+target, "--host-name=dc1", "--host-ip=127.0.0.1",
		"--option=interfaces=127.0.0.1", "--option=bind interfaces only=yes"); err != nil {
		return nil, err
	}
	conf := filepath.Join(target, "etc", "smb.conf") // rewritten with the ports at launch
	dc = &DC{Dir: target, SMBConf: conf,
		Keytab: filepath.Join(dir, "fsrvpd.keytab"), Krb5Conf: filepath.Join(dir, "krb5.conf"), lock: lock, winbind: o.Winbind}

	if err := dc.AddUser(ctx, ServiceUser, "Svc.Passw0rd.1x"); err != nil {
		return nil, err
	}
	if err := run(ctx, "samba-tool", "spn", "add", ServicePrincipal, ServiceUser, "-s", conf); err != nil {
		return nil, err
	}
	if err := dc.python(ctx, setEnctypes, ServiceUser, "24"); err != nil {
		return nil, err
	}
	if err := run(ctx, "samba-tool", "domain", "exportkeytab", dc.Keytab, "--principal="+ServicePrincipal, "-s", conf); err != nil {
		return nil, err
	}
	sid, err := exec.CommandContext(ctx, "/usr/bin/python3", "-c", domainSID, conf).Output()
	if err != nil {
		return nil, fmt.Errorf("domain SID: %v", err)
	}
	dc.DomainSID = strings.TrimSpace(string(sid))
	// The ports are picked right before samba binds them, and picked
	// again if another process took one in between (a parallel test's
	// listener on 127.0.0.1:0 can get the same number).
	for attempt := 1; ; attempt++ {
		err := dc.launch(ctx)
		if err == nil {
			break
		}
		if attempt == 5 || !errors.Is(err, errPortTaken) {
			dc.Stop()
			return nil, err
		}
		dc.kill()
	}
	return dc, nil
}

// launch picks the KDC's ports, writes them into smb.conf and krb5.conf,
// starts samba and waits until it serves.
func (dc *DC) launch(ctx context.Context) error {
	kdcPort, err := freePort()
	if err != nil {
		return err
	}
	kpwPort, err := freePort()
	if err != nil {
		return err
	}
	if err := rewriteConf(dc.SMBConf, dc.Dir, kdcPort, kpwPort, dc.winbind); err != nil {
		return err
	}
	if squat != nil {
		squat(kdcPort)
	}
	dc.KDCAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(kdcPort))
	dc.ports = []int{kdcPort, kpwPort}
	krb5conf := fmt.Sprintf(`[libdefaults]
	default_realm = %[1]s
	dns_lookup_realm = false
	dns_lookup_kdc = false
	rdns = false
	dns_canonicalize_hostname = false
	udp_preference_limit = 1
	default_tkt_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
	default_tgs_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
	permitted_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96

[realms]
	%[1]s = {
		kdc = %[2]s
		admin_server = %[2]s
	}

[domain_realm]
	.%[3]s = %[1]s
	%[3]s = %[1]s
`, Realm, dc.KDCAddr, DNSDomain)
	if err := os.WriteFile(dc.Krb5Conf, []byte(krb5conf), 0o644); err != nil {
		return err
	}

	dc.cmd = exec.Command("samba", "-i", "-M", "single", "-s", dc.SMBConf)
	logf, err := os.Create(filepath.Join(dc.Dir, "samba.out"))
	if err != nil {
		return err
	}
	dc.cmd.Stdout, dc.cmd.Stderr = logf, logf
	dc.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := dc.cmd.Start(); err != nil {
		logf.Close()
		dc.cmd = nil
		return err
	}
	cmd, stopped := dc.cmd, make(chan struct{})
	dc.stopped = stopped
	go func() { cmd.Wait(); logf.Close(); close(stopped) }()
	return dc.waitReady(ctx)
}

func rewriteConf(path, target string, kdcPort, kpwPort int, winbind bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	if i := strings.Index(s, "[homes]"); i >= 0 {
		s = s[:i] // no shares: the DC serves Kerberos and winbind only
	}
	var out []string
	for _, l := range strings.Split(s, "\n") {
		k, _, _ := strings.Cut(strings.TrimSpace(l), "=")
		switch strings.TrimSpace(k) {
		case "server services", "log file", "logging", "interfaces", "krb5 port", "kpasswd port", "pid directory",
			"ncalrpc dir", "winbind use default domain", "dcerpc endpoint servers", "rpc server dynamic port range":
			continue
		}
		out = append(out, l)
	}
	services := "server services = kdc"
	if winbind {
		services = `server services = kdc, winbindd, rpc
	dcerpc endpoint servers = samr, lsarpc
	rpc server dynamic port range = 49152-49999`
	}
	s = strings.Join(out, "\n") + "\n\t" + services + fmt.Sprintf(`
	interfaces = 127.0.0.1
	krb5 port = %d
	kpasswd port = %d
	log file = %[3]s/log.%%m
	logging = file
	pid directory = %[3]s/pid
	ncalrpc dir = %[3]s/ncalrpc
	winbind use default domain = no
`, kdcPort, kpwPort, target)
	for _, d := range []string{"pid", "ncalrpc"} {
		if err := os.MkdirAll(filepath.Join(target, d), 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(path, []byte(s), 0o644)
}

func (dc *DC) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-dc.stopped:
			if err := dc.bindFailure(); err != nil {
				return err
			}
			return fmt.Errorf("samba exited: %s", dc.log())
		default:
		}
		kdc := dc.cmd != nil && listensOn(dc.cmd.Process.Pid, dc.ports[0])
		if kdc && (!dc.winbind || exec.CommandContext(ctx, "wbinfo", "-p").Run() == nil) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("samba not ready after 60 s (KDC up: %v): %s", kdc, dc.log())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// bindFailure reports whether samba logged that another process holds
// one of the KDC's ports (launch then picks others).
func (dc *DC) bindFailure() error {
	b, _ := os.ReadFile(filepath.Join(dc.Dir, "samba.out"))
	for _, p := range dc.ports {
		if bytes.Contains(b, []byte(fmt.Sprintf("Failed to bind to 127.0.0.1:%d ", p))) {
			return fmt.Errorf("%w: 127.0.0.1:%d", errPortTaken, p)
		}
	}
	return nil
}

var errPortTaken = errors.New("kdctest: a KDC port was taken by another process")

// squat, set by this package's tests, is called with each KDC port picked,
// before samba starts (to take it, as a parallel test might).
var squat func(port int)

func (dc *DC) log() string {
	b, _ := os.ReadFile(filepath.Join(dc.Dir, "samba.out"))
	return lastLines(b, 10)
}

// Stop kills the DC's process group and removes its directory.
func (dc *DC) Stop() {
	dc.kill()
	if dc.lock != nil {
		dc.lock.Close()
	}
	os.RemoveAll(filepath.Dir(dc.Dir))
}

// kill stops samba's process group, if it runs.
func (dc *DC) kill() {
	if dc.cmd == nil || dc.cmd.Process == nil {
		return
	}
	syscall.Kill(-dc.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-dc.stopped:
	case <-time.After(10 * time.Second):
		syscall.Kill(-dc.cmd.Process.Pid, syscall.SIGKILL)
		<-dc.stopped
	}
	dc.cmd = nil
}

// AddUser creates a domain user with the password.
func (dc *DC) AddUser(ctx context.Context, name, password string) error {
	return run(ctx, "samba-tool", "user", "add", name, password, "-s", dc.SMBConf)
}

// AddToGroup adds users to a domain group (e.g. "Domain Admins").
func (dc *DC) AddToGroup(ctx context.Context, group string, users ...string) error {
	return run(ctx, "samba-tool", "group", "addmembers", group, strings.Join(users, ","), "-s", dc.SMBConf)
}

// Kinit gets a ticket-granting ticket for user into a new credential cache
// file (MIT kinit) and returns its path.
// Extra arguments go to kinit (e.g. "-l", "10s" for a short lifetime).
func (dc *DC) Kinit(ctx context.Context, dir, user, password string, extra ...string) (string, error) {
	cc := filepath.Join(dir, "ccache-"+user)
	cmd := exec.CommandContext(ctx, "kinit", append(append([]string{"-c", "FILE:" + cc}, extra...), user+"@"+Realm)...)
	cmd.Env = append(os.Environ(), "KRB5_CONFIG="+dc.Krb5Conf, "LC_ALL=C")
	cmd.Stdin = strings.NewReader(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("kinit %s: %v: %s", user, err, out)
	}
	return cc, nil
}

func (dc *DC) python(ctx context.Context, script string, args ...string) error {
	return run(ctx, "/usr/bin/python3", append([]string{"-c", script, dc.SMBConf}, args...)...)
}

// setEnctypes sets msDS-SupportedEncryptionTypes, so the exported keytab
// and the tickets use AES (Samba defaults to RC4 for user accounts).
const setEnctypes = `
import sys, ldb
from samba.samdb import SamDB
from samba.param import LoadParm
from samba.auth import system_session
lp = LoadParm(); lp.load(sys.argv[1])
db = SamDB(url=lp.private_path("sam.ldb"), lp=lp, session_info=system_session())
res = db.search(expression="(sAMAccountName=%s)" % ldb.binary_encode(sys.argv[2]), attrs=["dn"])
m = ldb.Message(); m.dn = res[0].dn
m["e"] = ldb.MessageElement(sys.argv[3], ldb.FLAG_MOD_REPLACE, "msDS-SupportedEncryptionTypes")
db.modify(m)
`

const domainSID = `
import sys
from samba.samdb import SamDB
from samba.param import LoadParm
from samba.auth import system_session
lp = LoadParm(); lp.load(sys.argv[1])
db = SamDB(url=lp.private_path("sam.ldb"), lp=lp, session_info=system_session())
print(db.get_domain_sid())
`

// New starts a DC for one test and stops it when the test ends.
func New(t testing.TB, o Options) *DC {
	t.Helper()
	Requirements(t)
	dc, err := Start(o)
	if err != nil {
		t.Fatalf("kdctest: %v", err)
	}
	t.Cleanup(dc.Stop)
	return dc
}

// WaitWinbind waits until winbindd resolves domain names (its domain child
// and the DC's samr server start after the KDC).
func (dc *DC) WaitWinbind(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := exec.CommandContext(ctx, "wbinfo", "-n", Domain+`\`+AdminUser).Run()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("winbindd does not resolve %s\\%s after 60 s: %v", Domain, AdminUser, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// AddServicePrincipal gives the service account another principal (e.g.
// "host/localhost", the one Samba's clients ask for when told to connect
// to localhost) and adds its keys to Keytab.
func (dc *DC) AddServicePrincipal(ctx context.Context, spn string) error {
	if err := run(ctx, "samba-tool", "spn", "add", spn, ServiceUser, "-s", dc.SMBConf); err != nil {
		return err
	}
	return run(ctx, "samba-tool", "domain", "exportkeytab", dc.Keytab, "--principal="+spn, "-s", dc.SMBConf)
}
