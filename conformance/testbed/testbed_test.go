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
