package storagetest

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"testing"
)

// StrictEnv names the environment variable that turns the skips of Require
// into failures. CI sets FSRVPD_TEST_STRICT=1 so that a test needing root, a
// kernel filesystem or a package cannot pass by not running.
const StrictEnv = "FSRVPD_TEST_STRICT"

// Strict reports whether StrictEnv is set to 1.
func Strict() bool { return os.Getenv(StrictEnv) == "1" }

// Require skips the test unless ok, saying what it needs and why it is
// missing. In strict mode (StrictEnv) it fails the test instead.
func Require(t testing.TB, what string, ok bool, reason string) {
	t.Helper()
	if ok {
		return
	}
	if Strict() {
		t.Fatalf("requires %s: %s (%s=1 forbids skipping)", what, reason, StrictEnv)
	}
	t.Skipf("requires %s: %s", what, reason)
}

// RequireRoot requires an effective uid of 0.
func RequireRoot(t testing.TB) {
	t.Helper()
	Require(t, "root", os.Geteuid() == 0, "running as a regular user")
}

// RequireCommand requires the program name on PATH and returns its path.
func RequireCommand(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	Require(t, name, err == nil, "not on PATH (apt-get install the package providing it)")
	return path
}

// RequireFilesystem requires the kernel to support fstype, as listed in
// /proc/filesystems.
func RequireFilesystem(t testing.TB, fstype string) {
	t.Helper()
	data, err := os.ReadFile("/proc/filesystems")
	found := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) > 0 && string(f[len(f)-1]) == fstype {
			found = true
		}
	}
	reason := "not in /proc/filesystems"
	if err != nil {
		reason = err.Error()
	}
	Require(t, fstype+" filesystem", found, reason)
}
