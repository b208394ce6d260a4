package doctor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fsrvpd/fsrvpd/server"
	"github.com/fsrvpd/fsrvpd/storage"
)

const guide = "/usr/share/doc/fsrvpd/DEPLOYMENT.md"

// CheckConfig reports whether the configuration loaded and what it asks for.
func CheckConfig(_ context.Context, e *Env) []Result {
	if e.ConfigErr != nil {
		return []Result{problem(Fail, "config", e.ConfigPath, fmt.Sprintf("cannot be used: %v", e.ConfigErr),
			"fsrvpd -check-config -config "+e.ConfigPath+" names every bad key; every key is described in fsrvpd(8)")}
	}
	c := e.Config
	where := "TCP only, shares from [[share]]"
	if c.Samba.Enabled {
		where = "behind Samba (" + c.Samba.SMBConf + ")"
	}
	return []Result{ok("config", e.ConfigPath, "valid: backend %s, %s", c.Storage.Backend, where)}
}

// CheckPermissions checks that fsrvpd runs with the privileges its backend
// needs and that its files are not open to others.
func CheckPermissions(_ context.Context, e *Env) []Result {
	var out []Result
	c := e.Config
	if os.Geteuid() != 0 {
		needs := c.Storage.Backend != "dir" || c.Samba.Enabled
		s := Warn
		if needs {
			s = Fail
		}
		out = append(out, problem(s, "permissions", "user",
			fmt.Sprintf("running as uid %d: btrfs and ZFS snapshots, Samba's include file and its pipe socket need root", os.Geteuid()),
			"run fsrvpd (and fsrvpd doctor) as root; the systemd unit does"))
	} else {
		out = append(out, ok("permissions", "user", "running as root"))
	}
	if e.ConfigErr == nil && e.ConfigPath != "" {
		if fi, err := os.Stat(e.ConfigPath); err == nil {
			switch st, _ := fi.Sys().(*syscall.Stat_t); {
			case fi.Mode().Perm()&0o002 != 0:
				out = append(out, problem(Fail, "permissions", e.ConfigPath,
					"world-writable: anyone can change what a root daemon snapshots and exposes", "chmod 644 "+e.ConfigPath))
			case fi.Mode().Perm()&0o020 != 0 || (st != nil && st.Uid != 0):
				out = append(out, problem(Warn, "permissions", e.ConfigPath,
					"writable by a group or owned by another user than root", "chown root:root "+e.ConfigPath+" && chmod 644 "+e.ConfigPath))
			default:
				out = append(out, ok("permissions", e.ConfigPath, "owned by root, not writable by others"))
			}
		}
	}
	dirs := []struct{ path, why string }{{c.Server.StateDir, "the state store"}}
	if c.Samba.Enabled {
		dirs = append(dirs, struct{ path, why string }{filepath.Join(c.Samba.SocketDir, "np"), "the pipe socket directory (samba-dcerpcd refuses anything but 0700 owned by root)"})
	}
	for _, d := range dirs {
		fi, err := os.Stat(d.path)
		if errors.Is(err, os.ErrNotExist) {
			out = append(out, ok("permissions", d.path, "does not exist yet: fsrvpd creates it (mode 0700) at start"))
			continue
		}
		if err != nil {
			out = append(out, problem(Fail, "permissions", d.path, err.Error(), "check the path in the configuration"))
			continue
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		switch {
		case !fi.IsDir():
			out = append(out, problem(Fail, "permissions", d.path, "is not a directory", "remove it or point the configuration elsewhere"))
		case st != nil && int(st.Uid) != os.Geteuid():
			out = append(out, problem(Fail, "permissions", d.path, fmt.Sprintf("%s is owned by uid %d, not by the user fsrvpd runs as", d.why, st.Uid), "chown root:root "+d.path))
		case fi.Mode().Perm() != 0o700:
			out = append(out, problem(Warn, "permissions", d.path, fmt.Sprintf("%s has mode %o, not 0700", d.why, fi.Mode().Perm()), "chmod 700 "+d.path))
		default:
			out = append(out, ok("permissions", d.path, "mode 0700, owned by root"))
		}
	}
	return out
}

// section is one section of testparm's output.
type section struct {
	name   string
	params map[string]string
}

// testparm runs testparm -s (with -v, every global) and splits its output
// into sections.
func testparm(ctx context.Context, conf string, verbose bool) ([]section, error) {
	args := []string{"-s"}
	if verbose {
		args = append(args, "-v")
	}
	cmd := exec.CommandContext(ctx, "testparm", append(args, conf)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 && len(msg) > 400 {
			msg = msg[i+1:]
		}
		return nil, fmt.Errorf("testparm -s %s: %v: %s", conf, err, msg)
	}
	var secs []section
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			secs = append(secs, section{name: line[1 : len(line)-1], params: map[string]string{}})
			continue
		}
		if k, v, found := strings.Cut(line, "="); found && len(secs) > 0 {
			secs[len(secs)-1].params[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
	}
	return secs, nil
}

// globalIncludes reads smb.conf itself (testparm expands includes) and
// returns the include lines of [global] and whether a parameter follows
// the given include there.
func globalIncludes(conf, include string) (includes []string, after []string, err error) {
	data, err := os.ReadFile(conf)
	if err != nil {
		return nil, nil, err
	}
	inGlobal, seen := false, false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasPrefix(line, "[") {
			inGlobal = strings.EqualFold(strings.Trim(line, "[] \t"), "global")
			continue
		}
		if !inGlobal {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		if k == "include" {
			includes = append(includes, v)
			if filepath.Clean(v) == filepath.Clean(include) {
				seen, after = true, nil
				continue
			}
		}
		if seen {
			after = append(after, k)
		}
	}
	return includes, after, sc.Err()
}

// CheckSambaConf checks the smb.conf settings fsrvpd relies on: testparm
// accepts the file, [global] includes the snapshot-share file as its last
// line, and registry_mirror has registry shares.
func CheckSambaConf(ctx context.Context, e *Env) []Result {
	c := e.Config
	if !c.Samba.Enabled {
		return []Result{skip("smb.conf", "", "[samba] is not enabled: TCP-only mode")}
	}
	conf := c.Samba.SMBConf
	secs, err := testparm(ctx, conf, true)
	if err != nil {
		return []Result{problem(Fail, "smb.conf", conf, err.Error(), "fix the file until `testparm -s "+conf+"` accepts it (apt-get install samba-common-bin for testparm)")}
	}
	out := []Result{ok("smb.conf", conf, "testparm accepts it")}
	includes, after, err := globalIncludes(conf, c.Samba.IncludeFile)
	switch {
	case err != nil:
		out = append(out, problem(Fail, "smb.conf", "include", err.Error(), ""))
	case !slices.ContainsFunc(includes, func(s string) bool { return filepath.Clean(s) == filepath.Clean(c.Samba.IncludeFile) }):
		out = append(out, problem(Fail, "smb.conf", "include",
			"[global] does not include "+c.Samba.IncludeFile+": smbd would never see the snapshot shares fsrvpd exposes (clients get \"network name not found\")",
			"add as the last line of [global] in "+conf+": include = "+c.Samba.IncludeFile))
	case len(after) > 0:
		out = append(out, problem(Warn, "smb.conf", "include",
			fmt.Sprintf("[global] has %s after include = %s: once the file holds a snapshot share, these lines belong to that share, not to [global]", strings.Join(after, ", "), c.Samba.IncludeFile),
			"move the include line to the end of [global]"))
	default:
		out = append(out, ok("smb.conf", "include", "[global] ends with include = %s", c.Samba.IncludeFile))
	}
	var global map[string]string
	for _, s := range secs {
		if strings.EqualFold(s.name, "global") {
			global = s.params
		}
	}
	if c.Samba.RegistryMirror {
		if v := strings.ToLower(global["registry shares"]); v != "yes" && v != "true" {
			out = append(out, problem(Fail, "smb.conf", "registry shares",
				"[samba] registry_mirror = true but smb.conf has registry shares = "+global["registry shares"]+": the mirror has nowhere to write",
				"set registry shares = yes in [global], or registry_mirror = false"))
		} else {
			out = append(out, ok("smb.conf", "registry shares", "yes: snapshot shares are mirrored for srvsvc"))
		}
	}
	return out
}

// CheckPipeMode reports which arrangement keeps Samba's rpcd_fsrvp off
// fsrvpd's socket, with the verdict the daemon acts on at start.
func CheckPipeMode(ctx context.Context, e *Env) []Result {
	c := e.Config
	if !c.Samba.Enabled {
		return []Result{skip("pipe-mode", "", "[samba] is not enabled: no named pipe")}
	}
	info, mode, modeErr, err := server.InspectPipe(ctx, c)
	if err != nil {
		return []Result{problem(Fail, "pipe-mode", "", err.Error(), "fsrvpd needs testparm (samba-common-bin) and a valid smb.conf")}
	}
	e.pipeMode = mode
	if modeErr != nil {
		return []Result{problem(Fail, "pipe-mode", "", modeErr.Error(), "pick one arrangement; "+guide+" explains each")}
	}
	msg := map[string]string{
		server.PipeRedirect:  "smb.conf sends smbd's pipes to " + info.SmbdSocketDir + "; fsrvpd links Samba's other pipes there from " + info.NcalrpcDir,
		server.PipeDiverted:  "Samba's rpcd_fsrvp is not in " + c.Samba.LibexecDir + " (dpkg-divert): samba-dcerpcd cannot serve the pipe",
		server.PipeNoHelpers: "rpc start on demand helpers = no: smbd starts no samba-dcerpcd (Samba's other pipes need a standalone samba-dcerpcd)",
	}[mode]
	return []Result{ok("pipe-mode", mode, "%s", msg)}
}

// socketPeer connects to the Unix socket at path and returns the pid of
// the process that listens on it (SO_PEERCRED of the connecting side is
// the listener's). The connection is closed at once, before any handshake.
func socketPeer(path string) (int, error) {
	conn, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	raw, err := conn.(*net.UnixConn).SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if credErr != nil {
		return 0, credErr
	}
	return int(cred.Pid), nil
}

// comm is a process's name, or "" if it is gone.
func (e *Env) comm(pid int) string {
	b, err := os.ReadFile(filepath.Join(e.proc(), strconv.Itoa(pid), "comm"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func isSambaRPC(name string) bool {
	return name == "samba-dcerpcd" || strings.HasPrefix(name, "rpcd_")
}

// CheckPipeSocket finds out who listens on <socket_dir>/np/fssagentrpc:
// fsrvpd, or samba-dcerpcd, which unlinks and re-binds the path whenever it
// starts with rpcd_fsrvp, so smbd hands FSRVP to Samba's agent.
func CheckPipeSocket(_ context.Context, e *Env) []Result {
	c := e.Config
	if !c.Samba.Enabled {
		return []Result{skip("pipe-socket", "", "[samba] is not enabled: no named pipe")}
	}
	path := c.PipeSocket()
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return []Result{problem(Warn, "pipe-socket", path, "no socket: fsrvpd is not running, and smbd answers \\PIPE\\FssagentRpc with \"object name not found\"",
			"systemctl start fsrvpd")}
	case err != nil:
		return []Result{problem(Fail, "pipe-socket", path, err.Error(), "")}
	case fi.Mode()&os.ModeSocket == 0:
		return []Result{problem(Fail, "pipe-socket", path, "is not a socket (mode "+fi.Mode().String()+"): smbd cannot connect", "remove it; fsrvpd creates the socket at start")}
	}
	pid, err := socketPeer(path)
	if errors.Is(err, syscall.ECONNREFUSED) {
		return []Result{problem(Warn, "pipe-socket", path, "a socket nobody listens on (left by a stopped daemon)", "systemctl start fsrvpd (it replaces a dead socket)")}
	}
	if err != nil {
		return []Result{problem(Fail, "pipe-socket", path, "cannot connect: "+err.Error(), "")}
	}
	name := e.comm(pid)
	own := e.OwnNames
	if own == nil {
		own = []string{"fsrvpd"}
	}
	switch {
	case pid == 0 || name == "":
		return []Result{problem(Warn, "pipe-socket", path, "a process in another pid namespace listens (a container?)", "make sure it is fsrvpd")}
	case slices.Contains(own, name):
		return []Result{ok("pipe-socket", path, "fsrvpd (pid %d) listens: smbd hands \\PIPE\\FssagentRpc to fsrvpd", pid)}
	case isSambaRPC(name):
		return []Result{problem(Fail, "pipe-socket", path,
			fmt.Sprintf("%s (pid %d) owns the socket: smbd hands \\PIPE\\FssagentRpc to Samba's own rpcd_fsrvp, not to fsrvpd; Windows sees Samba's agent (or errors if it is not configured)", name, pid),
			"keep rpcd_fsrvp away (install the fsrvpd package, which diverts it, or redirect smbd with external_rpc_pipe:socket_dir), then systemctl restart smbd fsrvpd")}
	default:
		return []Result{problem(Warn, "pipe-socket", path, fmt.Sprintf("%s (pid %d) listens, not fsrvpd", name, pid), "stop it, then start fsrvpd")}
	}
}

// processes lists the pids whose name is one of names.
func (e *Env) processes(names ...string) map[string][]int {
	out := map[string][]int{}
	ents, err := os.ReadDir(e.proc())
	if err != nil {
		return out
	}
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		if n := e.comm(pid); slices.Contains(names, n) {
			out[n] = append(out[n], pid)
		}
	}
	return out
}

// CheckDcerpcd looks for samba-dcerpcd and Samba's rpcd_fsrvp among the
// running processes: the agent running outside the redirect arrangement
// competes with fsrvpd for the pipe.
func CheckDcerpcd(_ context.Context, e *Env) []Result {
	if !e.Config.Samba.Enabled {
		return []Result{skip("samba-dcerpcd", "", "[samba] is not enabled")}
	}
	procs := e.processes("samba-dcerpcd", "rpcd_fsrvp")
	d, agent := procs["samba-dcerpcd"], procs["rpcd_fsrvp"]
	switch {
	case len(agent) > 0 && e.pipeMode == server.PipeRedirect:
		return []Result{ok("samba-dcerpcd", "", "Samba's rpcd_fsrvp runs (pids %v), but smbd is redirected to fsrvpd's socket directory", agent)}
	case len(agent) > 0:
		return []Result{problem(Fail, "samba-dcerpcd", "",
			fmt.Sprintf("Samba's rpcd_fsrvp runs (pids %v), started by samba-dcerpcd (pids %v): it binds \\PIPE\\FssagentRpc's socket whenever samba-dcerpcd starts", agent, d),
			"divert it (the fsrvpd package does: dpkg-divert --list rpcd_fsrvp) or redirect smbd, then systemctl restart smbd to restart samba-dcerpcd without it")}
	case len(d) > 0:
		return []Result{ok("samba-dcerpcd", "", "samba-dcerpcd (pids %v) serves Samba's other pipes; no rpcd_fsrvp runs", d)}
	default:
		return []Result{ok("samba-dcerpcd", "", "not running (smbd starts it on demand for Samba's other pipes)")}
	}
}

// shareList is the base shares fsrvpd will be asked about: smb.conf's
// disk shares behind Samba, [[share]] otherwise.
func shareList(ctx context.Context, e *Env) (map[string]string, []Result) {
	c := e.Config
	out := map[string]string{}
	if !c.Samba.Enabled {
		for _, s := range c.Shares {
			out[s.Name] = s.Path
		}
		return out, nil
	}
	secs, err := testparm(ctx, c.Samba.SMBConf, false)
	if err != nil {
		return nil, []Result{skip("share", "", "cannot list Samba's shares: %v", err)}
	}
	var res []Result
	for _, s := range secs {
		n := strings.ToLower(s.name)
		if n == "global" || n == "homes" || n == "printers" || n == "print$" || strings.Contains(s.name, "@{") {
			continue
		}
		if v := strings.ToLower(s.params["printable"]); v == "yes" || v == "true" {
			continue
		}
		p := s.params["path"]
		switch {
		case p == "":
			continue
		case strings.Contains(p, "%"):
			res = append(res, skip("share", s.name, "path %s has substitutions; checked when a client names it", p))
			continue
		}
		out[s.name] = p
	}
	return out, res
}

// CheckShares asks the backend, as the daemon would at IsPathSupported,
// for the volume of every base share: a share that is not on a
// snapshottable volume (not a btrfs subvolume or ZFS dataset, another
// filesystem mounted below it, nested subvolumes or datasets without
// recursive = true) fails there with FSRVP_E_NOT_SUPPORTED.
func CheckShares(ctx context.Context, e *Env) []Result {
	if e.ConfigErr != nil {
		return []Result{skip("share", "", "configuration not loaded")}
	}
	c := e.Config
	b := e.Backend
	if b == nil {
		if c.Storage.Backend == "btrfs" {
			if _, err := os.Stat(c.Storage.Btrfs.SnapshotDir); errors.Is(err, os.ErrNotExist) {
				return []Result{problem(Fail, "backend", "btrfs", "snapshot_dir "+c.Storage.Btrfs.SnapshotDir+" does not exist",
					"create it on the shares' btrfs filesystem, outside every shared subvolume: mkdir -m 700 "+c.Storage.Btrfs.SnapshotDir)}
			}
		}
		var err error
		if b, err = server.NewBackend(c, e.log()); err != nil {
			return []Result{problem(Fail, "backend", c.Storage.Backend, err.Error(), backendFix(c.Storage.Backend))}
		}
	}
	out := []Result{ok("backend", b.Name(), "ready")}
	list, res := shareList(ctx, e)
	out = append(out, res...)
	names := make([]string, 0, len(list))
	for n := range list {
		names = append(names, n)
	}
	slices.Sort(names)
	if len(names) == 0 {
		out = append(out, problem(Warn, "share", "", "no base shares: clients have nothing to snapshot", "define shares in smb.conf (or [[share]] in TCP-only mode)"))
	}
	for _, n := range names {
		p := list[n]
		vol, err := b.Volume(ctx, p)
		switch {
		case err == nil:
			e.volumes = append(e.volumes, vol.Root)
			out = append(out, ok("share", n, "%s is on volume %s (%s): snapshottable", p, vol.Root, vol.ID))
		case errors.Is(err, storage.ErrNotFound):
			out = append(out, problem(Fail, "share", n, p+" does not exist: IsPathSupported answers FSRVP_E_OBJECT_NOT_FOUND", "create the directory or fix the share's path"))
		case errors.Is(err, storage.ErrNotSupported):
			out = append(out, problem(Fail, "share", n,
				fmt.Sprintf("not snapshottable by the %s backend: %v; IsPathSupported answers FSRVP_E_NOT_SUPPORTED (VSS_E_VOLUME_NOT_SUPPORTED on Windows)", b.Name(), err),
				shareFix(c.Storage.Backend, p, err)))
		default:
			out = append(out, problem(Fail, "share", n, err.Error(), ""))
		}
	}
	return out
}

func backendFix(backend string) string {
	switch backend {
	case "btrfs":
		return "snapshot_dir must be a directory on a btrfs filesystem (apt-get install btrfs-progs; the shares on the same filesystem)"
	case "zfs":
		return "the zfs command and module must work (zfs list); apt-get install zfsutils-linux"
	}
	return "see fsrvpd(8), [storage]"
}

// shareFix says what to change for a share the backend refused, by the
// cause the backend's error names.
func shareFix(backend, path string, err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "nested subvolumes"):
		return "set recursive = true in [storage.btrfs] to snapshot the nested subvolumes too, or move them out of the share"
	case strings.Contains(msg, "has a mount point at") && backend == "zfs":
		return "child datasets need recursive = true in [storage.zfs]; any other filesystem mounted below the share must move out of it"
	case strings.Contains(msg, "has a mount point at"):
		return "move the mounted filesystem out of the share (a snapshot cannot contain another filesystem), or share it separately"
	case strings.Contains(msg, "contains the snapshot dir"):
		return "move [storage.btrfs] snapshot_dir outside every shared subvolume"
	case strings.Contains(msg, "another btrfs filesystem"):
		return "snapshot_dir must be on the share's btrfs filesystem: one fsrvpd serves one btrfs filesystem"
	case strings.Contains(msg, "not managed by fsrvpd"):
		return "add the dataset (or a parent) to [storage.zfs] datasets"
	case backend == "btrfs":
		return "keep the share in a btrfs subvolume on the snapshot_dir's filesystem (btrfs subvolume create " + path + ", then move the data in)"
	case backend == "zfs":
		return "put the share on a ZFS dataset (zfs create -o mountpoint=" + path + " <pool>/<name>) allowed by [storage.zfs] datasets"
	}
	return "add the share's volume root to [storage.dir] volumes, with no other filesystem mounted below it"
}

