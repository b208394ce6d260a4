package conformance_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/fsrvpd/fsrvpd/client"
	"github.com/fsrvpd/fsrvpd/client/clienttest"
	"github.com/fsrvpd/fsrvpd/conformance"
)

// fakeTarget serves the checks from clienttest.Fake, in memory.
func fakeTarget(t *testing.T) (conformance.Target, *clienttest.Fake) {
	t.Helper()
	f := clienttest.NewFake("share1", "share2")
	dial := func(context.Context) (*client.Client, func() error, error) {
		c := client.New(clienttest.Loopback(f))
		return c, c.Close, nil
	}
	return conformance.Target{Name: "fake", Dial: dial, Shares: []string{"share1", "share2"}}, f
}

func TestChecksTable(t *testing.T) {
	idRE := regexp.MustCompile(`^[a-z]+/[a-z0-9-]+$`)
	seen := map[string]bool{}
	for _, c := range conformance.Checks {
		if !idRE.MatchString(c.ID) {
			t.Errorf("check ID %q is not <area>/<what>", c.ID)
		}
		if seen[c.ID] {
			t.Errorf("check ID %q is used twice", c.ID)
		}
		seen[c.ID] = true
		if !strings.HasPrefix(c.Section, "§") || c.Title == "" || c.Run == nil {
			t.Errorf("check %q: Section %q, Title %q, Run set %v", c.ID, c.Section, c.Title, c.Run != nil)
		}
	}
	if n := len(conformance.Checks); n < 60 {
		t.Errorf("%d checks, want at least 60", n)
	}
}

func TestRunCheckOutcomes(t *testing.T) {
	tg, f := fakeTarget(t)
	ctx := context.Background()
	cases := []struct {
		name   string
		check  conformance.Check
		status conformance.Status
		expect string // Expected
		obs    string // Observed
		msg    string // substring of Message
	}{
		{name: "pass", check: conformance.Check{Run: func(t *conformance.T) {
			t.OK("GetSupportedVersion", func() error { _, _, err := t.Client().GetSupportedVersion(t.Context()); return err }())
		}}, status: conformance.Pass},
		{name: "wrong code", check: conformance.Check{Run: func(t *conformance.T) {
			t.Want("SetContext(0)", t.Client().SetContext(t.Context(), 0), client.EUnsupportedContext)
		}}, status: conformance.Fail, expect: "FSRVP_E_UNSUPPORTED_CONTEXT (0x8004231B)", obs: "S_OK", msg: "SetContext(0)"},
		{name: "skip", check: conformance.Check{Run: func(t *conformance.T) { t.Skipf("not today") }},
			status: conformance.Skip, msg: "not today"},
		{name: "panic", check: conformance.Check{Run: func(t *conformance.T) { panic("boom") }},
			status: conformance.Fail, msg: "panic: boom"},
		{name: "unmet need", check: conformance.Check{Needs: conformance.NeedTimer, Run: func(t *conformance.T) { t.Fatalf("ran") }},
			status: conformance.Skip, msg: "timer"},
		{name: "cleanup failure", check: conformance.Check{Run: func(t *conformance.T) {
			t.Cleanup(func() { t.Fatalf("cannot undo") })
		}}, status: conformance.Fail, msg: "cleanup: cannot undo"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.check.ID = "x/" + tc.name
			res := conformance.RunCheck(ctx, tg, tc.check)
			if res.Status != tc.status || res.Expected != tc.expect || res.Observed != tc.obs || !strings.Contains(res.Message, tc.msg) {
				t.Errorf("got %+v\nwant status %s, expected %q, observed %q, message containing %q", res, tc.status, tc.expect, tc.obs, tc.msg)
			}
		})
	}
	if sets := f.Sets(); len(sets) != 0 {
		t.Errorf("sets left on the server: %v", sets)
	}
}

// A failing check that created a set leaves nothing behind.
func TestRunCheckCleansUpAfterFailure(t *testing.T) {
	tg, f := fakeTarget(t)
	ran := false
	res := conformance.RunCheck(context.Background(), tg, conformance.Check{ID: "x/leak", Run: func(t *conformance.T) {
		t.Cleanup(func() { ran = true })
		s := t.NewSet(conformance.Exposed, client.CtxBackup)
		t.Want("deliberately wrong", t.Client().AbortShadowCopySet(t.Context(), uuid.New()), 0)
		t.Fatalf("not reached: %v", s)
	}})
	if res.Status != conformance.Fail || !strings.Contains(res.Observed, "SHADOWCOPYSET_ID_MISMATCH") {
		t.Errorf("result %+v, want a failure observing FSRVP_E_SHADOWCOPYSET_ID_MISMATCH", res)
	}
	if !ran {
		t.Error("the registered cleanup did not run")
	}
	if sets := f.Sets(); len(sets) != 0 {
		t.Errorf("sets left on the server: %v", sets)
	}
}

func TestRunReport(t *testing.T) {
	tg, _ := fakeTarget(t)
	rep := conformance.Run(context.Background(), tg, regexp.MustCompile(`^(version/|timer/context)`))
	if len(rep.Results) != 2 || rep.Passed+rep.Failed+rep.Skipped != 2 {
		t.Fatalf("report %+v, want 2 results", rep)
	}
	if r := rep.Results[1]; r.ID != "timer/context-expires" || r.Status != conformance.Skip {
		t.Errorf("timer check without ServerTimer: %+v, want skipped", r)
	}
	if want := "passed, "; !strings.Contains(rep.Summary(), want) {
		t.Errorf("Summary %q", rep.Summary())
	}
	bad := tg
	bad.Shares = []string{"share1"}
	rep = conformance.Run(context.Background(), bad, regexp.MustCompile(`^version/`))
	if rep.Failed != 1 || rep.OK() {
		t.Errorf("a target with one share: %+v, want a failure", rep)
	}
}

// Every check runs to completion against the in-memory fake (which is no
// conforming server: failures are expected, panics and leaks are not).
func TestChecksAgainstFakeDoNotPanicOrLeak(t *testing.T) {
	tg, f := fakeTarget(t)
	rep := conformance.Run(context.Background(), tg, nil)
	for _, r := range rep.Results {
		if strings.Contains(r.Message, "panic:") {
			t.Errorf("%s: %s", r.ID, r.Message)
		}
		if r.Status == conformance.Fail {
			t.Logf("%s: %s: expected %s, observed %s", r.ID, r.Message, r.Expected, r.Observed)
		}
	}
	t.Logf("against the fake: %s", rep.Summary())
	if len(rep.Results) != len(conformance.Checks) {
		t.Errorf("%d results for %d checks", len(rep.Results), len(conformance.Checks))
	}
	if sets := f.Sets(); len(sets) != 0 {
		t.Errorf("sets left on the fake: %v", sets)
	}
}
