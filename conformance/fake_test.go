package conformance_test

// An in-process FSRVP server for the deviation tests: fsrvpd's own state
// machine (server/fsrvp over the dir backend and an in-memory exposer),
// served by our rpc runtime on loopback TCP behind a deviant, a
// FileServerVSSAgentServer that changes what the real one answers in one
// chosen way. The SMB side of the exposure checks is fakeFiles, which
// reads and writes the directories the exposer publishes.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/oiweiwei/go-msrpc/msrpc/dtyp"
	fssagent "github.com/oiweiwei/go-msrpc/msrpc/fsrvp/fileservervssagent/v1"
	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/client"
	"github.com/fsrvpd/fsrvpd/conformance"
	"github.com/fsrvpd/fsrvpd/rpc"
	"github.com/fsrvpd/fsrvpd/rpc/auth/ntlm"
	"github.com/fsrvpd/fsrvpd/server/fsrvp"
	"github.com/fsrvpd/fsrvpd/server/state"
	"github.com/fsrvpd/fsrvpd/shares"
	"github.com/fsrvpd/fsrvpd/shares/sharestest"
	"github.com/fsrvpd/fsrvpd/storage"
	"github.com/fsrvpd/fsrvpd/storage/dir"
)

// deviation is one way of being wrong. Hooks see every call; before may
// answer a call instead of the real server, after may change the real
// answer (rc is its return code; resp may be modified).
type deviation struct {
	before func(d *deviant, ctx context.Context, op string, req any) (rc uint32, answered bool)
	after  func(d *deviant, ctx context.Context, op string, req, resp any, rc uint32) uint32
	// fault, if it returns an error, makes the call a fault PDU.
	fault func(op string, req any) error
	// files changes the SMB side.
	files func(f *fakeFiles)
	// realTimer, if set, is the server's actual timer, unlike the one the
	// Target declares.
	realTimer time.Duration
	// allowUnauth lets unauthenticated clients in; nonAdminAllowed lets
	// the non-administrator in; minConnect accepts binds at level CONNECT.
	allowUnauth, nonAdminAllowed, minConnect bool
}

func (d deviation) none() bool {
	return d.before == nil && d.after == nil && d.fault == nil && d.files == nil && d.realTimer == 0 && !d.allowUnauth && !d.nonAdminAllowed && !d.minConnect
}

// deviant wraps the real handler h with a deviation, and tracks what the
// hooks may want to know.
type deviant struct {
	h   fssagent.FileServerVSSAgentServer
	dev deviation

	mu       sync.Mutex
	context  bool // SetContext succeeded and no Abort/RecoveryComplete since
	sets     []uuid.UUID
	prepared map[uuid.UUID]bool
	timedOut map[uuid.UUID]bool // Commit answered FSSAGENT_E_TIMEOUT
	calls    map[string]int
}

func (d *deviant) count(op string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls[op]
}

func (d *deviant) track(op string, req, resp any, rc uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls[op]++
	if rc != 0 {
		if op == "Commit" && rc == client.ETimeout {
			d.timedOut[setOf(req)] = true
		}
		return
	}
	switch op {
	case "SetContext":
		d.context = true
	case "Abort", "RecoveryComplete":
		d.context = false
	case "Start":
		d.sets = append(d.sets, uuidOf(resp.(*fssagent.StartShadowCopySetResponse).ShadowCopySetID))
	case "Prepare":
		d.prepared[setOf(req)] = true
	case "Commit":
		delete(d.timedOut, setOf(req))
	}
}

// setOf is the ShadowCopySetId of a request.
func setOf(req any) uuid.UUID {
	switch r := req.(type) {
	case *fssagent.AddToShadowCopySetRequest:
		return uuidOf(r.ShadowCopySetID)
	case *fssagent.PrepareShadowCopySetRequest:
		return uuidOf(r.ShadowCopySetID)
	case *fssagent.CommitShadowCopySetRequest:
		return uuidOf(r.ShadowCopySetID)
	case *fssagent.ExposeShadowCopySetRequest:
		return uuidOf(r.ShadowCopySetID)
	case *fssagent.RecoveryCompleteShadowCopySetRequest:
		return uuidOf(r.ShadowCopySetID)
	case *fssagent.AbortShadowCopySetRequest:
		return uuidOf(r.ShadowCopySetID)
	case *fssagent.GetShareMappingRequest:
		return uuidOf(r.ShadowCopySetID)
	case *fssagent.DeleteShareMappingRequest:
		return uuidOf(r.ShadowCopySetID)
	}
	return uuid.Nil
}

