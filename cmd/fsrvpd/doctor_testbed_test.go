package main

import (
	"bytes"
	"encoding/json"
	"testing"

	bed "github.com/fsrvpd/fsrvpd/conformance/testbed"
	"github.com/fsrvpd/fsrvpd/conformance/testbed/bedtest"
)

// TestDoctorTestbed runs `fsrvpd doctor` on the configuration of a running
// fsrvpd daemon behind a private smbd (the conformance test bed): the
// redirect arrangement is active, the real fsrvpd process owns the pipe
// socket, and every share is snapshottable; nothing fails.
func TestDoctorTestbed(t *testing.T) {
	tb := bedtest.Up(t, bed.Options{}, "rpcclient", "testparm")
	var out, errb bytes.Buffer
	code := runDoctor([]string{"-config", tb.FsrvpdConf, "-json"}, &out, &errb)
	var rep struct {
		Results []struct{ Check, Subject, Status, Message, Fix string }
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("doctor -json: %v\n%s%s", err, out.String(), errb.String())
	}
	got := map[string]string{}
	for _, r := range rep.Results {
		t.Logf("%-4s %s %s: %s", r.Status, r.Check, r.Subject, r.Message)
		if r.Status == "fail" {
			t.Errorf("fail: %s %s: %s (fix: %s)", r.Check, r.Subject, r.Message, r.Fix)
		}
		got[r.Check+" "+r.Subject] = r.Status
	}
	for _, k := range []string{"pipe-mode redirect", "pipe-socket " + tb.SocketDir + "/np/fssagentrpc", "share share1", "share share2", "backend dir"} {
		if got[k] != "ok" {
			t.Errorf("%s: %q, want ok", k, got[k])
		}
	}
	if code == 2 {
		t.Errorf("exit code 2 on a working test bed")
	}
}
