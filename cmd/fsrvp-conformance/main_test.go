package main

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fsrvpd/fsrvpd/conformance"
)

func fakeReport(fail bool) conformance.Report {
	rep := conformance.Report{Target: "127.0.0.1:1", Duration: 1500 * time.Millisecond}
	rep.Add(conformance.Result{ID: "version/supported", Section: "§3.1.4.1", Status: conformance.Pass, Duration: 2 * time.Millisecond})
	if fail {
		rep.Add(conformance.Result{ID: "add/unknown-set", Section: "§3.1.4.4", Status: conformance.Fail,
			Expected: "FSRVP_E_SHADOWCOPYSET_ID_MISMATCH (0x80042501)", Observed: "E_INVALIDARG (0x80070057)",
			Message: "Add(existing share) to an unknown set", Log: []string{"a log line"}})
	}
	rep.Add(conformance.Result{ID: "timer/context-expires", Section: "§3.1.2, §3.1.5", Status: conformance.Skip,
		Message: "needs the server's shortened message sequence timer (Target.ServerTimer)"})
	return rep
}

// withFakeRun replaces conformance.Run, recording what it was given.
func withFakeRun(t *testing.T, rep conformance.Report) *conformance.Target {
	t.Helper()
	var got conformance.Target
	old := runChecks
	runChecks = func(_ context.Context, tg conformance.Target, _ *regexp.Regexp) conformance.Report {
		got = tg
		return rep
	}
	t.Cleanup(func() { runChecks = old })
	return &got
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsageErrors(t *testing.T) {
	withFakeRun(t, fakeReport(false))
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"run"},
		{"run", "-target", "127.0.0.1:1"},
		{"run", "-shares", "a,b"},
		{"run", "-target", "127.0.0.1", "-shares", "a,b"}, // no port
		{"run", "-target", "127.0.0.1:1", "-shares", "a"}, // one share
		{"run", "-target", "127.0.0.1:1", "-shares", "a,b", "-run", "("},
		{"run", "-target", "127.0.0.1:1", "-shares", "a,b", "-retry-limit", "0"},
		{"run", "-target", "127.0.0.1:1", "-shares", "a,b", "-second-client", "nohost"},
		{"run", "-target", "127.0.0.1:1", "-shares", "a,b", "extra"},
		{"run", "-no-such-flag"},
	} {
		if code, _, stderr := runCLI(args...); code != 2 || stderr == "" {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a message", args, code, stderr)
		}
	}
	if code, _, stderr := runCLI("-h"); code != 0 || !strings.Contains(stderr, "Usage:") {
		t.Errorf("-h: exit %d, stderr %q", code, stderr)
	}
}

func TestRunFlagsMakeTarget(t *testing.T) {
	got := withFakeRun(t, fakeReport(false))
	code, _, stderr := runCLI("run", "-target", "127.0.0.1:41345", "-shares", "share1, share2", "-same-volume-share", "share3",
		"-timer", "2s", "-second-client", "127.0.0.2", "-retry-limit", "-1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if got.Name != "127.0.0.1:41345" || strings.Join(got.Shares, ",") != "share1,share2" || got.SameVolumeShare != "share3" ||
		got.ServerTimer != 2*time.Second || got.ShareHost != "127.0.0.1" || got.RetryLimit != -1 || got.Dial == nil || got.SecondDial == nil {
		t.Errorf("target %+v", *got)
	}
}

func TestTableOutput(t *testing.T) {
	withFakeRun(t, fakeReport(true))
	code, out, _ := runCLI("run", "-target", "127.0.0.1:1", "-shares", "a,b", "-v")
	if code != 1 {
		t.Errorf("exit %d with a failed check, want 1", code)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	want := []string{
		`^ID +SECTION +RESULT +TIME$`,
		`^version/supported +§3\.1\.4\.1 +PASS +2ms$`,
		`^add/unknown-set +§3\.1\.4\.4 +FAIL +0s$`,
		`^    Add\(existing share\) to an unknown set: expected FSRVP_E_SHADOWCOPYSET_ID_MISMATCH \(0x80042501\), observed E_INVALIDARG \(0x80070057\)$`,
		`^    log: a log line$`,
		`^timer/context-expires +§3\.1\.2, §3\.1\.5 +SKIP +0s$`,
		`^    needs the server's shortened message sequence timer`,
		`^1 passed, 1 failed, 1 skipped against 127\.0\.0\.1:1 in 1\.5s$`,
	}
	if len(lines) != len(want) {
		t.Fatalf("output has %d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, re := range want {
		if !regexp.MustCompile(re).MatchString(lines[i]) {
			t.Errorf("line %d %q does not match %s", i+1, lines[i], re)
		}
	}
	// The columns line up: RESULT starts at the same rune offset everywhere.
	col := strings.Index(lines[0], "RESULT")
	for _, i := range []int{1, 2, 5} {
		if r := []rune(lines[i]); len(r) < col+4 || !strings.ContainsAny(string(r[col:col+4]), "PFS") {
			t.Errorf("line %d %q: result not in column %d", i+1, lines[i], col)
		}
	}
}

func TestJSONOutputAndExitCodes(t *testing.T) {
	withFakeRun(t, fakeReport(false))
	code, out, _ := runCLI("run", "-json", "-target", "127.0.0.1:1", "-shares", "a,b")
	if code != 0 {
		t.Errorf("exit %d with nothing failed, want 0", code)
	}
	var rep conformance.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("-json output: %v\n%s", err, out)
	}
	if rep.Passed != 1 || rep.Skipped != 1 || len(rep.Results) != 2 || rep.Results[1].Message == "" {
		t.Errorf("decoded report %+v", rep)
	}
}

func TestList(t *testing.T) {
	code, out, _ := runCLI("list", "-run", "^abort/")
	if code != 0 || !strings.Contains(out, "abort/exposed") || strings.Contains(out, "add/") || !strings.HasSuffix(out, "7 checks\n") {
		t.Errorf("list: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI("list", "-json")
	var all []struct{ ID string }
	if err := json.Unmarshal([]byte(out), &all); code != 0 || err != nil || len(all) != len(conformance.Checks) {
		t.Errorf("list -json: exit %d, %d entries, %v", code, len(all), err)
	}
}
