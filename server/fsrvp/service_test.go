package fsrvp

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/server/state"
	"github.com/fsrvpd/fsrvpd/shares"
)

var (
	alice = Caller{Address: "192.0.2.1"}
	bob   = Caller{Address: "192.0.2.2"}
	ctx   = context.Background()
)

type harness struct {
	t        *testing.T
	s        *Service
	b        *memBackend
	e        *memExposer
	db       *state.DB
	dbPath   string
	cfg      Config
	prepErr  error
	prepGate chan struct{}
}

// newHarness builds a Service over two volumes /v1 and /v2 with shares
// share1 (/v1/a), share2 (/v2), share3 (/v1/b, same volume as share1),
// hidden$ (/v2/h) and bad (/unsupported).
func newHarness(t *testing.T, mod ...func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, b: newMemBackend("/v1", "/v2"), e: newMemExposer()}
	h.dbPath = filepath.Join(t.TempDir(), "state.db")
	res, err := shares.NewStatic([]shares.BaseShare{
		{Name: "share1", Path: "/v1/a"}, {Name: "share2", Path: "/v2"}, {Name: "share3", Path: "/v1/b"},
		{Name: "hidden$", Path: "/v2/h"}, {Name: "bad", Path: "/unsupported"}, {Name: "gone", Path: "/nowhere"},
	})
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(testWriter{t})
	log.SetLevel(logrus.DebugLevel)
	h.cfg = Config{
		Backend: h.b, Shares: res, Exposer: h.e, Logger: logrus.NewEntry(log),
		Access:     AccessPolicy{AllowUnauthenticated: true},
		ServerName: "FSRVPD",
		Prepare: func(ctx context.Context, roots []string) error {
			if h.prepGate != nil {
				<-h.prepGate
			}
			return h.prepErr
		},
	}
	for _, m := range mod {
		m(&h.cfg)
	}
	h.open()
	t.Cleanup(h.close)
	return h
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (h *harness) open() {
	h.t.Helper()
	db, err := state.Open(h.dbPath, time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	h.db = db
	cfg := h.cfg
	cfg.DB = db
	h.s, err = New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.s.Reconcile(ctx); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) close() {
	if h.s != nil {
		h.s.Close()
		h.db.Close()
		h.s = nil
	}
}

// restart simulates a daemon restart over the same store and backends.
func (h *harness) restart() {
	h.close()
	h.open()
}

func must(t *testing.T, what string, got HResult) {
	t.Helper()
	if got != S_OK {
		t.Fatalf("%s: %v", what, got)
	}
}

func want(t *testing.T, what string, got, want HResult) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

// created is a set driven to some state by the harness.
type created struct {
	set uuid.UUID
	sc  map[string]uuid.UUID // by share name
}

// upTo drives a new set with the given shares to the named status.
func (h *harness) upTo(status Status, context uint32, shareNames ...string) created {
	t := h.t
	t.Helper()
	must(t, "SetContext", h.s.SetContext(ctx, alice, context))
	set, rc := h.s.StartShadowCopySet(ctx, alice, uuid.New())
	must(t, "Start", rc)
	c := created{set: set, sc: map[string]uuid.UUID{}}
	if status == Started {
		return c
	}
	for _, n := range shareNames {
		id, rc := h.s.AddToShadowCopySet(ctx, alice, set, `\\fsrvpd\`+n+`\`)
		must(t, "Add "+n, rc)
		c.sc[n] = id
	}
	if status == Added {
		return c
	}
	must(t, "Prepare", h.s.PrepareShadowCopySet(ctx, alice, set, 0))
	must(t, "Commit", h.s.CommitShadowCopySet(ctx, alice, set, 0))
	if status == Committed {
		return c
	}
	must(t, "Expose", h.s.ExposeShadowCopySet(ctx, alice, set, 0))
	if status == Exposed {
		return c
	}
	must(t, "RecoveryComplete", h.s.RecoveryCompleteShadowCopySet(ctx, alice, set))
	return c
}

func (h *harness) status(id uuid.UUID) (Status, bool) {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	set := h.s.sets[id]
	if set == nil {
		return 0, false
	}
	return set.Status, true
}

func TestHappyPathTwoVolumes(t *testing.T) {
	h := newHarness(t)
	c := h.upTo(Exposed, CtxBackup, "share1", "share2")
	if h.b.count() != 2 || h.e.count() != 2 {
		t.Fatalf("snapshots %d shares %d, want 2 and 2", h.b.count(), h.e.count())
	}
	name := "share1@{" + c.sc["share1"].String() + "}"
	sh, ok := h.e.get(name)
	if !ok || !sh.ReadOnly || sh.Path != filepath.Join("/snaps", c.sc["share1"].String(), "a") || sh.Base != "share1" {
		t.Fatalf("exposed share %q = %+v, %v", name, sh, ok)
	}
	m, rc := h.s.GetShareMapping(ctx, alice, c.sc["share1"], c.set, `\\other-host\SHARE1`, 1)
	must(t, "GetShareMapping", rc)
	if m.ExposedUNC != `\\FSRVPD\`+name || m.ShareNameUNC != `\\fsrvpd\share1\` || m.SetID != c.set || m.Created.IsZero() {
		t.Fatalf("mapping %+v", m)
	}
	present, _, rc := h.s.IsPathShadowCopied(ctx, alice, `\\x\share1`)
	if rc != S_OK || !present {
		t.Fatalf("IsPathShadowCopied = %v %v", present, rc)
	}
	must(t, "RecoveryComplete", h.s.RecoveryCompleteShadowCopySet(ctx, alice, c.set))
	// The context is free again: another client may start a sequence.
	must(t, "SetContext bob", h.s.SetContext(ctx, bob, CtxBackup))
	must(t, "Delete share1", h.s.DeleteShareMapping(ctx, alice, c.set, c.sc["share1"], `\\FSRVPD\share1`))
	must(t, "Delete share2", h.s.DeleteShareMapping(ctx, alice, c.set, c.sc["share2"], `\\FSRVPD\share2`))
	if _, ok := h.status(c.set); ok || h.b.count() != 0 || h.e.count() != 0 {
		t.Fatalf("set still there or leaks: snapshots %d shares %d", h.b.count(), h.e.count())
	}
}

func TestAccessDeniedEverywhere(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Access = AccessPolicy{} })
	id := uuid.New()
	_, _, rc := h.s.GetSupportedVersion(ctx, alice)
	want(t, "GetSupportedVersion", rc, E_ACCESSDENIED)
	want(t, "SetContext", h.s.SetContext(ctx, alice, 0), E_ACCESSDENIED)
	_, rc = h.s.StartShadowCopySet(ctx, alice, id)
	want(t, "Start", rc, E_ACCESSDENIED)
	_, rc = h.s.AddToShadowCopySet(ctx, alice, id, `\\h\share1`)
	want(t, "Add", rc, E_ACCESSDENIED)
	want(t, "Prepare", h.s.PrepareShadowCopySet(ctx, alice, id, 0), E_ACCESSDENIED)
	want(t, "Commit", h.s.CommitShadowCopySet(ctx, alice, id, 0), E_ACCESSDENIED)
	want(t, "Expose", h.s.ExposeShadowCopySet(ctx, alice, id, 0), E_ACCESSDENIED)
	want(t, "Recovery", h.s.RecoveryCompleteShadowCopySet(ctx, alice, id), E_ACCESSDENIED)
	want(t, "Abort", h.s.AbortShadowCopySet(ctx, alice, id), E_ACCESSDENIED)
	_, _, rc = h.s.IsPathSupported(ctx, alice, `\\h\share1`)
	want(t, "IsPathSupported", rc, E_ACCESSDENIED)
	_, _, rc = h.s.IsPathShadowCopied(ctx, alice, `\\h\share1`)
	want(t, "IsPathShadowCopied", rc, E_ACCESSDENIED)
	_, rc = h.s.GetShareMapping(ctx, alice, id, id, `\\h\share1`, 1)
	want(t, "GetShareMapping", rc, E_ACCESSDENIED)
	want(t, "DeleteShareMapping", h.s.DeleteShareMapping(ctx, alice, id, id, `\\h\share1`), E_ACCESSDENIED)
	// An authenticated backup operator at packet integrity passes; below
	// it, or without the group, not.
	_, _, rc = h.s.GetSupportedVersion(ctx, Caller{Address: "x", AuthLevel: 5, RPCAuth: true, RPCBackupCapable: true})
	must(t, "GetSupportedVersion at integrity", rc)
	_, _, rc = h.s.GetSupportedVersion(ctx, Caller{Address: "x", AuthLevel: 2, RPCAuth: true, RPCBackupCapable: true})
	want(t, "GetSupportedVersion at connect", rc, E_ACCESSDENIED)
	_, _, rc = h.s.GetSupportedVersion(ctx, Caller{Address: "x", AuthLevel: 6, RPCAuth: true})
	want(t, "GetSupportedVersion, not a backup operator", rc, E_ACCESSDENIED)
	_, _, rc = h.s.GetSupportedVersion(ctx, Caller{Address: "x", AuthLevel: 6})
	want(t, "GetSupportedVersion, level without security context", rc, E_ACCESSDENIED)
}

func TestContexts(t *testing.T) {
	valid := 0
	for _, base := range []uint32{0, 0x10, 0x19, 0x9} {
		for _, attr := range []uint32{0, AttrAutoRecovery, AttrNoAutoRecovery} {
			if !ValidContext(base | attr) {
				t.Errorf("context %#x rejected", base|attr)
			}
			valid++
		}
	}
	if valid != 12 {
		t.Fatal(valid)
	}
	h := newHarness(t, func(c *Config) { c.RetryLimit = -1 })
	for _, bad := range []uint32{1, 3, 8, 0x11, 0x18, 0xFFFFFFFF, AttrAutoRecovery | AttrNoAutoRecovery, 0x04000000} {
		want(t, "SetContext", h.s.SetContext(ctx, alice, bad), FSRVP_E_UNSUPPORTED_CONTEXT)
	}
	for _, base := range []uint32{0, 0x10, 0x19, 0x9} {
		for _, attr := range []uint32{0, AttrAutoRecovery, AttrNoAutoRecovery} {
			must(t, "SetContext", h.s.SetContext(ctx, alice, base|attr))
		}
	}
}

func TestSetContextOtherClientAndRetryLimit(t *testing.T) {
	h := newHarness(t)
	c := h.upTo(Added, CtxBackup, "share1")
	want(t, "SetContext from another client", h.s.SetContext(ctx, bob, CtxBackup), FSRVP_E_SHADOW_COPY_SET_IN_PROGRESS)
	// The same client again discards its set.
	must(t, "SetContext retry 1", h.s.SetContext(ctx, alice, CtxBackup))
	if _, ok := h.status(c.set); ok {
		t.Fatal("set in creation survived a SetContext retry")
	}
	for i := 2; i <= DefaultRetryLimit; i++ {
		must(t, "SetContext retry", h.s.SetContext(ctx, alice, CtxBackup))
	}
	want(t, "SetContext over the limit", h.s.SetContext(ctx, alice, CtxBackup), FSRVP_E_SHADOW_COPY_SET_IN_PROGRESS)
	// The state was reset, so the next one succeeds and the count restarts.
	must(t, "SetContext after limit", h.s.SetContext(ctx, alice, CtxBackup))
	if h.s.g.RetryCount != 0 {
		t.Fatalf("retry count %d", h.s.g.RetryCount)
	}
}

func TestStartShadowCopySet(t *testing.T) {
	h := newHarness(t)
	_, rc := h.s.StartShadowCopySet(ctx, alice, uuid.New())
	want(t, "Start without context", rc, FSRVP_E_BAD_STATE)
	must(t, "SetContext", h.s.SetContext(ctx, alice, CtxBackup))
	_, rc = h.s.StartShadowCopySet(ctx, alice, uuid.Nil)
	want(t, "Start GUID_NULL", rc, E_INVALIDARG)
	_, rc = h.s.StartShadowCopySet(ctx, bob, uuid.New())
	want(t, "Start from another client", rc, FSRVP_E_SHADOW_COPY_SET_IN_PROGRESS)
	_, rc = h.s.StartShadowCopySet(ctx, alice, uuid.New())
	must(t, "Start", rc)
	_, rc = h.s.StartShadowCopySet(ctx, alice, uuid.New())
	want(t, "second Start", rc, FSRVP_E_SHADOW_COPY_SET_IN_PROGRESS)
}

func TestAddChecksInSpecOrder(t *testing.T) {
	h := newHarness(t)
	c := h.upTo(Started, CtxBackup)
	unknown := uuid.New()
	cases := []struct {
		name  string
		set   uuid.UUID
		share string
		want  HResult
	}{
		{"empty share name", c.set, "", E_INVALIDARG},
		{"GUID_NULL set", uuid.Nil, `\\h\share1`, E_INVALIDARG},
		{"not a UNC", c.set, `share1`, E_INVALIDARG},
		{"UNC without share", c.set, `\\host`, E_INVALIDARG},
		{"UNC with empty share", c.set, `\\host\\`, E_INVALIDARG},
		{"missing share before unknown set", unknown, `\\h\nosuch`, FSRVP_E_OBJECT_NOT_FOUND},
		{"share whose directory is gone", c.set, `\\h\gone`, FSRVP_E_OBJECT_NOT_FOUND},
		{"unsupported before unknown set", unknown, `\\h\bad\`, FSRVP_E_NOT_SUPPORTED},
		{"unknown set", unknown, `\\h\share1`, FSRVP_E_SHADOWCOPYSET_ID_MISMATCH},
		{"very long name", c.set, `\\h\` + strings.Repeat("x", 70000), FSRVP_E_OBJECT_NOT_FOUND},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, rc := h.s.AddToShadowCopySet(ctx, alice, tc.set, tc.share)
			want(t, "Add", rc, tc.want)
		})
	}
	// Host names, trailing backslashes and case do not matter.
	id1, rc := h.s.AddToShadowCopySet(ctx, alice, c.set, `\\some.where.example\SHARE1\sub\dir`)
	must(t, "Add share1", rc)
	_, rc = h.s.AddToShadowCopySet(ctx, alice, c.set, `\\10.0.0.1\share1`)
	want(t, "same share again", rc, FSRVP_E_OBJECT_ALREADY_EXISTS)
	// share3 is on share1's volume: it joins share1's shadow copy.
	id3, rc := h.s.AddToShadowCopySet(ctx, alice, c.set, `\\h\share3\`)
	must(t, "Add share3", rc)
	if id3 != id1 {
		t.Fatalf("share on the same volume got shadow copy %v, want %v", id3, id1)
	}
	must(t, "Commit", h.s.CommitShadowCopySet(ctx, alice, c.set, 0))
	_, rc = h.s.AddToShadowCopySet(ctx, alice, c.set, `\\h\share2`)
	want(t, "Add after commit", rc, FSRVP_E_BAD_STATE)
}

func TestSameVolumeReject(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.SameVolume = SameVolumeReject })
	c := h.upTo(Added, CtxBackup, "share1")
	_, rc := h.s.AddToShadowCopySet(ctx, alice, c.set, `\\h\share3`)
	want(t, "Add share on same volume", rc, FSRVP_E_OBJECT_ALREADY_EXISTS)
}

func TestSameVolumeSharesExposedFromOneSnapshot(t *testing.T) {
	h := newHarness(t)
	c := h.upTo(Exposed, CtxBackup, "share1", "share3")
	if h.b.count() != 1 || h.e.count() != 2 {
		t.Fatalf("snapshots %d shares %d, want 1 and 2", h.b.count(), h.e.count())
	}
	sh, _ := h.e.get("share3@{" + c.sc["share3"].String() + "}")
	if sh.Path != filepath.Join("/snaps", c.sc["share3"].String(), "b") {
		t.Fatalf("share3 path %q", sh.Path)
	}
	must(t, "Delete share1", h.s.DeleteShareMapping(ctx, alice, c.set, c.sc["share1"], `\\h\share1`))
	if h.b.count() != 1 {
		t.Fatal("snapshot deleted while share3 still maps it")
	}
	must(t, "Delete share3", h.s.DeleteShareMapping(ctx, alice, c.set, c.sc["share3"], `\\h\share3`))
	if h.b.count() != 0 || h.e.count() != 0 {
		t.Fatal("leak after last mapping deleted")
	}
}

func TestPrepare(t *testing.T) {
	h := newHarness(t)
	want(t, "unknown", h.s.PrepareShadowCopySet(ctx, alice, uuid.New(), 0), FSRVP_E_SHADOWCOPYSET_ID_MISMATCH)
	want(t, "GUID_NULL", h.s.PrepareShadowCopySet(ctx, alice, uuid.Nil, 0), E_INVALIDARG)
	c := h.upTo(Started, CtxBackup)
	want(t, "Started", h.s.PrepareShadowCopySet(ctx, alice, c.set, 0), FSRVP_E_BAD_STATE)
	_, rc := h.s.AddToShadowCopySet(ctx, alice, c.set, `\\h\share1`)
	must(t, "Add", rc)
	h.prepErr = errors.New("flush failed")
	want(t, "failing prepare", h.s.PrepareShadowCopySet(ctx, alice, c.set, 0), VSS_E_UNEXPECTED_PROVIDER_ERROR)
	h.prepErr = nil
	h.prepGate = make(chan struct{})
	want(t, "slow prepare", h.s.PrepareShadowCopySet(ctx, alice, c.set, 1), FSRVP_E_WAIT_TIMEOUT)
	close(h.prepGate)
	must(t, "Prepare", h.s.PrepareShadowCopySet(ctx, alice, c.set, 0))
	if st, _ := h.status(c.set); st != Added {
		t.Fatalf("status after prepare %v", st)
	}
}

func TestCommitFailureRollsBackAndRetries(t *testing.T) {
	h := newHarness(t)
	c := h.upTo(Added, CtxBackup, "share1", "share2")
	want(t, "unknown", h.s.CommitShadowCopySet(ctx, alice, uuid.New(), 0), FSRVP_E_SHADOWCOPYSET_ID_MISMATCH)
	h.b.failVolume["vol:/v2"] = errors.New("disk on fire")
	want(t, "failing commit", h.s.CommitShadowCopySet(ctx, alice, c.set, 0), VSS_E_UNEXPECTED_PROVIDER_ERROR)
	if h.b.count() != 0 {
		t.Fatalf("%d snapshots left after a failed commit", h.b.count())
	}
	if st, _ := h.status(c.set); st != CreationInProgress {
		t.Fatalf("status %v", st)
	}
	delete(h.b.failVolume, "vol:/v2")
	must(t, "Commit retry", h.s.CommitShadowCopySet(ctx, alice, c.set, 0))
	if st, _ := h.status(c.set); st != Committed || h.b.count() != 2 {
		t.Fatalf("status %v snapshots %d", st, h.b.count())
	}
	want(t, "Commit again", h.s.CommitShadowCopySet(ctx, alice, c.set, 0), FSRVP_E_BAD_STATE)
}

func TestCommitTimeoutThenRepeat(t *testing.T) {
	h := newHarness(t)
	c := h.upTo(Added, CtxBackup, "share1")
	h.b.gate = make(chan struct{})
	want(t, "slow commit", h.s.CommitShadowCopySet(ctx, alice, c.set, 1), FSSAGENT_E_TIMEOUT)
	if st, _ := h.status(c.set); st != CreationInProgress {
		t.Fatalf("status %v", st)
	}
	want(t, "Expose while in progress", h.s.ExposeShadowCopySet(ctx, alice, c.set, 0), FSRVP_E_BAD_STATE)
	close(h.b.gate)
	must(t, "repeated Commit", h.s.CommitShadowCopySet(ctx, alice, c.set, 0))
	if h.b.count() != 1 {
		t.Fatalf("%d snapshots", h.b.count())
	}
}

func TestAbortDuringSlowCommitLeavesNothing(t *testing.T) {
	h := newHarness(t)
	c := h.upTo(Added, CtxBackup, "share1", "share2")
	h.b.gate = make(chan struct{})
	want(t, "slow commit", h.s.CommitShadowCopySet(ctx, alice, c.set, 1), FSSAGENT_E_TIMEOUT)
	go func() { time.Sleep(10 * time.Millisecond); close(h.b.gate) }()
	must(t, "Abort", h.s.AbortShadowCopySet(ctx, alice, c.set))
	if h.b.count() != 0 {
		t.Fatalf("%d snapshots leaked", h.b.count())
	}
}

func TestExposeFailureWithdrawsShares(t *testing.T) {
	h := newHarness(t)
	c := h.upTo(Committed, CtxBackup, "share1", "share2")
	h.e.failAfter = 1
	want(t, "Expose", h.s.ExposeShadowCopySet(ctx, alice, c.set, 0), VSS_E_UNEXPECTED_PROVIDER_ERROR)
	if h.e.count() != 0 {
		t.Fatalf("%d shares left", h.e.count())
	}
	if st, _ := h.status(c.set); st != Committed {
		t.Fatalf("status %v", st)
	}
	h.e.failAfter = -1
	must(t, "Expose again", h.s.ExposeShadowCopySet(ctx, alice, c.set, 0))
	want(t, "Expose twice", h.s.ExposeShadowCopySet(ctx, alice, c.set, 0), FSRVP_E_BAD_STATE)
}

func TestHiddenShareName(t *testing.T) {
	h := newHarness(t)
	c := h.upTo(Exposed, CtxBackup, "hidden$")
	name := "hidden$@{" + c.sc["hidden$"].String() + "}$"
	if _, ok := h.e.get(name); !ok {
		t.Fatalf("no share %q", name)
	}
}

func TestAutoRecoveryWritableUntilRecoveryComplete(t *testing.T) {
	h := newHarness(t)
	c := h.upTo(Exposed, CtxAppRollback|AttrAutoRecovery, "share1")
	name := "share1@{" + c.sc["share1"].String() + "}"
	if sh, _ := h.e.get(name); sh.ReadOnly {
		t.Fatal("auto-recovery share exposed read-only")
	}
	if sn, _ := h.b.Stat(ctx, c.sc["share1"].String()); sn.ReadOnly {
		t.Fatal("auto-recovery snapshot taken read-only")
	}
	must(t, "RecoveryComplete", h.s.RecoveryCompleteShadowCopySet(ctx, alice, c.set))
	if sh, _ := h.e.get(name); !sh.ReadOnly {
		t.Fatal("share still writable after RecoveryComplete")
	}
	if sn, _ := h.b.Stat(ctx, c.sc["share1"].String()); !sn.ReadOnly {
		t.Fatal("snapshot still writable after RecoveryComplete")
	}
	want(t, "second RecoveryComplete", h.s.RecoveryCompleteShadowCopySet(ctx, alice, c.set), FSRVP_E_BAD_STATE)
}

func TestStateMatrixBadState(t *testing.T) {
	// Every per-set method in every state where §3.1.4 refuses it.
	type call func(h *harness, c created) HResult
	calls := map[string]call{
		"Add": func(h *harness, c created) HResult {
			_, rc := h.s.AddToShadowCopySet(ctx, alice, c.set, `\\h\share2`)
			return rc
		},
		"Prepare":  func(h *harness, c created) HResult { return h.s.PrepareShadowCopySet(ctx, alice, c.set, 0) },
		"Commit":   func(h *harness, c created) HResult { return h.s.CommitShadowCopySet(ctx, alice, c.set, 0) },
		"Expose":   func(h *harness, c created) HResult { return h.s.ExposeShadowCopySet(ctx, alice, c.set, 0) },
		"Recovery": func(h *harness, c created) HResult { return h.s.RecoveryCompleteShadowCopySet(ctx, alice, c.set) },
		"GetShareMapping": func(h *harness, c created) HResult {
			_, rc := h.s.GetShareMapping(ctx, alice, c.sc["share1"], c.set, `\\h\share1`, 1)
			return rc
		},
		"DeleteShareMapping": func(h *harness, c created) HResult {
			return h.s.DeleteShareMapping(ctx, alice, c.set, c.sc["share1"], `\\h\share1`)
		},
	}
	refused := map[Status][]string{
		Started:   {"Prepare", "Commit", "Expose", "Recovery", "GetShareMapping", "DeleteShareMapping"},
		Added:     {"Expose", "Recovery", "GetShareMapping", "DeleteShareMapping"},
		Committed: {"Add", "Prepare", "Commit", "Recovery", "GetShareMapping", "DeleteShareMapping"},
		Exposed:   {"Add", "Prepare", "Commit", "Expose"},
		Recovered: {"Add", "Prepare", "Commit", "Expose", "Recovery", "GetShareMapping"},
	}
	for st, names := range refused {
		for _, n := range names {
			t.Run(st.String()+"/"+n, func(t *testing.T) {
				h := newHarness(t)
				c := h.upTo(st, CtxBackup, "share1")
				if c.sc["share1"] == uuid.Nil {
					c.sc["share1"] = uuid.New()
				}
				want(t, n, calls[n](h, c), FSRVP_E_BAD_STATE)
			})
		}
	}
}

func TestGetShareMappingChecks(t *testing.T) {
	h := newHarness(t)
	c := h.upTo(Exposed, CtxBackup, "share1")
	sc := c.sc["share1"]
	cases := []struct {
		name  string
		sc    uuid.UUID
		set   uuid.UUID
		share string
		level uint32
		want  HResult
	}{
		{"bad level before unknown set", sc, uuid.New(), `\\h\share1`, 2, E_INVALIDARG},
		{"level 0", sc, c.set, `\\h\share1`, 0, E_INVALIDARG},
		{"unknown set", sc, uuid.New(), `\\h\share1`, 1, FSRVP_E_SHADOWCOPYSET_ID_MISMATCH},
		{"unknown shadow copy", uuid.New(), c.set, `\\h\share1`, 1, E_INVALIDARG},
		{"share not in the set", sc, c.set, `\\h\share2`, 1, E_INVALIDARG},
		{"GUID_NULL shadow copy", uuid.Nil, c.set, `\\h\share1`, 1, E_INVALIDARG},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, rc := h.s.GetShareMapping(ctx, alice, tc.sc, tc.set, tc.share, tc.level)
			want(t, "GetShareMapping", rc, tc.want)
		})
	}
}

func TestDeleteShareMappingChecks(t *testing.T) {
	h := newHarness(t)
	c := h.upTo(Exposed, CtxBackup, "share1")
	sc := c.sc["share1"]
	want(t, "GUID_NULL", h.s.DeleteShareMapping(ctx, alice, uuid.Nil, sc, `\\h\share1`), E_INVALIDARG)
	want(t, "unknown set", h.s.DeleteShareMapping(ctx, alice, uuid.New(), sc, `\\h\share1`), FSRVP_E_OBJECT_NOT_FOUND)
	want(t, "unknown shadow copy", h.s.DeleteShareMapping(ctx, alice, c.set, uuid.New(), `\\h\share1`), FSRVP_E_OBJECT_NOT_FOUND)
	want(t, "unmapped share", h.s.DeleteShareMapping(ctx, alice, c.set, sc, `\\h\share2`), FSRVP_E_OBJECT_NOT_FOUND)
	// Deleting the last mapping of an Exposed set ends the sequence.
	must(t, "Delete", h.s.DeleteShareMapping(ctx, alice, c.set, sc, `\\h\share1`))
	if h.s.g.ContextSet {
		t.Fatal("context still set after the last set in creation went")
	}
	want(t, "again", h.s.DeleteShareMapping(ctx, alice, c.set, sc, `\\h\share1`), FSRVP_E_OBJECT_NOT_FOUND)
}

func TestAbort(t *testing.T) {
	h := newHarness(t)
	want(t, "GUID_NULL", h.s.AbortShadowCopySet(ctx, alice, uuid.Nil), E_INVALIDARG)
	want(t, "unknown", h.s.AbortShadowCopySet(ctx, alice, uuid.New()), FSRVP_E_SHADOWCOPYSET_ID_MISMATCH)
	c := h.upTo(Exposed, CtxBackup, "share1", "share2")
	must(t, "Abort exposed", h.s.AbortShadowCopySet(ctx, alice, c.set))
	if h.b.count() != 0 || h.e.count() != 0 || h.s.g.ContextSet {
		t.Fatalf("after abort: snapshots %d shares %d context %v", h.b.count(), h.e.count(), h.s.g.ContextSet)
	}
	_, rc := h.s.AddToShadowCopySet(ctx, alice, c.set, `\\h\share1`)
	want(t, "Add to aborted set", rc, FSRVP_E_SHADOWCOPYSET_ID_MISMATCH)
}

func TestIsPathSupported(t *testing.T) {
	h := newHarness(t)
	ok, owner, rc := h.s.IsPathSupported(ctx, alice, `\\evil.example.com\share1\`)
	if rc != S_OK || !ok || owner != "FSRVPD" {
		t.Fatalf("= %v %q %v", ok, owner, rc)
	}
	_, _, rc = h.s.IsPathSupported(ctx, alice, `\\h\nosuch`)
	want(t, "missing", rc, FSRVP_E_OBJECT_NOT_FOUND)
	_, _, rc = h.s.IsPathSupported(ctx, alice, `\\h\bad`)
	want(t, "unsupported", rc, FSRVP_E_NOT_SUPPORTED)
	_, _, rc = h.s.IsPathSupported(ctx, alice, ``)
	want(t, "empty", rc, E_INVALIDARG)
	present, _, rc := h.s.IsPathShadowCopied(ctx, alice, `\\h\share1`)
	if rc != S_OK || present {
		t.Fatalf("IsPathShadowCopied = %v %v", present, rc)
	}
	_, _, rc = h.s.IsPathShadowCopied(ctx, alice, `\\h\nosuch`)
	want(t, "IsPathShadowCopied missing", rc, FSRVP_E_OBJECT_NOT_FOUND)
	// Committed counts; Added does not.
	c := h.upTo(Added, CtxBackup, "share3")
	present, _, _ = h.s.IsPathShadowCopied(ctx, alice, `\\h\share1`)
	if present {
		t.Fatal("an uncommitted set counts as a shadow copy")
	}
	must(t, "Commit", h.s.CommitShadowCopySet(ctx, alice, c.set, 0))
	present, _, _ = h.s.IsPathShadowCopied(ctx, alice, `\\h\share1`)
	if !present {
		t.Fatal("committed shadow copy of the volume not reported")
	}
}

// eventually polls cond; it bounds a wait, it does not time anything.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTimerExpiryDeletesExposedKeepsRecovered(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.ShortTimeout, c.LongTimeout = 50*time.Millisecond, 100*time.Millisecond })
	old := h.upTo(Recovered, CtxNASRollback, "share2")
	c := h.upTo(Exposed, CtxBackup, "share1")
	eventually(t, "exposed set deleted", func() bool { _, ok := h.status(c.set); return !ok })
	if _, ok := h.status(old.set); !ok {
		t.Fatal("Recovered set deleted by the timer")
	}
	if h.b.count() != 1 || h.e.count() != 1 {
		t.Fatalf("snapshots %d shares %d, want only the recovered set's", h.b.count(), h.e.count())
	}
	_, rc := h.s.StartShadowCopySet(ctx, alice, uuid.New())
	want(t, "Start after expiry", rc, FSRVP_E_BAD_STATE)
	// The deletion is durable.
	h.restart()
	if _, ok := h.status(c.set); ok {
		t.Fatal("expired set back after restart")
	}
}

func TestTimerExpiryAfterSetContextAlone(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.ShortTimeout = 30 * time.Millisecond })
	must(t, "SetContext", h.s.SetContext(ctx, alice, CtxBackup))
	eventually(t, "context reset", func() bool {
		h.s.mu.Lock()
		defer h.s.mu.Unlock()
		return !h.s.g.ContextSet
	})
	must(t, "SetContext by another client", h.s.SetContext(ctx, bob, CtxBackup))
}

func TestCommitUsesBatchCreator(t *testing.T) {
	var bb *batchBackend
	h := newHarness(t, func(c *Config) {
		bb = &batchBackend{memBackend: c.Backend.(*memBackend)}
		c.Backend = bb
	})
	c := h.upTo(Added, CtxBackup, "share1", "share2")
	h.b.failVolume["vol:/v2"] = errors.New("pool suspended")
	want(t, "failing batch", h.s.CommitShadowCopySet(ctx, alice, c.set, 0), VSS_E_UNEXPECTED_PROVIDER_ERROR)
	if h.b.count() != 0 {
		t.Fatalf("%d snapshots left by a failed batch", h.b.count())
	}
	delete(h.b.failVolume, "vol:/v2")
	must(t, "Commit", h.s.CommitShadowCopySet(ctx, alice, c.set, 0))
	if bb.batches != 2 || h.b.count() != 2 {
		t.Fatalf("batches %d snapshots %d, want one batch per Commit and 2 snapshots", bb.batches, h.b.count())
	}
	must(t, "Expose", h.s.ExposeShadowCopySet(ctx, alice, c.set, 0))
}

func TestCompatSamba(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Compat = CompatSamba })
	c := h.upTo(Exposed, CtxBackup, "share1")
	unknown := uuid.New()
	_, rc := h.s.AddToShadowCopySet(ctx, alice, unknown, `\\h\share2`)
	want(t, "Add unknown set", rc, E_INVALIDARG)
	want(t, "Prepare unknown set", h.s.PrepareShadowCopySet(ctx, alice, unknown, 0), E_INVALIDARG)
	want(t, "Commit unknown set", h.s.CommitShadowCopySet(ctx, alice, unknown, 0), E_INVALIDARG)
	want(t, "Expose unknown set", h.s.ExposeShadowCopySet(ctx, alice, unknown, 0), E_INVALIDARG)
	want(t, "Recovery unknown set", h.s.RecoveryCompleteShadowCopySet(ctx, alice, unknown), E_INVALIDARG)
	want(t, "Abort unknown set", h.s.AbortShadowCopySet(ctx, alice, unknown), E_INVALIDARG)
	_, rc = h.s.GetShareMapping(ctx, alice, c.sc["share1"], unknown, `\\h\share1`, 1)
	want(t, "GetShareMapping unknown set", rc, E_INVALIDARG)
	want(t, "Delete unknown set", h.s.DeleteShareMapping(ctx, alice, unknown, c.sc["share1"], `\\h\share1`), FSRVP_E_OBJECT_NOT_FOUND)
	want(t, "Delete unknown shadow copy", h.s.DeleteShareMapping(ctx, alice, c.set, unknown, `\\h\share1`), E_INVALIDARG)
	want(t, "Delete unmapped share (unchanged)", h.s.DeleteShareMapping(ctx, alice, c.set, c.sc["share1"], `\\h\share2`), FSRVP_E_OBJECT_NOT_FOUND)
	m, rc := h.s.GetShareMapping(ctx, alice, c.sc["share1"], c.set, `\\h\share1`, 1)
	must(t, "GetShareMapping", rc)
	if m.ExposedUNC != "share1@{"+c.sc["share1"].String()+"}" {
		t.Fatalf("compat exposed name %q", m.ExposedUNC)
	}
}

func TestCompatSambaExposedSetsAreFinished(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Compat = CompatSamba
		c.ShortTimeout, c.LongTimeout = 30*time.Millisecond, 30*time.Millisecond
	})
	first := h.upTo(Exposed, CtxBackup, "share1")
	if h.s.g.ContextSet {
		t.Fatal("Expose did not end the sequence in compat mode")
	}
	// Another client may start a sequence; the Exposed set does not block it.
	must(t, "SetContext bob", h.s.SetContext(ctx, bob, CtxBackup))
	second, rc := h.s.StartShadowCopySet(ctx, bob, uuid.New())
	must(t, "Start while a set is Exposed", rc)
	// A SetContext retry and the timer delete only the set in creation.
	must(t, "SetContext retry", h.s.SetContext(ctx, bob, CtxBackup))
	if _, ok := h.status(second); ok {
		t.Fatal("set in creation survived the retry")
	}
	eventually(t, "context reset by the timer", func() bool {
		h.s.mu.Lock()
		defer h.s.mu.Unlock()
		return !h.s.g.ContextSet
	})
	if st, ok := h.status(first.set); !ok || st != Exposed {
		t.Fatalf("exposed set: %v %v", st, ok)
	}
}
