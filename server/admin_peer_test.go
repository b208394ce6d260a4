package server

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsrvpd/fsrvpd/server/admin"
	"github.com/fsrvpd/fsrvpd/server/config"
	"github.com/fsrvpd/fsrvpd/storage/storagetest"
)

// TestAdminPeerHelper is the client half of TestAdminSocketPeerCredentials,
// run as another user by it; on its own it does nothing.
func TestAdminPeerHelper(t *testing.T) {
	sock := os.Getenv("FSRVPD_ADMIN_PEER_SOCKET")
	if sock == "" {
		t.Skip("helper process only")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := admin.Call(ctx, sock, admin.Request{Cmd: "sets"})
	fmt.Printf("RESULT uid=%d err=%v\n", os.Getuid(), err)
}

// TestAdminSocketPeerCredentials connects to the admin socket from
// processes of another uid: the socket mode is opened up (0666) so that
// only SO_PEERCRED stands between them and the daemon. A process in the
// configured admin group gets through; one that is not is refused.
func TestAdminSocketPeerCredentials(t *testing.T) {
	storagetest.RequireRoot(t)
	if testing.Short() {
		t.Skip("-short")
	}
	const gid = 47913 // the admin group, by number: no /etc/group entry needed
	work, err := os.MkdirTemp("", "fsrvpd-peer")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(work)
	os.Chmod(work, 0o755)

	c := config.Demo(filepath.Join(work, "state"))
	c.Server.Listen = []string{"127.0.0.1:0"}
	c.Server.EndpointMapper = ""
	c.Admin.Socket = filepath.Join(work, "admin.sock")
	c.Admin.Group = fmt.Sprint(gid)
	makeShares(t, c, false)
	runDaemon(t, c, nil)

	fi, err := os.Stat(c.Admin.Socket)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o660 || st.Gid != gid {
		t.Fatalf("socket mode %v group %d, want 0660 group %d", fi.Mode().Perm(), st.Gid, gid)
	}
	if err := os.Chmod(c.Admin.Socket, 0o666); err != nil {
		t.Fatal(err)
	}

	// A copy of the test binary that the other uid can run.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(work, "helper.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	as := func(uid, gid uint32, groups ...uint32) string {
		t.Helper()
		cmd := exec.Command(bin, "-test.run=^TestAdminPeerHelper$", "-test.v")
		cmd.Dir = work
		cmd.Env = []string{"FSRVPD_ADMIN_PEER_SOCKET=" + c.Admin.Socket, "PATH=/usr/bin:/bin"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: groups}}
		out, err := cmd.CombinedOutput()
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "RESULT ") {
				return line
			}
		}
		t.Fatalf("helper as uid %d: %v\n%s", uid, err, out)
		return ""
	}
	if got := as(65534, 65534); got != "RESULT uid=65534 err=permission denied: uid 65534 is not root and not in the admin group" {
		t.Errorf("outsider: %s", got)
	}
	if got := as(65534, gid); got != "RESULT uid=65534 err=<nil>" {
		t.Errorf("primary group member: %s", got)
	}
	if got := as(65534, 65534, gid); got != "RESULT uid=65534 err=<nil>" {
		t.Errorf("supplementary group member: %s", got)
	}
}

func TestAdminAllowed(t *testing.T) {
	for _, c := range []struct {
		p         admin.Peer
		self, gid int
		allowed   bool
	}{
		{admin.Peer{UID: 0, GID: 0}, 0, -1, true},
		{admin.Peer{UID: 1000, GID: 1000}, 0, -1, false},
		{admin.Peer{UID: 1000, GID: 1000}, 1000, -1, true},
		{admin.Peer{UID: 1000, GID: 1000}, 0, 1000, true},
		{admin.Peer{UID: 1000, GID: 100, Groups: []int{5, 1000}}, 0, 1000, true},
		{admin.Peer{UID: 1000, GID: 100, Groups: []int{5}}, 0, 1000, false},
	} {
		if got := admin.Allowed(c.p, c.self, c.gid); got != c.allowed {
			t.Errorf("Allowed(%+v, self %d, gid %d) = %v", c.p, c.self, c.gid, got)
		}
	}
}
