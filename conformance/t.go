package conformance

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/fsrvpd/fsrvpd/client"
)

// T is the state of one running check, like testing.T: FailNow, Fatalf and
// Skipf end the check (they must be called from the check's goroutine).
type T struct {
	ctx    context.Context
	target Target
	res    *Result
	phase  string // "setup", "", "cleanup": prefixes failure messages

	mu         sync.Mutex
	c          *client.Client
	second     *client.Client
	files      Files
	closers    []func() error
	sets       []uuid.UUID // every set started: aborted at cleanup
	cleanupFns []func()
}

// Context is the check's context (cancelled at its time limit).
func (t *T) Context() context.Context { return t.ctx }

// Target is the target under test.
func (t *T) Target() Target { return t.target }

// Client is the check's connection.
func (t *T) Client() *client.Client { return t.c }

// Second is a connection from another client address (Target.SecondDial),
// dialed on first use. Checks that use it declare NeedSecondClient.
func (t *T) Second() *client.Client {
	t.Helper()
	if t.second == nil {
		if t.target.SecondDial == nil {
			t.Skipf("no second client address")
		}
		t.second = t.dial(t.target.SecondDial, "second dial")
	}
	return t.second
}

// Files is SMB access to the shares (Target.Files), opened on first use.
// Checks that use it declare NeedFiles.
func (t *T) Files() Files {
	t.Helper()
	if t.files == nil {
		if t.target.Files == nil {
			t.Skipf("no SMB access to the shares")
		}
		f, err := t.target.Files(t.ctx)
		if err != nil {
			t.failNow("", "", "SMB session: "+err.Error())
		}
		t.mu.Lock()
		t.files = f
		t.closers = append(t.closers, f.Close)
		t.mu.Unlock()
	}
	return t.files
}

// Helper is a no-op kept for symmetry with testing.T: helpers call it.
func (t *T) Helper() {}

// Logf adds a line to the check's log.
func (t *T) Logf(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.res.Log = append(t.res.Log, fmt.Sprintf(format, args...))
}

// Cleanup registers f to run after the check, before the sets it started
// are aborted; the last registered runs first.
func (t *T) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanupFns = append(t.cleanupFns, f)
}

// FailNow ends the check as failed, with what was expected and observed.
func (t *T) FailNow(expected, observed, msg string) { t.failNow(expected, observed, msg) }

func (t *T) failNow(expected, observed, msg string) {
	t.record(Fail, expected, observed, msg)
	runtime.Goexit()
}

// Fatalf ends the check as failed.
func (t *T) Fatalf(format string, args ...any) { t.failNow("", "", fmt.Sprintf(format, args...)) }

// Skipf ends the check as skipped (a failure recorded before stays).
func (t *T) Skipf(format string, args ...any) {
	t.record(Skip, "", "", fmt.Sprintf(format, args...))
	runtime.Goexit()
}

func (t *T) dial(d Dialer, what string) *client.Client {
	c, closeFn, err := d(t.ctx)
	if err != nil {
		t.failNow("", "", fmt.Sprintf("%s: %v", what, err))
	}
	t.mu.Lock()
	t.closers = append(t.closers, closeFn)
	t.mu.Unlock()
	return c
}

// codeOf is the FSRVP return code carried by err: 0 for nil, ok=false
// when err is not an FSRVP return value (transport failure).
func codeOf(err error) (uint32, bool) {
	if err == nil {
		return 0, true
	}
	return client.Code(err)
}

// CodeString prints a return code as "NAME (0xXXXXXXXX)", or "S_OK".
func CodeString(code uint32) string {
	if code == 0 {
		return "S_OK"
	}
	if n := client.CodeName(code); n != "" {
		return fmt.Sprintf("%s (0x%08X)", n, code)
	}
	return fmt.Sprintf("0x%08X", code)
}

func observed(err error) string {
	code, ok := codeOf(err)
	if !ok {
		return "no return code: " + err.Error()
	}
	return CodeString(code)
}

// Want ends the check unless err carries exactly the return code want
// (0: success). what names the call, e.g. "Add(share1) to an unknown set".
func (t *T) Want(what string, err error, want uint32) {
	t.Helper()
	if code, ok := codeOf(err); ok && code == want {
		return
	}
	t.failNow(CodeString(want), observed(err), what)
}

// OK ends the check unless err is nil.
func (t *T) OK(what string, err error) {
	t.Helper()
	t.Want(what, err, 0)
}

// Equal ends the check unless got == want.
func Equal[V comparable](t *T, what string, got, want V) {
	t.Helper()
	if got != want {
		t.failNow(fmt.Sprint(want), fmt.Sprint(got), what)
	}
}

// Truef ends the check unless cond holds.
func (t *T) Truef(cond bool, expected, observed, format string, args ...any) {
	t.Helper()
	if !cond {
		t.failNow(expected, observed, fmt.Sprintf(format, args...))
	}
}

// clearSequence brings the server to "no creation sequence running" without
// knowing what is there: SetContext (which, from the same client, deletes
// every set not Recovered, §3.1.4.2), then Start and Abort a set (Abort
// clears ContextSet, §3.1.4.8). A SetContext refused for the retry limit
// has already cleared the state, so it is repeated once; if it is still
// refused, another client holds the context and the second client (if
// any) tries.
func (t *T) clearSequence() error {
	err := t.clearWith(t.c)
	if code, _ := codeOf(err); code == client.EShadowCopySetInProgress && t.target.SecondDial != nil {
		if err2 := t.clearWith(t.Second()); err2 == nil {
			return t.clearWith(t.c)
		}
	}
	return err
}

func (t *T) clearWith(c *client.Client) error {
	err := c.SetContext(t.ctx, client.CtxBackup)
	if code, _ := codeOf(err); code == client.EShadowCopySetInProgress {
		err = c.SetContext(t.ctx, client.CtxBackup)
	}
	if err != nil {
		return fmt.Errorf("SetContext: %w", err)
	}
	id, err := c.StartShadowCopySet(t.ctx, uuid.New())
	if err != nil {
		return fmt.Errorf("StartShadowCopySet: %w", err)
	}
	if err := c.AbortShadowCopySet(t.ctx, id); err != nil {
		return fmt.Errorf("AbortShadowCopySet: %w", err)
	}
	return nil
}

// runCleanup runs the registered cleanups, aborts every set the check
// started that still exists, and clears the sequence again. It uses a
// fresh context so that a check that ran out of time still cleans up.
func (t *T) runCleanup() {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), time.Minute)
	defer cancel()
	t.ctx = ctx
	for i := len(t.cleanupFns) - 1; i >= 0; i-- {
		t.guardCleanup(t.cleanupFns[i])
	}
	if t.c == nil {
		return // the dial failed: nothing was created
	}
	var problems []string
	for _, id := range t.sets {
		err := t.c.AbortShadowCopySet(ctx, id)
		if code, ok := codeOf(err); ok && (code == 0 || code == client.EShadowCopySetIDMismatch) {
			continue
		}
		problems = append(problems, fmt.Sprintf("Abort(%s): %s", id, observed(err)))
	}
	if err := t.clearSequence(); err != nil {
		problems = append(problems, "clearing the sequence: "+err.Error())
	}
	if len(problems) > 0 {
		t.record(Fail, "", "", strings.Join(problems, "; "))
	}
}

// guardCleanup runs one cleanup function; a Fatalf in it is recorded and
// does not stop the other cleanups.
func (t *T) guardCleanup(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				t.record(Fail, "", "", fmt.Sprintf("panic: %v", r))
			}
		}()
		f()
	}()
	<-done
}
