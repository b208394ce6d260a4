package conformance_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	fssagent "github.com/oiweiwei/go-msrpc/msrpc/fsrvp/fileservervssagent/v1"

	"github.com/fsrvpd/fsrvpd/client"
	"github.com/fsrvpd/fsrvpd/conformance"
	"github.com/fsrvpd/fsrvpd/server/fsrvp"
)

// fakeTimer is the message sequence timer of the in-process server for
// the checks that need one.
const fakeTimer = time.Second

func fakeTimerFor(c conformance.Check) time.Duration {
	if c.Needs&conformance.NeedTimer != 0 {
		return fakeTimer
	}
	return 0
}

// strict: skips are failures (CI).
func strict() bool { return os.Getenv("FSRVPD_TEST_STRICT") == "1" }

// TestChecksPassAgainstInProcessServer: every check passes against
// fsrvpd's own state machine served in-process with no deviation, and
// needs nothing the fake does not offer: the baseline of the deviation
// table (a check that fails here proves nothing by failing there).
func TestChecksPassAgainstInProcessServer(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: about a minute of checks")
	}
	plain, _ := newFakeServer(t, deviation{}, 0)
	timed, _ := newFakeServer(t, deviation{}, fakeTimer)
	for _, c := range conformance.Checks {
		t.Run(c.ID, func(t *testing.T) {
			tg := plain
			if fakeTimerFor(c) > 0 {
				tg = timed
			}
			res := conformance.RunCheck(context.Background(), tg, c)
			switch res.Status {
			case conformance.Fail:
				t.Errorf("%s: %s (expected %s, observed %s)\nlog: %s", c.ID, res.Message, res.Expected, res.Observed, strings.Join(res.Log, "\n"))
			case conformance.Skip:
				if strict() {
					t.Fatalf("skipped: %s", res.Message)
				}
				t.Skip(res.Message)
			}
		})
	}
}

// TestEveryCheckCanFail: for every registered check there is a deviation
// (a server wrong in one specific way) against which the check fails in
// its own assertions, not in its setup.
func TestEveryCheckCanFail(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: one in-process server per check")
	}
	var failed atomic.Int32
	t.Cleanup(func() { // after the parallel subtests
		line := fmt.Sprintf("conformance checks proven to fail against a deviant server: %d of %d", failed.Load(), len(conformance.Checks))
		t.Log(line)
		ciSummary(line)
	})
	for _, c := range conformance.Checks {
		dev, ok := deviations[c.ID]
		if !ok {
			t.Errorf("check %s has no deviation case", c.ID)
			continue
		}
		t.Run(c.ID, func(t *testing.T) {
			t.Parallel()
			tg, _ := newFakeServer(t, dev, fakeTimerFor(c))
			res := conformance.RunCheck(context.Background(), tg, c)
			switch {
			case res.Status == conformance.Skip && !strict():
				t.Skip(res.Message)
			case res.Status != conformance.Fail:
				t.Errorf("%s against its deviant server: %s (%s), want a failure", c.ID, res.Status, res.Message)
			case strings.HasPrefix(res.Message, "setup:"):
				t.Errorf("%s failed in its setup, not in its assertions: %s", c.ID, res.Message)
			default:
				failed.Add(1)
				t.Logf("fails as it should: %s (expected %s, observed %s)", res.Message, res.Expected, res.Observed)
			}
		})
	}
	for id := range deviations {
		if !hasCheck(id) {
			t.Errorf("deviation case %s names no check", id)
		}
	}
}

func hasCheck(id string) bool {
	for _, c := range conformance.Checks {
		if c.ID == id {
			return true
		}
	}
	return false
}

// code rewrites op's return code from → to.
func code(op string, from, to uint32) deviation {
	return deviation{after: func(_ *deviant, _ context.Context, o string, _, _ any, rc uint32) uint32 {
		if o == op && rc == from {
			return to
		}
		return rc
	}}
}

// answer answers op with rc, without asking the real server, when
// pred(req) holds (nil: always).
func answer(op string, pred func(d *deviant, req any) bool, rc uint32) deviation {
	return deviation{before: func(d *deviant, _ context.Context, o string, req any) (uint32, bool) {
		if o == op && (pred == nil || pred(d, req)) {
			return rc, true
		}
		return 0, false
	}}
}

