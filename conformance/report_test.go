package conformance_test

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/fsrvpd/fsrvpd/conformance"
)

func sampleReport() conformance.Report {
	rep := conformance.Report{Target: "ncacn_np:127.0.0.1[FssagentRpc]", Started: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Duration: 1500 * time.Millisecond}
	rep.Add(conformance.Result{ID: "version/supported", Section: "§3.1.4.1", Title: "GetSupportedVersion returns 1..1",
		Status: conformance.Pass, Duration: 2 * time.Millisecond})
	rep.Add(conformance.Result{ID: "add/unknown-set", Section: "§3.1.4.4", Title: "Add to an unknown set | is rejected",
		Status: conformance.Fail, Expected: "FSRVP_E_SHADOWCOPYSET_ID_MISMATCH (0x80042501)", Observed: "E_INVALIDARG (0x80070057)",
		Message: "Add(existing share) to an unknown set", Log: []string{"a log line", "<second> & line"}})
	rep.Add(conformance.Result{ID: "timer/context-expires", Section: "§3.1.2, §3.1.5", Title: "the timer expires",
		Status: conformance.Skip, Message: "needs the server's shortened message sequence timer (Target.ServerTimer)"})
	rep.Add(conformance.Result{ID: "add/other", Section: "§3.1.4.4", Title: "another add check", Status: conformance.Pass})
	return rep
}

func TestWriteJUnit(t *testing.T) {
	var buf bytes.Buffer
	if err := conformance.WriteJUnit(&buf, sampleReport()); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), "<?xml") {
		t.Errorf("no XML header:\n%s", buf.String())
	}
	var suite struct {
		XMLName  xml.Name `xml:"testsuite"`
		Name     string   `xml:"name,attr"`
		Tests    int      `xml:"tests,attr"`
		Failures int      `xml:"failures,attr"`
		Skipped  int      `xml:"skipped,attr"`
		Time     string   `xml:"time,attr"`
		Props    []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"properties>property"`
		Cases []struct {
			Name      string `xml:"name,attr"`
			Classname string `xml:"classname,attr"`
			Failure   *struct {
				Message string `xml:"message,attr"`
				Text    string `xml:",chardata"`
			} `xml:"failure"`
			Skipped *struct {
				Message string `xml:"message,attr"`
			} `xml:"skipped"`
			SystemOut string `xml:"system-out"`
		} `xml:"testcase"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &suite); err != nil {
		t.Fatalf("parse back: %v\n%s", err, buf.String())
	}
	if suite.Tests != 4 || suite.Failures != 1 || suite.Skipped != 1 || suite.Time != "1.500" || len(suite.Cases) != 4 {
		t.Fatalf("suite = %+v", suite)
	}
	if len(suite.Props) != 1 || suite.Props[0].Value != "ncacn_np:127.0.0.1[FssagentRpc]" {
		t.Errorf("properties = %+v", suite.Props)
	}
	c := suite.Cases[1]
	if c.Name != "add/unknown-set" || c.Classname != "§3.1.4.4" || c.Failure == nil || c.Skipped != nil {
		t.Fatalf("failed case = %+v", c)
	}
	if want := "Add(existing share) to an unknown set: expected FSRVP_E_SHADOWCOPYSET_ID_MISMATCH (0x80042501), observed E_INVALIDARG (0x80070057)"; c.Failure.Message != want {
		t.Errorf("failure message = %q, want %q", c.Failure.Message, want)
	}
	if c.SystemOut != "a log line\n<second> & line" {
		t.Errorf("system-out = %q", c.SystemOut)
	}
	if s := suite.Cases[2]; s.Skipped == nil || !strings.Contains(s.Skipped.Message, "timer") || s.Failure != nil || s.Classname != "§3.1.2, §3.1.5" {
		t.Errorf("skipped case = %+v", s)
	}
	if p := suite.Cases[0]; p.Failure != nil || p.Skipped != nil || p.Name != "version/supported" {
		t.Errorf("passed case = %+v", p)
	}
}

