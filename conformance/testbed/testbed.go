// Package testbed brings up a private Samba smbd with fsrvpd behind it on
// loopback, for tests and for scripts (fsrvp-conformance testbed): smbd
// serves SMB on 127.0.0.1:<free port> and hands \PIPE\FssagentRpc to fsrvpd
// over <Dir>/npsock/np/fssagentrpc; snapshot shares appear through fsrvpd's
// include file.
//
// Everything lives under one directory (default /tmp/fsrvpd-testbed):
//
//	smb.conf, client.conf          smbd's and the client tools' configuration
//	fsrvpd.toml                    fsrvpd's configuration ([samba] enabled)
//	fsrvpd-shares.conf             the include file fsrvpd owns
//	private lock state cache pid ncalrpc winbindd client/   Samba's own dirs
//	npsock/np/                     external_rpc_pipe:socket_dir: fssagentrpc
//	                               is fsrvpd's socket, every other pipe a
//	                               symlink to samba-dcerpcd's in ncalrpc/np
//	vol/vol1/share1 vol/vol1/hidden$ vol/vol2/share2 vol/vol3/fsrvp_share (dir)
//	btrfs.img, mnt/{vol1,vol2,vol3,snapshots}              (btrfs backend)
//	previous-versions/<share>/     fsrvpd's @GMT links to exposed snapshots,
//	                               the base shares' shadow_copy2 snapdir
//	fsrvpd/                        fsrvpd's state directory
//	log/                           smbd's and fsrvpd's logs
//	testbed.json                   what Up started, for Load and Down
//
// Samba's on-demand helpers stay enabled (srvsvc, needed by smbclient -L
// and by smbtorture's share_sd, comes from samba-dcerpcd); smbd is pointed at
// npsock instead of the ncalrpc dir, so samba-dcerpcd's rpcd_fsrvp is never
// reached (research/samba-np-proxy.md §2 B).
//
// With Options.Agent "samba" Samba's own agent serves the pipe instead
// (research/samba-anchor.md §2): no fsrvpd and no external_rpc_pipe
// redirect; samba-dcerpcd starts /usr/libexec/samba/rpcd_fsrvp on demand.
// It needs the btrfs backend: each share is the root of its own btrfs
// subvolume (vfs_btrfs snapshots it into the share as @GMT-...), with
// "vfs objects = btrfs shadow_copy2", "shadow: snapdir = .", "registry
// shares = yes" (Expose writes the snapshot shares there) and
// "rpcd_fsrvp:num_workers = 1".
//
// Down stops only processes whose PID it recorded and whose command line
// still names this testbed's configuration (smbd's helpers included),
// unmounts and detaches what Up mounted, deletes the users it added and
// removes the directory.
package testbed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// DefaultDir is the directory of the command's testbed.
const DefaultDir = "/tmp/fsrvpd-testbed"

// Account of the testbed: root in the private passdb.
const (
	User        = "root"
	Password    = "fsrvpd-testbed-pw"
	NetbiosName = "FSRVPDTB"
)

// ShareNames are the base shares: share1 and share2 on different volumes,
// fsrvp_share (smbtorture's fixed name) on a third.
var ShareNames = []string{"share1", "share2", "fsrvp_share"}

// HiddenShare is a hidden share ('$') on share1's volume, for the
// hidden-share check (MS-FSRVP §3.1.4.6 note <9>).
const HiddenShare = "hidden$"

