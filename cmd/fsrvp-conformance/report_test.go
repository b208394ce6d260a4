package main

import (
	"context"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsrvpd/fsrvpd/conformance"
)

// withFakeTorture replaces conformance.RunSmbtorture, recording its config.
func withFakeTorture(t *testing.T) *conformance.TortureConfig {
	t.Helper()
	var got conformance.TortureConfig
	old := runTorture
	runTorture = func(_ context.Context, tc conformance.TortureConfig) (conformance.Report, string, error) {
		got = tc
		rep := conformance.FoldTorture(nil, []string{"get_version"})
		rep.Results[0].Status, rep.Failed, rep.Passed = conformance.Pass, 0, 1
		return rep, "success: fsrvp.get_version\n", nil
	}
	t.Cleanup(func() { runTorture = old })
	return &got
}

// fakeTestbed writes a testbed.json like testbed up's.
func fakeTestbed(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	js := `{"dir":"` + dir + `","backend":"dir","seq_timeout":"1s","port":4455,"client_conf":"` + dir + `/client.conf","shares":{}}`
	if err := os.WriteFile(filepath.Join(dir, "testbed.json"), []byte(js), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestRunNPTarget(t *testing.T) {
	got := withFakeRun(t, fakeReport(false))
	code, _, stderr := runCLI("run", "-target", "ncacn_np:127.0.0.1[FssagentRpc]", "-smb-port", "4455", "-user", "root",
		"-password", "pw", "-shares", "share1,share2", "-timer", "1s")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(got.Name, "ncacn_np:127.0.0.1[FssagentRpc]") || !strings.Contains(got.Name, "4455") || got.Dial == nil ||
		got.ServerTimer != time.Second || got.ShareHost != "127.0.0.1" || strings.Join(got.Shares, ",") != "share1,share2" {
		t.Errorf("target %+v", *got)
	}
	for _, args := range [][]string{
		{"run", "-target", "ncacn_np:127.0.0.1", "-shares", "a,b"},                                              // no user
		{"run", "-target", "ncacn_np:127.0.0.1", "-user", "u", "-shares", "a,b", "-second-client", "127.0.0.2"}, // TCP only
		{"run", "-target", "ncacn_np:", "-user", "u", "-shares", "a,b"},
		{"run", "-target", "ncacn_np:h", "-user", "u", "-shares", "a,b", "-smb-port", "70000"},
		{"run", "-testbed", filepath.Join(t.TempDir(), "none")},
		{"smbtorture"},
		{"smbtorture", "-target", "127.0.0.1:1"},
	} {
		if code, _, stderr := runCLI(args...); code != 2 || stderr == "" {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a message", args, code, stderr)
		}
	}
}

func TestRunTestbed(t *testing.T) {
	dir := fakeTestbed(t)
	got := withFakeRun(t, fakeReport(false))
	tc := withFakeTorture(t)
	code, out, stderr := runCLI("run", "-testbed", dir, "-smbtorture")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(got.Name, "4455") || got.ServerTimer != time.Second || strings.Join(got.Shares, ",") != "share1,share2,fsrvp_share" {
		t.Errorf("target %+v", *got)
	}
	if tc.Port != 4455 || tc.SeqTimeout != time.Second || tc.ClientConf != dir+"/client.conf" || tc.User != "root" || tc.Password == "" {
		t.Errorf("smbtorture config %+v", *tc)
	}
	if !strings.Contains(out, "smbtorture/get_version") || !strings.Contains(out, "2 passed, 0 failed, 1 skipped") {
		t.Errorf("merged table:\n%s", out)
	}
	// Flags override the testbed.
	if code, _, stderr := runCLI("run", "-testbed", dir, "-shares", "x,y", "-timer", "0"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Join(got.Shares, ",") != "x,y" || got.ServerTimer != 0 {
		t.Errorf("overridden target %+v", *got)
	}
}

func TestSmbtortureCommandReports(t *testing.T) {
	dir := fakeTestbed(t)
	withFakeTorture(t)
	junit, md := filepath.Join(t.TempDir(), "r.xml"), filepath.Join(t.TempDir(), "r.md")
	code, out, stderr := runCLI("smbtorture", "-testbed", dir, "-junit", junit, "-markdown", md)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "smbtorture/get_version") {
		t.Errorf("table:\n%s", out)
	}
	data, err := os.ReadFile(junit)
	var suite struct {
		Cases []struct {
			Name      string `xml:"name,attr"`
			Classname string `xml:"classname,attr"`
		} `xml:"testcase"`
	}
	if err != nil || xml.Unmarshal(data, &suite) != nil || len(suite.Cases) != 1 || suite.Cases[0].Classname != conformance.TortureSection {
		t.Errorf("junit %v:\n%s", err, data)
	}
	if data, err := os.ReadFile(md); err != nil || !strings.Contains(string(data), "## smbtorture rpc.fsrvp") {
		t.Errorf("markdown %v:\n%s", err, data)
	}
}

func TestRunWritesReportFiles(t *testing.T) {
	withFakeRun(t, fakeReport(true))
	junit, md := filepath.Join(t.TempDir(), "r.xml"), filepath.Join(t.TempDir(), "r.md")
	code, _, _ := runCLI("run", "-target", "127.0.0.1:1", "-shares", "a,b", "-junit", junit, "-markdown", md)
	if code != 1 {
		t.Errorf("exit %d with a failure, want 1", code)
	}
	if data, err := os.ReadFile(junit); err != nil || !strings.Contains(string(data), `failures="1"`) {
		t.Errorf("junit %v:\n%s", err, data)
	}
	if data, err := os.ReadFile(md); err != nil || !strings.Contains(string(data), "- Observed: `E_INVALIDARG (0x80070057)`") {
		t.Errorf("markdown %v:\n%s", err, data)
	}
	withFakeRun(t, fakeReport(false))
	if code, _, stderr := runCLI("run", "-target", "127.0.0.1:1", "-shares", "a,b", "-markdown", "/nonexistent/dir/r.md"); code != 1 || stderr == "" {
		t.Errorf("unwritable -markdown: exit %d, %q", code, stderr)
	}
}