func TestWriteMarkdown(t *testing.T) {
	var buf bytes.Buffer
	rep := sampleReport()
	if err := conformance.WriteMarkdown(&buf, rep); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	for _, want := range []string{
		"**FAIL**: 2 passed, 1 failed, 1 skipped against ncacn_np:127.0.0.1[FssagentRpc] in 1.5s",
		"## §3.1.4.1\n", "## §3.1.4.4\n\n1 passed, 1 failed, 0 skipped", "## §3.1.2, §3.1.5\n",
		"| `timer/context-expires` | SKIP |", "skipped: needs the server's shortened",
		`Add to an unknown set \| is rejected`, // pipes escaped in tables
		"## Failures", "### `add/unknown-set` (§3.1.4.4)",
		"- Expected: `FSRVP_E_SHADOWCOPYSET_ID_MISMATCH (0x80042501)`", "- Observed: `E_INVALIDARG (0x80070057)`",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	// Sections in order of first appearance, each once; both add checks in one.
	i1, i2, i3 := strings.Index(md, "## §3.1.4.1"), strings.Index(md, "## §3.1.4.4"), strings.Index(md, "## §3.1.2,")
	if !(i1 < i2 && i2 < i3) || strings.Count(md, "## §3.1.4.4\n") != 1 {
		t.Errorf("sections out of order or repeated:\n%s", md)
	}
	if sec := md[i2:i3]; !strings.Contains(sec, "`add/other`") || !strings.Contains(sec, "`add/unknown-set`") {
		t.Errorf("add section lacks its checks:\n%s", sec)
	}

	buf.Reset()
	ok := conformance.Report{Target: "x", Duration: time.Second}
	ok.Add(conformance.Result{ID: "a/b", Section: "§1", Status: conformance.Pass})
	conformance.WriteMarkdown(&buf, ok)
	if md := buf.String(); !strings.Contains(md, "**PASS**: 1 passed, 0 failed, 0 skipped against x in 1s") || strings.Contains(md, "## Failures") {
		t.Errorf("all-pass report:\n%s", md)
	}
}

func TestReportMerge(t *testing.T) {
	a := sampleReport()
	var b conformance.Report
	b.Add(conformance.Result{ID: "smbtorture/bad_id", Section: "smbtorture rpc.fsrvp", Status: conformance.Fail})
	b.Duration = time.Second
	a.Merge(b)
	if a.Passed != 2 || a.Failed != 2 || a.Skipped != 1 || len(a.Results) != 5 || a.Duration != 2500*time.Millisecond {
		t.Errorf("merged = %s, %d results, %v", a.Summary(), len(a.Results), a.Duration)
	}
}

func TestParseNPTarget(t *testing.T) {
	for _, tc := range []struct{ in, host, pipe string }{
		{"ncacn_np:127.0.0.1[FssagentRpc]", "127.0.0.1", "FssagentRpc"},
		{"ncacn_np:srv", "srv", "FssagentRpc"},
		{`ncacn_np:srv[\pipe\FssagentRpc]`, "srv", "FssagentRpc"},
		{"ncacn_np:[::1][FssagentRpc]", "::1", "FssagentRpc"},
	} {
		host, pipe, ok, err := conformance.ParseNPTarget(tc.in)
		if !ok || err != nil || host != tc.host || pipe != tc.pipe {
			t.Errorf("ParseNPTarget(%q) = %q, %q, %v, %v", tc.in, host, pipe, ok, err)
		}
	}
	if _, _, ok, _ := conformance.ParseNPTarget("127.0.0.1:1"); ok {
		t.Error("host:port taken for ncacn_np")
	}
	for _, bad := range []string{"ncacn_np:", "ncacn_np:[FssagentRpc]", "ncacn_np:a b[x]", "ncacn_np:h[p,sign]"} {
		if _, _, ok, err := conformance.ParseNPTarget(bad); !ok || err == nil {
			t.Errorf("ParseNPTarget(%q): ok %v, err %v; want an error", bad, ok, err)
		}
	}
}

func TestTestbedTarget(t *testing.T) {
	env := map[string]string{"ADDR": "127.0.0.1", "PORT": "4455", "USER": "root", "PASSWORD": "pw",
		"SHARES": "share1,share2,fsrvp_share", "SEQ_TIMEOUT": "1s", "HIDDEN_SHARE": "hidden$"}
	tg, err := conformance.TestbedTarget(env, conformance.NPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if tg.Dial == nil || tg.SecondDial == nil || tg.Files == nil || tg.NonAdminDial != nil || tg.HiddenShare != "hidden$" ||
		!strings.HasPrefix(tg.Canary, "127.") || strings.HasPrefix(tg.Canary, "127.0.0.") ||
		tg.ServerTimer != time.Second || tg.ShareHost != "127.0.0.1" ||
		strings.Join(tg.Shares, ",") != "share1,share2,fsrvp_share" || !strings.Contains(tg.Name, "ncacn_np:127.0.0.1[FssagentRpc]") {
		t.Errorf("target = %+v", tg)
	}
	env["NONADMIN_USER"], env["NONADMIN_PASSWORD"] = "u", "p"
	if tg, err := conformance.TestbedTarget(env, conformance.NPConfig{}); err != nil || tg.NonAdminDial == nil {
		t.Errorf("NONADMIN_USER: NonAdminDial %v, %v", tg.NonAdminDial != nil, err)
	}
	env["ADDR"] = "192.0.2.1"
	if tg, err := conformance.TestbedTarget(env, conformance.NPConfig{}); err != nil || tg.SecondDial != nil || tg.Canary != "" {
		t.Errorf("a non-loopback target got a second client or a canary: %+v, %v", tg, err)
	}
	env["ADDR"] = "127.0.0.1"
	delete(env, "SEQ_TIMEOUT")
	if tg, err := conformance.TestbedTarget(env, conformance.NPConfig{}); err != nil || tg.ServerTimer != 0 {
		t.Errorf("no SEQ_TIMEOUT: %v, %v", tg.ServerTimer, err)
	}
	env["PORT"] = "x"
	if _, err := conformance.TestbedTarget(env, conformance.NPConfig{}); err == nil {
		t.Error("bad PORT accepted")
	}
}