// shareOf is the ShareName of a request, "" if it has none.
func shareOf(req any) string {
	switch r := req.(type) {
	case *fssagent.AddToShadowCopySetRequest:
		return r.ShareName
	case *fssagent.IsPathSupportedRequest:
		return r.ShareName
	case *fssagent.IsPathShadowCopiedRequest:
		return r.ShareName
	case *fssagent.GetShareMappingRequest:
		return r.ShareName
	case *fssagent.DeleteShareMappingRequest:
		return r.ShareName
	}
	return ""
}

func uuidOf(g *dtyp.GUID) uuid.UUID {
	if g == nil || len(g.Data4) != 8 {
		return uuid.Nil
	}
	return uuid.UUID{byte(g.Data1 >> 24), byte(g.Data1 >> 16), byte(g.Data1 >> 8), byte(g.Data1),
		byte(g.Data2 >> 8), byte(g.Data2), byte(g.Data3 >> 8), byte(g.Data3),
		g.Data4[0], g.Data4[1], g.Data4[2], g.Data4[3], g.Data4[4], g.Data4[5], g.Data4[6], g.Data4[7]}
}

func wireGUID(u uuid.UUID) *dtyp.GUID {
	return &dtyp.GUID{Data1: uint32(u[0])<<24 | uint32(u[1])<<16 | uint32(u[2])<<8 | uint32(u[3]),
		Data2: uint16(u[4])<<8 | uint16(u[5]), Data3: uint16(u[6])<<8 | uint16(u[7]), Data4: append([]byte(nil), u[8:]...)}
}

// serve is one method: hooks around the real call.
func serve[Req, Resp any](d *deviant, ctx context.Context, op string, req *Req, real func(context.Context, *Req) (*Resp, error), ret func(*Resp) *uint32) (*Resp, error) {
	if d.dev.fault != nil {
		if err := d.dev.fault(op, req); err != nil {
			return nil, err
		}
	}
	if d.dev.before != nil {
		if rc, ok := d.dev.before(d, ctx, op, req); ok {
			resp := new(Resp)
			*ret(resp) = rc
			switch r := any(resp).(type) {
			case *fssagent.StartShadowCopySetResponse:
				r.ShadowCopySetID = wireGUID(uuid.Nil)
			case *fssagent.AddToShadowCopySetResponse:
				r.ShadowCopyID = wireGUID(uuid.Nil)
			}
			return resp, nil
		}
	}
	resp, err := real(ctx, req)
	if err != nil || resp == nil {
		return resp, err
	}
	d.track(op, req, resp, *ret(resp))
	if d.dev.after != nil {
		*ret(resp) = d.dev.after(d, ctx, op, req, resp, *ret(resp))
	}
	return resp, nil
}

var _ fssagent.FileServerVSSAgentServer = (*deviant)(nil)

