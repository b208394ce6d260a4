package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsrvpd/fsrvpd/conformance/testbed"
	"github.com/fsrvpd/fsrvpd/conformance/testbed/bedtest"
)

// upBed starts a Samba testbed (smbd + fsrvpd on loopback) for the test.
func upBed(t *testing.T) *testbed.Testbed {
	t.Helper()
	return bedtest.Up(t, testbed.Options{}, "smbclient", "rpcclient")
}

func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fsrvp")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func readAll(p string) string { b, _ := os.ReadFile(p); return string(b) }

func fill(t *testing.T, dir string, n, size int) {
	t.Helper()
	buf := make([]byte, size)
	for i := 0; i < n; i++ {
		rand.Read(buf)
		if err := os.WriteFile(filepath.Join(dir, "f"+strconv.Itoa(i)+".bin"), buf, 0o666); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBackupCLI runs the fsrvp binary against the testbed: a backup of two
// shares over the FSRVP pipe, verify (good, then corrupted), and a backup
// interrupted by SIGINT, after which no snapshot share is left.
func TestBackupCLI(t *testing.T) {
	tb := upBed(t)
	bin := buildCLI(t)
	fill(t, tb.Shares["share1"], 3, 100_000)
	fill(t, tb.Shares["share2"], 2, 10_000)
	env := append(os.Environ(), "FSRVP_SMB_USER="+testbed.User, "FSRVP_SMB_PASSWORD="+testbed.Password)
	cli := func(args ...string) *exec.Cmd {
		c := exec.Command(bin, append([]string{"-server", "127.0.0.1:1", "-timeout", "1m"}, args...)...)
		c.Env = env
		return c
	}
	smb := "-smb=" + tb.Addr()
	dest := filepath.Join(t.TempDir(), "b1")
	// -owner: IsPathSupported names the testbed's NetBIOS name as the owner;
	// the backup follows it to the target given for that name.
	out, err := cli("-v", "backup", "-pipe", smb, "-owner", testbed.NetbiosName+"=ncacn_np:127.0.0.1", dest, "share1", "share2").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "backed up 2 share(s)") || !strings.Contains(string(out), "7 files copied") ||
		!strings.Contains(string(out), "following OwnerMachineName") {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	for _, p := range []string{"catalog.json", "data/share1/f2.bin", "data/share2/README.txt"} {
		if _, err := os.Stat(filepath.Join(dest, p)); err != nil {
			t.Errorf("backup: %v", err)
		}
	}
	if out, err := cli("verify", dest).CombinedOutput(); err != nil || !strings.Contains(string(out), "all match") {
		t.Errorf("verify: %v\n%s", err, out)
	}
	// Restore: into a directory, and onto the share over SMB.
	to := t.TempDir()
	if out, err := cli("restore", "-to", to, dest).CombinedOutput(); err != nil || !strings.Contains(string(out), "restored 7 files") {
		t.Errorf("restore -to: %v\n%s", err, out)
	}
	if a, b := readAll(filepath.Join(to, "share2", "f1.bin")), readAll(filepath.Join(tb.Shares["share2"], "f1.bin")); a == "" || a != b {
		t.Error("restore -to: share2/f1.bin differs")
	}
	want := readAll(filepath.Join(tb.Shares["share1"], "f0.bin"))
	os.WriteFile(filepath.Join(tb.Shares["share1"], "f0.bin"), []byte("changed"), 0o666)
	if out, err := cli("restore", smb, "-map-share", "share2=fsrvp_share", dest).CombinedOutput(); err != nil {
		t.Errorf("restore: %v\n%s", err, out)
	}
	if readAll(filepath.Join(tb.Shares["share1"], "f0.bin")) != want || readAll(filepath.Join(tb.Shares["fsrvp_share"], "f1.bin")) == "" {
		t.Error("restore over SMB: share1/f0.bin not restored, or share2 not restored into fsrvp_share")
	}

	p := filepath.Join(dest, "data", "share1", "f1.bin")
	data, _ := os.ReadFile(p)
	data[0] ^= 1
	os.WriteFile(p, data, 0o644)
	c := cli("verify", dest)
	out, err = c.CombinedOutput()
	if c.ProcessState.ExitCode() != 4 || !strings.Contains(string(out), "data/share1/f1.bin: SHA-256") {
		t.Errorf("verify of a corrupted backup: %v\n%s", err, out)
	}

	// SIGINT while the copy runs.
	fill(t, tb.Shares["share1"], 12, 4<<20)
	dest2 := filepath.Join(t.TempDir(), "b2")
	c = cli("backup", "-pipe", smb, "-workers", "1", dest2, "share1", "share2")
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if ents, _ := os.ReadDir(filepath.Join(dest2, "data", "share1")); len(ents) > 0 {
			break
		}
		if time.Now().After(deadline) {
			c.Process.Kill()
			t.Fatal("the backup copied nothing in 2 minutes")
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.Process.Signal(syscall.SIGINT)
	err = c.Wait()
	if c.ProcessState.ExitCode() == 0 || !strings.Contains(stderr.String(), "backup interrupted") {
		t.Fatalf("interrupted backup: %v\n%s", err, stderr.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	names, err := tb.ListShares(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.Contains(n, "@{") {
			t.Errorf("after SIGINT, %s is still exposed", n)
		}
	}
	if ents, _ := filepath.Glob(filepath.Join(tb.StateDir, "snapshots", "*")); len(ents) > 0 {
		t.Errorf("after SIGINT, snapshots are left: %v", ents)
	}
	if out, err := cli("verify", dest2).CombinedOutput(); err == nil || !strings.Contains(string(out), "incomplete") {
		t.Errorf("verify of an interrupted backup: %v\n%s", err, out)
	}
}