// CheckFreeSpace reports free space on the filesystems of the state
// directory, the snapshot directory and every share volume: copy-on-write
// snapshots hold on to blocks the live data frees.
func CheckFreeSpace(_ context.Context, e *Env) []Result {
	c := e.Config
	paths := []string{c.Server.StateDir}
	switch c.Storage.Backend {
	case "btrfs":
		paths = append(paths, c.Storage.Btrfs.SnapshotDir)
	case "dir":
		paths = append(paths, c.SnapshotDir())
	}
	paths = append(paths, e.volumes...)
	var out []Result
	seen := map[unix.Fsid]bool{}
	for _, p := range paths {
		// The nearest existing ancestor: the state dir may not exist yet.
		for p != "/" {
			if _, err := os.Stat(p); err == nil {
				break
			}
			p = filepath.Dir(p)
		}
		var st unix.Statfs_t
		if err := unix.Statfs(p, &st); err != nil {
			out = append(out, problem(Warn, "free-space", p, err.Error(), ""))
			continue
		}
		if seen[st.Fsid] {
			continue
		}
		seen[st.Fsid] = true
		total, free := st.Blocks*uint64(st.Bsize), st.Bavail*uint64(st.Bsize)
		if total == 0 {
			continue
		}
		pct := float64(free) * 100 / float64(total)
		msg := fmt.Sprintf("%s free of %s (%.0f%%)", size(free), size(total), pct)
		switch {
		case pct < 2 || free < 32<<20:
			out = append(out, problem(Fail, "free-space", p, msg+": snapshots will fail or fill the filesystem",
				"free space or delete old snapshots (fsrvp delete, or the backend's tools)"))
		case pct < 10 || free < 512<<20:
			out = append(out, problem(Warn, "free-space", p, msg+": every snapshot keeps the blocks changed after it", "watch the usage of snapshots; delete old ones"))
		default:
			out = append(out, ok("free-space", p, "%s", msg))
		}
	}
	return out
}

