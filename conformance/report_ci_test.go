package conformance_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fsrvpd/fsrvpd/conformance"
	"github.com/fsrvpd/fsrvpd/conformance/testbed"
	"github.com/fsrvpd/fsrvpd/conformance/testbed/bedtest"
)

// TestReportThroughSmbd runs every check over ncacn_np through a real smbd
// (the testbed, once with the dir and once with the btrfs backend: spec
// mode, 2 s message sequence timer (1 s is tight for a loaded machine
// under the race detector), the registry mirror so that srvsvc
// sees the exposed shares, a non-administrator account), writes the
// Markdown report and prints its summary line, so that CI logs show how
// fsrvpd fares behind smbd. No check may fail.
func TestReportThroughSmbd(t *testing.T) {
	bedtest.Require(t, "rpcclient")
	for _, backend := range []string{"dir", "btrfs"} {
		t.Run(backend, func(t *testing.T) { reportThroughSmbd(t, backend) })
	}
}

func reportThroughSmbd(t *testing.T, backend string) {
	bed := bedtest.Up(t, testbed.Options{Backend: backend, SeqTimeout: 2 * time.Second, RegistryMirror: true, NonAdmin: true})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	tg, err := conformance.TestbedTarget(bed.Env(), conformance.NPConfig{Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	rep := conformance.Run(ctx, tg, nil)
	md := filepath.Join(t.TempDir(), "conformance.md")
	f, err := os.Create(md)
	if err != nil {
		t.Fatal(err)
	}
	if err := conformance.WriteMarkdown(f, rep); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	line := "fsrvpd conformance through smbd (ncacn_np, " + backend + "): " + rep.SummaryLine()
	t.Log(line)
	ciSummary(line)
	for _, r := range rep.Results {
		switch r.Status {
		case conformance.Fail:
			t.Errorf("%s (%s): %s: expected %s, observed %s", r.ID, r.Section, r.Message, r.Expected, r.Observed)
		case conformance.Skip:
			t.Logf("skip %s: %s", r.ID, r.Message)
		}
	}
	if t.Failed() {
		data, _ := os.ReadFile(md)
		t.Logf("report:\n%s", data)
	}
}
