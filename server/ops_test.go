package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fsrvpd/fsrvpd/client"
	"github.com/fsrvpd/fsrvpd/server/admin"
	"github.com/fsrvpd/fsrvpd/server/config"
	"github.com/fsrvpd/fsrvpd/server/fsrvp"
	"github.com/fsrvpd/fsrvpd/shares"
	"github.com/fsrvpd/fsrvpd/shares/registry"
	"github.com/fsrvpd/fsrvpd/storage"
	"github.com/fsrvpd/fsrvpd/storage/dir"
)

// logBuffer collects the daemon's JSON log lines.
type logBuffer struct {
	mu    chan struct{}
	lines []string
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu <- struct{}{}
	b.lines = append(b.lines, strings.Split(strings.TrimSpace(string(p)), "\n")...)
	<-b.mu
	return len(p), nil
}

func (b *logBuffer) matching(subs ...string) []string {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	var out []string
	for _, l := range b.lines {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(l, s)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// startOpsDaemon runs an in-process daemon (demo config, dir backend) with
// the admin socket, metrics on a free loopback port and retention
// policies for share1 and share2.
func startOpsDaemon(t *testing.T, seqTimeout time.Duration) (*Daemon, config.Config, string, *logBuffer) {
	t.Helper()
	dir := t.TempDir()
	c := config.Demo(dir)
	c.Server.Listen = []string{"127.0.0.1:0"}
	c.Server.EndpointMapper = ""
	c.FSRVP.SequenceTimeout.Duration = seqTimeout
	c.Metrics.Listen = "127.0.0.1:0"
	c.Retention.Interval.Duration = time.Hour
	c.Retention.Policies = []config.RetentionPolicy{
		{Share: "share1", MinAge: config.Duration{Duration: time.Hour}},
		{Share: "share2", MinAge: config.Duration{Duration: time.Hour}},
	}
	makeShares(t, c, true)
	logs := &logBuffer{mu: make(chan struct{}, 1)}
	d := runDaemon(t, c, loggerTo(logs, true))
	return d, c, d.Addrs()[0].String(), logs
}

func adminCall(t *testing.T, d *Daemon, req admin.Request) (admin.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	return admin.Call(ctx, d.AdminSocket(), req)
}

func mustAdmin(t *testing.T, d *Daemon, req admin.Request) admin.Response {
	t.Helper()
	resp, err := adminCall(t, d, req)
	if err != nil {
		t.Fatalf("admin %+v: %v", req, err)
	}
	return resp
}

func adminCode(err error) string {
	var ae *admin.Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

func setIDs(o *fsrvp.Overview) []uuid.UUID {
	var ids []uuid.UUID
	for _, s := range o.Sets {
		ids = append(ids, s.ID)
	}
	return ids
}

// scrape fetches /metrics and returns its samples by "name{labels}".
func scrape(t *testing.T, d *Daemon) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + d.MetricsAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("content type %q", ct)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// TestAdminRetentionMetrics drives the daemon through FSRVP and the admin
// socket: list, abort and delete sets; find and collect a snapshot and a
// share injected behind its back; prune persistent sets on a simulated
// clock; then scrape the metrics and read the audit log.
func TestAdminRetentionMetrics(t *testing.T) {
	d, cfg, addr, logs := startOpsDaemon(t, 8*time.Second)
	ctx := t.Context()
	c, err := client.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	create := func(ctxv uint32, shares ...string) uuid.UUID {
		t.Helper()
		res, err := c.Create(ctx, client.CreateRequest{Context: ctxv, Shares: shares, RecoveryComplete: true})
		if err != nil {
			t.Fatal(err)
		}
		return res.ShadowCopySetID
	}
	a := create(client.CtxNASRollback, "share1")
	b := create(client.CtxNASRollback, "share1", "share2")
	backup := create(client.CtxBackup, "share2") // not persistent: no retention
	// A set left in its creation sequence.
	if err := c.SetContext(ctx, client.CtxNASRollback); err != nil {
		t.Fatal(err)
	}
	inCreation, err := c.StartShadowCopySet(ctx, uuid.New())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddToShadowCopySet(ctx, uuid.New(), inCreation, c.ResolveShare("share1")); err != nil {
		t.Fatal(err)
	}

	if fi, err := os.Stat(d.AdminSocket()); err != nil || fi.Mode().Perm() != 0o600 || d.AdminSocket() != filepath.Join(cfg.Server.StateDir, "admin.sock") {
		t.Fatalf("admin socket %s: %v %v, want mode 0600 in the state dir", d.AdminSocket(), fi.Mode(), err)
	}
	o := mustAdmin(t, d, admin.Request{Cmd: "sets"}).Overview
	if got, want := setIDs(o), []uuid.UUID{a, b, backup, inCreation}; !slices.Equal(got, want) {
		t.Fatalf("sets %v, want %v", got, want)
	}
	if s := o.Sets[3]; s.Status != fsrvp.Added || !s.InCreation || o.TimerDeadline.IsZero() || !o.ContextSet {
		t.Fatalf("set in creation: %+v, overview %+v", s, o)
	}
	if s := o.Sets[1]; s.Status != fsrvp.Recovered || s.InCreation || !slices.Equal(s.Shares(), []string{"share1", "share2"}) {
		t.Fatalf("set b: %+v", s)
	}
	if show := mustAdmin(t, d, admin.Request{Cmd: "show", ID: b.String()}).Set; show.ID != b || len(show.Copies) != 2 || show.Copies[0].SnapshotPath == "" {
		t.Fatalf("show b: %+v", show)
	}

	// delete refuses a set in use, abort a finished one; both are exact.
	if _, err := adminCall(t, d, admin.Request{Cmd: "delete", ID: inCreation.String()}); adminCode(err) != "in_use" {
		t.Fatalf("delete of a set in creation: %v", err)
	}
	if _, err := adminCall(t, d, admin.Request{Cmd: "abort", ID: a.String()}); adminCode(err) != "finished" {
		t.Fatalf("abort of a finished set: %v", err)
	}
	if _, err := adminCall(t, d, admin.Request{Cmd: "show", ID: uuid.NewString()}); adminCode(err) != "not_found" {
		t.Fatalf("show of an unknown set: %v", err)
	}
	if _, err := adminCall(t, d, admin.Request{Cmd: "abort", ID: "not-a-guid"}); adminCode(err) != "bad_request" {
		t.Fatalf("abort of a bad id: %v", err)
	}
	mustAdmin(t, d, admin.Request{Cmd: "abort", ID: inCreation.String()})
	mustAdmin(t, d, admin.Request{Cmd: "delete", ID: backup.String()})
	o = mustAdmin(t, d, admin.Request{Cmd: "sets"}).Overview
	if got, want := setIDs(o), []uuid.UUID{a, b}; !slices.Equal(got, want) || o.ContextSet {
		t.Fatalf("after abort and delete: sets %v (want %v), context set %v", got, want, o.ContextSet)
	}
	// The aborted set's client sees it gone through FSRVP too.
	if err := c.AbortShadowCopySet(ctx, inCreation); err == nil {
		t.Fatal("FSRVP abort of an admin-aborted set succeeded")
	}

	// Orphans made behind the daemon's back: a snapshot through the dir
	// backend, a share through the registry file.
	be, err := dir.New(dir.Config{Volumes: cfg.Storage.Dir.Volumes, SnapshotDir: cfg.SnapshotDir()})
	if err != nil {
		t.Fatal(err)
	}
	vol, err := be.Volume(ctx, cfg.Shares[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	orphanID := uuid.NewString()
	snap, err := be.Create(ctx, vol, orphanID, storage.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.Open(filepath.Join(cfg.Server.StateDir, "shares.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	orphanShare := "share1@{" + orphanID + "}"
	if err := reg.Expose(ctx, shares.Share{Name: orphanShare, Base: "share1", Path: snap.Path + "/share1", ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	wantOrphans := func(o *fsrvp.Orphans, snaps, shs []string) {
		t.Helper()
		var gs, gsh []string
		for _, s := range o.Snapshots {
			gs = append(gs, s.ID)
		}
		for _, s := range o.Shares {
			gsh = append(gsh, s.Name)
		}
		if !slices.Equal(gs, snaps) || !slices.Equal(gsh, shs) {
			t.Fatalf("orphans: snapshots %v shares %v, want %v %v", gs, gsh, snaps, shs)
		}
	}
	wantOrphans(mustAdmin(t, d, admin.Request{Cmd: "orphans"}).Orphans, []string{orphanID}, []string{orphanShare})
	wantOrphans(mustAdmin(t, d, admin.Request{Cmd: "gc", DryRun: true}).Orphans, []string{orphanID}, []string{orphanShare})
	if _, err := be.Stat(ctx, orphanID); err != nil {
		t.Fatalf("dry run deleted the snapshot: %v", err)
	}
	wantOrphans(mustAdmin(t, d, admin.Request{Cmd: "gc"}).Orphans, []string{orphanID}, []string{orphanShare})
	wantOrphans(mustAdmin(t, d, admin.Request{Cmd: "orphans"}).Orphans, nil, nil)
	if _, err := be.Stat(ctx, orphanID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("orphan snapshot still there: %v", err)
	}
	if data, _ := os.ReadFile(filepath.Join(cfg.Server.StateDir, "shares.json")); strings.Contains(string(data), orphanID) {
		t.Fatalf("orphan share still in the registry file:\n%s", data)
	}
	// The sets' own snapshots were not touched.
	for _, s := range mustAdmin(t, d, admin.Request{Cmd: "sets"}).Overview.Sets {
		for _, sc := range s.Copies {
			if _, err := os.Stat(filepath.Join(sc.SnapshotPath, "share1", "f")); err != nil && sc.VolumeRoot == vol.Root {
				t.Fatalf("set %s lost its snapshot: %v", s.ID, err)
			}
		}
	}

	// Retention on a simulated clock: one more persistent set, then "now"
	// is b's creation + min_age (1 h): a and b have aged out, e has not.
	e := create(client.CtxNASRollback, "share2")
	o = mustAdmin(t, d, admin.Request{Cmd: "sets"}).Overview
	if got, want := setIDs(o), []uuid.UUID{a, b, e}; !slices.Equal(got, want) {
		t.Fatalf("sets %v, want %v", got, want)
	}
	d.Retention().SetClock(func() time.Time { return o.Sets[1].Created.Add(time.Hour) })
	dry := mustAdmin(t, d, admin.Request{Cmd: "prune", DryRun: true}).Retention
	var plan []string
	for _, dec := range dry.Decisions {
		if dec.Prune {
			plan = append(plan, dec.ID)
		}
	}
	if want := []string{a.String(), b.String()}; !slices.Equal(plan, want) || len(dry.Deleted) != 0 {
		t.Fatalf("dry run plans %v (want %v), deleted %v", plan, want, dry.Deleted)
	}
	if got := setIDs(mustAdmin(t, d, admin.Request{Cmd: "sets"}).Overview); len(got) != 3 {
		t.Fatalf("dry run deleted sets: %v", got)
	}
	res := mustAdmin(t, d, admin.Request{Cmd: "prune"}).Retention
	if want := []string{a.String(), b.String()}; !slices.Equal(res.Deleted, want) {
		t.Fatalf("pruned %v, want %v", res.Deleted, want)
	}
	if got := setIDs(mustAdmin(t, d, admin.Request{Cmd: "sets"}).Overview); !slices.Equal(got, []uuid.UUID{e}) {
		t.Fatalf("after prune: %v", got)
	}
	wantOrphans(mustAdmin(t, d, admin.Request{Cmd: "orphans"}).Orphans, nil, nil)
	// A preview at a later date plans e's end, and deletes nothing.
	later := mustAdmin(t, d, admin.Request{Cmd: "prune", DryRun: true, At: o.Sets[2].Created.Add(2 * time.Hour)}).Retention
	if len(later.Decisions) != 1 || !later.Decisions[0].Prune || later.Decisions[0].ID != e.String() || len(later.Deleted) != 0 {
		t.Fatalf("preview: %+v", later)
	}
	if _, err := adminCall(t, d, admin.Request{Cmd: "prune", At: time.Now()}); err == nil {
		t.Fatal("prune at another date without dry run accepted")
	}

	// A sequence left alone: the timer (8 s) deletes it.
	if err := c.SetContext(ctx, client.CtxBackup); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StartShadowCopySet(ctx, uuid.New()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(mustAdmin(t, d, admin.Request{Cmd: "sets"}).Overview.Sets) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the timer did not delete the abandoned set")
		}
		time.Sleep(200 * time.Millisecond)
	}

	m := scrape(t, d)
	want := map[string]float64{
		`fsrvpd_fsrvp_calls_total{op="StartShadowCopySet",opnum="2",result="S_OK"}`:                              6,
		`fsrvpd_fsrvp_calls_total{op="CommitShadowCopySet",opnum="4",result="S_OK"}`:                             4,
		`fsrvpd_fsrvp_calls_total{op="ExposeShadowCopySet",opnum="5",result="S_OK"}`:                             4,
		`fsrvpd_fsrvp_calls_total{op="AbortShadowCopySet",opnum="7",result="FSRVP_E_SHADOWCOPYSET_ID_MISMATCH"}`: 1,
		`fsrvpd_fsrvp_call_duration_seconds_count{op="CommitShadowCopySet"}`:                                     4,
		`fsrvpd_sequence_step_duration_seconds_count{step="commit"}`:                                             4,
		`fsrvpd_sequence_step_duration_seconds_count{step="expose"}`:                                             4,
		`fsrvpd_sequence_step_duration_seconds_count{step="prepare"}`:                                            4,
		`fsrvpd_freeze_window_seconds_count`:                                                                     4,
		`fsrvpd_snapshot_jobs_total{result="ok"}`:                                                                4,
		`fsrvpd_timer_expiries_total`:                                                                            1,
		`fsrvpd_timer_deleted_sets_total`:                                                                        1,
		`fsrvpd_retention_pruned_sets_total`:                                                                     2,
		`fsrvpd_sets{state="Recovered"}`:                                                                         1,
		`fsrvpd_sets{state="Added"}`:                                                                             0,
		`fsrvpd_snapshots{volume="` + cfg.Storage.Dir.Volumes[1] + `"}`:                                          1,
		`fsrvpd_orphans{kind="snapshot"}`:                                                                        0,
		`fsrvpd_orphans{kind="share"}`:                                                                           0,
		`fsrvpd_admin_requests_total{cmd="gc",result="ok"}`:                                                      2,
		`fsrvpd_admin_requests_total{cmd="delete",result="error"}`:                                               1,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("metric %s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if m[`fsrvpd_fsrvp_call_duration_seconds_bucket{op="CommitShadowCopySet",le="+Inf"}`] != 4 {
		t.Error("histogram +Inf bucket does not count every commit")
	}

	// The audit log: every state-changing call, admin command and
	// retention deletion, with the fixed field set.
	for _, sub := range [][]string{
		{`"op":"CommitShadowCopySet"`, `"set_id":"` + a.String() + `"`, `"shares":["share1"]`, `"result":"S_OK"`, `"client":"127.0.0.1"`},
		{`"op":"AddToShadowCopySet"`, `"set_id":"` + inCreation.String() + `"`},
		{`"op":"admin abort"`, `"set_id":"` + inCreation.String() + `"`, `"caller":"uid=`, `"result":"ok"`},
		{`"op":"admin delete"`, `"set_id":"` + inCreation.String() + `"`, `"result":"` + inCreation.String() + ` is Added`},
		{`"op":"admin gc"`, `"result":"ok"`},
		{`"op":"retention"`, `"set_id":"` + b.String() + `"`, `"shares":["share1","share2"]`, `"caller":"uid=`},
	} {
		if got := logs.matching(append([]string{`"audit":true`}, sub...)...); len(got) != 1 {
			t.Errorf("audit lines with %v: %d\n%s", sub, len(got), strings.Join(got, "\n"))
		}
	}
	for _, l := range logs.matching(`"audit":true`) {
		for _, f := range []string{`"op":`, `"set_id":`, `"shares":`, `"caller":`, `"sids":`, `"client":`, `"result":`} {
			if !strings.Contains(l, f) {
				t.Errorf("audit line without %s: %s", f, l)
			}
		}
	}
	if got := logs.matching(`"audit":true`, `"op":"IsPathSupported"`); len(got) != 0 {
		t.Errorf("read-only call audited: %v", got)
	}
}

// TestRetentionLoop lets the daemon's own retention loop prune: with
// keep_daily = 1 of two persistent sets taken the same day only one stays
// (the first of the day; the second if midnight fell between them), and
// a set in a creation sequence is never touched.
func TestRetentionLoop(t *testing.T) {
	dir := t.TempDir()
	c := config.Demo(dir)
	c.Server.Listen = []string{"127.0.0.1:0"}
	c.Server.EndpointMapper = ""
	c.Retention.Interval.Duration = 100 * time.Millisecond
	c.Retention.Policies = []config.RetentionPolicy{{Share: "share1", KeepDaily: 1}}
	makeShares(t, c, false)
	logs := &logBuffer{mu: make(chan struct{}, 1)}
	d := runDaemon(t, c, loggerTo(logs, true))

	cl, err := client.Dial(t.Context(), d.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var ids []uuid.UUID
	for range 2 {
		res, err := cl.Create(t.Context(), client.CreateRequest{Context: client.CtxNASRollback, Shares: []string{"share1"}, RecoveryComplete: true})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.ShadowCopySetID)
	}
	// In creation, with a policy that would prune it if it were finished.
	if err := cl.SetContext(t.Context(), client.CtxNASRollback); err != nil {
		t.Fatal(err)
	}
	open, err := cl.StartShadowCopySet(t.Context(), uuid.New())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.AddToShadowCopySet(t.Context(), uuid.New(), open, cl.ResolveShare("share1")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		o := mustAdmin(t, d, admin.Request{Cmd: "sets"}).Overview
		if len(o.Sets) == 2 {
			if o.Sets[1].ID != open || (o.Sets[0].ID != ids[0] && o.Sets[0].ID != ids[1]) {
				t.Fatalf("left %v, want one of %v and %s", setIDs(o), ids, open)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the loop did not prune: %v", setIDs(o))
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a few more runs change nothing
	if o := mustAdmin(t, d, admin.Request{Cmd: "sets"}).Overview; len(o.Sets) != 2 {
		t.Fatalf("later runs: %v", setIDs(o))
	}
	if got := logs.matching(`"audit":true`, `"op":"retention"`, `"caller":"fsrvpd"`, `"result":"ok"`); len(got) != 1 {
		t.Errorf("retention audit lines: %v", got)
	}
}

func TestAdminBadRequests(t *testing.T) {
	d, _, _ := startDemo(t, io.Discard)
	for _, c := range []struct {
		req  admin.Request
		code string
	}{
		{admin.Request{Cmd: "frobnicate"}, "bad_request"},
		{admin.Request{Cmd: "show"}, "bad_request"},
		{admin.Request{Cmd: "delete", ID: uuid.NewString()}, "not_found"},
		{admin.Request{Cmd: "prune"}, "unavailable"}, // no [[retention.policy]]
	} {
		if _, err := adminCall(t, d, c.req); adminCode(err) != c.code {
			t.Errorf("%+v: %v, want code %s", c.req, err, c.code)
		}
	}
	// Not JSON, and unknown fields.
	for _, raw := range []string{"hello\n", `{"cmd":"sets","extra":1}` + "\n"} {
		conn, err := net.Dial("unix", d.AdminSocket())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, raw)
		var resp admin.Response
		err = json.NewDecoder(conn).Decode(&resp)
		conn.Close()
		if err != nil || resp.OK || resp.Code != "bad_request" {
			t.Errorf("%q: %+v %v", raw, resp, err)
		}
	}
}
