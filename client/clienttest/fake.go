// Package clienttest provides test doubles for code that uses package client:
// Fake, a small in-memory FSRVP server (the happy path of MS-FSRVP §3.1.4 and
// its common errors), and Loopback, which lets a client.Client call a
// FileServerVSSAgentServer directly, without DCE/RPC.
//
// Fake implements go-msrpc's FileServerVSSAgentServer, so the same double can
// also sit behind a real RPC server in end-to-end tests.
package clienttest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/oiweiwei/go-msrpc/dcerpc"
	"github.com/oiweiwei/go-msrpc/msrpc/dtyp"
	fsrvp "github.com/oiweiwei/go-msrpc/msrpc/fsrvp/fileservervssagent/v1"

	"github.com/fsrvpd/fsrvpd/rpc/msdtyp"
)

// Return codes used by Fake (the same values as the client.E* constants;
// repeated here so that this package does not depend on client).
const (
	eInvalidArg           = 0x80070057
	eBadState             = 0x80042301
	eObjectNotFound       = 0x80042308
	eObjectAlreadyExists  = 0x8004230D
	eInProgress           = 0x80042316
	eUnsupportedContext   = 0x8004231B
	eSetIDMismatch        = 0x80042501
	statusStarted         = "Started"
	statusAdded           = "Added"
	statusCommitted       = "Committed"
	statusExposed         = "Exposed"
	statusRecovered       = "Recovered"
	defaultExposeHostName = "FAKESRV"
)

// Fake is an in-memory FSRVP server. The zero value is not usable; call
// NewFake. All methods are safe for concurrent use.
type Fake struct {
	fsrvp.UnimplementedFileServerVSSAgentServer

	mu sync.Mutex
	// Shares that exist (lower-case share names, not UNC).
	shares map[string]bool
	// Fail makes the named method (e.g. "CommitShadowCopySet") return the
	// code instead of running.
	Fail map[string]uint32
	// Calls records the method names called, in order.
	Calls []string
	// Host is the host part of exposed share names.
	Host string
	// Now returns the creation time of shadow copies.
	Now func() time.Time

	contextSet bool
	context    uint32
	sets       map[uuid.UUID]*fakeSet
}

type fakeSet struct {
	id      uuid.UUID
	status  string
	context uint32
	copies  []*fakeCopy
}

type fakeCopy struct {
	id      uuid.UUID
	share   string // UNC as sent
	name    string // lower-case share name
	created time.Time
	exposed string
}

// NewFake returns a Fake that serves the given share names.
func NewFake(shares ...string) *Fake {
	f := &Fake{shares: map[string]bool{}, Fail: map[string]uint32{}, Host: defaultExposeHostName,
		Now: time.Now, sets: map[uuid.UUID]*fakeSet{}}
	for _, s := range shares {
		f.shares[strings.ToLower(s)] = true
	}
	return f
}

// Sets returns the ids of the sets the server holds, with their status.
func (f *Fake) Sets() map[uuid.UUID]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[uuid.UUID]string{}
	for id, s := range f.sets {
		out[id] = s.status
	}
	return out
}

// CallCount returns how many times method was called.
func (f *Fake) CallCount(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.Calls {
		if c == method {
			n++
		}
	}
	return n
}

// enter records the call and returns an injected failure code, if any.
func (f *Fake) enter(method string) uint32 {
	f.Calls = append(f.Calls, method)
	return f.Fail[method]
}

