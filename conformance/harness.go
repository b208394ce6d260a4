package conformance

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	"github.com/fsrvpd/fsrvpd/client"
)

// Need is a capability of the target that a check requires; checks whose
// needs the Target cannot meet are skipped with the reason.
type Need uint

const (
	// NeedSecondClient: Target.SecondDial, a client with another address.
	NeedSecondClient Need = 1 << iota
	// NeedSameVolumeShare: Target.SameVolumeShare.
	NeedSameVolumeShare
	// NeedTimer: Target.ServerTimer, a shortened message sequence timer.
	NeedTimer
	// NeedRetryLimit: a SetContext retry limit (Target.RetryLimit >= 0).
	NeedRetryLimit
	// NeedFiles: SMB access to the shares (Target.Files).
	NeedFiles
	// NeedNonAdmin: Target.NonAdminDial, a client that is no administrator.
	NeedNonAdmin
	// NeedUnauth: Target.UnauthDial, a client bound without RPC
	// authentication that the server must refuse.
	NeedUnauth
	// NeedAuthLevels: Target.AuthDial, binds at chosen authentication
	// levels.
	NeedAuthLevels
	// NeedHiddenShare: Target.HiddenShare.
	NeedHiddenShare
	// NeedCanary: Target.Canary, an address the server could reach and
	// the harness can listen on.
	NeedCanary
)

// Check is one conformance check.
type Check struct {
	ID      string // unique, "<area>/<what>", e.g. "add/share-missing-before-set-id"
	Section string // MS-FSRVP section, e.g. "§3.1.4.4"
	Title   string // one line: what the server must do
	Needs   Need
	Run     func(*T)
}

// Dialer opens one connection to the server; closeFn releases it.
type Dialer func(ctx context.Context) (c *client.Client, closeFn func() error, err error)

// DefaultRetryLimit is the SetContext retry limit of Windows Server 2012 R2
// and later (MS-FSRVP note <5>).
const DefaultRetryLimit = 5

// Target describes the server under test.
type Target struct {
	// Name labels the report (e.g. the server address).
	Name string
	// Dial opens a connection; every check dials its own.
	Dial Dialer
	// SecondDial, optional, opens a connection that the server sees as
	// another client (another source address).
	SecondDial Dialer
	// Shares are at least two share names (bare, e.g. "share1") that lie
	// on different volumes and have nothing shadow-copied.
	Shares []string
	// SameVolumeShare, optional, is a share on the volume of Shares[0].
	SameVolumeShare string
	// ShareHost is the host part of the UNC names sent; "" means
	// "localhost". Servers must not care which host is named.
	ShareHost string
	// ServerTimer is the server's (shortened) message sequence timer; 0
	// when unknown: the timer checks are skipped.
	ServerTimer time.Duration
	// RetryLimit is the server's SetContext retry limit: 0 means
	// DefaultRetryLimit, -1 none (the retry-limit check is skipped).
	RetryLimit int
	// CheckTimeout bounds one check (default 2 minutes, plus 3 timers).
	CheckTimeout time.Duration

	// Files, optional, opens SMB access to the server's shares (as an
	// account that may write to the base shares): the exposure checks
	// need it.
	Files FilesDialer
	// NonAdminDial, optional, connects as an account that is neither an
	// administrator nor a backup operator.
	NonAdminDial Dialer
	// UnauthDial, optional, connects with an RPC bind at authentication
	// level NONE, which §3.1.4 says the server must refuse (leave it nil
	// when Dial itself binds so, e.g. ncacn_np behind smbd).
	UnauthDial Dialer
	// AuthDial, optional, connects as an administrator whose bind is
	// authenticated at level (client.LevelConnect, LevelIntegrity,
	// LevelPrivacy).
	AuthDial func(level string) Dialer
	// HiddenShare, optional, is a share whose name ends in '$', on a
	// volume of its own or of Shares[0].
	HiddenShare string
	// Canary, optional, is an IP address that the server would reach if
	// it contacted a host named in a ShareName, and on which the harness
	// can listen (e.g. an unused 127.x address when the server runs on
	// this machine).
	Canary string
}

