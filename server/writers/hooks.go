package writers

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
)

// maxOutput caps what is kept of a hook's stdout (its annotation).
const maxOutput = 64 << 10

// capped keeps the first maxOutput bytes written to it.
type capped struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := maxOutput - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// killGroup kills the process group of cmd (the hook and its children).
func killGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}

// command builds an exec.Cmd in its own process group, killed as a group
// when ctx ends, dying with fsrvpd (Pdeathsig).
func command(ctx context.Context, argv []string, env []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return killGroup(cmd) }
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// runHook runs h with env and returns its stdout. A timeout kills the
// process group and is reported as such; stderr is logged and quoted in
// the error of a failing hook.
func runHook(ctx context.Context, h Hook, env []string, def time.Duration, log *logrus.Entry) ([]byte, error) {
	timeout := h.Timeout.Duration
	if timeout <= 0 {
		timeout = def
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var out, errOut capped
	cmd := command(ctx, h.Command, env)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	stderr := strings.TrimSpace(errOut.buf.String())
	if stderr != "" {
		log.WithField("stderr", stderr).Debug("hook stderr")
	}
	if ctx.Err() == context.DeadlineExceeded {
		return nil, fmt.Errorf("%s: timed out after %s (process group killed)", h.Command[0], timeout)
	}
	if err != nil {
		if stderr != "" {
			return nil, fmt.Errorf("%s: %v: %s", h.Command[0], err, lastLine(stderr))
		}
		return nil, fmt.Errorf("%s: %w", h.Command[0], err)
	}
	log.WithField("duration_s", d.Seconds()).Debug("hook done")
	return out.buf.Bytes(), nil
}

func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// session is a running session helper.
type session struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	lines   chan string
	timeout time.Duration
	log     *logrus.Entry
	done    chan struct{}
}

// startSession starts the helper of s.
func startSession(s *Session, env []string, log *logrus.Entry) (*session, error) {
	cmd := command(context.Background(), s.Command, env)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("session %s: %w", s.Command[0], err)
	}
	ss := &session{cmd: cmd, stdin: stdin, lines: make(chan string, 64), timeout: s.Timeout.Duration, log: log, done: make(chan struct{})}
	if ss.timeout <= 0 {
		ss.timeout = DefaultSessionTimeout
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.WithField("stderr", sc.Text()).Info("session helper")
		}
	}()
	go func() {
		defer close(ss.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 4096), maxOutput)
		for sc.Scan() {
			ss.lines <- sc.Text()
		}
	}()
	go func() {
		cmd.Wait()
		close(ss.done)
	}()
	return ss, nil
}

// errSessionGone: the helper exited or closed its stdout.
var errSessionGone = errors.New("session helper exited")

// call sends "<phase> <set id>" and waits for "ok" or "error ...",
// collecting "data" lines. A timeout or a protocol error kills the helper.
func (s *session) call(ctx context.Context, p Phase, setID string, bound time.Duration) ([]byte, error) {
	timeout := s.timeout
	if bound > 0 && bound < timeout {
		timeout = bound
	}
	if _, err := fmt.Fprintf(s.stdin, "%s %s\n", p, setID); err != nil {
		s.kill()
		return nil, fmt.Errorf("session: %s: %w", p, errSessionGone)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var data bytes.Buffer
	for {
		select {
		case line, ok := <-s.lines:
			if !ok {
				s.kill()
				return nil, fmt.Errorf("session: %s: %w", p, errSessionGone)
			}
			switch {
			case line == "ok":
				return data.Bytes(), nil
			case line == "error" || strings.HasPrefix(line, "error "):
				return nil, fmt.Errorf("session: %s: %s", p, strings.TrimSpace(strings.TrimPrefix(line, "error")))
			case line == "data" || strings.HasPrefix(line, "data "):
				if data.Len() < maxOutput {
					data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data"), " "))
					data.WriteByte('\n')
				}
			default:
				s.kill()
				return nil, fmt.Errorf("session: %s: unexpected line %q (want data, ok or error)", p, line)
			}
		case <-timer.C:
			s.kill()
			return nil, fmt.Errorf("session: %s: no answer within %s (helper killed)", p, timeout)
		case <-ctx.Done():
			s.kill()
			return nil, fmt.Errorf("session: %s: %w (helper killed)", p, ctx.Err())
		}
	}
}

func (s *session) kill() {
	killGroup(s.cmd)
}

// close ends the session: stdin is closed and the helper gets a few
// seconds to exit before its process group is killed.
func (s *session) close() {
	s.stdin.Close()
	select {
	case <-s.done:
	case <-time.After(3 * time.Second):
		s.kill()
		<-s.done
	}
}
