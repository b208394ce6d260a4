// Package config is fsrvpd's configuration: one typed tree decoded strictly
// from TOML (unknown keys are errors), defaults from Default, and Validate
// reporting every problem with its key path.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/BurntSushi/toml"

	"github.com/fsrvpd/fsrvpd/server/writers"
)

// Config is the whole daemon configuration.
type Config struct {
	Server  Server  `toml:"server"`
	FSRVP   FSRVP   `toml:"fsrvp"`
	Storage Storage `toml:"storage"`
	Samba   Samba   `toml:"samba"`
	Auth    Auth    `toml:"auth"`
	SCMP    SCMP    `toml:"scmp"`
	Shares  []Share `toml:"share"`
	// Writers and Writer configure application writers (package
	// server/writers): [writers] and one [[writer]] per application.
	Writers writers.Config   `toml:"writers"`
	Writer  []writers.Writer `toml:"writer"`
	Admin   Admin            `toml:"admin"`
	Metrics Metrics          `toml:"metrics"`
	// Retention prunes old sets of the persistent contexts.
	Retention Retention `toml:"retention"`
}

// Admin is the [admin] section: the local socket of `fsrvp admin`.
type Admin struct {
	// Enabled serves the admin socket (default true).
	Enabled bool `toml:"enabled"`
	// Socket is the socket's path; default <state_dir>/admin.sock.
	Socket string `toml:"socket"`
	// Group (a name or a number) may use the socket besides root; the
	// socket is then mode 0660 and owned by that group, and its directory
	// must let the group through. Default: root only (mode 0600).
	Group string `toml:"group"`
}

// Metrics is the [metrics] section: the Prometheus endpoint.
type Metrics struct {
	// Listen is the host:port of the HTTP endpoint serving /metrics;
	// empty (the default) disables it. Keep it on loopback unless a
	// firewall protects it: it tells which shares are snapshotted.
	Listen string `toml:"listen"`
}

// Retention is the [retention] section.
type Retention struct {
	// Interval between retention runs (default 15m).
	Interval Duration `toml:"interval"`
	// Policies are the per-share [[retention.policy]] tables.
	Policies []RetentionPolicy `toml:"policy"`
}

// RetentionPolicy is one [[retention.policy]]: how many shadow copies of
// a share's persistent sets (NAS_ROLLBACK, APP_ROLLBACK) to keep. Each
// keep_* keeps the first snapshot of each of the N most recent hours,
// days, ISO weeks or months that have one (in the daemon's time zone);
// min_age keeps everything younger. A set is pruned only when every share in it has a policy and
// each of them lets it go; sets in a creation sequence are never touched.
type RetentionPolicy struct {
	Share       string   `toml:"share"`
	KeepHourly  int      `toml:"keep_hourly"`
	KeepDaily   int      `toml:"keep_daily"`
	KeepWeekly  int      `toml:"keep_weekly"`
	KeepMonthly int      `toml:"keep_monthly"`
	MinAge      Duration `toml:"min_age"`
}

// Auth is the [auth] section: RPC-level authentication (MS-RPCE
// §2.2.1.1.7) of binds on every transport. Without a credential source
// (accounts here) authenticated binds are refused.
type Auth struct {
	// Mechanisms are the accepted auth types: "ntlm" (auth_type 10) and
	// "spnego" (auth_type 9, negotiating NTLM). Default both.
	Mechanisms []string `toml:"mechanisms"`
	// Domain is the NetBIOS domain or workgroup announced in NTLM
	// challenges. Default "WORKGROUP".
	Domain string `toml:"domain"`
	// Accounts are local accounts checked with their NT hash.
	Accounts []Account `toml:"account"`
	// Kerberos ([auth.kerberos]) accepts Kerberos tickets for a service
	// principal of a keytab: inside SPNEGO, and as auth_type 16 when
	// Mechanisms lists "kerberos".
	Kerberos *Kerberos `toml:"kerberos"`
	// Winbind ([auth.winbind]) checks NTLM logons of Samba's (domain)
	// accounts through winbindd, after Accounts.
	Winbind *Winbind `toml:"winbind"`
	// BackupSIDs are SIDs (e.g. a domain's Domain Admins, RID 512, or a
	// group made for backups) whose members may use FSRVP besides
	// Administrators and Backup Operators; Kerberos PACs carry domain
	// groups, not BUILTIN ones.
	BackupSIDs []string `toml:"backup_sids"`
}

