package testbed

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// skipUnlessSamba skips (or, with FSRVPD_TEST_STRICT=1, fails) unless the
// host can run the testbed.
func skipUnlessSamba(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the testbed starts smbd and fsrvpd")
	}
	why := ""
	if os.Geteuid() != 0 {
		why = "not root"
	} else if _, err := exec.LookPath("smbd"); err != nil {
		why = "smbd not installed (apt-get install samba smbclient samba-testsuite tdb-tools)"
	}
	if why == "" {
		return
	}
	if os.Getenv("FSRVPD_TEST_STRICT") == "1" {
		t.Fatalf("testbed: %s", why)
	}
	t.Skipf("testbed: %s", why)
}

func TestParseTorture(t *testing.T) {
	out := "test: fsrvp.share_sd\nsuccess: fsrvp.share_sd\ntest: fsrvp.enum_created\nfailure: fsrvp.enum_created [\n../../source4/torture/rpc/fsrvp.c:907: count 0\n]\nskip: fsrvp.x [ no way ]\n"
	res := ParseTorture(out)
	if len(res) != 3 || res[0] != (TortureResult{"fsrvp.share_sd", "success", ""}) ||
		res[1].Outcome != "failure" || !strings.Contains(res[1].Reason, "count 0") || res[2].Reason != "no way" {
		t.Fatalf("ParseTorture = %+v", res)
	}
}

func TestUpStatusDown(t *testing.T) {
	for _, backend := range []string{"dir", "btrfs"} {
		t.Run(backend, func(t *testing.T) { testUpStatusDown(t, backend) })
	}
}

func testUpStatusDown(t *testing.T, backend string) {
	skipUnlessSamba(t)
	if _, err := exec.LookPath("mkfs.btrfs"); err != nil && backend == "btrfs" && os.Getenv("FSRVPD_TEST_STRICT") != "1" {
		t.Skip("btrfs-progs not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "fsrvpd-tb")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	tb, err := Up(ctx, Options{Dir: dir, Backend: backend, SeqTimeout: time.Second, Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Down()
	env := tb.Env()
	for _, k := range []string{"ADDR", "PORT", "USER", "PASSWORD", "SHARES", "SMBCONF", "SEQ_TIMEOUT", "STATE_DIR", "FSRVPD_PID"} {
		if env[k] == "" {
			t.Errorf("Env()[%s] is empty", k)
		}
	}
	if env["SHARES"] != "share1,share2,fsrvp_share" || env["SEQ_TIMEOUT_SECONDS"] != "1" {
		t.Errorf("Env() = %v", env)
	}
	// Another process's view: Load from testbed.json.
	tb2, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := tb2.Status(ctx); err != nil {
		t.Fatal(err)
	}
	names, err := tb.ListShares(ctx)
	if err != nil || !strings.Contains(strings.Join(names, ","), "fsrvp_share") {
		t.Fatalf("smbclient -L = %v, %v", names, err)
	}
	// A snapshot through smbd, readable on its share.
	out, err := tb.Rpcclient(ctx, User, Password, "fss_create_expose backup ro share1")
	if err != nil || !strings.Contains(out, "exposed as a snapshot") {
		t.Fatalf("fss_create_expose: %v\n%s", err, out)
	}
	smbd, fsrvpd, loop := tb.SmbdPID, tb.FsrvpdPID, tb.Loop
	if err := tb2.Down(); err != nil {
		t.Fatal(err)
	}
	if tb.alive(smbd, tb.SMBConf) || tb.alive(fsrvpd, tb.FsrvpdConf) || len(pidsNaming(tb.SMBConf)) > 0 {
		t.Errorf("processes left after Down")
	}
	if loop != "" {
		if out, _ := exec.Command("losetup", "-a").Output(); strings.Contains(string(out), dir) {
			t.Errorf("loop device left: %s", out)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s left after Down: %v", dir, err)
	}
}

// TestUpAgentSamba: Samba's own rpcd_fsrvp behind the testbed's smbd
// answers fss_get_sup_version, and Down leaves no process, mount or loop
// device.
func TestUpAgentSamba(t *testing.T) {
	skipUnlessSamba(t)
	why := ""
	if _, err := os.Stat(SambaAgentBinary); err != nil {
		why = SambaAgentBinary + " not installed"
	} else if _, err := exec.LookPath("mkfs.btrfs"); err != nil {
		why = "btrfs-progs not installed"
	}
	if why != "" {
		if os.Getenv("FSRVPD_TEST_STRICT") == "1" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "fsrvpd-tbs")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	tb, err := Up(ctx, Options{Dir: dir, Agent: AgentSamba, SeqTimeout: 1500 * time.Millisecond, Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Down()
	env := tb.Env()
	if env["AGENT"] != "samba" || env["BACKEND"] != "btrfs" || env["FSRVPD_PID"] != "0" || env["SEQ_TIMEOUT_SECONDS"] != "2" {
		t.Errorf("Env() = %v", env)
	}
	if conf, _ := os.ReadFile(tb.SMBConf); !strings.Contains(string(conf), "fss: sequence timeout = 2") ||
		strings.Contains(string(conf), "external_rpc_pipe") {
		t.Errorf("smb.conf:\n%s", conf)
	}
	tb2, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := tb2.Status(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := tb.Rpcclient(ctx, User, Password, "fss_get_sup_version")
	if err != nil || !strings.Contains(out, "supports FSRVP versions") {
		t.Fatalf("fss_get_sup_version: %v\n%s", err, out)
	}
	if len(pidsNaming(tb.SMBConf)) < 3 { // smbd, samba-dcerpcd, rpcd_fsrvp at least
		t.Errorf("processes naming %s: %v", tb.SMBConf, pidsNaming(tb.SMBConf))
	}
	if err := tb2.Down(); err != nil {
		t.Fatal(err)
	}
	if left := pidsNaming(tb.SMBConf); len(left) > 0 {
		t.Errorf("processes left after Down: %v", left)
	}
	if isMounted(tb.Mount) {
		t.Errorf("%s still mounted", tb.Mount)
	}
	if out, _ := exec.Command("losetup", "-a").Output(); strings.Contains(string(out), dir) {
		t.Errorf("loop device left: %s", out)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s left after Down: %v", dir, err)
	}
}
