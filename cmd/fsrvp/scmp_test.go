package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/client"
	scmpc "github.com/fsrvpd/fsrvpd/client/scmp"
	"github.com/fsrvpd/fsrvpd/server"
	"github.com/fsrvpd/fsrvpd/server/config"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "512": 512, "1K": 1024, "32m": 32 << 20, "2G": 2 << 30, "1T": 1 << 40, "-1": -1, "unbounded": -1} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-2", "1KB", "K", "99999999999T"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}

// TestSCMPCommands runs fsrvp create and fsrvp scmp against an in-process
// fsrvpd with SCMP (unauthenticated, loopback).
func TestSCMPCommands(t *testing.T) {
	dir := t.TempDir()
	c := config.Demo(dir)
	c.Server.Listen = []string{"127.0.0.1:0"}
	c.Server.EndpointMapper = "127.0.0.1:0"
	c.Server.EndpointMapperOptional = false
	c.SCMP = config.SCMP{Enabled: true, MaxShadowCopies: 64, MinStorageBytes: -1, MinAuthLevel: "privacy", AllowUnauthenticated: true}
	for _, s := range c.Shares {
		if err := os.MkdirAll(s.Path, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	l := logrus.New()
	l.SetOutput(io.Discard)
	d, err := server.Start(context.Background(), c, logrus.NewEntry(l))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx, 5*time.Second); close(done) }()
	defer func() { cancel(); <-done }()
	addrs := d.Addrs()
	fsrvpAddr := addrs[0].String()
	_, port, _ := net.SplitHostPort(addrs[len(addrs)-1].String())

	cli := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, func(string) string { return "" }, strings.NewReader(""), &out, &errb, client.Dial)
		return code, out.String(), errb.String()
	}
	code, doc, stderr := cli("-server", fsrvpAddr, "-json", "create", "-context", "nas_rollback", "share1")
	if code != 0 {
		t.Fatalf("create: %d %s", code, stderr)
	}
	var set setDocument
	if err := json.Unmarshal([]byte(doc), &set); err != nil {
		t.Fatal(err)
	}
	scmp := func(args ...string) (int, string, string) {
		return cli(append([]string{"-server", "127.0.0.1", "-json", "scmp", "-port", port}, args...)...)
	}
	code, out, stderr := scmp("volumes")
	var vols []scmpc.Volume
	if code != 0 || json.Unmarshal([]byte(out), &vols) != nil || len(vols) != 2 || vols[0].Display != filepath.Join(dir, "volumes", "vol1") {
		t.Fatalf("scmp volumes: %d %s %s", code, out, stderr)
	}
	code, out, stderr = scmp("snapshots", "share1")
	var scs []scmpc.ShadowCopy
	if code != 0 || json.Unmarshal([]byte(out), &scs) != nil || len(scs) != 1 || scs[0].ID != set.Mappings[0].ShadowCopyID || scs[0].SetID != set.ShadowCopySetID {
		t.Fatalf("scmp snapshots: %d %s %s", code, out, stderr)
	}
	if code, _, stderr := scmp("add", vols[0].Name, "share1", "1G"); code != 0 {
		t.Fatalf("scmp add: %d %s", code, stderr)
	}
	if code, _, stderr := scmp("add", vols[0].Name, "share1", "1G"); code != 1 || !strings.Contains(stderr, "VSS_E_OBJECT_ALREADY_EXISTS (0x8004230D)") {
		t.Errorf("second scmp add: %d %q", code, stderr)
	}
	if code, _, stderr := scmp("resize", "share1", "share1", "2G"); code != 0 {
		t.Fatalf("scmp resize: %d %s", code, stderr)
	}
	code, out, stderr = scmp("diff-areas", "-on", "share1")
	var das []scmpc.DiffArea
	if code != 0 || json.Unmarshal([]byte(out), &das) != nil || len(das) != 1 || das[0].Maximum != 2<<30 {
		t.Fatalf("scmp diff-areas: %d %s %s", code, out, stderr)
	}
	if code, _, stderr := scmp("resize", "share1", "share1", "0"); code != 1 || !strings.Contains(stderr, "VSS_E_VOLUME_IN_USE") {
		t.Errorf("removing an association in use: %d %q", code, stderr)
	}
	if code, _, _ := scmp("frobnicate"); code != 2 {
		t.Errorf("unknown subcommand: exit %d", code)
	}
	if code, _, _ := scmp("add", "share1", "share1", "lots"); code != 2 {
		t.Errorf("bad size: exit %d", code)
	}
	// Text output.
	code, out, _ = cli("-server", "127.0.0.1", "scmp", "-port", port, "snapshots", "share1")
	if code != 0 || !strings.Contains(out, set.Mappings[0].ShadowCopyID.String()) {
		t.Errorf("scmp snapshots (text): %d %s", code, out)
	}
}
