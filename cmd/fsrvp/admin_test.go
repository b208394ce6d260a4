package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fsrvpd/fsrvpd/client"
	"github.com/fsrvpd/fsrvpd/conformance/testbed"
	"github.com/fsrvpd/fsrvpd/conformance/testbed/bedtest"
	"github.com/fsrvpd/fsrvpd/server/fsrvp"
	"github.com/fsrvpd/fsrvpd/shares"
	"github.com/fsrvpd/fsrvpd/shares/samba"
	"github.com/fsrvpd/fsrvpd/storage"
	"github.com/fsrvpd/fsrvpd/storage/dir"
)

// TestAdminTestbed runs `fsrvp admin` against the fsrvpd of a Samba
// testbed (private smbd, fsrvpd behind \PIPE\FssagentRpc, dir backend):
// sets are listed, aborted and deleted; a snapshot and a share created
// behind the daemon's back (through the dir backend and a second Samba
// exposer on the same include file, which smbd then serves) are found by
// orphans and removed by gc.
func TestAdminTestbed(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := l.Addr().String()
	l.Close()
	tb, cli := adminBed(t, fmt.Sprintf("[metrics]\nlisten = %q", metricsAddr))
	ctx := t.Context()
	sets := func() fsrvp.Overview {
		t.Helper()
		code, out, stderr := cli("-json", "sets")
		var o fsrvp.Overview
		if code != 0 || json.Unmarshal([]byte(out), &o) != nil {
			t.Fatalf("admin -json sets: %d %s\n%s", code, stderr, out)
		}
		return o
	}

	c, err := client.DialNP(ctx, client.NPTarget{Host: "127.0.0.1", Port: tb.Port, User: testbed.User, Password: testbed.Password})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done, err := c.Create(ctx, client.CreateRequest{Context: client.CtxNASRollback, Shares: []string{"share1", "share2"}, RecoveryComplete: true})
	if err != nil {
		t.Fatal(err)
	}
	// One set left in its creation sequence (Added).
	if err := c.SetContext(ctx, client.CtxBackup); err != nil {
		t.Fatal(err)
	}
	open, err := c.StartShadowCopySet(ctx, uuid.New())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddToShadowCopySet(ctx, uuid.New(), open, c.ResolveShare("share1")); err != nil {
		t.Fatal(err)
	}

	o := sets()
	if len(o.Sets) != 2 || o.Sets[0].ID != done.ShadowCopySetID || o.Sets[1].ID != open ||
		o.Sets[0].Status != fsrvp.Recovered || o.Sets[1].Status != fsrvp.Added || !o.ContextSet {
		t.Fatalf("sets: %+v", o)
	}
	code, table, _ := cli("sets")
	if code != 0 || !strings.HasPrefix(table, "SET ") || !strings.Contains(table, done.ShadowCopySetID.String()+"  Recovered") ||
		!strings.Contains(table, "nas_rollback") || !strings.Contains(table, "share1,share2") || !strings.Contains(table, "Sequence in progress") {
		t.Errorf("sets table:\n%s", table)
	}
	if code, out, _ := cli("show", done.ShadowCopySetID.String()); code != 0 || !strings.Contains(out, "State:    Recovered") || strings.Count(out, "share:") != 2 {
		t.Errorf("show: %d\n%s", code, out)
	}
	// Refusals: exit status 1 with the daemon's reason.
	if code, _, stderr := cli("delete", open.String()); code != 1 || !strings.Contains(stderr, "creation sequence; abort it instead") {
		t.Errorf("delete of a set in creation: %d %q", code, stderr)
	}
	if code, _, stderr := cli("abort", done.ShadowCopySetID.String()); code != 1 || !strings.Contains(stderr, "delete it instead") {
		t.Errorf("abort of a finished set: %d %q", code, stderr)
	}
	if code, _, stderr := cli("abort", "nonsense"); code != 2 {
		t.Errorf("abort with a bad id: %d %q", code, stderr)
	}
	if code, out, stderr := cli("abort", open.String()); code != 0 || out != "" {
		t.Fatalf("abort: %d %q %q", code, out, stderr)
	}
	var exposed []string
	for _, sc := range o.Sets[0].Copies {
		for _, m := range sc.Mappings {
			exposed = append(exposed, m.Exposed)
		}
	}
	if len(exposed) != 2 || !served(ctx, tb, exposed[0]) || !served(ctx, tb, exposed[1]) {
		t.Fatalf("exposed shares before delete: %v", exposed)
	}
	if code, out, stderr := cli("-json", "delete", done.ShadowCopySetID.String()); code != 0 || !strings.Contains(out, done.ShadowCopySetID.String()) {
		t.Fatalf("delete: %d %q %q", code, out, stderr)
	}
	if o := sets(); len(o.Sets) != 0 || o.ContextSet {
		t.Fatalf("sets after abort and delete: %+v", o)
	}
	for _, n := range exposed {
		if served(ctx, tb, n) {
			t.Errorf("smbd still serves %s after delete", n)
		}
	}

	// Orphans behind the daemon's back.
	be, err := dir.New(dir.Config{Volumes: []string{filepath.Join(tb.Dir, "vol", "vol1"), filepath.Join(tb.Dir, "vol", "vol2"), filepath.Join(tb.Dir, "vol", "vol3")},
		SnapshotDir: filepath.Join(tb.StateDir, "snapshots")})
	if err != nil {
		t.Fatal(err)
	}
	vol, err := be.Volume(ctx, tb.Shares["share1"])
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()
	snap, err := be.Create(ctx, vol, id, storage.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(vol.Root, tb.Shares["share1"])
	other, err := samba.New(ctx, samba.Config{SMBConf: tb.SMBConf, IncludeFile: tb.Include})
	if err != nil {
		t.Fatal(err)
	}
	orphan := "share1@{" + id + "}"
	if err := other.Expose(ctx, shares.Share{Name: orphan, Base: "share1", Path: filepath.Join(snap.Path, rel), ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	if !served(ctx, tb, orphan) {
		t.Fatalf("smbd does not serve the injected share %s", orphan)
	}

	code, out, stderr := cli("orphans")
	if code != 0 || !strings.Contains(out, "share     "+orphan) || !strings.Contains(out, "snapshot  "+id) {
		t.Fatalf("orphans: %d %s\n%s", code, stderr, out)
	}
	if code, out, _ := cli("gc", "-dry-run"); code != 0 || !strings.Contains(out, "would delete  share") {
		t.Fatalf("gc -dry-run: %d\n%s", code, out)
	}
	if _, err := be.Stat(ctx, id); err != nil {
		t.Fatalf("gc -dry-run deleted the snapshot: %v", err)
	}
	code, out, stderr = cli("gc", "-json")
	var gc struct {
		DryRun  bool          `json:"dry_run"`
		Orphans fsrvp.Orphans `json:"orphans"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &gc) != nil || gc.DryRun || len(gc.Orphans.Snapshots) != 1 || len(gc.Orphans.Shares) != 1 {
		t.Fatalf("gc: %d %s\n%s", code, stderr, out)
	}
	if code, out, _ := cli("orphans"); code != 0 || out != "no orphans\n" {
		t.Errorf("orphans after gc: %d %q", code, out)
	}
	if served(ctx, tb, orphan) {
		t.Errorf("smbd still serves %s after gc", orphan)
	}
	if _, err := be.Stat(ctx, id); err == nil {
		t.Error("the orphan snapshot survived gc")
	}
	if data, _ := os.ReadFile(tb.Include); strings.Contains(string(data), "["+orphan+"]") {
		t.Errorf("include file still names the orphan:\n%s", data)
	}

	// Metrics of the daemon behind smbd.
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range []string{
		`fsrvpd_fsrvp_calls_total{op="CommitShadowCopySet",opnum="4",result="S_OK"} 1`,
		`fsrvpd_fsrvp_calls_total{op="AddToShadowCopySet",opnum="3",result="S_OK"} 3`,
		`fsrvpd_sets{state="Recovered"} 0`,
		`fsrvpd_orphans{kind="share"} 0`,
		`fsrvpd_admin_requests_total{cmd="gc",result="ok"} 2`,
	} {
		if !strings.Contains(string(body), "\n"+line+"\n") {
			t.Errorf("metrics lack %q", line)
		}
	}
	// Audit lines of calls through the pipe carry the SMB session's user
	// and SIDs.
	logData, _ := os.ReadFile(tb.Env()["FSRVPD_LOG"])
	var commit string
	for _, l := range strings.Split(string(logData), "\n") {
		if strings.Contains(l, "audit=true") && strings.Contains(l, "op=CommitShadowCopySet") {
			commit = l
		}
	}
	t.Logf("audit: %s", commit)
	if !strings.Contains(commit, `caller="`) || !strings.Contains(commit, "root") || !strings.Contains(commit, "sids=\"[S-1-") ||
		!strings.Contains(commit, "set_id="+done.ShadowCopySetID.String()) || !strings.Contains(commit, "result=S_OK") {
		t.Errorf("audit line of the commit: %q", commit)
	}

	// prune: usage checked locally; the testbed has no policy.
	if code, _, stderr := cli("prune", "-at", "2030-01-01"); code != 2 || !strings.Contains(stderr, "-at needs -dry-run") {
		t.Errorf("prune -at without -dry-run: %d %q", code, stderr)
	}
	if code, _, stderr := cli("prune", "-dry-run", "-at", "soon"); code != 2 {
		t.Errorf("prune -at soon: %d %q", code, stderr)
	}
	if code, _, stderr := cli("prune", "-dry-run", "-at", "2030-01-01"); code != 1 || !strings.Contains(stderr, "no retention policy") {
		t.Errorf("prune without policies: %d %q", code, stderr)
	}

	// No socket: a transport error, exit status 3.
	var errb bytes.Buffer
	if code := run(ctx, []string{"admin", "-socket", filepath.Join(t.TempDir(), "none.sock"), "sets"}, os.Getenv, strings.NewReader(""), &bytes.Buffer{}, &errb, client.Dial); code != 3 {
		t.Errorf("missing socket: exit %d (%s), want 3", code, errb.String())
	}
}

// served reports whether smbd serves share (a tree connect succeeds).
func served(ctx context.Context, tb *testbed.Testbed, share string) bool {
	_, err := tb.SMBClient(ctx, share, "ls")
	return err == nil
}

// adminBed starts a Samba testbed (private smbd, fsrvpd behind
// \PIPE\FssagentRpc, dir backend) with extra fsrvpd.toml lines, and returns
// it with a runner of `fsrvp admin -socket <its socket> args...` that
// returns the exit status, stdout and stderr.
func adminBed(t *testing.T, extra string) (*testbed.Testbed, func(args ...string) (int, string, string)) {
	t.Helper()
	tb := bedtest.Up(t, testbed.Options{FsrvpdExtra: extra}, "smbclient")
	sock := tb.Env()["ADMIN_SOCKET"]
	if sock == "" {
		t.Fatal("testbed has no ADMIN_SOCKET")
	}
	return tb, func(args ...string) (int, string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := run(t.Context(), append([]string{"admin", "-socket", sock}, args...), os.Getenv, strings.NewReader(""), &out, &errb, client.Dial)
		return code, out.String(), errb.String()
	}
}

// TestAdminConnectedSets: through smbd, a set whose exposed share a client
// has connected is kept by retention and by delete, listed by show with
// the client, pruned once the client is gone, and deleted with -force
// (which disconnects the client).
func TestAdminConnectedSets(t *testing.T) {
	tb, cli := adminBed(t, "[retention]\ninterval = \"1h\"\n[[retention.policy]]\nshare = \"share1\"\nkeep_daily = 1\n")
	ctx := t.Context()
	c, err := client.DialNP(ctx, client.NPTarget{Host: "127.0.0.1", Port: tb.Port, User: testbed.User, Password: testbed.Password})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	first, err := c.Create(ctx, client.CreateRequest{Context: client.CtxNASRollback, Shares: []string{"share1"}, RecoveryComplete: true})
	if err != nil {
		t.Fatal(err)
	}
	// The second of the day, which keep_daily = 1 prunes; connected before
	// it is finished, so that no run of the daemon's own loop sees it
	// unconnected.
	second, err := c.Create(ctx, client.CreateRequest{Context: client.CtxNASRollback, Shares: []string{"share1"}})
	if err != nil {
		t.Fatal(err)
	}
	id := second.ShadowCopySetID.String()
	// ExposedName is \\host\name@{GUID}.
	shareOf := func(unc string) string { return unc[strings.LastIndexByte(unc, '\\')+1:] }
	exposed := shareOf(second.Mappings[0].ExposedName)
	fs := bedtest.Mount(t, tb, exposed)
	if _, err := fs.ReadDir("."); err != nil {
		t.Fatal(err)
	}
	if err := c.RecoveryCompleteShadowCopySet(ctx, second.ShadowCopySetID); err != nil {
		t.Fatal(err)
	}

	code, out, stderr := cli("prune")
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "kept: SMB clients connected") {
		t.Fatalf("prune with a client connected: %d %s\n%s", code, stderr, out)
	}
	code, out, stderr = cli("-json", "prune")
	var r struct {
		Deleted   []string          `json:"deleted"`
		Connected map[string]string `json:"connected"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || len(r.Deleted) != 0 || !strings.Contains(r.Connected[id], exposed+" from 127.0.0.1") {
		t.Fatalf("prune -json with a client connected: %d %s\n%s", code, stderr, out)
	}
	if code, _, stderr := cli("delete", id); code != 1 || !strings.Contains(stderr, "SMB clients are connected") || !strings.Contains(stderr, exposed+" from 127.0.0.1") {
		t.Fatalf("delete with a client connected: %d %q", code, stderr)
	}
	if code, out, _ := cli("show", id); code != 0 || !strings.Contains(out, "SMB clients connected:") || !strings.Contains(out, exposed) || !strings.Contains(out, "127.0.0.1") {
		t.Fatalf("show: %d\n%s", code, out)
	}
	if code, out, _ := cli("show", first.ShadowCopySetID.String()); code != 0 || strings.Contains(out, "SMB clients") {
		t.Fatalf("show of the unconnected set: %d\n%s", code, out)
	}
	if _, err := fs.ReadDir("."); err != nil {
		t.Fatalf("the refusals disturbed the client: %v", err)
	}

	// Gone: the next prune takes it.
	fs.Umount()
	r.Connected = nil
	if code, out, stderr := cli("-json", "prune"); code != 0 || json.Unmarshal([]byte(out), &r) != nil || len(r.Deleted) != 1 || r.Deleted[0] != id || len(r.Connected) != 0 {
		t.Fatalf("prune after the client left: %d %s\n%s", code, stderr, out)
	}

	// -force deletes under a connected client, which loses its tree.
	keep := first.ShadowCopySetID.String()
	fs = bedtest.Mount(t, tb, shareOf(first.Mappings[0].ExposedName))
	if code, _, stderr := cli("delete", keep); code != 1 || !strings.Contains(stderr, "SMB clients are connected") {
		t.Fatalf("delete of the kept set with a client connected: %d %q", code, stderr)
	}
	if code, out, stderr := cli("delete", "-force", keep); code != 0 || out != "" {
		t.Fatalf("delete -force: %d %q %q", code, out, stderr)
	}
	if code, _, stderr := cli("prune", "-force"); code != 2 {
		t.Errorf("prune -force: %d %q", code, stderr)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := fs.ReadDir("."); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the client kept its tree connect after delete -force")
		}
	}
	if served(ctx, tb, shareOf(first.Mappings[0].ExposedName)) || served(ctx, tb, exposed) {
		t.Error("smbd still serves a deleted set's share")
	}
}
