// Package bedtest brings the Samba testbed (private smbd on loopback with
// fsrvpd behind \PIPE\FssagentRpc) up for a test and opens SMB sessions to
// it, so that tests of several packages share one way of doing both.
package bedtest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/hirochachacha/go-smb2"

	"github.com/fsrvpd/fsrvpd/conformance/testbed"
	"github.com/fsrvpd/fsrvpd/shares/samba/sambatest"
	"github.com/fsrvpd/fsrvpd/storage/storagetest"
)

// Require skips the test under -short, and unless it runs as root with
// smbd, smbpasswd and the tools named (skipping with the reason, or
// failing in strict mode).
func Require(t testing.TB, tools ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the Samba testbed starts smbd and fsrvpd")
	}
	storagetest.RequireRoot(t)
	for _, c := range append([]string{"smbd", "smbpasswd"}, tools...) {
		storagetest.RequireCommand(t, c)
	}
}

// Up starts a testbed with o and takes it down when the test ends, after
// Require(t, tools...). An empty
// o.Dir is a fresh directory under the temporary directory; o.Log defaults
// to t.Logf. When the test fails, the tail of fsrvpd's log is logged.
func Up(t testing.TB, o testbed.Options, tools ...string) *testbed.Testbed {
	t.Helper()
	Require(t, tools...)
	if o.Dir == "" {
		// Short: unix socket paths are limited to 108 bytes.
		dir, err := os.MkdirTemp("", "fsrvpd-tb")
		if err != nil {
			t.Fatal(err)
		}
		o.Dir = dir
	}
	if o.Log == nil {
		o.Log = t.Logf
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tb, err := testbed.Up(ctx, o)
	if err != nil {
		os.RemoveAll(o.Dir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if data, err := os.ReadFile(tb.Env()["FSRVPD_LOG"]); err == nil {
				if len(data) > 3000 {
					data = data[len(data)-3000:]
				}
				t.Logf("fsrvpd log (tail):\n%s", data)
			}
		}
		if err := tb.Down(); err != nil {
			t.Errorf("testbed down: %v", err)
		}
	})
	return tb
}

// Session opens an SMB2 session to the testbed's smbd as its administrator
// (testbed.User) and logs off when the test ends.
func Session(t testing.TB, tb *testbed.Testbed) *smb2.Session {
	t.Helper()
	return sambatest.Session(t, tb.Addr(), testbed.User, testbed.Password)
}

// Mount connects share over a new Session, retrying while smbd applies
// the reload that publishes it.
func Mount(t testing.TB, tb *testbed.Testbed, share string) *smb2.Share {
	t.Helper()
	fs, err := sambatest.MountSoon(Session(t, tb), share)
	if err != nil {
		t.Fatalf("mount %s: %v", share, err)
	}
	return fs
}
