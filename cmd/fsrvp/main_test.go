package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/fsrvpd/fsrvpd/client"
	"github.com/fsrvpd/fsrvpd/client/clienttest"
	"github.com/google/uuid"
)

type result struct {
	code           int
	stdout, stderr string
	target         string
}

// runFake runs the CLI against f; env may set FSRVP_SERVER.
func runFake(t *testing.T, f *clienttest.Fake, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	var r result
	dial := func(ctx context.Context, target string, opts ...client.Option) (*client.Client, error) {
		r.target = target
		if f == nil {
			return nil, &client.TransportError{Op: "dial", Err: errors.New("connection refused")}
		}
		return client.New(clienttest.Loopback(f), opts...), nil
	}
	getenv := func(k string) string { return env[k] }
	r.code = run(context.Background(), args, getenv, strings.NewReader(stdin), &out, &errb, dial)
	r.stdout, r.stderr = out.String(), errb.String()
	return r
}

func TestExitCode(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{&client.HResultError{Op: "SetContext", Code: client.EBadState}, 1},
		{fmt.Errorf("x: %w", &client.HResultError{Op: "x", Code: 0x102}), 1},
		{usagef("bad"), 2},
		{&client.TransportError{Op: "dial", Err: errors.New("refused")}, 3},
		{fmt.Errorf("wrapped: %w", &client.TransportError{Op: "Commit", Err: context.DeadlineExceeded}), 3},
		{errors.New("other"), 4},
		{client.ErrUnsupportedVersion, 4},
		{errors.Join(&client.HResultError{Op: "DeleteShareMapping", Code: client.EObjectNotFound}, errors.New("x")), 1},
	}
	for _, c := range cases {
		if got := exitCode(c.err); got != c.want {
			t.Errorf("exitCode(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	f := clienttest.NewFake("share1")
	for _, args := range [][]string{
		{},
		{"bogus"},
		{"-nosuchflag", "version"},
		{"version", "extra"},
		{"set-context"},
		{"set-context", "weird"},
		{"set-context", "backup", "wo"},
		{"add", "not-a-guid", "share1"},
		{"add", uuid.NewString()},
		{"prepare", uuid.NewString(), "-wait", "1s"}, // flags must come first
		{"commit", "-wait", "x", uuid.NewString()},
		{"get-mapping", uuid.NewString(), "nope", "share1"},
		{"create"},
		{"create", "-context", "bogus", "share1"},
		{"delete"},
		{"delete", uuid.NewString(), "no-equals-sign"},
		{"delete", "-from", "x.json", uuid.NewString(), uuid.NewString() + "=s"},
		{"-server", "ncacn_np:srv[pipe]", "version"},
		{"-server", "host:0", "version"},
		{"-timeout", "0s", "version"},
	} {
		r := runFake(t, f, nil, "", args...)
		if r.code != 2 || !strings.HasPrefix(r.stderr, "fsrvp: ") || !strings.Contains(r.stderr, "fsrvp -h") {
			t.Errorf("%q: code %d, stderr %q", args, r.code, r.stderr)
		}
		if r.target != "" {
			t.Errorf("%q: dialed despite a usage error", args)
		}
	}
	if len(f.Calls) != 0 {
		t.Errorf("usage errors reached the server: %v", f.Calls)
	}
}

func TestHelp(t *testing.T) {
	r := runFake(t, nil, nil, "", "-h")
	if r.code != 0 || !strings.Contains(r.stdout, "Exit status:") || !strings.Contains(r.stdout, "180-second trap") {
		t.Errorf("fsrvp -h: %d %q", r.code, r.stdout)
	}
	for _, c := range commands {
		if !strings.Contains(r.stdout, "  "+c.name+" ") {
			t.Errorf("help lacks %s", c.name)
		}
	}
	r = runFake(t, nil, nil, "", "create", "-h")
	if r.code != 0 || !strings.Contains(r.stdout, "-no-recovery-complete") {
		t.Errorf("create -h: %d %q", r.code, r.stdout)
	}
}

func TestServerFlagAndEnv(t *testing.T) {
	f := clienttest.NewFake("share1")
	if r := runFake(t, f, nil, "", "version"); r.target != "127.0.0.1" || r.stdout != "FSRVP versions 1 to 1\n" {
		t.Errorf("default server: %+v", r)
	}
	if r := runFake(t, f, map[string]string{"FSRVP_SERVER": "nas:1234"}, "", "version"); r.target != "nas:1234" {
		t.Errorf("FSRVP_SERVER: %+v", r)
	}
	r := runFake(t, f, map[string]string{"FSRVP_SERVER": "nas"}, "", "-server", "ncacn_ip_tcp:10.0.0.2[5000]", "is-path-supported", "share1")
	if r.target != "ncacn_ip_tcp:10.0.0.2[5000]" || r.stdout != `\\10.0.0.2\share1\: supported, owner FAKESRV`+"\n" {
		t.Errorf("-server beats env, share host from binding: %+v", r)
	}
}

func TestTransportAndFSRVPErrors(t *testing.T) {
	r := runFake(t, nil, nil, "", "version")
	if r.code != 3 || r.stderr != "fsrvp: dial: connection refused\n" {
		t.Errorf("dial failure: %+v", r)
	}
	f := clienttest.NewFake("share1")
	r = runFake(t, f, nil, "", "recovery-complete", uuid.NewString())
	if r.code != 1 || r.stderr != "fsrvp: RecoveryCompleteShadowCopySet: FSRVP_E_SHADOWCOPYSET_ID_MISMATCH (0x80042501)\n" || r.stdout != "" {
		t.Errorf("FSRVP error: %+v", r)
	}
	f.Fail["AddToShadowCopySet"] = client.EObjectAlreadyExists
	r = runFake(t, f, nil, "", "create", "share1")
	if r.code != 1 || r.stderr != "fsrvp: AddToShadowCopySet: FSRVP_E_OBJECT_ALREADY_EXISTS (0x8004230D)\n" {
		t.Errorf("create failure: %+v", r)
	}
	if f.CallCount("AbortShadowCopySet") != 1 || len(f.Sets()) != 0 {
		t.Error("create must abort the failed set")
	}
}

var guidRE = `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`

func TestStepByStep(t *testing.T) {
	f := clienttest.NewFake("share1")
	must := func(args ...string) string {
		t.Helper()
		r := runFake(t, f, nil, "", args...)
		if r.code != 0 {
			t.Fatalf("%q: %d %s", args, r.code, r.stderr)
		}
		return strings.TrimSpace(r.stdout)
	}
	if out := must("set-context", "file_share_backup", "rw"); out != "" {
		t.Errorf("set-context printed %q", out)
	}
	set := must("start")
	if !regexp.MustCompile("^" + guidRE + "$").MatchString(set) {
		t.Fatalf("start printed %q", set)
	}
	sc := must("add", set, "share1")
	must("prepare", "-wait", "10s", set)
	must("commit", set)
	must("expose", set)
	out := must("get-mapping", set, sc, "share1")
	if !strings.Contains(out, "shadow copy set "+set) || !strings.Contains(out, `\\127.0.0.1\share1\`) || !strings.Contains(out, `\\FAKESRV\share1@{`+sc+`}`) {
		t.Errorf("get-mapping:\n%s", out)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(must("-json", "get-mapping", set, sc, "share1")), &m); err != nil || m["shadow_copy_id"] != sc || m["share"] != `\\127.0.0.1\share1\` {
		t.Errorf("get-mapping -json: %v %v", m, err)
	}
	if out := must("is-path-shadow-copied", "share1"); out != `\\127.0.0.1\share1\: shadow copy present, compatibility 0x0` {
		t.Errorf("is-path-shadow-copied: %q", out)
	}
	must("recovery-complete", "{"+set+"}") // braces as Windows prints GUIDs
	must("delete-mapping", set, sc, `\\127.0.0.1\share1\`)
	if len(f.Sets()) != 0 {
		t.Errorf("sets left: %v", f.Sets())
	}
	if r := runFake(t, f, nil, "", "-json", "version"); r.stdout != "{\n  \"max_version\": 1,\n  \"min_version\": 1\n}\n" {
		t.Errorf("version -json: %q", r.stdout)
	}
}

func TestCreateJSONAndDeleteFrom(t *testing.T) {
	f := clienttest.NewFake("share1", "share2")
	r := runFake(t, f, nil, "", "-server", "10.0.0.5:4000", "-json", "create", "-context", "nas_rollback", "share1", `\\nas\share2\`)
	if r.code != 0 {
		t.Fatalf("create: %+v", r)
	}
	// The document shape is an interface: scripts and delete -from read it.
	var doc map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	keys := func(m map[string]any) string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		return strings.Join(ks, ",")
	}
	if got := keys(doc); got != "context,context_name,mappings,recovery_complete,server,shadow_copy_set_id" {
		t.Errorf("document keys %s", got)
	}
	if doc["server"] != "10.0.0.5:4000" || doc["context"] != float64(0x19) || doc["context_name"] != "nas_rollback" || doc["recovery_complete"] != true {
		t.Errorf("document %v", doc)
	}
	ms := doc["mappings"].([]any)
	m0 := ms[0].(map[string]any)
	if got := keys(m0); got != "creation_time,exposed_name,shadow_copy_id,shadow_copy_set_id,share" {
		t.Errorf("mapping keys %s", got)
	}
	if m0["share"] != `\\10.0.0.5\share1\` || ms[1].(map[string]any)["share"] != `\\nas\share2\` || m0["shadow_copy_set_id"] != doc["shadow_copy_set_id"] {
		t.Errorf("mappings %v", ms)
	}

	// delete -from a file, then from stdin (already gone: FSRVP error, exit 1).
	path := filepath.Join(t.TempDir(), "set.json")
	if err := os.WriteFile(path, []byte(r.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runFake(t, f, nil, "", "delete", "-from", path); r.code != 0 || r.stdout != "" {
		t.Fatalf("delete -from: %+v", r)
	}
	if len(f.Sets()) != 0 {
		t.Errorf("sets left: %v", f.Sets())
	}
	r2 := runFake(t, f, nil, r.stdout, "delete", "-from", "-")
	if r2.code != 1 || strings.Count(r2.stderr, "FSRVP_E_OBJECT_NOT_FOUND (0x80042308)") != 2 {
		t.Errorf("second delete: %+v", r2)
	}
	if r := runFake(t, f, nil, "{}", "delete", "-from", "-"); r.code != 4 {
		t.Errorf("empty document: %+v", r)
	}
	if r := runFake(t, f, nil, "", "delete", "-from", filepath.Join(t.TempDir(), "missing.json")); r.code != 4 {
		t.Errorf("missing file: %+v", r)
	}
}

func TestCreateHumanAndDeleteArgs(t *testing.T) {
	f := clienttest.NewFake("share1")
	r := runFake(t, f, nil, "", "create", "-no-recovery-complete", "-rw", "share1")
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	head := regexp.MustCompile(`^shadow copy set (` + guidRE + `) \(backup\+rw, exposed; run recovery-complete within 180 s\)$`).FindStringSubmatch(lines[0])
	if len(lines) != 3 || head == nil || !strings.HasPrefix(lines[1], "SHADOW COPY") {
		t.Fatalf("output:\n%s", r.stdout)
	}
	fields := strings.Fields(lines[2])
	if len(fields) != 4 || fields[1] != `\\127.0.0.1\share1\` {
		t.Fatalf("row %q", lines[2])
	}
	set, sc := head[1], fields[0]
	if st := f.Sets()[uuid.MustParse(set)]; st != "Exposed" {
		t.Errorf("status %s", st)
	}
	if r := runFake(t, f, nil, "", "delete", set, sc+"=share1"); r.code != 0 {
		t.Errorf("delete: %+v", r)
	}
	if len(f.Sets()) != 0 {
		t.Errorf("sets left: %v", f.Sets())
	}
}
