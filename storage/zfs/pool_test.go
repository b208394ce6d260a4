package zfs_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
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

// The zfs-fuse daemon the tests started, if any: stopped by TestMain.
var daemon struct {
	once    sync.Once
	err     error
	pidfile string
	dir     string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if err := stopDaemon(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping zfs-fuse:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// zfsWorks reports whether zpool can talk to ZFS.
func zfsWorks() bool { return exec.Command("zpool", "list", "-H").Run() == nil }

// startDaemon starts zfs-fuse unless ZFS already answers (a kernel module
// or a zfs-fuse started by someone else, left running after the tests).
func startDaemon() error {
	daemon.once.Do(func() {
		if zfsWorks() {
			return
		}
		if _, err := exec.LookPath("zfs-fuse"); err != nil {
			daemon.err = fmt.Errorf("zfs does not answer and zfs-fuse is not installed")
			return
		}
		dir, err := os.MkdirTemp("", "fsrvpd-zfs-fuse-")
		if err != nil {
			daemon.err = err
			return
		}
		daemon.dir = dir
		daemon.pidfile = filepath.Join(dir, "pid")
		// zfs-fuse daemonizes; its pid lands in the pid file.
		out, err := exec.Command("zfs-fuse", "--pidfile", daemon.pidfile, "--no-kstat-mount").CombinedOutput()
		if err != nil {
			daemon.err = fmt.Errorf("zfs-fuse: %v: %s", err, out)
			return
		}
		for deadline := time.Now().Add(15 * time.Second); !zfsWorks(); {
			if time.Now().After(deadline) {
				daemon.err = fmt.Errorf("zfs-fuse started but zpool cannot reach it")
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	return daemon.err
}

// stopDaemon stops the zfs-fuse started by startDaemon, if any, and waits
// for it to exit.
func stopDaemon() error {
	if daemon.pidfile == "" {
		return nil
	}
	defer os.RemoveAll(daemon.dir)
	data, err := os.ReadFile(daemon.pidfile)
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return err
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			return nil
		}
	}
	return fmt.Errorf("zfs-fuse (pid %d) still running 30s after SIGTERM", pid)
}

// testPool is a file-backed pool that exists for one test.
type testPool struct {
	name string
	mnt  string
}

// newPool skips (or fails, strict) without root and ZFS, and creates a
// pool mounted in a temporary directory, destroyed when t ends.
func newPool(t testing.TB) *testPool {
	t.Helper()
	storagetest.RequireRoot(t)
	storagetest.RequireCommand(t, "zpool")
	storagetest.RequireCommand(t, "zfs")
	err := startDaemon()
	storagetest.Require(t, "ZFS (kernel module or zfs-fuse)", err == nil, fmt.Sprint(err))
	dir := t.TempDir()
	var rnd [4]byte
	rand.Read(rnd[:])
	p := &testPool{name: "fsrvptest" + hex.EncodeToString(rnd[:]), mnt: filepath.Join(dir, "mnt")}
	img := filepath.Join(dir, "img")
	f, err := os.Create(img)
	if err == nil {
		err = f.Truncate(256 << 20)
		f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	zpool(t, "create", "-m", p.mnt, p.name, img)
	t.Cleanup(func() {
		if err := retryBusy("zpool", "destroy", "-f", p.name); err != nil {
			t.Error(err)
		}
	})
	return p
}

// retryBusy runs a zfs or zpool command until it does not fail with
// "busy" (zfs-fuse tears unmounted datasets down asynchronously), for up to
// 10s.
func retryBusy(name string, args ...string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err == nil {
			return nil
		}
		if !strings.Contains(string(out), "busy") || time.Now().After(deadline) {
			return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func zpool(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("zpool", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("zpool %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func zfsCmd(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.CommandContext(context.Background(), "zfs", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("zfs %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// dataset creates pool/rel and returns its name and mountpoint.
func (p *testPool) dataset(t testing.TB, rel string) (string, string) {
	t.Helper()
	name := p.name + "/" + rel
	zfsCmd(t, "create", "-p", name)
	return name, filepath.Join(p.mnt, rel)
}