func shareName(unc string) string {
	rest, ok := strings.CutPrefix(unc, `\\`)
	if !ok {
		return ""
	}
	_, rest, ok = strings.Cut(rest, `\`)
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, `\`)
	return strings.ToLower(name)
}

func (f *Fake) set(g *dtyp.GUID) *fakeSet { return f.sets[msdtyp.UUID(g)] }

func (f *Fake) GetSupportedVersion(ctx context.Context, req *fsrvp.GetSupportedVersionRequest) (*fsrvp.GetSupportedVersionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if rc := f.enter("GetSupportedVersion"); rc != 0 {
		return &fsrvp.GetSupportedVersionResponse{Return: rc}, nil
	}
	return &fsrvp.GetSupportedVersionResponse{MinVersion: 1, MaxVersion: 1}, nil
}

func (f *Fake) SetContext(ctx context.Context, req *fsrvp.SetContextRequest) (*fsrvp.SetContextResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if rc := f.enter("SetContext"); rc != 0 {
		return &fsrvp.SetContextResponse{Return: rc}, nil
	}
	switch req.Context &^ 0x00400000 {
	case 0x0, 0x10, 0x19, 0x9:
	default:
		return &fsrvp.SetContextResponse{Return: eUnsupportedContext}, nil
	}
	f.contextSet, f.context = true, req.Context
	return &fsrvp.SetContextResponse{}, nil
}

func (f *Fake) StartShadowCopySet(ctx context.Context, req *fsrvp.StartShadowCopySetRequest) (*fsrvp.StartShadowCopySetResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if rc := f.enter("StartShadowCopySet"); rc != 0 {
		return &fsrvp.StartShadowCopySetResponse{Return: rc}, nil
	}
	if msdtyp.UUID(req.ClientShadowCopySetID) == uuid.Nil {
		return &fsrvp.StartShadowCopySetResponse{Return: eInvalidArg}, nil
	}
	if !f.contextSet {
		return &fsrvp.StartShadowCopySetResponse{Return: eBadState}, nil
	}
	for _, s := range f.sets {
		if s.status != statusRecovered {
			return &fsrvp.StartShadowCopySetResponse{Return: eInProgress}, nil
		}
	}
	s := &fakeSet{id: uuid.New(), status: statusStarted, context: f.context}
	f.sets[s.id] = s
	return &fsrvp.StartShadowCopySetResponse{ShadowCopySetID: msdtyp.GUID(s.id)}, nil
}

func (f *Fake) AddToShadowCopySet(ctx context.Context, req *fsrvp.AddToShadowCopySetRequest) (*fsrvp.AddToShadowCopySetResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if rc := f.enter("AddToShadowCopySet"); rc != 0 {
		return &fsrvp.AddToShadowCopySetResponse{Return: rc}, nil
	}
	name := shareName(req.ShareName)
	if !f.shares[name] {
		return &fsrvp.AddToShadowCopySetResponse{Return: eObjectNotFound}, nil
	}
	s := f.set(req.ShadowCopySetID)
	if s == nil {
		return &fsrvp.AddToShadowCopySetResponse{Return: eSetIDMismatch}, nil
	}
	if s.status != statusStarted && s.status != statusAdded {
		return &fsrvp.AddToShadowCopySetResponse{Return: eBadState}, nil
	}
	for _, c := range s.copies {
		if c.name == name {
			return &fsrvp.AddToShadowCopySetResponse{Return: eObjectAlreadyExists}, nil
		}
	}
	c := &fakeCopy{id: uuid.New(), share: req.ShareName, name: name, created: f.Now()}
	s.copies = append(s.copies, c)
	s.status = statusAdded
	return &fsrvp.AddToShadowCopySetResponse{ShadowCopyID: msdtyp.GUID(c.id)}, nil
}

// step checks the set and its status for Prepare/Commit/Expose/Recovery.
func (f *Fake) step(g *dtyp.GUID, want, next string) uint32 {
	s := f.set(g)
	if s == nil {
		return eSetIDMismatch
	}
	if s.status != want {
		return eBadState
	}
	s.status = next
	return 0
}

func (f *Fake) PrepareShadowCopySet(ctx context.Context, req *fsrvp.PrepareShadowCopySetRequest) (*fsrvp.PrepareShadowCopySetResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if rc := f.enter("PrepareShadowCopySet"); rc != 0 {
		return &fsrvp.PrepareShadowCopySetResponse{Return: rc}, nil
	}
	return &fsrvp.PrepareShadowCopySetResponse{Return: f.step(req.ShadowCopySetID, statusAdded, statusAdded)}, nil
}

func (f *Fake) CommitShadowCopySet(ctx context.Context, req *fsrvp.CommitShadowCopySetRequest) (*fsrvp.CommitShadowCopySetResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if rc := f.enter("CommitShadowCopySet"); rc != 0 {
		return &fsrvp.CommitShadowCopySetResponse{Return: rc}, nil
	}
	return &fsrvp.CommitShadowCopySetResponse{Return: f.step(req.ShadowCopySetID, statusAdded, statusCommitted)}, nil
}

func (f *Fake) ExposeShadowCopySet(ctx context.Context, req *fsrvp.ExposeShadowCopySetRequest) (*fsrvp.ExposeShadowCopySetResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if rc := f.enter("ExposeShadowCopySet"); rc != 0 {
		return &fsrvp.ExposeShadowCopySetResponse{Return: rc}, nil
	}
	rc := f.step(req.ShadowCopySetID, statusCommitted, statusExposed)
	if rc == 0 {
		for _, c := range f.set(req.ShadowCopySetID).copies {
			c.exposed = fmt.Sprintf(`\\%s\%s@{%s}`, f.Host, c.name, c.id)
		}
	}
	return &fsrvp.ExposeShadowCopySetResponse{Return: rc}, nil
}

func (f *Fake) RecoveryCompleteShadowCopySet(ctx context.Context, req *fsrvp.RecoveryCompleteShadowCopySetRequest) (*fsrvp.RecoveryCompleteShadowCopySetResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if rc := f.enter("RecoveryCompleteShadowCopySet"); rc != 0 {
		return &fsrvp.RecoveryCompleteShadowCopySetResponse{Return: rc}, nil
	}
	rc := f.step(req.ShadowCopySetID, statusExposed, statusRecovered)
	if rc == 0 {
		f.contextSet = false
	}
	return &fsrvp.RecoveryCompleteShadowCopySetResponse{Return: rc}, nil
}

func (f *Fake) AbortShadowCopySet(ctx context.Context, req *fsrvp.AbortShadowCopySetRequest) (*fsrvp.AbortShadowCopySetResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if rc := f.enter("AbortShadowCopySet"); rc != 0 {
		return &fsrvp.AbortShadowCopySetResponse{Return: rc}, nil
	}
	if f.set(req.ShadowCopySetID) == nil {
		return &fsrvp.AbortShadowCopySetResponse{Return: eSetIDMismatch}, nil
	}
	delete(f.sets, msdtyp.UUID(req.ShadowCopySetID))
	f.contextSet = false
	return &fsrvp.AbortShadowCopySetResponse{}, nil
}

func (f *Fake) IsPathSupported(ctx context.Context, req *fsrvp.IsPathSupportedRequest) (*fsrvp.IsPathSupportedResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if rc := f.enter("IsPathSupported"); rc != 0 {
		return &fsrvp.IsPathSupportedResponse{Return: rc}, nil
	}
	if !f.shares[shareName(req.ShareName)] {
		return &fsrvp.IsPathSupportedResponse{Return: eObjectNotFound}, nil
	}
	return &fsrvp.IsPathSupportedResponse{SupportedByThisProvider: true, OwnerMachineName: f.Host}, nil
}

func (f *Fake) IsPathShadowCopied(ctx context.Context, req *fsrvp.IsPathShadowCopiedRequest) (*fsrvp.IsPathShadowCopiedResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if rc := f.enter("IsPathShadowCopied"); rc != 0 {
		return &fsrvp.IsPathShadowCopiedResponse{Return: rc}, nil
	}
	name := shareName(req.ShareName)
	if !f.shares[name] {
		return &fsrvp.IsPathShadowCopiedResponse{Return: eObjectNotFound}, nil
	}
	for _, s := range f.sets {
		if s.status != statusCommitted && s.status != statusExposed && s.status != statusRecovered {
			continue
		}
		for _, c := range s.copies {
			if c.name == name {
				return &fsrvp.IsPathShadowCopiedResponse{ShadowCopyPresent: true}, nil
			}
		}
	}
	return &fsrvp.IsPathShadowCopiedResponse{}, nil
}

func (f *Fake) findCopy(s *fakeSet, scID *dtyp.GUID, share string) *fakeCopy {
	for _, c := range s.copies {
		if c.id == msdtyp.UUID(scID) && c.name == shareName(share) {
			return c
		}
	}
	return nil
}

func (f *Fake) GetShareMapping(ctx context.Context, req *fsrvp.GetShareMappingRequest) (*fsrvp.GetShareMappingResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &fsrvp.GetShareMappingResponse{Level: req.Level}
	if rc := f.enter("GetShareMapping"); rc != 0 {
		resp.Return = rc
		return resp, nil
	}
	if req.Level != 1 {
		resp.Return = eInvalidArg
		return resp, nil
	}
	s := f.set(req.ShadowCopySetID)
	if s == nil {
		resp.Return = eSetIDMismatch
		return resp, nil
	}
	if s.status != statusExposed {
		resp.Return = eBadState
		return resp, nil
	}
	c := f.findCopy(s, req.ShadowCopyID, req.ShareName)
	if c == nil {
		resp.Return = eInvalidArg
		return resp, nil
	}
	resp.ShareMapping = &fsrvp.ShareMapping{Value: &fsrvp.ShareMapping_1{ShareMapping1: &fsrvp.ShareMapping1{
		ShadowCopySetID:     msdtyp.GUID(s.id),
		ShadowCopyID:        msdtyp.GUID(c.id),
		ShareNameUNC:        c.share,
		ShadowCopyShareName: c.exposed,
		CreationTimestamp:   msdtyp.Filetime(c.created),
	}}}
	return resp, nil
}

func (f *Fake) DeleteShareMapping(ctx context.Context, req *fsrvp.DeleteShareMappingRequest) (*fsrvp.DeleteShareMappingResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if rc := f.enter("DeleteShareMapping"); rc != 0 {
		return &fsrvp.DeleteShareMappingResponse{Return: rc}, nil
	}
	s := f.set(req.ShadowCopySetID)
	if s == nil {
		return &fsrvp.DeleteShareMappingResponse{Return: eObjectNotFound}, nil
	}
	if s.status != statusExposed && s.status != statusRecovered {
		return &fsrvp.DeleteShareMappingResponse{Return: eBadState}, nil
	}
	c := f.findCopy(s, req.ShadowCopyID, req.ShareName)
	if c == nil {
		return &fsrvp.DeleteShareMappingResponse{Return: eObjectNotFound}, nil
	}
	for i := range s.copies {
		if s.copies[i] == c {
			s.copies = append(s.copies[:i], s.copies[i+1:]...)
			break
		}
	}
	if len(s.copies) == 0 {
		delete(f.sets, s.id)
	}
	return &fsrvp.DeleteShareMappingResponse{}, nil
}

// Loopback adapts a FileServerVSSAgentServer to the generated client
// interface, so client.New(Loopback(srv)) calls srv directly. Like the
// generated client, it returns the response together with an error when the
// return value is non-zero, and (nil, err) when srv returns an error (which a
// real RPC runtime would turn into a fault).
func Loopback(srv fsrvp.FileServerVSSAgentServer) fsrvp.FileServerVSSAgentClient {
	return &loopback{srv: srv}
}

type loopback struct {
	srv fsrvp.FileServerVSSAgentServer
}

func result[R any](op string, resp *R, err error, ret func(*R) uint32) (*R, error) {
	if err != nil {
		return nil, err
	}
	if resp == nil {
		return nil, fmt.Errorf("%s: no response", op)
	}
	if rc := ret(resp); rc != 0 {
		return resp, fmt.Errorf("%s: return code 0x%08x", op, rc)
	}
	return resp, nil
}

func (l *loopback) GetSupportedVersion(ctx context.Context, in *fsrvp.GetSupportedVersionRequest, _ ...dcerpc.CallOption) (*fsrvp.GetSupportedVersionResponse, error) {
	r, err := l.srv.GetSupportedVersion(ctx, in)
	return result("GetSupportedVersion", r, err, func(r *fsrvp.GetSupportedVersionResponse) uint32 { return r.Return })
}

func (l *loopback) SetContext(ctx context.Context, in *fsrvp.SetContextRequest, _ ...dcerpc.CallOption) (*fsrvp.SetContextResponse, error) {
	r, err := l.srv.SetContext(ctx, in)
	return result("SetContext", r, err, func(r *fsrvp.SetContextResponse) uint32 { return r.Return })
}

func (l *loopback) StartShadowCopySet(ctx context.Context, in *fsrvp.StartShadowCopySetRequest, _ ...dcerpc.CallOption) (*fsrvp.StartShadowCopySetResponse, error) {
	r, err := l.srv.StartShadowCopySet(ctx, in)
	return result("StartShadowCopySet", r, err, func(r *fsrvp.StartShadowCopySetResponse) uint32 { return r.Return })
}

func (l *loopback) AddToShadowCopySet(ctx context.Context, in *fsrvp.AddToShadowCopySetRequest, _ ...dcerpc.CallOption) (*fsrvp.AddToShadowCopySetResponse, error) {
	r, err := l.srv.AddToShadowCopySet(ctx, in)
	return result("AddToShadowCopySet", r, err, func(r *fsrvp.AddToShadowCopySetResponse) uint32 { return r.Return })
}

func (l *loopback) CommitShadowCopySet(ctx context.Context, in *fsrvp.CommitShadowCopySetRequest, _ ...dcerpc.CallOption) (*fsrvp.CommitShadowCopySetResponse, error) {
	r, err := l.srv.CommitShadowCopySet(ctx, in)
	return result("CommitShadowCopySet", r, err, func(r *fsrvp.CommitShadowCopySetResponse) uint32 { return r.Return })
}

func (l *loopback) ExposeShadowCopySet(ctx context.Context, in *fsrvp.ExposeShadowCopySetRequest, _ ...dcerpc.CallOption) (*fsrvp.ExposeShadowCopySetResponse, error) {
	r, err := l.srv.ExposeShadowCopySet(ctx, in)
	return result("ExposeShadowCopySet", r, err, func(r *fsrvp.ExposeShadowCopySetResponse) uint32 { return r.Return })
}

func (l *loopback) RecoveryCompleteShadowCopySet(ctx context.Context, in *fsrvp.RecoveryCompleteShadowCopySetRequest, _ ...dcerpc.CallOption) (*fsrvp.RecoveryCompleteShadowCopySetResponse, error) {
	r, err := l.srv.RecoveryCompleteShadowCopySet(ctx, in)
	return result("RecoveryCompleteShadowCopySet", r, err, func(r *fsrvp.RecoveryCompleteShadowCopySetResponse) uint32 { return r.Return })
}

func (l *loopback) AbortShadowCopySet(ctx context.Context, in *fsrvp.AbortShadowCopySetRequest, _ ...dcerpc.CallOption) (*fsrvp.AbortShadowCopySetResponse, error) {
	r, err := l.srv.AbortShadowCopySet(ctx, in)
	return result("AbortShadowCopySet", r, err, func(r *fsrvp.AbortShadowCopySetResponse) uint32 { return r.Return })
}

func (l *loopback) IsPathSupported(ctx context.Context, in *fsrvp.IsPathSupportedRequest, _ ...dcerpc.CallOption) (*fsrvp.IsPathSupportedResponse, error) {
	r, err := l.srv.IsPathSupported(ctx, in)
	return result("IsPathSupported", r, err, func(r *fsrvp.IsPathSupportedResponse) uint32 { return r.Return })
}

func (l *loopback) IsPathShadowCopied(ctx context.Context, in *fsrvp.IsPathShadowCopiedRequest, _ ...dcerpc.CallOption) (*fsrvp.IsPathShadowCopiedResponse, error) {
	r, err := l.srv.IsPathShadowCopied(ctx, in)
	return result("IsPathShadowCopied", r, err, func(r *fsrvp.IsPathShadowCopiedResponse) uint32 { return r.Return })
}

func (l *loopback) GetShareMapping(ctx context.Context, in *fsrvp.GetShareMappingRequest, _ ...dcerpc.CallOption) (*fsrvp.GetShareMappingResponse, error) {
	r, err := l.srv.GetShareMapping(ctx, in)
	return result("GetShareMapping", r, err, func(r *fsrvp.GetShareMappingResponse) uint32 { return r.Return })
}

func (l *loopback) DeleteShareMapping(ctx context.Context, in *fsrvp.DeleteShareMappingRequest, _ ...dcerpc.CallOption) (*fsrvp.DeleteShareMappingResponse, error) {
	r, err := l.srv.DeleteShareMapping(ctx, in)
	return result("DeleteShareMapping", r, err, func(r *fsrvp.DeleteShareMappingResponse) uint32 { return r.Return })
}

func (l *loopback) PrepareShadowCopySet(ctx context.Context, in *fsrvp.PrepareShadowCopySetRequest, _ ...dcerpc.CallOption) (*fsrvp.PrepareShadowCopySetResponse, error) {
	r, err := l.srv.PrepareShadowCopySet(ctx, in)
	return result("PrepareShadowCopySet", r, err, func(r *fsrvp.PrepareShadowCopySetResponse) uint32 { return r.Return })
}

func (l *loopback) AlterContext(context.Context, ...dcerpc.Option) error { return nil }

func (l *loopback) Conn() dcerpc.Conn { return nil }
