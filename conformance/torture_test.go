package conformance_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fsrvpd/fsrvpd/conformance"
	"github.com/fsrvpd/fsrvpd/conformance/testbed"
)

const tortureOutput = `smbtorture 4.17.12-Debian
Using seed 1
time: 2025-01-01 00:00:00
test: share_sd
success: fsrvp.share_sd
test: bad_id
failure: fsrvp.bad_id [
../../source4/torture/rpc/fsrvp.c:1234: DeleteShareMapping: wrong error
]
test: seq_timeout
skip: fsrvp.seq_timeout [ no timeout ]
test: get_version
error: fsrvp.get_version [ connection lost ]
test: extra
success: fsrvp.extra
`

func TestFoldTorture(t *testing.T) {
	rep := conformance.FoldTorture(testbed.ParseTorture(tortureOutput), []string{"share_sd", "bad_id", "seq_timeout", "get_version", "set_ctx"})
	byID := map[string]conformance.Result{}
	var ids []string
	for _, r := range rep.Results {
		byID[r.ID] = r
		ids = append(ids, r.ID)
		if r.Section != conformance.TortureSection {
			t.Errorf("%s: section %q", r.ID, r.Section)
		}
	}
	want := []string{"smbtorture/share_sd", "smbtorture/bad_id", "smbtorture/seq_timeout", "smbtorture/get_version", "smbtorture/set_ctx", "smbtorture/extra"}
	if !slices.Equal(ids, want) {
		t.Fatalf("ids = %q, want %q", ids, want)
	}
	if rep.Passed != 2 || rep.Failed != 3 || rep.Skipped != 1 {
		t.Errorf("summary %s", rep.Summary())
	}
	if r := byID["smbtorture/bad_id"]; r.Status != conformance.Fail || r.Expected != "success" || !strings.Contains(r.Observed, "failure: ../../source4/torture/rpc/fsrvp.c:1234") {
		t.Errorf("bad_id = %+v", r)
	}
	if r := byID["smbtorture/get_version"]; r.Status != conformance.Fail || r.Observed != "error: connection lost" {
		t.Errorf("get_version = %+v", r)
	}
	if r := byID["smbtorture/seq_timeout"]; r.Status != conformance.Skip || !strings.Contains(r.Message, "no timeout") {
		t.Errorf("seq_timeout = %+v", r)
	}
	if r := byID["smbtorture/set_ctx"]; r.Status != conformance.Fail || r.Observed != "no result" {
		t.Errorf("set_ctx = %+v", r)
	}
}

func TestTortureArgs(t *testing.T) {
	cfg, err := conformance.TortureTarget(map[string]string{"ADDR": "127.0.0.1", "PORT": "4455", "USER": "root", "PASSWORD": "pw",
		"CLIENT_CONF": "/tb/client.conf", "SEQ_TIMEOUT": "1500ms"})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(cfg.Args(), " ")
	want := "--configfile=/tb/client.conf --target=samba3 ncacn_np:127.0.0.1 -Uroot%pw --option=smb ports=4455 --option=fss:sequence timeout=2 rpc.fsrvp"
	if got != want {
		t.Errorf("args\n got %s\nwant %s", got, want)
	}
}

// TestRunSmbtortureFake runs a stand-in smbtorture script.
func TestRunSmbtortureFake(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "smbtorture")
	script := "#!/bin/sh\necho \"$@\" > " + filepath.Join(dir, "args") + "\ncat <<'EOF'\n" + tortureOutput + "EOF\nexit 1\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	rep, out, err := conformance.RunSmbtorture(context.Background(), conformance.TortureConfig{Host: "h", Port: 1, User: "u", Password: "p", Binary: bin,
		SeqTimeout: time.Second})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(rep.Results) != len(conformance.TortureTests)+1 || rep.Target != "smbtorture ncacn_np:h (SMB port 1)" {
		t.Errorf("report: %d results, target %q", len(rep.Results), rep.Target)
	}
	args, _ := os.ReadFile(filepath.Join(dir, "args"))
	if !strings.Contains(string(args), "--option=fss:sequence timeout=1") {
		t.Errorf("args %s", args)
	}
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho cannot connect\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, _, err := conformance.RunSmbtorture(context.Background(), conformance.TortureConfig{Host: "h", Binary: bin}); err == nil {
		t.Error("no results: no error")
	}
}