// then runs f after a successful op (the real answer stands).
func then(op string, f func(d *deviant, ctx context.Context, req, resp any)) deviation {
	return deviation{after: func(d *deviant, ctx context.Context, o string, req, resp any, rc uint32) uint32 {
		if o == op && rc == 0 {
			f(d, ctx, req, resp)
		}
		return rc
	}}
}

// first runs f before op reaches the real server.
func first(op string, f func(d *deviant, ctx context.Context, req any)) deviation {
	return deviation{before: func(d *deviant, ctx context.Context, o string, req any) (uint32, bool) {
		if o == op {
			f(d, ctx, req)
		}
		return 0, false
	}}
}

func setCtx(d *deviant, ctx context.Context) {
	d.h.SetContext(ctx, &fssagent.SetContextRequest{Context: client.CtxBackup})
}

func abortAll(d *deviant, ctx context.Context) {
	d.mu.Lock()
	sets := append([]uuid.UUID(nil), d.sets...)
	d.mu.Unlock()
	for _, id := range sets {
		d.h.AbortShadowCopySet(ctx, &fssagent.AbortShadowCopySetRequest{ShadowCopySetID: wireGUID(id)})
	}
}

func knownSet(d *deviant, req any) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	id := setOf(req)
	for _, s := range d.sets {
		if s == id {
			return true
		}
	}
	return false
}

