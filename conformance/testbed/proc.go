package testbed

import (
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
)

// ensurePackages installs the Debian packages whose tools are missing
// (only then; apt-get needs root), without letting them start services.
func ensurePackages(ctx context.Context, backend string, logf func(string, ...any)) error {
	need := map[string]string{"smbd": "samba", "smbpasswd": "samba", "testparm": "samba",
		"smbclient": "smbclient", "rpcclient": "smbclient", "smbtorture": "samba-testsuite", "tdbtool": "tdb-tools"}
	if backend == "btrfs" {
		need["mkfs.btrfs"] = "btrfs-progs"
		need["btrfs"] = "btrfs-progs"
	}
	pkgs := map[string]bool{}
	for tool, pkg := range need {
		if _, err := exec.LookPath(tool); err != nil {
			pkgs[pkg] = true
		}
	}
	if len(pkgs) == 0 {
		return nil
	}
	var list []string
	for p := range pkgs {
		list = append(list, p)
	}
	if logf != nil {
		logf("installing %s", strings.Join(list, " "))
	}
	// Keep the packages' services from starting on this host.
	const policy = "/usr/sbin/policy-rc.d"
	if _, err := os.Stat(policy); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(policy, []byte("#!/bin/sh\nexit 101\n"), 0o755); err == nil {
			defer os.Remove(policy)
		}
	}
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	upd := exec.CommandContext(ctx, "apt-get", "update", "-q")
	upd.Env = env
	if out, err := upd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get update: %v: %s", err, out)
	}
	inst := exec.CommandContext(ctx, "apt-get", append([]string{"install", "-y", "-q", "--no-install-recommends"}, list...)...)
	inst.Env = env
	if out, err := inst.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get install %s: %v: %s", strings.Join(list, " "), err, out)
	}
	return nil
}

// findFsrvpd returns bin if set; else builds ./cmd/fsrvpd of the module
// the working directory belongs to into dir/bin; else fsrvpd from PATH.
func findFsrvpd(ctx context.Context, bin, dir string) (string, error) {
	if bin != "" {
		return filepath.Abs(bin)
	}
	gomod, _ := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if m := strings.TrimSpace(string(gomod)); m != "" && m != os.DevNull {
		data, err := os.ReadFile(m)
		if err == nil && bytes.Contains(data, []byte("module github.com/fsrvpd/fsrvpd\n")) {
			out := filepath.Join(dir, "bin", "fsrvpd")
			b := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/fsrvpd/fsrvpd/cmd/fsrvpd")
			b.Dir = filepath.Dir(m)
			if msg, err := b.CombinedOutput(); err != nil {
				return "", fmt.Errorf("building fsrvpd: %v: %s", err, msg)
			}
			return out, nil
		}
	}
	if p, err := exec.LookPath("fsrvpd"); err == nil {
		return p, nil
	}
	return "", errors.New("no fsrvpd: pass its path, or run inside the fsrvpd module to build it")
}

func (tb *Testbed) smbpasswd(ctx context.Context, user, pw string) error {
	c := exec.CommandContext(ctx, "smbpasswd", "-c", tb.SMBConf, "-s", "-a", user)
	c.Stdin = strings.NewReader(pw + "\n" + pw + "\n")
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("smbpasswd -a %s: %v: %s", user, err, out)
	}
	return nil
}

