package storagetest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ZFS for tests: file-backed pools on the kernel module or on a zfs-fuse
// daemon that the tests start themselves.
//
// Several test binaries (go test runs packages in parallel) may need ZFS at
// once, and there is one zfs-fuse per system. They coordinate through files
// in zfsStateDir:
//
//   - lock: an exclusive flock serializes starting, joining and stopping;
//   - users: every process using ZFS holds a shared flock on it until its
//     TestMain ends (the kernel drops it if the process dies), so the last
//     user can tell it is the last by taking an exclusive flock;
//   - pid: the pid file of the zfs-fuse the tests started. Its presence
//     says "the tests own the daemon": the last user stops it. Without it
//     ZFS was answering before any test (a kernel module, a system
//     zfs-fuse) and is left alone.
//
// A test binary killed before its TestMain ends (a -timeout panic) leaves
// the daemon and its pools; the last user of the next run destroys
// leftover test pools and stops the daemon.

// zfsStateDir is where the test processes coordinate; fixed (not TMPDIR)
// so that every test binary agrees on it.
const zfsStateDir = "/run/fsrvpd-test-zfs"

// testPoolName matches the names ZFSPool gives its pools.
var testPoolName = regexp.MustCompile(`^fsrvptest[0-9a-f]{8}$`)

var zfsProc struct {
	main atomic.Bool // ZFSMain is running the tests

	mu       sync.Mutex
	acquired bool
	err      error
	users    *os.File // shared flock held while the process uses ZFS
}