func (d *deviant) GetSupportedVersion(ctx context.Context, r *fssagent.GetSupportedVersionRequest) (*fssagent.GetSupportedVersionResponse, error) {
	return serve(d, ctx, "GetSupportedVersion", r, d.h.GetSupportedVersion, func(x *fssagent.GetSupportedVersionResponse) *uint32 { return &x.Return })
}
func (d *deviant) SetContext(ctx context.Context, r *fssagent.SetContextRequest) (*fssagent.SetContextResponse, error) {
	return serve(d, ctx, "SetContext", r, d.h.SetContext, func(x *fssagent.SetContextResponse) *uint32 { return &x.Return })
}
func (d *deviant) StartShadowCopySet(ctx context.Context, r *fssagent.StartShadowCopySetRequest) (*fssagent.StartShadowCopySetResponse, error) {
	return serve(d, ctx, "Start", r, d.h.StartShadowCopySet, func(x *fssagent.StartShadowCopySetResponse) *uint32 { return &x.Return })
}
func (d *deviant) AddToShadowCopySet(ctx context.Context, r *fssagent.AddToShadowCopySetRequest) (*fssagent.AddToShadowCopySetResponse, error) {
	return serve(d, ctx, "Add", r, d.h.AddToShadowCopySet, func(x *fssagent.AddToShadowCopySetResponse) *uint32 { return &x.Return })
}
func (d *deviant) CommitShadowCopySet(ctx context.Context, r *fssagent.CommitShadowCopySetRequest) (*fssagent.CommitShadowCopySetResponse, error) {
	return serve(d, ctx, "Commit", r, d.h.CommitShadowCopySet, func(x *fssagent.CommitShadowCopySetResponse) *uint32 { return &x.Return })
}
func (d *deviant) ExposeShadowCopySet(ctx context.Context, r *fssagent.ExposeShadowCopySetRequest) (*fssagent.ExposeShadowCopySetResponse, error) {
	return serve(d, ctx, "Expose", r, d.h.ExposeShadowCopySet, func(x *fssagent.ExposeShadowCopySetResponse) *uint32 { return &x.Return })
}
func (d *deviant) RecoveryCompleteShadowCopySet(ctx context.Context, r *fssagent.RecoveryCompleteShadowCopySetRequest) (*fssagent.RecoveryCompleteShadowCopySetResponse, error) {
	return serve(d, ctx, "RecoveryComplete", r, d.h.RecoveryCompleteShadowCopySet, func(x *fssagent.RecoveryCompleteShadowCopySetResponse) *uint32 { return &x.Return })
}
func (d *deviant) AbortShadowCopySet(ctx context.Context, r *fssagent.AbortShadowCopySetRequest) (*fssagent.AbortShadowCopySetResponse, error) {
	return serve(d, ctx, "Abort", r, d.h.AbortShadowCopySet, func(x *fssagent.AbortShadowCopySetResponse) *uint32 { return &x.Return })
}
func (d *deviant) IsPathSupported(ctx context.Context, r *fssagent.IsPathSupportedRequest) (*fssagent.IsPathSupportedResponse, error) {
	return serve(d, ctx, "IsPathSupported", r, d.h.IsPathSupported, func(x *fssagent.IsPathSupportedResponse) *uint32 { return &x.Return })
}
func (d *deviant) IsPathShadowCopied(ctx context.Context, r *fssagent.IsPathShadowCopiedRequest) (*fssagent.IsPathShadowCopiedResponse, error) {
	return serve(d, ctx, "IsPathShadowCopied", r, d.h.IsPathShadowCopied, func(x *fssagent.IsPathShadowCopiedResponse) *uint32 { return &x.Return })
}
func (d *deviant) GetShareMapping(ctx context.Context, r *fssagent.GetShareMappingRequest) (*fssagent.GetShareMappingResponse, error) {
	return serve(d, ctx, "GetShareMapping", r, d.h.GetShareMapping, func(x *fssagent.GetShareMappingResponse) *uint32 { return &x.Return })
}
func (d *deviant) DeleteShareMapping(ctx context.Context, r *fssagent.DeleteShareMappingRequest) (*fssagent.DeleteShareMappingResponse, error) {
	return serve(d, ctx, "Delete", r, d.h.DeleteShareMapping, func(x *fssagent.DeleteShareMappingResponse) *uint32 { return &x.Return })
}
func (d *deviant) PrepareShadowCopySet(ctx context.Context, r *fssagent.PrepareShadowCopySetRequest) (*fssagent.PrepareShadowCopySetResponse, error) {
	return serve(d, ctx, "Prepare", r, d.h.PrepareShadowCopySet, func(x *fssagent.PrepareShadowCopySetResponse) *uint32 { return &x.Return })
}

// slowBackend delays every snapshot, so that a 1 ms Commit times out
// (the CreationInProgress checks).
type slowBackend struct{ storage.Backend }

func (b slowBackend) Create(ctx context.Context, vol storage.Volume, id string, o storage.CreateOptions) (storage.Snapshot, error) {
	select {
	case <-time.After(50 * time.Millisecond):
	case <-ctx.Done():
		return storage.Snapshot{}, ctx.Err()
	}
	return b.Backend.Create(ctx, vol, id, o)
}

// fakeServer is a running in-process server.
type fakeServer struct {
	dev     *deviant
	exposer *sharestest.Exposer
	base    map[string]string // base share name → path
	files   *fakeFiles
	canary  string
}

// Shares of the fake: share1 and share3 on vol1, share2 on vol2, hidden$
// on vol1.
var fakeShares = []struct{ name, vol string }{{"share1", "vol1"}, {"share2", "vol2"}, {"share3", "vol1"}, {"hidden$", "vol1"}}