// Options configure Up.
type Options struct {
	// Backend is "dir" (default) or "btrfs" (a loop-mounted btrfs image).
	Backend string
	// SambaCompat sets fsrvpd's [fsrvp] compat = "samba".
	SambaCompat bool
	// SeqTimeout, if non-zero, is fsrvpd's sequence_timeout.
	SeqTimeout time.Duration
	// Dir is the testbed's directory; default DefaultDir. Keep it short:
	// unix socket paths are limited to 108 bytes.
	Dir string
	// Agent is who serves \PIPE\FssagentRpc: AgentFsrvpd (default) or
	// AgentSamba (Samba's rpcd_fsrvp; btrfs backend only, SambaCompat and
	// FsrvpdBinary are ignored).
	Agent string
	// FsrvpdBinary is the fsrvpd to run; empty builds ./cmd/fsrvpd of the
	// module the working directory is in (or takes fsrvpd from PATH).
	FsrvpdBinary string
	// RegistryMirror makes fsrvpd also write its snapshot shares into the
	// registry, so srvsvc sees them (smbtorture share_sd needs it); it
	// costs 60-100 ms per Expose and delete.
	RegistryMirror bool
	// FsrvpdExtra is appended to fsrvpd's configuration (e.g. [[writer]]
	// sections).
	FsrvpdExtra string
	// NonAdmin adds a unix and Samba user that is no administrator
	// (NONADMIN_USER, NONADMIN_PASSWORD); Down deletes it.
	NonAdmin bool
	// PipeAuth, if set, is fsrvpd's [fsrvp] pipe_auth ("session" or
	// "rpc"), and fsrvpd gets [[auth.account]]s for User (admin) and the
	// NonAdmin user with their Samba passwords, so that RPC-level
	// authentication of the bind works over the pipe.
	PipeAuth string
	// Log receives progress lines; nil discards them.
	Log func(format string, args ...any)
}

// Agents of Options.Agent.
const (
	AgentFsrvpd = "fsrvpd"
	AgentSamba  = "samba"
)

// SambaAgentBinary is Samba's FSRVP agent (Debian 12's samba package).
const SambaAgentBinary = "/usr/libexec/samba/rpcd_fsrvp"

// Testbed is a running testbed; its exported fields are saved in
// <Dir>/testbed.json.
type Testbed struct {
	Dir            string            `json:"dir"`
	Backend        string            `json:"backend"`
	Agent          string            `json:"agent,omitempty"` // "" means AgentFsrvpd
	SambaCompat    bool              `json:"samba_compat"`
	RegistryMirror bool              `json:"registry_mirror,omitempty"`
	SeqTimeout     string            `json:"seq_timeout,omitempty"`
	FsrvpdExtra    string            `json:"fsrvpd_extra,omitempty"`
	PipeAuth       string            `json:"pipe_auth,omitempty"`
	Port           int               `json:"port"`
	SMBConf        string            `json:"smb_conf"`
	ClientConf     string            `json:"client_conf"`
	Include        string            `json:"include_file"`
	SocketDir      string            `json:"socket_dir"`
	FsrvpdConf     string            `json:"fsrvpd_conf"`
	FsrvpdBinary   string            `json:"fsrvpd_binary"`
	StateDir       string            `json:"state_dir"`
	LogDir         string            `json:"log_dir"`
	Shares         map[string]string `json:"shares"` // name → path
	SmbdPID        int               `json:"smbd_pid,omitempty"`
	FsrvpdPID      int               `json:"fsrvpd_pid,omitempty"`
	// Btrfs backend: the image, its loop device and mount point.
	Image string `json:"image,omitempty"`
	Loop  string `json:"loop,omitempty"`
	Mount string `json:"mount,omitempty"`
	// Users are unix+Samba users added by AddUser, deleted by Down.
	Users []string `json:"users,omitempty"`
	// NonAdminUser and NonAdminPassword: Options.NonAdmin's account.
	NonAdminUser     string `json:"nonadmin_user,omitempty"`
	NonAdminPassword string `json:"nonadmin_password,omitempty"`

	logf func(string, ...any)
}

func stateFile(dir string) string { return filepath.Join(dir, "testbed.json") }

