package testbed

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/fsrvpd/fsrvpd/rpc/auth/ntlm"
)

// shareVolume maps each share to its volume (vol1..vol3).
var shareVolume = map[string]string{"share1": "vol1", "share2": "vol2", "fsrvp_share": "vol3", HiddenShare: "vol1"}

// allShares are ShareNames and HiddenShare.
func allShares() []string { return append(append([]string(nil), ShareNames...), HiddenShare) }

// makeVolumes creates the volumes and share directories: plain directories
// for the dir backend; for btrfs a 1 GiB loop-mounted image with one
// subvolume per volume and the snapshot directory outside them.
func (tb *Testbed) makeVolumes(ctx context.Context) error {
	root := filepath.Join(tb.Dir, "vol")
	if tb.Backend == "btrfs" {
		tb.Image = filepath.Join(tb.Dir, "btrfs.img")
		tb.Mount = filepath.Join(tb.Dir, "mnt")
		root = tb.Mount
		f, err := os.Create(tb.Image)
		if err != nil {
			return err
		}
		err = f.Truncate(1 << 30)
		f.Close()
		if err != nil {
			return err
		}
		if out, err := exec.CommandContext(ctx, "mkfs.btrfs", "-q", "-f", tb.Image).CombinedOutput(); err != nil {
			return fmt.Errorf("mkfs.btrfs: %v: %s", err, out)
		}
		out, err := exec.CommandContext(ctx, "losetup", "--find", "--show", tb.Image).CombinedOutput()
		if err != nil {
			return fmt.Errorf("losetup: %v: %s", err, out)
		}
		tb.Loop = strings.TrimSpace(string(out))
		if err := tb.save(); err != nil {
			return err
		}
		if err := os.MkdirAll(tb.Mount, 0o755); err != nil {
			return err
		}
		if out, err := exec.CommandContext(ctx, "mount", "-t", "btrfs", tb.Loop, tb.Mount).CombinedOutput(); err != nil {
			tb.Mount = "" // not mounted: nothing to unmount
			return fmt.Errorf("mount %s: %v: %s", tb.Loop, err, out)
		}
		if err := tb.save(); err != nil {
			return err
		}
		for _, v := range []string{"vol1", "vol2", "vol3"} {
			if out, err := exec.CommandContext(ctx, "btrfs", "subvolume", "create", filepath.Join(root, v)).CombinedOutput(); err != nil {
				return fmt.Errorf("btrfs subvolume create: %v: %s", err, out)
			}
		}
		if err := os.MkdirAll(filepath.Join(root, "snapshots"), 0o700); err != nil {
			return err
		}
	}
	for _, n := range allShares() {
		p := filepath.Join(root, shareVolume[n], n)
		if tb.Agent == AgentSamba {
			// Samba's agent snapshots the share's own subvolume.
			if out, err := exec.CommandContext(ctx, "btrfs", "subvolume", "create", p).CombinedOutput(); err != nil {
				return fmt.Errorf("btrfs subvolume create: %v: %s", err, out)
			}
		}
		if err := os.MkdirAll(p, 0o777); err != nil {
			return err
		}
		os.Chmod(p, 0o777)
		if err := os.WriteFile(filepath.Join(p, "README.txt"), []byte("testbed share "+n+"\n"), 0o666); err != nil {
			return err
		}
		tb.Shares[n] = p
	}
	for _, d := range []string{"private", "lock", "state", "cache", "pid", "ncalrpc", "winbindd", "log",
		"client/private", "client/lock", "client/state", "client/cache", "client/pid"} {
		if err := os.MkdirAll(filepath.Join(tb.Dir, d), 0o755); err != nil {
			return err
		}
	}
	os.Chmod(filepath.Join(tb.Dir, "ncalrpc"), 0o755)
	for _, n := range allShares() { // fsrvpd would create them at the first Expose
		if err := os.MkdirAll(filepath.Join(tb.PreviousVersionsDir(), n), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// removeVolumes unmounts and detaches the btrfs image (only the loop device
// recorded for our image).
func (tb *Testbed) removeVolumes() error {
	if tb.Mount != "" && isMounted(tb.Mount) {
		if out, err := exec.Command("umount", tb.Mount).CombinedOutput(); err != nil {
			if out2, err2 := exec.Command("umount", "-l", tb.Mount).CombinedOutput(); err2 != nil {
				return fmt.Errorf("umount %s: %v: %s %s", tb.Mount, err, out, out2)
			}
		}
	}
	tb.Mount = ""
	if tb.Loop != "" {
		// Detach only if the device still backs our image.
		out, _ := exec.Command("losetup", "--noheadings", "-O", "BACK-FILE", tb.Loop).Output()
		if strings.TrimSpace(string(out)) == tb.Image {
			if out, err := exec.Command("losetup", "-d", tb.Loop).CombinedOutput(); err != nil {
				return fmt.Errorf("losetup -d %s: %v: %s", tb.Loop, err, out)
			}
		}
	}
	tb.Loop = ""
	return nil
}

func isMounted(dir string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) > 4 && fs[4] == dir {
			return true
		}
	}
	return false
}

// writeConfigs writes smb.conf, client.conf, the (empty) include file,
// the np socket directory with symlinks for Samba's own pipes, and
// fsrvpd.toml.
func (tb *Testbed) writeConfigs() error {
	if tb.Agent == AgentSamba {
		return tb.writeSambaAgentConfigs()
	}
	d := tb.Dir
	var b strings.Builder
	fmt.Fprintf(&b, `# fsrvpd testbed: private smbd on loopback (written by conformance/testbed)
[global]
%[6]s	log file = %[1]s/log/log.%%m
	disable spoolss = yes
	# srvsvc & co. come from samba-dcerpcd (on demand, sockets in ncalrpc/np);
	# smbd looks for pipes in npsock/np, where fssagentrpc is fsrvpd's and
	# the other pipes are symlinks to samba-dcerpcd's.
	rpc start on demand helpers = yes
	external_rpc_pipe:socket_dir = %[4]s
	# srvsvc (rpcd_classic) loads smb.conf once and ignores reloads, but it
	# loads registry shares on demand: fsrvpd mirrors its snapshot shares
	# there (shares/samba). No "include = registry".
	registry shares = yes
	include = %[5]s
`, d, tb.Port, NetbiosName, tb.SocketDir, tb.Include, privateGlobals(d, tb.Port, NetbiosName))
	for _, n := range allShares() {
		// Previous Versions: fsrvpd links each exposed snapshot as
		// <PreviousVersionsDir>/<share>/@GMT-...; shadow_copy2 lists them.
		fmt.Fprintf(&b, "\n[%s]\n\tpath = %s\n\tread only = no\n\tvfs objects = shadow_copy2\n\tshadow:snapdir = %s\n\tshadow:mountpoint = %[2]s\n",
			n, tb.Shares[n], filepath.Join(tb.PreviousVersionsDir(), strings.ToLower(n)))
	}
	if err := os.WriteFile(tb.SMBConf, []byte(b.String()), 0o644); err != nil {
		return err
	}
	if err := tb.writeClientConf(); err != nil {
		return err
	}
	if err := os.WriteFile(tb.Include, nil, 0o644); err != nil {
		return err
	}
	npDir := filepath.Join(tb.SocketDir, "np")
	if err := os.MkdirAll(npDir, 0o700); err != nil {
		return err
	}
	os.Chmod(npDir, 0o700)
	for _, p := range sambaPipes(tb.SMBConf) {
		if err := os.Symlink(filepath.Join(d, "ncalrpc", "np", p), filepath.Join(npDir, p)); err != nil && !os.IsExist(err) {
			return err
		}
	}
	return os.WriteFile(tb.FsrvpdConf, []byte(tb.fsrvpdTOML()), 0o644)
}

func (tb *Testbed) writeClientConf() error {
	d := tb.Dir
	client := fmt.Sprintf(`# fsrvpd testbed: client tools (smbclient, rpcclient, smbtorture)
[global]
	smb ports = %[2]d
	client min protocol = SMB2
	private dir = %[1]s/client/private
	lock directory = %[1]s/client/lock
	state directory = %[1]s/client/state
	cache directory = %[1]s/client/cache
	pid directory = %[1]s/client/pid
	ncalrpc dir = %[1]s/client/ncalrpc
	log level = 0
`, d, tb.Port)
	return os.WriteFile(tb.ClientConf, []byte(client), 0o644)
}

// writeSambaAgentConfigs writes smb.conf for Samba's own agent, as in
// research/samba-anchor.md §2: no external_rpc_pipe redirect, registry
// shares, one rpcd_fsrvp worker, btrfs subvolume shares; and client.conf.
// Not "fss: prune stale = yes": it crashes rpcd_fsrvp 4.17 (§6, Q4).
func (tb *Testbed) writeSambaAgentConfigs() error {
	d := tb.Dir
	var b strings.Builder
	fmt.Fprintf(&b, `# fsrvpd testbed, agent samba: Samba's rpcd_fsrvp behind a private smbd (written by conformance/testbed)
[global]
%[4]s	usershare path = %[1]s/usershares
	disable spoolss = yes
	# smbd spawns samba-dcerpcd --np-helper, which forks rpcd_fsrvp.
	rpc start on demand helpers = yes
	# Expose writes the snapshot shares to the registry.
	registry shares = yes
	include = registry
	rpcd_fsrvp:num_workers = 1
`, d, tb.Port, NetbiosName, privateGlobals(d, tb.Port, NetbiosName))
	if n := tb.SeqTimeoutSeconds(); n > 0 {
		fmt.Fprintf(&b, "\tfss: sequence timeout = %d\n", n)
	}
	for _, n := range allShares() {
		fmt.Fprintf(&b, "\n[%s]\n\tpath = %s\n\tread only = no\n\tvfs objects = btrfs shadow_copy2\n\tbtrfs: manipulate snapshots = yes\n\tshadow: snapdir = .\n",
			n, tb.Shares[n])
	}
	if err := os.MkdirAll(filepath.Join(d, "usershares"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(tb.SMBConf, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return tb.writeClientConf()
}

// PreviousVersionsDir is fsrvpd's samba.previous_versions_dir: the @GMT
// links of the base shares' Previous Versions (vfs_shadow_copy2's
// shadow:snapdir is <PreviousVersionsDir>/<share>).
func (tb *Testbed) PreviousVersionsDir() string { return filepath.Join(tb.Dir, "previous-versions") }

// defaultPipes are Samba 4.17's ncacn_np pipes (Debian 12), used when
// rpcd_* --list-interfaces cannot be run.
var defaultPipes = []string{"epmapper", "eventlog", "initshutdown", "lsarpc", "lsass", "mdssvc", "netdfs",
	"ntsvcs", "plugplay", "samr", "spoolss", "srvsvc", "svcctl", "winreg", "wkssvc"}

// sambaPipes lists the named pipes of Samba's rpcd_* helpers except
// fssagentrpc, lower-cased.
func sambaPipes(conf string) []string {
	rpcds, _ := filepath.Glob("/usr/libexec/samba/rpcd_*")
	seen := map[string]bool{}
	var out []string
	for _, r := range rpcds {
		data, err := exec.Command(r, "--list-interfaces", "--configfile="+conf).Output()
		if err != nil {
			continue
		}
		for _, l := range bytes.Split(data, []byte("\n")) {
			s := strings.TrimSpace(string(l))
			if !strings.HasPrefix(s, `ncacn_np:[\pipe\`) || !strings.HasSuffix(s, "]") {
				continue
			}
			p := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(s, `ncacn_np:[\pipe\`), "]"))
			if p != "fssagentrpc" && !seen[p] && !strings.ContainsAny(p, `/\.`) {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	if len(out) == 0 {
		return defaultPipes
	}
	return out
}

func (tb *Testbed) fsrvpdTOML() string {
	var b strings.Builder
	fmt.Fprintf(&b, `# fsrvpd behind the testbed's smbd (written by conformance/testbed)
[server]
name = %q
listen = []
endpoint_mapper = ""
state_dir = %q
log_level = "debug"

[fsrvp]
`, NetbiosName, tb.StateDir)
	if tb.SambaCompat {
		b.WriteString("compat = \"samba\"\n")
	}
	if tb.SeqTimeout != "" {
		fmt.Fprintf(&b, "sequence_timeout = %q\n", tb.SeqTimeout)
	}
	if tb.PipeAuth != "" {
		fmt.Fprintf(&b, "pipe_auth = %q\n", tb.PipeAuth)
	}
	fmt.Fprintf(&b, "\n[storage]\nbackend = %q\n", tb.Backend)
	if tb.Backend == "btrfs" {
		fmt.Fprintf(&b, "[storage.btrfs]\nsnapshot_dir = %q\n", filepath.Join(tb.Mount, "snapshots"))
	} else {
		var vols []string
		for _, v := range []string{"vol1", "vol2", "vol3"} {
			vols = append(vols, strconv.Quote(filepath.Join(tb.Dir, "vol", v)))
		}
		fmt.Fprintf(&b, "[storage.dir]\nvolumes = [%s]\n", strings.Join(vols, ", "))
	}
	fmt.Fprintf(&b, "\n[samba]\nenabled = true\nsmb_conf = %q\ninclude_file = %q\nsocket_dir = %q\nprevious_versions_dir = %q\nregistry_mirror = %v\n",
		tb.SMBConf, tb.Include, tb.SocketDir, tb.PreviousVersionsDir(), tb.RegistryMirror)
	if tb.PipeAuth != "" {
		hash := func(pw string) string {
			h := ntlm.NTHash(pw)
			return hex.EncodeToString(h[:])
		}
		fmt.Fprintf(&b, "\n[auth]\ndomain = \"FSRVPDTBWG\"\n[[auth.account]]\nuser = %q\nnt_hash = %q\nadmin = true\n", User, hash(Password))
		if tb.NonAdminUser != "" {
			fmt.Fprintf(&b, "[[auth.account]]\nuser = %q\nnt_hash = %q\n", tb.NonAdminUser, hash(tb.NonAdminPassword))
		}
	}
	if tb.FsrvpdExtra != "" {
		b.WriteString("\n" + tb.FsrvpdExtra + "\n")
	}
	return b.String()
}

// privateGlobals are the [global] lines every testbed smbd shares: loopback
// only, its own port, passdb and directories below dir, no printing.
func privateGlobals(dir string, port int, name string) string {
	return fmt.Sprintf(`	netbios name = %[3]s
	workgroup = FSRVPDTBWG
	server role = standalone server
	security = user
	map to guest = never
	passdb backend = tdbsam:%[1]s/private/passdb.tdb
	interfaces = 127.0.0.1
	bind interfaces only = yes
	smb ports = %[2]d
	disable netbios = yes
	private dir = %[1]s/private
	lock directory = %[1]s/lock
	state directory = %[1]s/state
	cache directory = %[1]s/cache
	pid directory = %[1]s/pid
	ncalrpc dir = %[1]s/ncalrpc
	winbindd socket directory = %[1]s/winbindd
	log level = 1
	max log size = 0
	load printers = no
	printing = bsd
	printcap name = /dev/null
`, dir, port, name)
}