func (tg Target) retryLimit() int {
	if tg.RetryLimit == 0 {
		return DefaultRetryLimit
	}
	return tg.RetryLimit
}

func (tg Target) shareHost() string {
	if tg.ShareHost == "" {
		return "localhost"
	}
	return tg.ShareHost
}

// Validate reports a Target that cannot run any check.
func (tg Target) Validate() error {
	if tg.Dial == nil {
		return errors.New("conformance: Target.Dial is nil")
	}
	if len(tg.Shares) < 2 {
		return fmt.Errorf("conformance: need at least 2 shares on different volumes, have %d", len(tg.Shares))
	}
	for _, s := range append(append([]string(nil), tg.Shares...), tg.SameVolumeShare, tg.HiddenShare) {
		if strings.ContainsAny(s, `\/`) {
			return fmt.Errorf("conformance: share %q: give bare share names, not paths", s)
		}
	}
	return nil
}

// unmet returns why the target cannot meet needs, or "".
func (tg Target) unmet(needs Need) string {
	switch {
	case needs&NeedSecondClient != 0 && tg.SecondDial == nil:
		return "needs a second client address (Target.SecondDial)"
	case needs&NeedSameVolumeShare != 0 && tg.SameVolumeShare == "":
		return "needs a share on the volume of the first share (Target.SameVolumeShare)"
	case needs&NeedTimer != 0 && tg.ServerTimer <= 0:
		return "needs the server's shortened message sequence timer (Target.ServerTimer)"
	case needs&NeedRetryLimit != 0 && tg.retryLimit() < 0:
		return "the server has no SetContext retry limit"
	case needs&NeedFiles != 0 && tg.Files == nil:
		return "needs SMB access to the shares (Target.Files: -smb-user/-smb-password)"
	case needs&NeedNonAdmin != 0 && tg.NonAdminDial == nil:
		return "needs a non-administrator account (Target.NonAdminDial)"
	case needs&NeedUnauth != 0 && tg.UnauthDial == nil:
		return "needs a connection bound without RPC authentication that the server must refuse (Target.UnauthDial: " +
			"ncacn_ip_tcp with -rpc-user; over ncacn_np the SMB session may stand for it)"
	case needs&NeedAuthLevels != 0 && tg.AuthDial == nil:
		return "needs binds authenticated at chosen levels (Target.AuthDial: ncacn_ip_tcp with -rpc-user/-rpc-password)"
	case needs&NeedHiddenShare != 0 && tg.HiddenShare == "":
		return "needs a share whose name ends in '$' (Target.HiddenShare)"
	case needs&NeedCanary != 0 && tg.Canary == "":
		return "needs an address the server could reach and the harness can listen on (Target.Canary)"
	}
	return ""
}

// Status is the outcome of a check.
type Status string

const (
	Pass Status = "pass"
	Fail Status = "fail"
	Skip Status = "skip"
)

// Result is the outcome of one check.
type Result struct {
	ID       string        `json:"id"`
	Section  string        `json:"section"`
	Title    string        `json:"title"`
	Status   Status        `json:"status"`
	Expected string        `json:"expected,omitempty"` // on failure
	Observed string        `json:"observed,omitempty"` // on failure
	Message  string        `json:"message,omitempty"`  // failure detail or skip reason
	Duration time.Duration `json:"duration_ns"`
	Log      []string      `json:"log,omitempty"`
}