// Up creates and starts a testbed. On failure everything it started is
// stopped again and the error includes the tail of the logs.
func Up(ctx context.Context, o Options) (_ *Testbed, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("testbed: must run as root (smbd, mounts, smbpasswd)")
	}
	if o.Dir == "" {
		o.Dir = DefaultDir
	}
	if o.Agent == "" {
		o.Agent = AgentFsrvpd
	}
	if o.Backend == "" {
		o.Backend = "dir"
		if o.Agent == AgentSamba {
			o.Backend = "btrfs"
		}
	}
	if o.Backend != "dir" && o.Backend != "btrfs" {
		return nil, fmt.Errorf("testbed: backend %q is not dir or btrfs", o.Backend)
	}
	switch o.Agent {
	case AgentFsrvpd:
	case AgentSamba:
		if o.Backend != "btrfs" {
			return nil, errors.New("testbed: agent samba needs the btrfs backend (Samba's rpcd_fsrvp snapshots btrfs subvolume shares only)")
		}
		o.SambaCompat = false
	default:
		return nil, fmt.Errorf("testbed: agent %q is not fsrvpd or samba", o.Agent)
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	if old, err := Load(dir); err == nil {
		if old.alive(old.SmbdPID, old.SMBConf) || old.alive(old.FsrvpdPID, old.FsrvpdConf) || len(pidsNaming(old.SMBConf)) > 0 {
			return nil, fmt.Errorf("testbed: %s is up already (fsrvp-conformance testbed down -dir %[1]s)", dir)
		}
		old.logf = o.Log
		old.Down() // leftovers of a crashed run
	}
	if err := ensurePackages(ctx, o.Backend, o.Log); err != nil {
		return nil, err
	}
	if o.Agent == AgentSamba {
		if _, err := os.Stat(SambaAgentBinary); err != nil {
			return nil, fmt.Errorf("testbed: agent samba: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	tb := &Testbed{Dir: dir, Backend: o.Backend, SambaCompat: o.SambaCompat, RegistryMirror: o.RegistryMirror, FsrvpdExtra: o.FsrvpdExtra, PipeAuth: o.PipeAuth, logf: o.Log,
		SMBConf: filepath.Join(dir, "smb.conf"), ClientConf: filepath.Join(dir, "client.conf"),
		Include: filepath.Join(dir, "fsrvpd-shares.conf"), SocketDir: filepath.Join(dir, "npsock"),
		FsrvpdConf: filepath.Join(dir, "fsrvpd.toml"), StateDir: filepath.Join(dir, "fsrvpd"),
		LogDir: filepath.Join(dir, "log"), Shares: map[string]string{}}
	if o.SeqTimeout > 0 {
		tb.SeqTimeout = o.SeqTimeout.String()
	}
	if o.Agent == AgentSamba {
		tb.Agent = AgentSamba
		tb.SocketDir = filepath.Join(dir, "ncalrpc")
		tb.FsrvpdConf = ""
		tb.StateDir = filepath.Join(dir, "state")
		if o.SeqTimeout > 0 {
			// fss: sequence timeout is in whole seconds.
			tb.SeqTimeout = ((o.SeqTimeout + time.Second - 1) / time.Second * time.Second).String()
		}
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w%s", err, tb.logTail())
			tb.Down()
		}
	}()
	if err := tb.save(); err != nil {
		return nil, err
	}
	if tb.Port, err = freePort(); err != nil {
		return nil, err
	}
	if err := tb.makeVolumes(ctx); err != nil {
		return nil, err
	}
	if err := tb.writeConfigs(); err != nil {
		return nil, err
	}
	if err := tb.save(); err != nil {
		return nil, err
	}
	if tb.Agent != AgentSamba {
		if tb.FsrvpdBinary, err = findFsrvpd(ctx, o.FsrvpdBinary, dir); err != nil {
			return nil, err
		}
	}
	if err := tb.smbpasswd(ctx, User, Password); err != nil {
		return nil, err
	}
	if o.NonAdmin {
		var rnd [3]byte
		rand.Read(rnd[:])
		name, pw := "fsrvptb"+hex.EncodeToString(rnd[:]), "NonAdmin-"+hex.EncodeToString(rnd[:])
		if err := tb.AddUser(ctx, name, pw); err != nil {
			return nil, err
		}
		tb.NonAdminUser, tb.NonAdminPassword = name, pw
	}
	if err := tb.startSmbd(ctx); err != nil {
		return nil, err
	}
	if err := tb.save(); err != nil {
		return nil, err
	}
	if tb.Agent == AgentSamba {
		if err := tb.waitAgent(ctx, "samba-dcerpcd's rpcd_fsrvp", nil); err != nil {
			return nil, err
		}
		return tb, nil
	}
	if tb.PipeAuth != "" && tb.NonAdminUser != "" {
		// The accounts now include the NonAdmin user.
		if err := os.WriteFile(tb.FsrvpdConf, []byte(tb.fsrvpdTOML()), 0o644); err != nil {
			return nil, err
		}
	}
	if err := tb.StartFsrvpd(ctx); err != nil {
		return nil, err
	}
	return tb, nil
}

// Load reads the testbed saved in dir.
func Load(dir string) (*Testbed, error) {
	data, err := os.ReadFile(stateFile(dir))
	if err != nil {
		return nil, err
	}
	var tb Testbed
	if err := json.Unmarshal(data, &tb); err != nil {
		return nil, fmt.Errorf("%s: %w", stateFile(dir), err)
	}
	return &tb, nil
}

func (tb *Testbed) save() error {
	data, err := json.MarshalIndent(tb, "", "  ")
	if err != nil {
		return err
	}
	tmp := stateFile(tb.Dir) + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, stateFile(tb.Dir))
}