func uncHost(unc string) string {
	h, _, _ := strings.Cut(strings.TrimPrefix(unc, `\\`), `\`)
	return h
}

func uncShareName(unc string) string {
	_, rest, _ := strings.Cut(strings.TrimPrefix(unc, `\\`), `\`)
	name, _, _ := strings.Cut(rest, `\`)
	return name
}

func shareIs(pred func(string) bool) func(*deviant, any) bool {
	return func(_ *deviant, req any) bool { return pred(shareOf(req)) }
}

func mapping1(resp any) *fssagent.ShareMapping1 {
	r, ok := resp.(*fssagent.GetShareMappingResponse)
	if !ok || r.ShareMapping == nil {
		return nil
	}
	m, _ := r.ShareMapping.GetValue().(*fssagent.ShareMapping1)
	return m
}

// bareExposedName: ShadowCopyShareName without the \\host\ (Samba).
var bareExposedName = then("GetShareMapping", func(_ *deviant, _ context.Context, _, resp any) {
	if m := mapping1(resp); m != nil {
		m.ShadowCopyShareName = uncShareName(m.ShadowCopyShareName + `\`)
	}
})

// newCopyForThirdShare: a share on a volume already in the set gets a
// shadow copy id of its own.
var newCopyForThirdShare = then("Add", func(_ *deviant, _ context.Context, req, resp any) {
	if strings.Contains(shareOf(req), "share3") {
		resp.(*fssagent.AddToShadowCopySetResponse).ShadowCopyID = wireGUID(uuid.New())
	}
})

var keepRemoved = deviation{files: func(f *fakeFiles) { f.keepRemoved = true }}

// contextRefused refuses one valid context (BACKUP only after the
// harness's setup has used it once).
func contextRefused(v uint32) deviation {
	return answer("SetContext", func(d *deviant, req any) bool {
		return req.(*fssagent.SetContextRequest).Context == v && (v != client.CtxBackup || d.count("SetContext") > 0)
	}, client.EUnsupportedContext)
}

// deviations: for each check, a server wrong in the way the check is
// about (several come from Samba 4.17's agent, see SAMBA-4.17.md).
var deviations = func() map[string]deviation {
	m := map[string]deviation{
		"version/supported": then("GetSupportedVersion", func(_ *deviant, _ context.Context, _, resp any) {
			resp.(*fssagent.GetSupportedVersionResponse).MaxVersion = 2
		}),
		"context/valid-values": answer("SetContext", func(_ *deviant, req any) bool {
			return req.(*fssagent.SetContextRequest).Context&client.AttrNoAutoRecovery != 0
		}, client.EInvalidArg),
		"context/invalid-values": code("SetContext", client.EUnsupportedContext, client.EInvalidArg),
		"context/invalid-keeps-running-set": {before: func(d *deviant, ctx context.Context, op string, req any) (uint32, bool) {
			if op == "SetContext" && !fsrvp.ValidContext(req.(*fssagent.SetContextRequest).Context) {
				setCtx(d, ctx) // purges first, then checks the value
				return client.EUnsupportedContext, true
			}
			return 0, false
		}},
		"context/retry-purges-set": answer("SetContext", func(d *deviant, _ any) bool {
			d.mu.Lock()
			defer d.mu.Unlock()
			return d.context
		}, 0),
		"context/retry-keeps-recovered-set": first("SetContext", func(d *deviant, ctx context.Context, _ any) { abortAll(d, ctx) }),
		"context/retry-limit":               code("SetContext", client.EShadowCopySetInProgress, 0),
		"context/other-client-in-progress":  code("SetContext", client.EShadowCopySetInProgress, 0),

		"start/without-context": first("Start", func(d *deviant, ctx context.Context, _ any) {
			d.mu.Lock()
			held := d.context
			d.mu.Unlock()
			if !held {
				setCtx(d, ctx)
			}
		}),
		"start/null-client-id": first("Start", func(_ *deviant, _ context.Context, req any) {
			r := req.(*fssagent.StartShadowCopySetRequest)
			if uuidOf(r.ClientShadowCopySetID) == uuid.Nil {
				r.ClientShadowCopySetID = wireGUID(uuid.New())
			}
		}),
		"start/in-progress-each-state": code("Start", client.EShadowCopySetInProgress, 0),
		"start/after-recovered":        then("RecoveryComplete", func(d *deviant, ctx context.Context, _, _ any) { setCtx(d, ctx) }),

		"add/share-missing-before-set-id": answer("Add", func(d *deviant, req any) bool { return !knownSet(d, req) }, client.EShadowCopySetIDMismatch),
		"add/share-missing":               code("Add", client.EObjectNotFound, client.EInvalidArg),
		"add/unknown-set":                 code("Add", client.EShadowCopySetIDMismatch, client.EInvalidArg),
		"add/null-arguments":              answer("Add", func(_ *deviant, req any) bool { return setOf(req) == uuid.Nil }, client.EShadowCopySetIDMismatch),
		"add/non-unc": first("Add", func(_ *deviant, _ context.Context, req any) {
			r := req.(*fssagent.AddToShadowCopySetRequest)
			if !strings.HasPrefix(r.ShareName, `\\`) {
				r.ShareName = `\\localhost\` + strings.TrimLeft(r.ShareName, `\`)
			}
		}),
		"add/after-commit":              code("Add", client.EBadState, 0),
		"add/same-share-twice":          code("Add", client.EObjectAlreadyExists, 0),
		"add/unc-trailing-backslash":    answer("Add", shareIs(func(s string) bool { return strings.HasSuffix(s, `\`) }), client.EObjectNotFound),
		"add/unc-no-trailing-backslash": answer("Add", shareIs(func(s string) bool { return !strings.HasSuffix(s, `\`) }), client.EObjectNotFound),
		"add/unc-foreign-host":          answer("Add", shareIs(func(s string) bool { return uncHost(s) != "127.0.0.1" }), client.EObjectNotFound),
		"add/unc-upper-case-share": answer("Add", shareIs(func(s string) bool {
			return uncShareName(s) != strings.ToLower(uncShareName(s))
		}), client.EObjectNotFound),
		"add/unc-extra-path":     answer("Add", shareIs(func(s string) bool { return strings.Count(s, `\`) > 4 }), client.EInvalidArg),
		"add/same-volume-share":  newCopyForThirdShare,
		"prepare/unknown-set":    code("Prepare", client.EShadowCopySetIDMismatch, client.EInvalidArg),
		"prepare/repeat":         answer("Prepare", func(d *deviant, req any) bool { d.mu.Lock(); defer d.mu.Unlock(); return d.prepared[setOf(req)] }, client.EBadState),
		"commit/unknown-set":     code("Commit", client.EShadowCopySetIDMismatch, client.EInvalidArg),
		"commit/repeat":          code("Commit", client.EBadState, 0),
		"commit/without-prepare": answer("Commit", func(d *deviant, req any) bool { d.mu.Lock(); defer d.mu.Unlock(); return !d.prepared[setOf(req)] }, client.EBadState),
		"expose/unknown-set":     code("Expose", client.EShadowCopySetIDMismatch, client.EInvalidArg),
		"recovery/unknown-set":   code("RecoveryComplete", client.EShadowCopySetIDMismatch, client.EInvalidArg),
		"abort/unknown-set":      code("Abort", client.EShadowCopySetIDMismatch, client.EInvalidArg),
		"mapping/unknown-set":    code("GetShareMapping", client.EShadowCopySetIDMismatch, client.EInvalidArg),
		"delete/unknown-set":     code("Delete", client.EObjectNotFound, client.EShadowCopySetIDMismatch),
		"args/null-set-id":       answer("Commit", func(_ *deviant, req any) bool { return setOf(req) == uuid.Nil }, client.EShadowCopySetIDMismatch),

		"state/started-refuses":              code("Prepare", client.EBadState, 0),
		"state/added-refuses":                code("Expose", client.EBadState, 0),
		"state/creation-in-progress-refuses": code("RecoveryComplete", client.EBadState, 0),
		"state/committed-refuses":            code("Add", client.EBadState, 0),
		"state/exposed-refuses":              code("Expose", client.EBadState, 0),
		"state/recovered-refuses":            code("GetShareMapping", client.EBadState, 0),

		"abort/started":   answer("Abort", nil, 0),
		"abort/added":     answer("Abort", nil, 0),
		"abort/committed": answer("Abort", nil, 0),
		"abort/exposed":   answer("Abort", nil, 0),
		"abort/recovered": answer("Abort", nil, 0),
		"abort/creation-in-progress": answer("Abort", func(d *deviant, req any) bool {
			d.mu.Lock()
			defer d.mu.Unlock()
			return d.timedOut[setOf(req)]
		}, client.EBadState),

		"mapping/level-checked-first": answer("GetShareMapping", func(d *deviant, req any) bool { return !knownSet(d, req) }, client.EShadowCopySetIDMismatch),
		"mapping/unknown-shadow-copy": code("GetShareMapping", client.EInvalidArg, client.EObjectNotFound),
		"mapping/share-not-in-set":    code("GetShareMapping", client.EInvalidArg, client.EObjectNotFound),
		"mapping/null-arguments": answer("GetShareMapping", func(_ *deviant, req any) bool {
			return uuidOf(req.(*fssagent.GetShareMappingRequest).ShadowCopyID) == uuid.Nil
		}, client.EObjectNotFound),
		"mapping/fields": then("GetShareMapping", func(_ *deviant, _ context.Context, _, resp any) {
			if m := mapping1(resp); m != nil {
				m.ShareNameUNC = `\\FAKE\` + uncShareName(m.ShareNameUNC)
			}
		}),

		"delete/unknown-shadow-copy": code("Delete", client.EObjectNotFound, client.EInvalidArg),
		"delete/unmapped-share":      code("Delete", client.EObjectNotFound, client.EInvalidArg),
		"delete/null-arguments": answer("Delete", func(_ *deviant, req any) bool {
			return uuidOf(req.(*fssagent.DeleteShareMappingRequest).ShadowCopyID) == uuid.Nil
		}, client.EObjectNotFound),
		"delete/last-mapping-removes-set": code("Delete", client.EObjectNotFound, 0),
		"delete/one-of-two": then("IsPathShadowCopied", func(d *deviant, _ context.Context, _, resp any) {
			if d.count("Delete") > 0 {
				resp.(*fssagent.IsPathShadowCopiedResponse).ShadowCopyPresent = true
			}
		}),
		"delete/exposed-set": answer("Delete", func(d *deviant, _ any) bool { d.mu.Lock(); defer d.mu.Unlock(); return d.context }, client.EBadState),

		"path/supported": then("IsPathSupported", func(_ *deviant, _ context.Context, _, resp any) {
			resp.(*fssagent.IsPathSupportedResponse).OwnerMachineName = ""
		}),
		"path/supported-missing":      code("IsPathSupported", client.EObjectNotFound, 0),
		"path/supported-foreign-host": answer("IsPathSupported", shareIs(func(s string) bool { return uncHost(s) != "127.0.0.1" }), client.EObjectNotFound),
		"path/invalid-names":          code("IsPathShadowCopied", client.EInvalidArg, client.EObjectNotFound),
		"path/shadow-copied-missing":  answer("IsPathShadowCopied", nil, client.ENotSupported),
		"path/shadow-copied-lifecycle": then("IsPathShadowCopied", func(_ *deviant, _ context.Context, _, resp any) {
			resp.(*fssagent.IsPathShadowCopiedResponse).ShadowCopyPresent = false
		}),

		"happy/one-share":          bareExposedName,
		"happy/two-volumes":        bareExposedName,
		"happy/same-volume-shares": newCopyForThirdShare,

		"timer/context-expires":       {realTimer: time.Minute},
		"timer/started-set-deleted":   {realTimer: time.Minute},
		"timer/added-set-deleted":     {realTimer: time.Minute},
		"timer/committed-set-deleted": {realTimer: time.Minute},
		"timer/exposed-set-deleted":   {realTimer: time.Minute},
		"timer/recovered-survives": then("RecoveryComplete", func(d *deviant, ctx context.Context, req, _ any) {
			id := setOf(req)
			go func() {
				time.Sleep(fakeTimer / 2)
				d.h.AbortShadowCopySet(context.WithoutCancel(ctx), &fssagent.AbortShadowCopySetRequest{ShadowCopySetID: wireGUID(id)})
			}()
		}),
		"timer/restarted-by-calls": then("SetContext", func(d *deviant, ctx context.Context, _, _ any) {
			go func() {
				time.Sleep(fakeTimer + fakeTimer/10)
				abortAll(d, context.WithoutCancel(ctx))
			}()
		}),

		"expose/point-in-time":          {files: func(f *fakeFiles) { f.liveExposed = true }},
		"expose/read-only":              {files: func(f *fakeFiles) { f.writableExposed = true }},
		"expose/auto-recovery-writable": {files: func(f *fakeFiles) { f.readOnlyExposed = true }},
		"expose/security-descriptor":    {files: func(f *fakeFiles) { f.exposedSD = []byte("O:SYD:(A;;FA;;;SY)") }},
		"expose/hidden-share": then("GetShareMapping", func(_ *deviant, _ context.Context, _, resp any) {
			if m := mapping1(resp); m != nil {
				m.ShadowCopyShareName = strings.TrimSuffix(m.ShadowCopyShareName, "$")
			}
		}),
		"expose/removed-on-delete": keepRemoved,
		"expose/removed-on-abort":  keepRemoved,
		"expose/removed-on-retry":  keepRemoved,
		"expose/removed-on-expiry": keepRemoved,

		"security/non-admin-denied":       {nonAdminAllowed: true},
		"security/unauthenticated-denied": {allowUnauth: true},
		"security/auth-levels":            {minConnect: true},
		"security/no-contact-named-host": first("Add", func(_ *deviant, _ context.Context, req any) {
			if c, err := net.DialTimeout("tcp", net.JoinHostPort(uncHost(shareOf(req)), "445"), time.Second); err == nil {
				c.Close()
			}
		}),

		"robust/malformed-share-names": answer("Add", shareIs(func(s string) bool { return strings.Contains(s, `\..\`) }), 0),
		"robust/long-share-names": {fault: func(_ string, req any) error {
			if len(shareOf(req)) > 10000 {
				return errors.New("share name too long")
			}
			return nil
		}},
		"robust/racing-clients": code("SetContext", client.EShadowCopySetInProgress, 0),
	}
	for _, v := range []uint32{client.CtxBackup, client.CtxFileShareBackup, client.CtxNASRollback, client.CtxAppRollback} {
		for _, attr := range []uint32{0, client.AttrAutoRecovery, client.AttrNoAutoRecovery} {
			m["happy/context-"+contextID(v|attr)] = contextRefused(v | attr)
		}
	}
	return m
}()

// contextID mirrors the check IDs of happy/context-*.
func contextID(v uint32) string {
	out := []byte(client.ContextName(v))
	for i, b := range out {
		if b == '_' || b == '+' {
			out[i] = '-'
		}
	}
	return string(out)
}