// Kerberos is [auth.kerberos].
type Kerberos struct {
	// Keytab is the keytab with the service's keys (absolute path).
	Keytab string `toml:"keytab"`
	// Principal, e.g. "cifs/fs1.example.com" or "host/fs1.example.com@EXAMPLE.COM",
	// restricts the accepted tickets to one principal of the keytab.
	// Empty: any principal the keytab holds.
	Principal string `toml:"principal"`
	// MaxClockSkew between clients and us (default 5m).
	MaxClockSkew Duration `toml:"max_clock_skew"`
}

// Winbind is [auth.winbind].
type Winbind struct {
	// NtlmAuth and Wbinfo are the programs (absolute paths); default
	// ntlm_auth and wbinfo on PATH.
	NtlmAuth string `toml:"ntlm_auth"`
	Wbinfo   string `toml:"wbinfo"`
	// SMBConf is Samba's configuration for ntlm_auth (default Samba's own).
	SMBConf string `toml:"smb_conf"`
	// Timeout of one logon check (default 15s).
	Timeout Duration `toml:"timeout"`
}

// Account is one [[auth.account]].
type Account struct {
	// User is the account name (case-insensitive).
	User string `toml:"user"`
	// Domain, if set, must match the domain the client sends; empty
	// accepts any.
	Domain string `toml:"domain"`
	// NTHash is the NT hash in hex (32 digits, as in smbpasswd or
	// `fsrvp nthash`); NTHashFile names a file holding it instead. Exactly
	// one of them. Never logged.
	NTHash     Secret `toml:"nt_hash"`
	NTHashFile string `toml:"nt_hash_file"`
	// SIDs are the account's SID and groups; Admin and BackupOperator add
	// BUILTIN\Administrators (S-1-5-32-544) and BUILTIN\Backup Operators
	// (S-1-5-32-551), either of which lets the account use FSRVP.
	SIDs           []string `toml:"sids"`
	Admin          bool     `toml:"admin"`
	BackupOperator bool     `toml:"backup_operator"`
}

// Secret is a string that prints as "<redacted>".
type Secret string

func (Secret) String() string   { return "<redacted>" }
func (Secret) GoString() string { return "<redacted>" }

// AllSIDs returns the account's SIDs with those Admin and BackupOperator
// imply.
func (a *Account) AllSIDs() []string {
	out := append([]string(nil), a.SIDs...)
	if a.Admin {
		out = append(out, "S-1-5-32-544")
	}
	if a.BackupOperator {
		out = append(out, "S-1-5-32-551")
	}
	return out
}

