package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fsrvpd/fsrvpd/client"
	"github.com/fsrvpd/fsrvpd/client/clienttest"
	"github.com/google/uuid"
)

func newClient(f *clienttest.Fake) *client.Client {
	return client.New(clienttest.Loopback(f), client.WithShareHost("srv"))
}

func TestCreateHappyPath(t *testing.T) {
	ctx := context.Background()
	f := clienttest.NewFake("share1", "share2")
	created := time.Date(2026, 11, 22, 2, 54, 54, 0, time.UTC)
	f.Now = func() time.Time { return created }
	c := newClient(f)

	res, err := c.Create(ctx, client.CreateRequest{Context: client.CtxFileShareBackup, Shares: []string{"share1", `\\other\share2\`}, RecoveryComplete: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"IsPathSupported", "IsPathSupported", "GetSupportedVersion", "SetContext", "StartShadowCopySet",
		"AddToShadowCopySet", "AddToShadowCopySet", "PrepareShadowCopySet", "CommitShadowCopySet", "ExposeShadowCopySet",
		"GetShareMapping", "GetShareMapping", "RecoveryCompleteShadowCopySet"}
	if strings.Join(f.Calls, ",") != strings.Join(want, ",") {
		t.Errorf("calls:\n got %v\nwant %v", f.Calls, want)
	}
	if !res.RecoveryCompleted || res.Context != client.CtxFileShareBackup || len(res.Mappings) != 2 {
		t.Fatalf("result %+v", res)
	}
	if st := f.Sets()[res.ShadowCopySetID]; st != "Recovered" {
		t.Errorf("set status %q", st)
	}
	m := res.Mappings[0]
	if m.ShareUNC != `\\srv\share1\` || m.ShadowCopySetID != res.ShadowCopySetID || m.ShadowCopyID == uuid.Nil ||
		m.ExposedName != `\\FAKESRV\share1@{`+m.ShadowCopyID.String()+`}` || !m.CreationTime.Equal(created) {
		t.Errorf("mapping 0: %+v", m)
	}
	if res.Mappings[1].ShareUNC != `\\other\share2\` {
		t.Errorf("UNC share must be sent as given: %q", res.Mappings[1].ShareUNC)
	}

	// Individual calls on the created set.
	present, _, err := c.IsPathShadowCopied(ctx, `\\srv\share1\`)
	if err != nil || !present {
		t.Errorf("IsPathShadowCopied = %v, %v", present, err)
	}
	if err := c.Delete(ctx, res.ShadowCopySetID, res.Mappings); err != nil {
		t.Fatal(err)
	}
	if len(f.Sets()) != 0 {
		t.Errorf("sets left after Delete: %v", f.Sets())
	}
	if f.CallCount("GetSupportedVersion") != 2 {
		t.Error("Delete must call GetSupportedVersion first")
	}
	// Deleting again: every mapping fails, all failures are reported.
	err = c.Delete(ctx, res.ShadowCopySetID, res.Mappings)
	if code, ok := client.Code(err); !ok || code != client.EObjectNotFound || strings.Count(err.Error(), "FSRVP_E_OBJECT_NOT_FOUND") != 2 {
		t.Errorf("second Delete: %v", err)
	}
}

func TestCreateWithoutRecoveryCompleteStaysExposed(t *testing.T) {
	f := clienttest.NewFake("share1")
	res, err := newClient(f).Create(context.Background(), client.CreateRequest{Shares: []string{"share1"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.RecoveryCompleted || f.CallCount("RecoveryCompleteShadowCopySet") != 0 || f.Sets()[res.ShadowCopySetID] != "Exposed" {
		t.Errorf("res %+v, sets %v", res, f.Sets())
	}
}

func TestCreateAbortsOnFailure(t *testing.T) {
	for _, op := range []string{"AddToShadowCopySet", "PrepareShadowCopySet", "CommitShadowCopySet", "ExposeShadowCopySet", "GetShareMapping", "RecoveryCompleteShadowCopySet"} {
		t.Run(op, func(t *testing.T) {
			f := clienttest.NewFake("share1")
			f.Fail[op] = client.EWaitFailed
			_, err := newClient(f).Create(context.Background(), client.CreateRequest{Shares: []string{"share1"}, RecoveryComplete: true})
			var he *client.HResultError
			if !errors.As(err, &he) || he.Op != op || he.Code != client.EWaitFailed {
				t.Fatalf("err = %v", err)
			}
			if f.CallCount("AbortShadowCopySet") != 1 || len(f.Sets()) != 0 {
				t.Errorf("abort calls %d, sets %v", f.CallCount("AbortShadowCopySet"), f.Sets())
			}
		})
	}
	// Failures before StartShadowCopySet leave nothing to abort.
	for _, op := range []string{"IsPathSupported", "GetSupportedVersion", "SetContext", "StartShadowCopySet"} {
		f := clienttest.NewFake("share1")
		f.Fail[op] = client.EAccessDenied
		_, err := newClient(f).Create(context.Background(), client.CreateRequest{Shares: []string{"share1"}})
		if code, _ := client.Code(err); code != client.EAccessDenied || f.CallCount("AbortShadowCopySet") != 0 {
			t.Errorf("%s: err %v, aborts %d", op, err, f.CallCount("AbortShadowCopySet"))
		}
	}
}

func TestCreateAbortsWhenContextCanceled(t *testing.T) {
	f := clienttest.NewFake("share1", "share2")
	ctx, cancel := context.WithCancel(context.Background())
	// Fail the second Add with a canceled context, the way Ctrl-C would.
	c := client.New(clienttest.Loopback(cancelOn{Fake: f, op: "add", cancel: cancel}), client.WithShareHost("srv"))
	_, err := c.Create(ctx, client.CreateRequest{Shares: []string{"share1", "share2"}})
	if err == nil || f.CallCount("AbortShadowCopySet") != 1 || len(f.Sets()) != 0 {
		t.Errorf("err %v, aborts %d, sets %v", err, f.CallCount("AbortShadowCopySet"), f.Sets())
	}
}

func TestCreateErrors(t *testing.T) {
	f := clienttest.NewFake("share1")
	c := newClient(f)
	if _, err := c.Create(context.Background(), client.CreateRequest{}); err == nil {
		t.Error("no shares must fail")
	}
	_, err := c.Create(context.Background(), client.CreateRequest{Shares: []string{"share1", "share1"}})
	if code, _ := client.Code(err); code != client.EObjectAlreadyExists || f.CallCount("AbortShadowCopySet") != 1 {
		t.Errorf("duplicate share: %v", err)
	}
	_, err = c.Create(context.Background(), client.CreateRequest{Shares: []string{"nosuch"}})
	if code, _ := client.Code(err); code != client.EObjectNotFound {
		t.Errorf("missing share: %v", err)
	}
	_, err = c.Create(context.Background(), client.CreateRequest{Context: 0x77, Shares: []string{"share1"}})
	if code, _ := client.Code(err); code != client.EUnsupportedContext {
		t.Errorf("bad context: %v", err)
	}
	v2 := client.New(clienttest.Loopback(versionServer{Fake: f}))
	if _, err := v2.Create(context.Background(), client.CreateRequest{Shares: []string{"share1"}}); !errors.Is(err, client.ErrUnsupportedVersion) {
		t.Errorf("version 2 server: %v", err)
	}
	if err := v2.Delete(context.Background(), uuid.New(), []client.Mapping{{ShareUNC: "x"}}); !errors.Is(err, client.ErrUnsupportedVersion) {
		t.Errorf("version 2 server, Delete: %v", err)
	}
}

func TestTransportErrorFromServerError(t *testing.T) {
	c := client.New(clienttest.Loopback(brokenServer{Fake: clienttest.NewFake()}))
	_, _, err := c.GetSupportedVersion(context.Background())
	if !client.IsTransport(err) {
		t.Errorf("err %v should be a transport error", err)
	}
	if _, ok := client.Code(err); ok {
		t.Error("no code expected")
	}
}

func TestSingleCalls(t *testing.T) {
	ctx := context.Background()
	f := clienttest.NewFake("share1")
	c := newClient(f)
	if min, max, err := c.GetSupportedVersion(ctx); err != nil || min != 1 || max != 1 {
		t.Errorf("GetSupportedVersion = %d, %d, %v", min, max, err)
	}
	if ok, owner, err := c.IsPathSupported(ctx, c.ResolveShare("share1")); err != nil || !ok || owner != "FAKESRV" {
		t.Errorf("IsPathSupported = %v %q %v", ok, owner, err)
	}
	if _, err := c.StartShadowCopySet(ctx, uuid.New()); !isCode(err, client.EBadState) {
		t.Errorf("Start without context: %v", err)
	}
	if err := c.SetContext(ctx, client.CtxBackup); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StartShadowCopySet(ctx, uuid.Nil); !isCode(err, client.EInvalidArg) {
		t.Errorf("Start with nil id: %v", err)
	}
	set, err := c.StartShadowCopySet(ctx, uuid.New())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddToShadowCopySet(ctx, uuid.New(), uuid.New(), c.ResolveShare("share1")); !isCode(err, client.EShadowCopySetIDMismatch) {
		t.Errorf("Add to unknown set: %v", err)
	}
	sc, err := c.AddToShadowCopySet(ctx, uuid.New(), set, c.ResolveShare("share1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetShareMapping(ctx, sc, set, c.ResolveShare("share1"), 1); !isCode(err, client.EBadState) {
		t.Errorf("GetShareMapping before expose: %v", err)
	}
	for _, step := range []func() error{
		func() error { return c.PrepareShadowCopySet(ctx, set, time.Minute) },
		func() error { return c.CommitShadowCopySet(ctx, set, time.Minute) },
		func() error { return c.ExposeShadowCopySet(ctx, set, time.Minute) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.GetShareMapping(ctx, sc, set, c.ResolveShare("share1"), 2); !isCode(err, client.EInvalidArg) {
		t.Errorf("level 2: %v", err)
	}
	m, err := c.GetShareMapping(ctx, sc, set, c.ResolveShare("share1"), client.ShareMappingLevel1)
	if err != nil || m.ShadowCopyID != sc || m.ShadowCopySetID != set {
		t.Errorf("GetShareMapping = %+v, %v", m, err)
	}
	if err := c.RecoveryCompleteShadowCopySet(ctx, set); err != nil {
		t.Fatal(err)
	}
	if err := c.RecoveryCompleteShadowCopySet(ctx, set); !isCode(err, client.EBadState) {
		t.Errorf("second RecoveryComplete: %v", err)
	}
	if err := c.DeleteShareMapping(ctx, set, sc, c.ResolveShare("share1")); err != nil {
		t.Fatal(err)
	}
	if err := c.AbortShadowCopySet(ctx, set); !isCode(err, client.EShadowCopySetIDMismatch) {
		t.Errorf("abort deleted set: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close of a New client: %v", err)
	}
}

func isCode(err error, code uint32) bool {
	c, ok := client.Code(err)
	return ok && c == code
}