// Report is the outcome of Run.
type Report struct {
	Target   string        `json:"target"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	Results  []Result      `json:"results"`
	Passed   int           `json:"passed"`
	Failed   int           `json:"failed"`
	Skipped  int           `json:"skipped"`
}

// OK reports whether no check failed.
func (r Report) OK() bool { return r.Failed == 0 }

// Add appends res and counts it.
func (r *Report) Add(res Result) {
	r.Results = append(r.Results, res)
	switch res.Status {
	case Pass:
		r.Passed++
	case Fail:
		r.Failed++
	case Skip:
		r.Skipped++
	}
}

// Summary is "N passed, M failed, K skipped".
func (r Report) Summary() string {
	return fmt.Sprintf("%d passed, %d failed, %d skipped", r.Passed, r.Failed, r.Skipped)
}

// Select returns the checks whose ID matches filter (all when nil).
func Select(filter *regexp.Regexp) []Check {
	var out []Check
	for _, c := range Checks {
		if filter == nil || filter.MatchString(c.ID) {
			out = append(out, c)
		}
	}
	return out
}

// Run runs the checks selected by filter (nil: all), one after the other,
// against tg. A Target that fails Validate fails every check.
func Run(ctx context.Context, tg Target, filter *regexp.Regexp) Report {
	rep := Report{Target: tg.Name, Started: time.Now()}
	for _, c := range Select(filter) {
		if ctx.Err() != nil {
			rep.Add(Result{ID: c.ID, Section: c.Section, Title: c.Title, Status: Skip, Message: "run cancelled"})
			continue
		}
		rep.Add(RunCheck(ctx, tg, c))
	}
	rep.Duration = time.Since(rep.Started)
	return rep
}

// RunCheck runs one check: it dials, clears any leftover creation sequence,
// runs c.Run, then deletes what the check created (cleanup problems fail
// the check: something may have leaked).
func RunCheck(ctx context.Context, tg Target, c Check) Result {
	res := Result{ID: c.ID, Section: c.Section, Title: c.Title, Status: Pass}
	if err := tg.Validate(); err != nil {
		res.Status, res.Message = Fail, err.Error()
		return res
	}
	if why := tg.unmet(c.Needs); why != "" {
		res.Status, res.Message = Skip, why
		return res
	}
	limit := tg.CheckTimeout
	if limit <= 0 {
		limit = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, limit+3*tg.ServerTimer)
	defer cancel()
	start := time.Now()
	t := &T{ctx: ctx, target: tg, res: &res}
	t.guard(func() {
		t.phase = "setup"
		t.c = t.dial(tg.Dial, "dial")
		if err := t.clearSequence(); err != nil {
			t.failNow("", "", "setup: clearing leftover state: "+err.Error())
		}
		t.phase = ""
		c.Run(t)
	})
	t.guard(func() {
		t.phase = "cleanup"
		t.runCleanup()
	})
	for i := len(t.closers) - 1; i >= 0; i-- {
		t.closers[i]()
	}
	res.Duration = time.Since(start)
	return res
}

// guard runs f in its own goroutine so that FailNow/Skipf can end it with
// runtime.Goexit, and turns a panic into a failure.
func (t *T) guard(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				t.record(Fail, "", "", fmt.Sprintf("panic: %v\n%s", r, debug.Stack()))
			}
		}()
		f()
	}()
	<-done
}

// record stores the first failure (later ones are appended to Message).
func (t *T) record(st Status, expected, observed, msg string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.phase != "" && st == Fail && !strings.HasPrefix(msg, t.phase) {
		msg = t.phase + ": " + msg
	}
	r := t.res
	switch {
	case r.Status == Pass:
		r.Status, r.Expected, r.Observed, r.Message = st, expected, observed, msg
	case st == Fail && r.Status == Skip:
		// A cleanup failure after a skip still matters.
		r.Status, r.Expected, r.Observed, r.Message = Fail, expected, observed, r.Message+"; "+msg
	case st == Fail:
		r.Message += "; then " + msg
		if expected != "" {
			r.Message += fmt.Sprintf(" (expected %s, observed %s)", expected, observed)
		}
	}
}
