package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// Samba's rpcclient is an independent FSRVP client. Over ncacn_ip_tcp it
// always asks the endpoint mapper on port 135 for the port, so this test
// needs root (to bind 135) and the smbclient package.
func requireRPCClient(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("rpcclient")
	switch {
	case err != nil:
		skipOrFail(t, "rpcclient not installed (apt-get install smbclient)")
	case os.Geteuid() != 0:
		skipOrFail(t, "binding the endpoint mapper on port 135 needs root")
	}
	return path
}

// skipOrFail skips with a reason, or fails when FSRVPD_TEST_STRICT=1 (CI).
func skipOrFail(t *testing.T, reason string) {
	t.Helper()
	if os.Getenv("FSRVPD_TEST_STRICT") == "1" {
		t.Fatalf("required by FSRVPD_TEST_STRICT: %s", reason)
	}
	t.Skip(reason)
}

type rpcc struct {
	t    *testing.T
	path string
}

// run runs rpcclient commands and returns their output. Its exit status
// is not reliable (some fss_* commands exit 0 on a failed call, others 1),
// so callers check the text; ok says whether it exited 0.
func (r rpcc) run(cmds string) (out string) {
	r.t.Helper()
	cmd := exec.Command(r.path, "-U%", "ncacn_ip_tcp:127.0.0.1", "-c", cmds)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	b, _ := cmd.CombinedOutput()
	return string(b)
}

func mustContain(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Fatalf("output lacks %q:\n%s", w, out)
		}
	}
}

var (
	guid     = `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`
	exposeRe = regexp.MustCompile(`(` + guid + `)\((` + guid + `)\): share \\\\TESTBED\\(share1@\{` + guid + `\})`)
)

func TestRPCClient(t *testing.T) {
	r := rpcc{t, requireRPCClient(t)}
	b := newTestbed(t, "")
	b.epm = "127.0.0.1:135"
	b.start()

	mustContain(t, r.run("fss_get_sup_version"), "supports FSRVP versions from 1 to 1")
	mustContain(t, r.run("fss_is_path_sup share1"), `share1\ supports shadow copy requests`)
	if out := r.run("fss_is_path_sup nosuch"); !strings.Contains(out, "0x80042308") {
		t.Fatalf("missing share not reported as FSRVP_E_OBJECT_NOT_FOUND:\n%s", out)
	}
	mustContain(t, r.run("fss_has_shadow_copy share1"), "does not have an associated shadow-copy")

	out := r.run("fss_create_expose backup ro share1")
	mustContain(t, out, "shadow-copy set created", "prepare completed", "commit completed", "exposed as a snapshot of")
	m := exposeRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no exposed share in:\n%s", out)
	}
	set, sc, exposed := m[1], m[2], m[3]
	if len(b.snapshots()) != 1 || !strings.Contains(b.registry(), exposed) {
		t.Fatalf("snapshots %v, registry %s", b.snapshots(), b.registry())
	}

	mustContain(t, r.run("fss_has_shadow_copy share1"), "share1")
	mustContain(t, r.run("fss_get_mapping share1 "+set+" "+sc), exposed, `is a shadow-copy of`)
	mustContain(t, r.run("fss_recovery_complete "+set), "marked recovery complete")
	if out := r.run("fss_recovery_complete " + set); !strings.Contains(out, "0x80042301") {
		t.Fatalf("second RecoveryComplete not refused with FSRVP_E_BAD_STATE:\n%s", out)
	}
	mustContain(t, r.run("fss_delete share1 "+set+" "+sc), "shadow-copy deleted")
	if len(b.snapshots()) != 0 || hasExposedShares(b.registry()) {
		t.Fatalf("leak after fss_delete: %v %s", b.snapshots(), b.registry())
	}
	if out := r.run("fss_delete share1 " + set + " " + sc); !strings.Contains(out, "0x80042308") {
		t.Fatalf("second delete not refused with FSRVP_E_OBJECT_NOT_FOUND:\n%s", out)
	}
}