func size(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// CheckClock checks that the clock is plausible and synchronized: Kerberos
// allows 5 minutes of skew, and snapshot times (@GMT names of Previous
// Versions, creation times clients see) come from it.
func CheckClock(_ context.Context, e *Env) []Result {
	now := e.now()
	if now.Year() < 2024 {
		return []Result{problem(Fail, "clock", "", "the clock says "+now.UTC().Format(time.RFC3339)+": Kerberos logons fail and snapshot times are wrong",
			"set the time and enable NTP (systemd-timesyncd or chrony)")}
	}
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return []Result{skip("clock", "", "adjtimex: %v", err)}
	}
	if state == unix.TIME_ERROR || tx.Status&unix.STA_UNSYNC != 0 {
		return []Result{problem(Warn, "clock", "", "the kernel clock is not synchronized (NTP): Kerberos allows 5 minutes of skew to Windows clients",
			"apt-get install systemd-timesyncd (or chrony), or join the domain's time source")}
	}
	return []Result{ok("clock", "", "synchronized, %s", now.UTC().Format(time.RFC3339))}
}

// CheckTCP tries the configured TCP addresses (FSRVP and the endpoint
// mapper): whether a daemon answers there.
func CheckTCP(_ context.Context, e *Env) []Result {
	c := e.Config
	addrs := slices.Clone(c.Server.Listen)
	if c.Server.EndpointMapper != "" {
		addrs = append(addrs, c.Server.EndpointMapper)
	}
	if len(addrs) == 0 {
		how := "FSRVP only through smbd's pipe"
		if !c.Samba.Enabled {
			how = "ncalrpc on " + c.Server.UnixSocket + " only"
		}
		return []Result{skip("tcp", "", "no TCP endpoint configured (%s)", how)}
	}
	var out []Result
	for _, a := range addrs {
		conn, err := net.DialTimeout("tcp", a, time.Second)
		if err != nil {
			out = append(out, problem(Warn, "tcp", a, "nothing answers: "+err.Error(), "systemctl start fsrvpd; journalctl -u fsrvpd says why it stopped"))
			continue
		}
		conn.Close()
		out = append(out, ok("tcp", a, "a server answers"))
	}
	return out
}
