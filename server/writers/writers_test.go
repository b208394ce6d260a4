package writers

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/server/state"
	"github.com/fsrvpd/fsrvpd/storage/storagetest"
)

func testLog(t *testing.T) *logrus.Entry { return storagetest.Logger(t) }

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// A hook that times out is killed with its whole process group, children
// included.
func TestHookTimeoutKillsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child")
	h := Hook{Command: []string{"sh", "-c", "sleep 30 & echo $! > " + pidFile + "; wait"}, Timeout: Duration{time.Second}}
	_, err := runHook(context.Background(), h, nil, time.Minute, testLog(t))
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("err %v", err)
	}
	b, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid == 0 {
		t.Fatal("no child pid")
	}
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("child %d survived the hook's timeout", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestHookOutputAndFailure(t *testing.T) {
	out, err := runHook(context.Background(), Hook{Command: []string{"sh", "-c", "echo annotation; echo noise >&2"}}, os.Environ(), time.Minute, testLog(t))
	if err != nil || string(out) != "annotation\n" {
		t.Fatalf("%q %v", out, err)
	}
	_, err = runHook(context.Background(), Hook{Command: []string{"sh", "-c", "echo cannot lock >&2; exit 4"}}, os.Environ(), time.Minute, testLog(t))
	if err == nil || !strings.Contains(err.Error(), "cannot lock") || !strings.Contains(err.Error(), "exit status 4") {
		t.Fatalf("err %v", err)
	}
}

func TestSessionProtocol(t *testing.T) {
	script := `while read -r phase set; do
	case $phase in
	freeze) echo "data held $set"; echo ok ;;
	thaw) echo "error cannot release" ;;
	hang) sleep 30 ;;
	junk) echo "what?" ;;
	*) echo ok ;;
	esac
done`
	s, err := startSession(&Session{Command: []string{"bash", "-c", script}, Timeout: Duration{1500 * time.Millisecond}}, os.Environ(), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	out, err := s.call(context.Background(), PhaseFreeze, "S1", 0)
	if err != nil || string(out) != "held S1\n" {
		t.Fatalf("%q %v", out, err)
	}
	if _, err := s.call(context.Background(), PhaseThaw, "S1", 0); err == nil || !strings.Contains(err.Error(), "cannot release") {
		t.Fatalf("err %v", err)
	}
	if _, err := s.call(context.Background(), "hang", "S1", 0); err == nil || !strings.Contains(err.Error(), "no answer") {
		t.Fatalf("err %v", err)
	}
	// Killed: the next call says so.
	if _, err := s.call(context.Background(), PhasePrepare, "S1", 0); err == nil {
		t.Fatal("call to a killed helper succeeded")
	}

	s2, err := startSession(&Session{Command: []string{"bash", "-c", script}}, os.Environ(), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.close()
	if _, err := s2.call(context.Background(), "junk", "S1", 0); err == nil || !strings.Contains(err.Error(), "unexpected line") {
		t.Fatalf("err %v", err)
	}
}

// FIFREEZE blocks writes to the file system until FITHAW, and a
// Coordinator thaws a frozen file system at start-up.
func TestFSFreezeAndStartupThaw(t *testing.T) {
	storagetest.RequireRoot(t)
	storagetest.RequireCommand(t, "mkfs.ext4")
	dir := t.TempDir()
	img, mp := filepath.Join(dir, "fs.img"), filepath.Join(dir, "mnt")
	os.MkdirAll(mp, 0o755)
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 32<<20); err != nil {
		t.Fatal(err)
	}
	storagetest.RunCommand(t, "mkfs.ext4", "-q", "-F", img)
	if out, err := exec.Command("mount", "-o", "loop", img, mp).CombinedOutput(); err != nil {
		storagetest.Require(t, "loop mount", false, string(out))
	}
	t.Cleanup(func() {
		Thaw(mp)
		exec.Command("umount", mp).Run()
	})
	if err := Freeze(mp); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		f, err := os.Create(filepath.Join(mp, "blocked"))
		if err == nil {
			_, err = f.WriteString("x")
			if err == nil {
				err = f.Sync()
			}
			f.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("write to a frozen file system completed: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	// A restart finds it frozen and thaws it.
	db, err := state.Open(filepath.Join(dir, "state.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, err := New(Config{}, []Writer{{Name: "fs", WriterID: uuid.NewString(), InstanceID: uuid.NewString(), FSFreeze: []string{mp}}}, db, dir, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	c.Reconcile(nil)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("write still blocked after the start-up thaw")
	}
	if err := Thaw(mp); err == nil {
		t.Fatal("FITHAW of a thawed file system succeeded")
	}
}
