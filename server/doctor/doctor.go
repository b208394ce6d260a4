// Package doctor checks the environment fsrvpd runs in and explains what it
// finds: the configuration, smb.conf, which pipe arrangement keeps Samba's
// rpcd_fsrvp off \PIPE\FssagentRpc and who actually listens on the pipe's
// socket, samba-dcerpcd, whether every share lies on a volume the backend
// can snapshot, free space, the clock and permissions.
//
// Each check is one function returning Results (ok, warn, fail or skip,
// with an explanation and, for problems, a fix). Run runs them all in
// order; `fsrvpd doctor` prints the Report for humans or as JSON and exits
// with Report.ExitCode.
package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/server/config"
	"github.com/fsrvpd/fsrvpd/storage"
)

// Status is the verdict of one check.
type Status string

const (
	OK   Status = "ok"
	Warn Status = "warn" // works, but not as the administrator probably wants
	Fail Status = "fail" // fsrvpd will not start, or clients will fail
	Skip Status = "skip" // not applicable, or an earlier failure prevents it
)

// Result is one finding.
type Result struct {
	// Check names the check: config, permissions, smb.conf, pipe-mode,
	// pipe-socket, samba-dcerpcd, backend, share, free-space, clock, tcp.
	Check string `json:"check"`
	// Subject is what the finding is about when a check has several (a
	// share name, a path, an address).
	Subject string `json:"subject,omitempty"`
	Status  Status `json:"status"`
	// Message says what was found and what it means.
	Message string `json:"message"`
	// Fix says what to change, for warn and fail.
	Fix string `json:"fix,omitempty"`
}

// Env is what the checks look at.
type Env struct {
	// Config is the configuration to check; ConfigErr, if set, is why the
	// file could not be loaded (Config then holds the defaults).
	Config     config.Config
	ConfigPath string
	ConfigErr  error
	// Backend, if nil, is built from Config as the daemon would (when the
	// configuration is valid).
	Backend storage.Backend
	// Proc is the proc filesystem; "" means /proc.
	Proc string
	// OwnNames are the process names that count as fsrvpd on the pipe
	// socket; nil means {"fsrvpd"}.
	OwnNames []string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives the backends' logs; nil discards them.
	Log *logrus.Entry

	// Found by earlier checks for later ones.
	pipeMode string
	volumes  []string
}

func (e *Env) proc() string {
	if e.Proc == "" {
		return "/proc"
	}
	return e.Proc
}

func (e *Env) now() time.Time {
	if e.Now == nil {
		return time.Now()
	}
	return e.Now()
}

func (e *Env) log() *logrus.Entry {
	if e.Log != nil {
		return e.Log
	}
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

// Report is the outcome of Run.
type Report struct {
	Config  string   `json:"config"`
	Results []Result `json:"results"`
}

// Check is one check of Run.
type Check func(ctx context.Context, e *Env) []Result

// Checks are the checks Run runs, in order.
var Checks = []Check{
	CheckConfig, CheckPermissions, CheckSambaConf, CheckPipeMode, CheckPipeSocket,
	CheckDcerpcd, CheckShares, CheckFreeSpace, CheckClock, CheckTCP,
}

// Run runs every check.
func Run(ctx context.Context, e *Env) Report {
	r := Report{Config: e.ConfigPath}
	for _, c := range Checks {
		r.Results = append(r.Results, c(ctx, e)...)
	}
	return r
}

// Worst is the most serious status in the report.
func (r Report) Worst() Status {
	worst := OK
	for _, res := range r.Results {
		switch {
		case res.Status == Fail:
			return Fail
		case res.Status == Warn:
			worst = Warn
		}
	}
	return worst
}

// ExitCode is 0 when every check passed or was skipped, 1 when the worst
// finding is a warning, 2 when a check failed.
func (r Report) ExitCode() int {
	switch r.Worst() {
	case Fail:
		return 2
	case Warn:
		return 1
	}
	return 0
}

// Find returns the results of one check (and subject, if not "").
func (r Report) Find(check, subject string) []Result {
	var out []Result
	for _, res := range r.Results {
		if res.Check == check && (subject == "" || res.Subject == subject) {
			out = append(out, res)
		}
	}
	return out
}

// WriteJSON writes the report as one JSON object.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for a terminal: one line per finding, the
// fix indented below it, and a summary.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "fsrvpd doctor: %s\n\n", r.Config)
	count := map[Status]int{}
	for _, res := range r.Results {
		count[res.Status]++
		label := map[Status]string{OK: "ok", Warn: "WARN", Fail: "FAIL", Skip: "skip"}[res.Status]
		name := res.Check
		if res.Subject != "" {
			name += " " + res.Subject
		}
		fmt.Fprintf(&b, "%-4s  %s: %s\n", label, name, res.Message)
		if res.Fix != "" {
			fmt.Fprintf(&b, "      fix: %s\n", res.Fix)
		}
	}
	fmt.Fprintf(&b, "\n%d ok, %d warnings, %d failures, %d skipped\n", count[OK], count[Warn], count[Fail], count[Skip])
	_, err := io.WriteString(w, b.String())
	return err
}

func ok(check, subject, format string, a ...any) Result {
	return Result{Check: check, Subject: subject, Status: OK, Message: fmt.Sprintf(format, a...)}
}

func skip(check, subject, format string, a ...any) Result {
	return Result{Check: check, Subject: subject, Status: Skip, Message: fmt.Sprintf(format, a...)}
}

func problem(s Status, check, subject, msg, fix string) Result {
	return Result{Check: check, Subject: subject, Status: s, Message: msg, Fix: fix}
}