func (tb *Testbed) log(format string, args ...any) {
	if tb.logf != nil {
		tb.logf(format, args...)
	}
}

// SetLog sets where progress lines go (for a Testbed from Load).
func (tb *Testbed) SetLog(f func(string, ...any)) { tb.logf = f }

// Down stops what Up started, deletes the users AddUser added, unmounts
// and detaches the btrfs image and removes the directory. It is idempotent
// and returns every problem it met.
func (tb *Testbed) Down() error {
	var errs []error
	if err := tb.stop(tb.FsrvpdPID, tb.FsrvpdConf); err != nil {
		errs = append(errs, fmt.Errorf("fsrvpd: %w", err))
	}
	tb.FsrvpdPID = 0
	if err := tb.stopSmbd(); err != nil {
		errs = append(errs, fmt.Errorf("smbd: %w", err))
	}
	for _, u := range tb.Users {
		if err := removeUnixUser(u); err != nil {
			errs = append(errs, err)
		}
	}
	tb.Users = nil
	if err := tb.removeVolumes(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		// Keep the directory (and testbed.json) for another try.
		tb.save()
		return errors.Join(errs...)
	}
	if err := os.RemoveAll(tb.Dir); err != nil {
		return err
	}
	return nil
}

// Env describes the testbed as KEY=value pairs for scripts. The keys are
// stable; see the fsrvp-conformance testbed help.
func (tb *Testbed) Env() map[string]string {
	env := map[string]string{
		"ADDR":         "127.0.0.1",
		"PORT":         strconv.Itoa(tb.Port),
		"USER":         User,
		"PASSWORD":     Password,
		"SHARES":       strings.Join(ShareNames, ","),
		"NETBIOS_NAME": NetbiosName,
		"SMBCONF":      tb.SMBConf,
		"CLIENT_CONF":  tb.ClientConf,
		"INCLUDE_FILE": tb.Include,
		"SOCKET_DIR":   tb.SocketDir,
		"FSRVPD_CONF":  tb.FsrvpdConf,
		"FSRVPD_BIN":   tb.FsrvpdBinary,
		"FSRVPD_LOG":   filepath.Join(tb.LogDir, "fsrvpd.log"),
		"STATE_DIR":    tb.StateDir,
		"LOG_DIR":      tb.LogDir,
		"TESTBED_DIR":  tb.Dir,
		"BACKEND":      tb.Backend,
		"AGENT":        tb.AgentName(),
		"COMPAT":       "spec",
		"FSRVPD_PID":   strconv.Itoa(tb.FsrvpdPID),
		"SMBD_PID":     strconv.Itoa(tb.SmbdPID),
		"HIDDEN_SHARE": HiddenShare,
	}
	if tb.NonAdminUser != "" {
		env["NONADMIN_USER"], env["NONADMIN_PASSWORD"] = tb.NonAdminUser, tb.NonAdminPassword
	}
	if tb.SambaCompat {
		env["COMPAT"] = "samba"
	}
	if tb.AgentName() == AgentFsrvpd {
		env["ADMIN_SOCKET"] = filepath.Join(tb.StateDir, "admin.sock")
	}
	if tb.AgentName() == AgentSamba {
		// No fsrvpd: its keys stay, empty or 0; the log is rpcd_fsrvp's.
		env["FSRVPD_LOG"] = filepath.Join(tb.LogDir, "log.rpcd_fsrvp")
		env["COMPAT"] = "samba"
	}
	if d, err := time.ParseDuration(tb.SeqTimeout); err == nil && d > 0 {
		env["SEQ_TIMEOUT"] = tb.SeqTimeout
		env["SEQ_TIMEOUT_SECONDS"] = strconv.Itoa(int((d + time.Second - 1) / time.Second))
	}
	for _, n := range ShareNames {
		env[strings.ToUpper(n)+"_PATH"] = tb.Shares[n]
	}
	return env
}