// newFakeServer starts a server with deviation dev whose message sequence
// timer is timer (0: the spec's), and returns a Target for it with every
// option set.
func newFakeServer(t *testing.T, dev deviation, timer time.Duration) (conformance.Target, *fakeServer) {
	t.Helper()
	root := t.TempDir()
	var vols []string
	for _, v := range []string{"vol1", "vol2"} {
		vols = append(vols, filepath.Join(root, v))
	}
	fs := &fakeServer{exposer: &sharestest.Exposer{}, base: map[string]string{}}
	var list []shares.BaseShare
	for _, s := range fakeShares {
		p := filepath.Join(root, s.vol, s.name)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		list = append(list, shares.BaseShare{Name: s.name, Path: p})
		fs.base[s.name] = p
	}
	resolver, err := shares.NewStatic(list)
	if err != nil {
		t.Fatal(err)
	}
	backend, err := dir.New(dir.Config{Volumes: vols, SnapshotDir: filepath.Join(root, "snapshots")})
	if err != nil {
		t.Fatal(err)
	}
	db, err := state.Open(filepath.Join(root, "state.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	logger := logrus.New()
	logger.Out = testLogWriter{t}
	logger.Level = logrus.WarnLevel
	real := timer
	if dev.realTimer > 0 {
		real = dev.realTimer
	}
	svc, err := fsrvp.New(fsrvp.Config{
		Backend: slowBackend{backend}, Shares: resolver, Exposer: fs.exposer, DB: db,
		Logger: logrus.NewEntry(logger), ServerName: "FAKE",
		ShortTimeout: real, LongTimeout: real,
		Prepare: func(context.Context, []string) error { return nil },
		Access:  fsrvp.AccessPolicy{AllowUnauthenticated: dev.allowUnauth, MinLevel: map[bool]uint8{true: rpc.AuthLevelConnect}[dev.minConnect]},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	var extra []string
	if dev.nonAdminAllowed {
		extra = []string{nonAdminSID}
	}
	fs.dev = &deviant{h: fsrvp.Handler{S: svc, BackupSIDs: extra}, dev: dev, prepared: map[uuid.UUID]bool{}, timedOut: map[uuid.UUID]bool{}, calls: map[string]int{}}
	accounts := ntlm.NewAccounts([]ntlm.Account{{User: fakeAdmin, NTHash: ntlm.NTHash(fakePassword), SIDs: []string{"S-1-5-21-1-2-3-500", rpc.SIDAdministrators}}})
	srv := &rpc.Server{Logger: logrus.NewEntry(logger),
		Auth: []rpc.AuthProvider{ntlm.NewProvider(ntlm.Config{ServerName: "FAKE", DomainName: "FAKEDOM", Verifier: accounts})}}
	srv.Register(fssagent.FileServerVSSAgentSyntaxV1_0, fssagent.NewFileServerVSSAgentServerHandle(fs.dev))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	listen := func(s *rpc.Session) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				nc, err := l.Accept()
				if err != nil {
					return
				}
				go srv.ServeConn(nc, rpc.ConnInfo{Transport: rpc.TransportTCP, Session: s})
			}
		}()
		return l.Addr().String()
	}
	admin := listen(&rpc.Session{User: "root", HasUnixToken: true})
	nonAdmin := listen(&rpc.Session{User: "user", HasUnixToken: true, UID: 1000, GID: 1000, SIDs: []string{nonAdminSID, "S-1-5-32-545"}})
	unauth := listen(nil)
	dial := func(addr string) conformance.Dialer {
		return conformance.TCPDialer(addr, client.WithTimeout(30*time.Second))
	}
	second, err := conformance.TCPDialerFrom(admin, "127.0.0.2", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	fs.files = &fakeFiles{fs: fs, seen: map[string]string{}}
	if dev.files != nil {
		dev.files(fs.files)
	}
	fs.canary = fmt.Sprintf("127.%d.%d.%d", 100+os.Getpid()%100, time.Now().Nanosecond()%250+1, len(t.Name())%250+1)
	return conformance.Target{
		Name: "in-process fsrvpd" + map[bool]string{false: " (deviant)", true: ""}[dev.none()],
		AuthDial: func(level string) conformance.Dialer {
			return conformance.TCPDialer(unauth, client.WithTimeout(30*time.Second), client.WithAuth(client.Auth{
				User: fakeAdmin, Domain: "FAKEDOM", Password: fakePassword, Level: level, Mechanism: client.MechanismNTLM}))
		},
		Dial: dial(admin), SecondDial: second, NonAdminDial: dial(nonAdmin), UnauthDial: dial(unauth),
		Shares: []string{"share1", "share2"}, SameVolumeShare: "share3", HiddenShare: "hidden$",
		ShareHost: "127.0.0.1", ServerTimer: timer, Canary: fs.canary,
		Files:        func(context.Context) (conformance.Files, error) { return fs.files, nil },
		CheckTimeout: time.Minute,
	}, fs
}

type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

const (
	nonAdminSID  = "S-1-5-21-1-2-3-1000"
	fakeAdmin    = "admin"
	fakePassword = "fake-admin-pw"
)

// fakeFiles is the SMB side of the fake: base shares are their
// directories, exposed shares what the exposer published (read-only ones
// refuse writes); every share's security descriptor is sd[name], by
// default one shared value, and exposed shares take their base's.
type fakeFiles struct {
	fs *fakeServer
	// writableExposed and readOnlyExposed make exposed shares writable or
	// read-only whatever the exposer says; liveExposed serves the base
	// share's live directory instead of the snapshot; keepRemoved keeps
	// removed shares connectable and listed; exposedSD is the descriptor
	// of every exposed share.
	writableExposed, readOnlyExposed, liveExposed, keepRemoved bool
	exposedSD                                                  []byte

	mu   sync.Mutex
	seen map[string]string // every exposed share met: lower-case name → path
}

func (f *fakeFiles) lookup(share string) (path string, readOnly bool, base string, err error) {
	for name, p := range f.fs.base {
		if strings.EqualFold(name, share) {
			return p, false, name, nil
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.fs.exposer.Get(share); ok {
		p := s.Path
		if f.liveExposed {
			p = f.fs.base[s.Base]
		}
		f.seen[strings.ToLower(s.Name)] = p
		return p, (s.ReadOnly || f.readOnlyExposed) && !f.writableExposed, s.Base, nil
	}
	if p, ok := f.seen[strings.ToLower(share)]; ok && f.keepRemoved {
		return p, true, "", nil
	}
	return "", false, "", fmt.Errorf("tree connect %s: STATUS_BAD_NETWORK_NAME", share)
}

func (f *fakeFiles) ReadFile(_ context.Context, share, name string) ([]byte, error) {
	p, _, _, err := f.lookup(share)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(filepath.Join(p, name))
}

func (f *fakeFiles) WriteFile(_ context.Context, share, name string, data []byte) error {
	p, ro, _, err := f.lookup(share)
	if err != nil {
		return err
	}
	if ro {
		return errors.New("STATUS_ACCESS_DENIED (read-only share)")
	}
	return os.WriteFile(filepath.Join(p, name), data, 0o644)
}

func (f *fakeFiles) Remove(_ context.Context, share, name string) error {
	p, ro, _, err := f.lookup(share)
	if err != nil {
		return err
	}
	if ro {
		return errors.New("STATUS_ACCESS_DENIED (read-only share)")
	}
	return os.Remove(filepath.Join(p, name))
}

func (f *fakeFiles) Connect(_ context.Context, share string) error {
	_, _, _, err := f.lookup(share)
	return err
}

func (f *fakeFiles) ShareNames(context.Context) ([]string, error) {
	var out []string
	for name := range f.fs.base {
		out = append(out, name)
	}
	for _, s := range f.fs.exposer.Shares() {
		out = append(out, s.Name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.keepRemoved {
		for name := range f.seen {
			if !slices.ContainsFunc(out, func(n string) bool { return strings.EqualFold(n, name) }) {
				out = append(out, name)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

func (f *fakeFiles) ShareSD(_ context.Context, share string) ([]byte, error) {
	_, _, base, err := f.lookup(share)
	if err != nil {
		return nil, err
	}
	if f.exposedSD != nil && !strings.EqualFold(base, share) {
		return f.exposedSD, nil
	}
	return []byte("O:BAG:BAD:(A;;FA;;;WD)"), nil
}

func (f *fakeFiles) Close() error { return nil }