// startSmbd starts smbd as a daemon (its pid from the pid file) and waits
// until it listens.
func (tb *Testbed) startSmbd(ctx context.Context) error {
	c := exec.CommandContext(ctx, "smbd", "-D", "-s", tb.SMBConf, "-l", tb.LogDir)
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// libwbclient ignores "winbindd socket directory" and would ask any
	// winbindd on the host (e.g. an AD DC another test runs) to map our
	// users' SIDs, which breaks logons: keep smbd to its own passdb.
	c.Env = append(os.Environ(), "WINBINDD_SOCKET_DIR="+filepath.Join(tb.Dir, "winbindd"), "_NO_WINBINDD=1")
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("smbd: %v: %s", err, out)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if tb.SmbdPID == 0 {
			if data, err := os.ReadFile(filepath.Join(tb.Dir, "pid", "smbd.pid")); err == nil {
				tb.SmbdPID, _ = strconv.Atoi(strings.TrimSpace(string(data)))
			}
		}
		if tb.SmbdPID != 0 {
			if c, err := net.DialTimeout("tcp", tb.Addr(), 200*time.Millisecond); err == nil {
				c.Close()
				tb.log("smbd %d listens on %s", tb.SmbdPID, tb.Addr())
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("smbd did not listen on %s", tb.Addr())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stopSmbd stops smbd and then its helpers (samba-dcerpcd, rpcd_*, smbd
// children): the processes whose command line names our smb.conf.
func (tb *Testbed) stopSmbd() error {
	var errs []error
	if err := tb.stop(tb.SmbdPID, tb.SMBConf); err != nil {
		errs = append(errs, err)
	}
	tb.SmbdPID = 0
	// samba-dcerpcd first (it forks the rpcd_* workers), then the rest;
	// again while new ones appear.
	for range 5 {
		pids := pidsNaming(tb.SMBConf)
		if len(pids) == 0 {
			break
		}
		slices.SortFunc(pids, func(a, b int) int { return cmpBool(!isDcerpcd(a), !isDcerpcd(b)) })
		for _, pid := range pids {
			if err := tb.stop(pid, tb.SMBConf); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if left := pidsNaming(tb.SMBConf); len(left) > 0 {
		errs = append(errs, fmt.Errorf("processes naming %s still run: %v", tb.SMBConf, left))
	}
	return errors.Join(errs...)
}

func isDcerpcd(pid int) bool {
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.HasPrefix(strings.TrimSpace(string(comm)), "samba-dcerpcd")
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// StartFsrvpd starts fsrvpd (again) and waits until FSRVP answers through
// smbd.
func (tb *Testbed) StartFsrvpd(ctx context.Context) error {
	if tb.AgentName() != AgentFsrvpd {
		return fmt.Errorf("testbed: agent %s: no fsrvpd to start", tb.AgentName())
	}
	logf, err := os.OpenFile(filepath.Join(tb.LogDir, "fsrvpd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	c := exec.Command(tb.FsrvpdBinary, "-config", tb.FsrvpdConf)
	c.Stdout, c.Stderr = logf, logf
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := c.Start(); err != nil {
		return fmt.Errorf("fsrvpd: %w", err)
	}
	exited := make(chan struct{})
	go func() { c.Wait(); close(exited) }() // reaps it when started in-process
	tb.FsrvpdPID = c.Process.Pid
	if err := tb.save(); err != nil {
		return err
	}
	if err := tb.waitAgent(ctx, fmt.Sprintf("fsrvpd %d", tb.FsrvpdPID), exited); err != nil {
		select {
		case <-exited:
			return fmt.Errorf("fsrvpd exited: %v", c.ProcessState)
		default:
		}
		return err
	}
	return nil
}

// waitAgent waits until FSRVP answers through smbd (rpcclient
// fss_get_sup_version), or exited is closed.
func (tb *Testbed) waitAgent(ctx context.Context, who string, exited <-chan struct{}) error {
	deadline := time.Now().Add(20 * time.Second)
	var last error
	for {
		select {
		case <-exited:
			return fmt.Errorf("%s exited", who)
		default:
		}
		sock := filepath.Join(tb.SocketDir, "np", "fssagentrpc")
		if _, err := os.Stat(sock); err == nil || tb.AgentName() == AgentSamba {
			// Samba's helpers start on demand: the first call spawns them.
			out, err := tb.Rpcclient(ctx, User, Password, "fss_get_sup_version")
			if err == nil && strings.Contains(out, "supports FSRVP versions") {
				tb.log("%s answers through smbd", who)
				return nil
			}
			last = fmt.Errorf("rpcclient fss_get_sup_version: %v: %s", err, out)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer through smbd: %v", who, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// KillFsrvpd sends sig to fsrvpd and, for SIGKILL and SIGTERM, waits until
// it is gone.
func (tb *Testbed) KillFsrvpd(sig syscall.Signal) error {
	if !tb.alive(tb.FsrvpdPID, tb.FsrvpdConf) {
		return fmt.Errorf("fsrvpd (pid %d) is not running", tb.FsrvpdPID)
	}
	if err := syscall.Kill(tb.FsrvpdPID, sig); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for tb.alive(tb.FsrvpdPID, tb.FsrvpdConf) {
		if time.Now().After(deadline) {
			return fmt.Errorf("fsrvpd %d still runs after %v", tb.FsrvpdPID, sig)
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.FsrvpdPID = 0
	return tb.save()
}

// alive reports whether pid runs (not a zombie) with marker in its command
// line, so that a reused pid is never taken for ours.
func (tb *Testbed) alive(pid int, marker string) bool {
	if pid <= 0 || marker == "" {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	cl, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	for _, a := range bytes.Split(cl, []byte{0}) {
		if s := string(a); s == marker || strings.HasSuffix(s, "="+marker) {
			return true
		}
	}
	return false
}

// stop terminates pid if it is still ours: SIGTERM, then SIGKILL after 5 s.
func (tb *Testbed) stop(pid int, marker string) error {
	if !tb.alive(pid, marker) {
		return nil
	}
	syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(5 * time.Second)
	for tb.alive(pid, marker) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			time.Sleep(100 * time.Millisecond)
			if tb.alive(pid, marker) {
				return fmt.Errorf("pid %d survives SIGKILL", pid)
			}
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// pidsNaming lists the processes with marker as an argument (or as the
// value of an --option=marker argument).
func pidsNaming(marker string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if (&Testbed{}).alive(pid, marker) {
			pids = append(pids, pid)
		}
	}
	return pids
}