// ZFSMain runs the tests of a package that uses ZFSPool; call it from
// TestMain: os.Exit(storagetest.ZFSMain(m)). When the tests are done it
// stops the zfs-fuse daemon the tests started, unless another test process
// is still using it (then that one stops it). A failure to stop it fails
// the run.
func ZFSMain(m *testing.M) int {
	zfsProc.main.Store(true)
	code := m.Run()
	if err := zfsRelease(); err != nil {
		fmt.Fprintln(os.Stderr, "storagetest: stopping zfs-fuse:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Pool is a file-backed ZFS pool that exists for one test.
type Pool struct {
	// Name is the pool's name: fsrvptest<8 hex digits>.
	Name string
	// Mountpoint is where the pool's root dataset is mounted (a temporary
	// directory); a dataset pool/rel is mounted at Mountpoint/rel.
	Mountpoint string
}

// ZFSPool creates a pool of a 256 MiB sparse file, mounted in a temporary
// directory and destroyed when t ends. It needs root, zfs and zpool, and
// ZFS: the kernel module, or zfs-fuse, which it starts if zpool does not
// answer (Require rules apply). The test binary must run its tests with
// ZFSMain.
func ZFSPool(t testing.TB) *Pool {
	t.Helper()
	RequireRoot(t)
	RequireCommand(t, "zpool")
	RequireCommand(t, "zfs")
	if !zfsProc.main.Load() {
		t.Fatal("storagetest.ZFSPool: the package's TestMain must run the tests with storagetest.ZFSMain")
	}
	err := zfsAcquire()
	Require(t, "ZFS (kernel module or zfs-fuse)", err == nil, fmt.Sprint(err))

	dir := t.TempDir()
	var rnd [4]byte
	rand.Read(rnd[:])
	p := &Pool{Name: "fsrvptest" + hex.EncodeToString(rnd[:]), Mountpoint: filepath.Join(dir, "mnt")}
	img := filepath.Join(dir, "img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 256<<20); err != nil {
		t.Fatal(err)
	}
	RunCommand(t, "zpool", "create", "-m", p.Mountpoint, p.Name, img)
	t.Cleanup(func() {
		if err := RetryBusy("zpool", "destroy", "-f", p.Name); err != nil {
			t.Error(err)
		}
	})
	return p
}

// Dataset creates the dataset pool/rel (and its missing parents) and
// returns its name and mount point.
func (p *Pool) Dataset(t testing.TB, rel string) (name, mountpoint string) {
	t.Helper()
	name = p.Name + "/" + rel
	RunCommand(t, "zfs", "create", "-p", name)
	return name, filepath.Join(p.Mountpoint, rel)
}

// RetryBusy runs a zfs or zpool command until it does not fail with "busy"
// (zfs-fuse tears unmounted datasets down asynchronously), for up to 10 s.
func RetryBusy(name string, args ...string) error {
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

// zfsWorks reports whether zpool can talk to ZFS.
func zfsWorks() bool { return exec.Command("zpool", "list", "-H").Run() == nil }

// zfsLock takes the exclusive coordination lock; the caller closes the
// file to release it.
func zfsLock() (*os.File, error) {
	if err := os.MkdirAll(zfsStateDir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(zfsStateDir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := flock(f, unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("flock %s: %w", f.Name(), err)
	}
	return f, nil
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

func openUsers() (*os.File, error) {
	return os.OpenFile(filepath.Join(zfsStateDir, "users"), os.O_RDWR|os.O_CREATE, 0o600)
}

// zfsAcquire registers the process as a ZFS user, once, and starts
// zfs-fuse if ZFS does not answer. A failure is remembered.
func zfsAcquire() error {
	zfsProc.mu.Lock()
	defer zfsProc.mu.Unlock()
	if zfsProc.acquired || zfsProc.err != nil {
		return zfsProc.err
	}
	zfsProc.err = func() error {
		lock, err := zfsLock()
		if err != nil {
			return err
		}
		defer lock.Close()
		users, err := openUsers()
		if err != nil {
			return err
		}
		if err := flock(users, unix.LOCK_SH); err != nil {
			users.Close()
			return fmt.Errorf("flock %s: %w", users.Name(), err)
		}
		zfsProc.users, zfsProc.acquired = users, true
		if zfsWorks() {
			return nil
		}
		return startZFSFuse()
	}()
	return zfsProc.err
}

// startZFSFuse starts zfs-fuse with its pid file in zfsStateDir and waits
// until zpool reaches it. The caller holds the lock.
func startZFSFuse() error {
	if _, err := exec.LookPath("zfs-fuse"); err != nil {
		return fmt.Errorf("zfs does not answer and zfs-fuse is not installed")
	}
	pidfile := filepath.Join(zfsStateDir, "pid")
	os.Remove(pidfile) // stale: its daemon does not answer
	// zfs-fuse daemonizes; its pid lands in the pid file.
	out, err := exec.Command("zfs-fuse", "--pidfile", pidfile, "--no-kstat-mount").CombinedOutput()
	if err != nil {
		return fmt.Errorf("zfs-fuse: %v: %s", err, out)
	}
	for deadline := time.Now().Add(15 * time.Second); !zfsWorks(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("zfs-fuse started but zpool cannot reach it")
		}
	}
	return nil
}

// zfsRelease unregisters the process; if it was the last user and the
// tests own the daemon, it destroys leftover test pools and stops it.
func zfsRelease() error {
	zfsProc.mu.Lock()
	defer zfsProc.mu.Unlock()
	if !zfsProc.acquired {
		return nil
	}
	zfsProc.acquired = false
	lock, err := zfsLock()
	if err != nil {
		zfsProc.users.Close()
		return err
	}
	defer lock.Close()
	zfsProc.users.Close() // drops the shared flock
	users, err := openUsers()
	if err != nil {
		return err
	}
	defer users.Close()
	if err := unix.Flock(int(users.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil // another test process uses ZFS; the last one stops it
		}
		return fmt.Errorf("flock %s: %w", users.Name(), err)
	}
	pidfile := filepath.Join(zfsStateDir, "pid")
	pid, err := readZFSFusePid(pidfile)
	if err != nil || pid == 0 {
		return err
	}
	var errs []error
	if out, err := exec.Command("zpool", "list", "-H", "-o", "name").Output(); err == nil {
		for _, name := range strings.Fields(string(out)) {
			if testPoolName.MatchString(name) {
				fmt.Fprintf(os.Stderr, "storagetest: destroying leftover test pool %s\n", name)
				if err := RetryBusy("zpool", "destroy", "-f", name); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	if err := stopProcess(pid); err != nil {
		return errors.Join(append(errs, err)...)
	}
	os.Remove(pidfile)
	return errors.Join(errs...)
}

// readZFSFusePid returns the pid in pidfile if that process is a running
// zfs-fuse, else 0 (removing a stale file).
func readZFSFusePid(pidfile string) (int, error) {
	data, err := os.ReadFile(pidfile)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", pidfile, err)
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(comm)) != "zfs-fuse" {
		os.Remove(pidfile)
		return 0, nil
	}
	return pid, nil
}

// stopProcess sends SIGTERM to pid and waits up to 30 s for it to exit.
func stopProcess(pid int) error {
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("kill zfs-fuse (pid %d): %w", pid, err)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if !running(pid) {
			return nil
		}
	}
	return fmt.Errorf("zfs-fuse (pid %d) still running 30 s after SIGTERM", pid)
}

// running reports whether pid exists and is not a zombie (a container's
// init may not reap the daemonized zfs-fuse).
func running(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) S ...: the state follows the last ')'.
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}
