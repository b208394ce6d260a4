package np

import (
	"context"
	"net"
	"os"
	"testing"
	"time"
)

// The watchdog notices when samba-dcerpcd (here: the test) unlinks the
// path and binds its own socket there, and notices the recovery.
func TestWatchReplacedSocket(t *testing.T) {
	f := newFixture(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go f.l.Watch(ctx, 10*time.Millisecond)
	if err := f.l.Check(); err != nil || !f.l.Healthy() {
		t.Fatalf("fresh listener unhealthy: %v", err)
	}
	path := f.l.Path()
	backup := path + ".ours"
	if err := os.Link(path, backup); err != nil {
		t.Fatal(err)
	}
	steal := func() *net.UnixListener {
		os.Remove(path)
		thief, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		thief.SetUnlinkOnClose(false)
		return thief
	}
	thief := steal()
	defer thief.Close()
	eventually(t, func() bool { return !f.l.Healthy() })
	if err := f.l.Check(); err == nil {
		t.Fatal("Check: no error for a replaced socket")
	}
	// Our inode back at the path: healthy again.
	if err := os.Rename(backup, path); err != nil {
		t.Fatal(err)
	}
	eventually(t, f.l.Healthy)
	// A missing path is unhealthy too.
	os.Link(path, backup)
	os.Remove(path)
	eventually(t, func() bool { return !f.l.Healthy() })
	os.Rename(backup, path)
	eventually(t, f.l.Healthy)
	// Stolen again: Close must leave the thief's socket alone.
	thief2 := steal()
	defer thief2.Close()
	eventually(t, func() bool { return !f.l.Healthy() })
	f.l.Close()
	if _, err := net.Dial("unix", path); err != nil {
		t.Fatalf("Close removed the socket that replaced ours: %v", err)
	}
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