// LoadNTHash returns the account's NT hash in hex, from nt_hash or from
// the first line of nt_hash_file.
func (a *Account) LoadNTHash() (string, error) {
	if a.NTHashFile == "" {
		return string(a.NTHash), nil
	}
	b, err := os.ReadFile(a.NTHashFile)
	if err != nil {
		return "", fmt.Errorf("auth.account %q: %w", a.User, err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(line), nil
}

// SCMP is the [scmp] section: MS-SCMP (the Shadow Copies tab of Computer
// Management) over DCOM. The DCOM resolver and activator share the
// endpoint mapper's listener (server.endpoint_mapper, TCP 135 for Windows);
// the SCMP objects live on the exporter address.
type SCMP struct {
	Enabled bool `toml:"enabled"`
	// Exporter is the object exporter's address, advertised to clients as
	// host[port]; port 0 picks a free port. Default: the host of the first
	// server.listen address, port 0.
	Exporter string `toml:"exporter"`
	// MaxShadowCopies per volume (Windows' MaxShadowCopies, 1-512): beyond
	// it the oldest shadow copies not in use by FSRVP are deleted.
	MaxShadowCopies int `toml:"max_shadow_copies"`
	// MinStorageBytes is the smallest non-zero storage maximum accepted
	// (VSS_E_INSUFFICIENT_STORAGE below it); -1 accepts any.
	MinStorageBytes int64 `toml:"min_storage_bytes"`
	// MinAuthLevel is the RPC authentication level activation and SCMP
	// calls need: "privacy" (the default, what Windows uses, MS-SCMP §7)
	// or "integrity". Callers must also be Administrators, Backup
	// Operators, Restore Operators or in [auth] backup_sids.
	MinAuthLevel string `toml:"min_auth_level"`
	// AllowUnauthenticated lets unauthenticated callers activate and call
	// (loopback tests only).
	AllowUnauthenticated bool `toml:"allow_unauthenticated"`
}

// Samba is the [samba] section: serving \PIPE\FssagentRpc through smbd and
// exposing snapshots as shares of the running smbd. When enabled, base
// shares come from Samba's configuration and [[share]] must be empty.
type Samba struct {
	Enabled bool `toml:"enabled"`
	// SMBConf is smbd's configuration file.
	SMBConf string `toml:"smb_conf"`
	// IncludeFile holds the snapshot shares; smb.conf must include it as
	// the last line of [global]: include = <IncludeFile>.
	IncludeFile string `toml:"include_file"`
	// SocketDir is Samba's external_rpc_pipe:socket_dir (default: its
	// "ncalrpc dir"); the pipe's socket is <SocketDir>/np/fssagentrpc.
	SocketDir string `toml:"socket_dir"`
	// PreviousVersionsDir, if set (absolute), gets per base share a
	// directory of @GMT-... links to its exposed snapshots, which
	// vfs_shadow_copy2 on the base share lists as Previous Versions
	// (shadow:snapdir = <dir>/<share in lower case>, shadow:mountpoint =
	// <share path>; see package shares/samba). Default "": off.
	PreviousVersionsDir string `toml:"previous_versions_dir"`
	// RegistryMirror also writes snapshot shares into Samba's registry
	// configuration so srvsvc lists them (needs "registry shares = yes";
	// 60-100 ms more per Expose and delete). See shares/samba.
	RegistryMirror bool `toml:"registry_mirror"`
	// LibexecDir is where Samba's rpcd_* helpers live (to list the pipes
	// to link in redirect mode, and to see whether rpcd_fsrvp is diverted).
	LibexecDir string `toml:"libexec_dir"`
	// BackupSIDs are SIDs whose members may use FSRVP besides uid 0,
	// Administrators, Backup Operators and holders of SeBackupPrivilege.
	BackupSIDs []string `toml:"backup_sids"`
}

// Server is the [server] section.
type Server struct {
	// Name is the server name clients see: OwnerMachineName and the host of
	// exposed shares' UNC names. Default: the host name, upper-cased, up to
	// the first dot.
	Name string `toml:"name"`
	// Listen are ncacn_ip_tcp addresses (host:port) to serve on.
	Listen []string `toml:"listen"`
	// EndpointMapper is the address of the endpoint mapper (ept_map), which
	// rpcclient and Windows query on port 135. Empty disables it.
	EndpointMapper string `toml:"endpoint_mapper"`
	// EndpointMapperOptional keeps the daemon running, with a warning, when
	// the endpoint mapper address cannot be bound (not root, port taken).
	EndpointMapperOptional bool `toml:"endpoint_mapper_optional"`
	// UnixSocket, if set, also serves ncalrpc on this socket path.
	UnixSocket string `toml:"unix_socket"`
	// StateDir holds the state store and the registry of exposed shares.
	StateDir  string `toml:"state_dir"`
	LogLevel  string `toml:"log_level"`
	LogFormat string `toml:"log_format"`
}

// FSRVP is the [fsrvp] section: protocol policy.
type FSRVP struct {
	// SequenceTimeout, when set, replaces both message sequence timer
	// values (180 s and 1800 s); Samba calls it "fss: sequence timeout".
	// For tests only: Windows clients rely on the spec values.
	SequenceTimeout Duration `toml:"sequence_timeout"`
	// RetryLimit bounds SetContext retries from the same client; -1 means
	// unlimited (Windows Server 2012).
	RetryLimit int `toml:"retry_limit"`
	// SameVolume is "share" (a second share on a volume already in the set
	// joins its shadow copy, as Windows does) or "reject"
	// (FSRVP_E_OBJECT_ALREADY_EXISTS, the literal §3.1.4.4).
	SameVolume string `toml:"same_volume"`
	// Compat is "spec" (the default: MS-FSRVP exactly) or "samba" (the
	// deviations of Samba's agent that its tools rely on; see
	// fsrvp.CompatSamba for the exact list).
	Compat string `toml:"compat"`
	// AllowUnauthenticated accepts calls without RPC authentication. Only
	// for loopback or trusted transports; the spec requires packet
	// integrity.
	AllowUnauthenticated bool `toml:"allow_unauthenticated"`
	// MinAuthLevel is the RPC authentication level a caller needs
	// (MS-FSRVP §3.1.4: packet integrity or higher): "integrity" (the
	// default) or "privacy".
	MinAuthLevel string `toml:"min_auth_level"`
	// PipeAuth decides how callers on smbd's named pipe are authorized:
	// "session" (the default) by the SMB session's identity, whatever the
	// bind; "rpc" requires an authenticated bind at MinAuthLevel and
	// authorizes its identity.
	PipeAuth string `toml:"pipe_auth"`
}

// Storage is the [storage] section.
type Storage struct {
	// Backend is "dir", "btrfs" or "zfs".
	Backend string `toml:"backend"`
	Dir     Dir    `toml:"dir"`
	Btrfs   Btrfs  `toml:"btrfs"`
	ZFS     ZFS    `toml:"zfs"`
}

// ZFS configures the zfs backend: every share's volume is the dataset
// mounted at or above it.
type ZFS struct {
	// Datasets limits the backend to these datasets and their children;
	// empty allows every dataset.
	Datasets []string `toml:"datasets"`
	// CloneParent is where clones (writable copies, and read-only exposure
	// where .zfs/snapshot is unavailable) are made: <pool>/<clone_parent>.
	CloneParent string `toml:"clone_parent"`
	// Recursive accepts shares whose dataset has child datasets mounted
	// below it: a snapshot is `zfs snapshot -r`, the children's clones
	// mounted at the same paths.
	Recursive bool `toml:"recursive"`
}

// Btrfs configures the btrfs backend: every share's volume is the
// subvolume that contains it.
type Btrfs struct {
	// SnapshotDir is where snapshots are kept: a directory on the same
	// btrfs filesystem as the shares, outside every shared subvolume.
	SnapshotDir string `toml:"snapshot_dir"`
	// Recursive accepts shares whose subvolume has nested subvolumes
	// (not mount points): they are snapshotted too, into place.
	Recursive bool `toml:"recursive"`
}

// Dir configures the dir backend.
type Dir struct {
	// Volumes are the directory roots that count as volumes; every share
	// must lie below one.
	Volumes []string `toml:"volumes"`
	// SnapshotDir is where snapshots are kept; default <state_dir>/snapshots.
	SnapshotDir string `toml:"snapshot_dir"`
}

// Share is one [[share]]: a base share clients may name.
type Share struct {
	Name string `toml:"name"`
	Path string `toml:"path"`
}

// Duration is a time.Duration written as "180s" in TOML.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText prints a Go duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Default returns the configuration every file starts from.
func Default() Config {
	return Config{
		Server: Server{
			Name:           defaultName(),
			Listen:         []string{"127.0.0.1:41345"},
			EndpointMapper: "127.0.0.1:135",
			StateDir:       "/var/lib/fsrvpd",
			LogLevel:       "info",
			LogFormat:      "text",
		},
		FSRVP: FSRVP{RetryLimit: 5, SameVolume: "share", Compat: "spec", MinAuthLevel: "integrity", PipeAuth: "session"},
		Auth:  Auth{Mechanisms: []string{"ntlm", "spnego"}, Domain: "WORKGROUP"},
		Samba: Samba{
			SMBConf:     "/etc/samba/smb.conf",
			IncludeFile: "/etc/samba/fsrvpd-shares.conf",
			SocketDir:   "/run/samba/ncalrpc",
			LibexecDir:  "/usr/libexec/samba",
		},
		Storage:   Storage{Backend: "dir"},
		Admin:     Admin{Enabled: true},
		Retention: Retention{Interval: Duration{15 * time.Minute}},
		SCMP:      SCMP{MaxShadowCopies: 64, MinStorageBytes: 32 << 20, MinAuthLevel: "privacy"},
	}
}

func defaultName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "LOCALHOST"
	}
	if i := strings.IndexByte(h, '.'); i > 0 {
		h = h[:i]
	}
	return strings.ToUpper(h)
}

