package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fsrvpd/fsrvpd/client"
)

// These tests run the real fsrvpd binary as a separate process, the way an
// administrator or a crash would meet it.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func daemonBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test (builds and runs fsrvpd)")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fsrvpd-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "fsrvpd")
		out, err := exec.Command("go", "build", "-race", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// testbed is a daemon's directories and configuration.
type testbed struct {
	t      *testing.T
	dir    string // state dir
	vol1   string
	vol2   string
	port   int
	epm    string
	extra  string // appended to the [fsrvp] section
	cmd    *exec.Cmd
	logs   *bytes.Buffer
	logsMu sync.Mutex
	exited chan struct{}
}

func newTestbed(t *testing.T, fsrvpExtra string) *testbed {
	t.Helper()
	root := t.TempDir()
	b := &testbed{t: t, dir: filepath.Join(root, "state"), vol1: filepath.Join(root, "vol1"), vol2: filepath.Join(root, "vol2"), extra: fsrvpExtra}
	for _, d := range []string{filepath.Join(b.vol1, "share1"), filepath.Join(b.vol2, "share2")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b.writeFile("share1/file.txt", "before the snapshot\n")
	b.port = freePort(t)
	return b
}

func (b *testbed) writeFile(rel, content string) {
	b.t.Helper()
	if err := os.WriteFile(filepath.Join(b.vol1, rel), []byte(content), 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func (b *testbed) config() string {
	return fmt.Sprintf(`
[server]
name = "TESTBED"
listen = ["127.0.0.1:%d"]
endpoint_mapper = %q
state_dir = %q
log_level = "debug"

[fsrvp]
allow_unauthenticated = true
%s

[storage.dir]
volumes = [%q, %q]

[[share]]
name = "share1"
path = %q

[[share]]
name = "share2"
path = %q
`, b.port, b.epm, b.dir, b.extra, b.vol1, b.vol2, filepath.Join(b.vol1, "share1"), filepath.Join(b.vol2, "share2"))
}

// start runs the daemon and waits until it accepts connections.
func (b *testbed) start() {
	t := b.t
	t.Helper()
	cfg := filepath.Join(filepath.Dir(b.dir), "fsrvpd.toml")
	if err := os.WriteFile(cfg, []byte(b.config()), 0o600); err != nil {
		t.Fatal(err)
	}
	b.logs = &bytes.Buffer{}
	b.cmd = exec.Command(daemonBinary(t), "-config", cfg)
	b.cmd.Stdout = b.logWriter()
	b.cmd.Stderr = b.logWriter()
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b.exited = make(chan struct{})
	go func() { b.cmd.Wait(); close(b.exited) }()
	t.Cleanup(b.stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", b.port))
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-b.exited:
			t.Fatalf("fsrvpd exited at start-up:\n%s", b.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("fsrvpd did not listen:\n%s", b.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type lockedWriter struct{ b *testbed }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.b.logsMu.Lock()
	defer w.b.logsMu.Unlock()
	return w.b.logs.Write(p)
}

func (b *testbed) logWriter() lockedWriter { return lockedWriter{b} }

func (b *testbed) output() string {
	b.logsMu.Lock()
	defer b.logsMu.Unlock()
	return b.logs.String()
}

// stop ends the daemon with SIGTERM and checks it shut down cleanly.
func (b *testbed) stop() {
	if b.cmd == nil || b.cmd.Process == nil {
		return
	}
	select {
	case <-b.exited:
	default:
		b.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-b.exited:
		case <-time.After(30 * time.Second):
			b.cmd.Process.Kill()
			<-b.exited
			b.t.Errorf("fsrvpd ignored SIGTERM:\n%s", b.output())
		}
	}
	if b.t.Failed() {
		b.t.Logf("fsrvpd output:\n%s", b.output())
	}
	b.cmd = nil
}

// kill ends the daemon with SIGKILL, as a crash would.
func (b *testbed) kill() {
	b.cmd.Process.Signal(syscall.SIGKILL)
	<-b.exited
	b.cmd = nil
}

func (b *testbed) dial(t *testing.T) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, fmt.Sprintf("127.0.0.1:%d", b.port))
	if err != nil {
		t.Fatalf("dial: %v\n%s", err, b.output())
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// snapshots lists the finished and half-made snapshots in the state dir.
func (b *testbed) snapshots() []string {
	ents, _ := os.ReadDir(filepath.Join(b.dir, "snapshots"))
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func (b *testbed) registry() string {
	data, _ := os.ReadFile(filepath.Join(b.dir, "shares.json"))
	return string(data)
}

func hasExposedShares(registry string) bool { return strings.Contains(registry, "@{") }
