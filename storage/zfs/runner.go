package zfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/storage"
)

// Runner runs an external command and returns its standard output. Every
// zfs and zpool command of a Backend goes through its Runner. A failure is
// reported as a *CommandError when the command ran, so that callers can
// classify it with errors.Is (see CommandError.Unwrap).
type Runner interface {
	Run(ctx context.Context, name string, args ...string) (stdout []byte, err error)
}

// ExecRunner is the default Runner: it runs commands with os/exec under
// LC_ALL=C (so that error messages can be parsed), and logs each one at
// debug level (argv, duration, exit code, stderr), or at warning level when
// it fails.
type ExecRunner struct {
	// Logger receives one line per command; nil discards them.
	Logger *logrus.Entry
}

// Run implements Runner.
func (r ExecRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	argv := append([]string{name}, args...)
	fields := logrus.Fields{"cmd": strings.Join(argv, " "), "duration_s": time.Since(start).Seconds()}
	if err == nil {
		if r.Logger != nil {
			r.Logger.WithFields(fields).Debug("Command succeeded")
		}
		return stdout.Bytes(), nil
	}
	ce := &CommandError{Args: argv, Stderr: strings.TrimSpace(stderr.String()), ExitCode: -1, Err: err}
	if ee, ok := err.(*exec.ExitError); ok {
		ce.ExitCode = ee.ExitCode()
	}
	if ctx.Err() != nil {
		ce.Err = fmt.Errorf("%w (%w)", err, ctx.Err())
	}
	if r.Logger != nil {
		r.Logger.WithFields(fields).WithFields(logrus.Fields{"exit": ce.ExitCode, "stderr": ce.Stderr}).
			WithError(err).Debug("Command failed")
	}
	return stdout.Bytes(), ce
}

// Errors that CommandError.Unwrap reports besides the storage sentinels,
// recognized from the command's stderr.
var (
	// ErrBusy: the dataset is in use (a mounted clone, or a snapshot with a
	// hold).
	ErrBusy = errors.New("dataset is busy")
	// ErrNoSuchTag: zfs release of a tag the snapshot does not hold.
	ErrNoSuchTag = errors.New("no such hold tag")
	// ErrUsage: the command printed its usage: this zfs does not know the
	// subcommand, an option or that many arguments (zfs-fuse 0.7's
	// `zfs snapshot` takes one snapshot).
	ErrUsage = errors.New("command or option not supported by this zfs")
	// ErrUnavailable: the ZFS kernel module or the zfs-fuse daemon cannot be
	// reached.
	ErrUnavailable = errors.New("zfs is not available")
)

// CommandError is a command that ran and failed.
type CommandError struct {
	Args     []string // argv, program first
	Stderr   string   // trimmed
	ExitCode int      // -1 if it did not exit normally
	Err      error    // from os/exec
}

func (e *CommandError) Error() string {
	msg := e.Stderr
	if i := strings.Index(msg, "\nusage:"); i >= 0 {
		msg = msg[:i]
	}
	msg = strings.ReplaceAll(strings.TrimSpace(msg), "\n", "; ")
	if msg == "" {
		msg = e.Err.Error()
	}
	return fmt.Sprintf("%s: %s", strings.Join(e.Args, " "), msg)
}

// Unwrap returns the os/exec error and, when the stderr is recognized, the
// matching sentinel: storage.ErrNotFound, storage.ErrAlreadyExists, ErrBusy,
// ErrNoSuchTag, ErrUsage or ErrUnavailable.
func (e *CommandError) Unwrap() []error {
	if k := classify(e.Stderr); k != nil {
		return []error{e.Err, k}
	}
	return []error{e.Err}
}

// stderrKinds maps substrings of the messages of zfs(8) and zpool(8), from
// zfs-fuse 0.7 to OpenZFS 2.x, to errors. The first match wins.
var stderrKinds = []struct {
	substr string
	err    error
}{
	{"failed to initialize zfs library", ErrUnavailable},
	{"make sure that the zfs-fuse daemon is running", ErrUnavailable},
	{"/dev/zfs", ErrUnavailable},
	{"the zfs modules cannot be auto-loaded", ErrUnavailable},
	{"dataset does not exist", storage.ErrNotFound},
	{"could not find any snapshots", storage.ErrNotFound},
	{"no such pool", storage.ErrNotFound},
	{"no such tag on this dataset", ErrNoSuchTag},
	{"dataset already exists", storage.ErrAlreadyExists},
	{"tag already exists on this dataset", storage.ErrAlreadyExists},
	{"is busy", ErrBusy},
	{"unrecognized command", ErrUsage},
	{"invalid option", ErrUsage},
	{"too many arguments", ErrUsage},
	{"usage:", ErrUsage},
}

func classify(stderr string) error {
	s := strings.ToLower(stderr)
	for _, k := range stderrKinds {
		if strings.Contains(s, k.substr) {
			return k.err
		}
	}
	return nil
}