// Load reads and validates the file at path.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	return Parse(data)
}

// Parse decodes TOML over Default, rejecting unknown keys, and validates.
func Parse(data []byte) (Config, error) {
	c := Default()
	md, err := toml.Decode(string(data), &c)
	if err != nil {
		return Config{}, err
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return Config{}, fmt.Errorf("unknown keys: %s", strings.Join(keys, ", "))
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate reports every problem of c, each with its key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	if c.Server.Name == "" || strings.ContainsAny(c.Server.Name, `\/ `) {
		bad("server.name", "%q is not a host name", c.Server.Name)
	}
	for i, a := range c.Server.Listen {
		if _, _, err := net.SplitHostPort(a); err != nil {
			bad(fmt.Sprintf("server.listen[%d]", i), "%v", err)
		}
	}
	if len(c.Server.Listen) == 0 && c.Server.UnixSocket == "" && !c.Samba.Enabled {
		bad("server.listen", "no address to serve on (set listen or unix_socket)")
	}
	if a := c.Server.EndpointMapper; a != "" {
		if _, _, err := net.SplitHostPort(a); err != nil {
			bad("server.endpoint_mapper", "%v", err)
		}
	}
	if !filepath.IsAbs(c.Server.StateDir) {
		bad("server.state_dir", "%q is not an absolute path", c.Server.StateDir)
	}
	if c.SCMP.Enabled {
		if c.Server.EndpointMapper == "" {
			bad("scmp.enabled", "needs server.endpoint_mapper: the DCOM resolver shares its listener")
		}
		if a := c.SCMP.Exporter; a != "" {
			if _, _, err := net.SplitHostPort(a); err != nil {
				bad("scmp.exporter", "%v", err)
			}
		}
	}
	if c.SCMP.MaxShadowCopies < 1 || c.SCMP.MaxShadowCopies > 512 {
		bad("scmp.max_shadow_copies", "%d: must be 1 to 512", c.SCMP.MaxShadowCopies)
	}
	if l := c.SCMP.MinAuthLevel; l != "integrity" && l != "privacy" {
		bad("scmp.min_auth_level", "%q is not integrity or privacy", l)
	}
	if c.SCMP.MinStorageBytes < -1 {
		bad("scmp.min_storage_bytes", "%d: must be -1 or more", c.SCMP.MinStorageBytes)
	}
	switch c.Server.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("server.log_level", "%q is not one of debug, info, warn, error", c.Server.LogLevel)
	}
	switch c.Server.LogFormat {
	case "text", "json":
	default:
		bad("server.log_format", "%q is not text or json", c.Server.LogFormat)
	}
	if c.FSRVP.SequenceTimeout.Duration < 0 {
		bad("fsrvp.sequence_timeout", "negative")
	}
	if c.FSRVP.RetryLimit < -1 || c.FSRVP.RetryLimit == 0 {
		bad("fsrvp.retry_limit", "%d: must be positive, or -1 for no limit", c.FSRVP.RetryLimit)
	}
	switch c.FSRVP.SameVolume {
	case "share", "reject":
	default:
		bad("fsrvp.same_volume", "%q is not share or reject", c.FSRVP.SameVolume)
	}
	switch c.FSRVP.Compat {
	case "spec", "samba":
	default:
		bad("fsrvp.compat", "%q is not spec or samba", c.FSRVP.Compat)
	}
	switch c.FSRVP.MinAuthLevel {
	case "integrity", "privacy":
	default:
		bad("fsrvp.min_auth_level", "%q is not integrity or privacy", c.FSRVP.MinAuthLevel)
	}
	switch c.FSRVP.PipeAuth {
	case "session", "rpc":
	default:
		bad("fsrvp.pipe_auth", "%q is not session or rpc", c.FSRVP.PipeAuth)
	}
	c.validateAuth(bad)
	switch c.Storage.Backend {
	case "dir":
		if len(c.Storage.Dir.Volumes) == 0 {
			bad("storage.dir.volumes", "at least one volume root is needed")
		}
		for i, v := range c.Storage.Dir.Volumes {
			if !filepath.IsAbs(v) {
				bad(fmt.Sprintf("storage.dir.volumes[%d]", i), "%q is not an absolute path", v)
			}
		}
		if p := c.Storage.Dir.SnapshotDir; p != "" && !filepath.IsAbs(p) {
			bad("storage.dir.snapshot_dir", "%q is not an absolute path", p)
		}
	case "btrfs":
		if p := c.Storage.Btrfs.SnapshotDir; !filepath.IsAbs(p) {
			bad("storage.btrfs.snapshot_dir", "%q is not an absolute path (a directory on the shares' btrfs filesystem is required)", p)
		}
	case "zfs":
		for i, ds := range c.Storage.ZFS.Datasets {
			if ds == "" || strings.HasPrefix(ds, "/") || strings.Contains(ds, "@") {
				bad(fmt.Sprintf("storage.zfs.datasets[%d]", i), "%q is not a dataset name", ds)
			}
		}
	default:
		bad("storage.backend", "%q is not a known backend (dir, btrfs, zfs)", c.Storage.Backend)
	}
	if c.Samba.Enabled {
		for key, p := range map[string]string{"samba.smb_conf": c.Samba.SMBConf, "samba.include_file": c.Samba.IncludeFile, "samba.socket_dir": c.Samba.SocketDir} {
			if !filepath.IsAbs(p) {
				bad(key, "%q is not an absolute path", p)
			}
		}
		if p := c.Samba.PreviousVersionsDir; p != "" && !filepath.IsAbs(p) {
			bad("samba.previous_versions_dir", "%q is not an absolute path", p)
		}
		if len(c.Shares) > 0 {
			bad("share", "with samba.enabled the shares come from Samba's configuration; remove the [[share]] entries")
		}
	}
	for i, sid := range c.Samba.BackupSIDs {
		if !strings.HasPrefix(sid, "S-1-") {
			bad(fmt.Sprintf("samba.backup_sids[%d]", i), "%q is not a SID", sid)
		}
	}
	if a := c.Metrics.Listen; a != "" {
		if _, _, err := net.SplitHostPort(a); err != nil {
			bad("metrics.listen", "%v", err)
		}
	}
	if p := c.Admin.Socket; p != "" && !filepath.IsAbs(p) {
		bad("admin.socket", "%q is not an absolute path", p)
	}
	if c.Retention.Interval.Duration <= 0 {
		bad("retention.interval", "must be positive")
	}
	polSeen := map[string]bool{}
	for i, p := range c.Retention.Policies {
		key := fmt.Sprintf("retention.policy[%d]", i)
		if p.Share == "" {
			bad(key+".share", "a share name is required")
		}
		if polSeen[strings.ToLower(p.Share)] {
			bad(key+".share", "%q has two policies", p.Share)
		}
		polSeen[strings.ToLower(p.Share)] = true
		if p.Share != "" && !c.Samba.Enabled && !slices.ContainsFunc(c.Shares, func(s Share) bool { return strings.EqualFold(s.Name, p.Share) }) {
			bad(key+".share", "%q is not a [[share]]", p.Share)
		}
		for k, v := range map[string]int{"keep_hourly": p.KeepHourly, "keep_daily": p.KeepDaily, "keep_weekly": p.KeepWeekly, "keep_monthly": p.KeepMonthly} {
			if v < 0 {
				bad(key+"."+k, "%d is negative", v)
			}
		}
		if p.MinAge.Duration < 0 {
			bad(key+".min_age", "negative")
		}
	}
	seen := map[string]bool{}
	for i, s := range c.Shares {
		key := fmt.Sprintf("share[%d]", i)
		if s.Name == "" || utf8.RuneCountInString(s.Name) > 80 || strings.ContainsAny(s.Name, "\\/:*?\"<>|@{}") || strings.EqualFold(s.Name, "IPC$") {
			bad(key+".name", "%q is not a valid share name", s.Name)
		}
		if seen[strings.ToLower(s.Name)] {
			bad(key+".name", "%q is defined twice", s.Name)
		}
		seen[strings.ToLower(s.Name)] = true
		if !filepath.IsAbs(s.Path) {
			bad(key+".path", "%q is not an absolute path", s.Path)
		}
	}
	if err := writers.Validate(c.Writers, c.Writer); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c *Config) validateAuth(bad func(key, format string, a ...any)) {
	for i, m := range c.Auth.Mechanisms {
		if m != "ntlm" && m != "spnego" && m != "kerberos" {
			bad(fmt.Sprintf("auth.mechanisms[%d]", i), "%q is not ntlm, spnego or kerberos", m)
		}
		if m == "kerberos" && c.Auth.Kerberos == nil {
			bad(fmt.Sprintf("auth.mechanisms[%d]", i), "kerberos needs [auth.kerberos]")
		}
	}
	if k := c.Auth.Kerberos; k != nil {
		if !filepath.IsAbs(k.Keytab) {
			bad("auth.kerberos.keytab", "%q is not an absolute path", k.Keytab)
		}
		if p := k.Principal; p != "" {
			name, realm, _ := strings.Cut(p, "@")
			svc, host, ok := strings.Cut(name, "/")
			if !ok || svc == "" || host == "" || strings.ContainsAny(name+realm, " \t@") || (strings.Contains(p, "@") && realm == "") {
				bad("auth.kerberos.principal", "%q is not service/host[@REALM]", p)
			}
		}
		if k.MaxClockSkew.Duration < 0 {
			bad("auth.kerberos.max_clock_skew", "negative")
		}
	}
	if w := c.Auth.Winbind; w != nil {
		for key, p := range map[string]string{"ntlm_auth": w.NtlmAuth, "wbinfo": w.Wbinfo, "smb_conf": w.SMBConf} {
			if p != "" && !filepath.IsAbs(p) {
				bad("auth.winbind."+key, "%q is not an absolute path", p)
			}
		}
		if w.Timeout.Duration < 0 {
			bad("auth.winbind.timeout", "negative")
		}
	}
	for i, sid := range c.Auth.BackupSIDs {
		if !strings.HasPrefix(sid, "S-1-") {
			bad(fmt.Sprintf("auth.backup_sids[%d]", i), "%q is not a SID", sid)
		}
	}
	if d := c.Auth.Domain; d == "" || len(d) > 15 || strings.ContainsAny(d, `\/:*?"<>| .`) {
		bad("auth.domain", "%q is not a NetBIOS name", d)
	}
	seen := map[string]bool{}
	for i, a := range c.Auth.Accounts {
		key := fmt.Sprintf("auth.account[%d]", i)
		if a.User == "" || strings.ContainsAny(a.User, `\/@"[]:;|=,+*?<>`) {
			bad(key+".user", "%q is not an account name", a.User)
		}
		id := strings.ToLower(a.Domain + `\` + a.User)
		if seen[id] {
			bad(key+".user", "%q is defined twice", a.User)
		}
		seen[id] = true
		switch {
		case (a.NTHash == "") == (a.NTHashFile == ""):
			bad(key, "set exactly one of nt_hash and nt_hash_file")
		case a.NTHash != "" && !isNTHash(string(a.NTHash)):
			bad(key+".nt_hash", "not 32 hexadecimal digits")
		case a.NTHashFile != "" && !filepath.IsAbs(a.NTHashFile):
			bad(key+".nt_hash_file", "%q is not an absolute path", a.NTHashFile)
		}
		for j, sid := range a.SIDs {
			if !strings.HasPrefix(sid, "S-1-") {
				bad(fmt.Sprintf("%s.sids[%d]", key, j), "%q is not a SID", sid)
			}
		}
	}
}

func isNTHash(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}

// PipeSocket is the Unix socket smbd connects \PIPE\FssagentRpc to.
func (c *Config) PipeSocket() string {
	return filepath.Join(c.Samba.SocketDir, "np", "fssagentrpc")
}

// AdminSocket is the admin socket's path after defaults.
func (c *Config) AdminSocket() string {
	if c.Admin.Socket != "" {
		return c.Admin.Socket
	}
	return filepath.Join(c.Server.StateDir, "admin.sock")
}

// SnapshotDir is the dir backend's snapshot directory after defaults.
func (c *Config) SnapshotDir() string {
	if c.Storage.Dir.SnapshotDir != "" {
		return c.Storage.Dir.SnapshotDir
	}
	return filepath.Join(c.Server.StateDir, "snapshots")
}

// Demo is the embedded default of `fsrvpd -demo`: loopback only, the dir
// backend below stateDir with two volumes and the shares share1 and share2,
// and no RPC authentication (loopback only).
func Demo(stateDir string) Config {
	c := Default()
	c.Server.StateDir = stateDir
	c.Server.EndpointMapperOptional = true
	c.FSRVP.AllowUnauthenticated = true
	v1, v2 := filepath.Join(stateDir, "volumes", "vol1"), filepath.Join(stateDir, "volumes", "vol2")
	c.Storage.Dir.Volumes = []string{v1, v2}
	c.Shares = []Share{{Name: "share1", Path: filepath.Join(v1, "share1")}, {Name: "share2", Path: filepath.Join(v2, "share2")}}
	return c
}