// AgentName is who serves the pipe: AgentFsrvpd or AgentSamba.
func (tb *Testbed) AgentName() string {
	if tb.Agent == "" {
		return AgentFsrvpd
	}
	return tb.Agent
}

// SeqTimeoutSeconds is the sequence timeout rounded up to seconds (the
// unit of smbtorture's fss:sequence timeout), 0 when not shortened.
func (tb *Testbed) SeqTimeoutSeconds() int {
	n, _ := strconv.Atoi(tb.Env()["SEQ_TIMEOUT_SECONDS"])
	return n
}

// Addr is smbd's host:port.
func (tb *Testbed) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(tb.Port)) }

// Status checks that smbd (and, with agent fsrvpd, fsrvpd) runs and that
// FSRVP answers through smbd.
func (tb *Testbed) Status(ctx context.Context) error {
	var errs []error
	if !tb.alive(tb.SmbdPID, tb.SMBConf) {
		errs = append(errs, fmt.Errorf("smbd (pid %d) is not running", tb.SmbdPID))
	}
	if tb.AgentName() == AgentFsrvpd && !tb.alive(tb.FsrvpdPID, tb.FsrvpdConf) {
		errs = append(errs, fmt.Errorf("fsrvpd (pid %d) is not running", tb.FsrvpdPID))
	}
	if len(errs) == 0 {
		if out, err := tb.Rpcclient(ctx, User, Password, "fss_get_sup_version"); err != nil {
			errs = append(errs, fmt.Errorf("rpcclient fss_get_sup_version: %w: %s", err, out))
		}
	}
	return errors.Join(errs...)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// logTail is the end of smbd's and fsrvpd's logs, for error messages.
func (tb *Testbed) logTail() string {
	var b strings.Builder
	for _, f := range []string{"fsrvpd.log", "log.smbd", "log.rpcd_fsrvp", "log.samba-dcerpcd"} {
		data, err := os.ReadFile(filepath.Join(tb.LogDir, f))
		if err != nil || len(data) == 0 {
			continue
		}
		if len(data) > 2000 {
			data = data[len(data)-2000:]
		}
		fmt.Fprintf(&b, "\n--- %s (tail) ---\n%s", f, data)
	}
	return b.String()
}
