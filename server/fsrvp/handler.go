package fsrvp

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/oiweiwei/go-msrpc/msrpc/dtyp"
	fssagent "github.com/oiweiwei/go-msrpc/msrpc/fsrvp/fileservervssagent/v1"

	"github.com/fsrvpd/fsrvpd/rpc"
	"github.com/fsrvpd/fsrvpd/rpc/msdtyp"
)

// Handler adapts a Service to go-msrpc's generated FileServerVSSAgentServer
// interface. It converts wire types and the caller's identity, nothing
// more: every outcome is in the Return field and the Go error is always nil.
type Handler struct {
	S *Service
	// BackupSIDs are SIDs, besides the built-in rule, whose members may
	// call (SMB session or RPC-authenticated identity).
	BackupSIDs []string
}

var _ fssagent.FileServerVSSAgentServer = Handler{}

// Register serves s's FSRVP interface on srv.
func Register(srv *rpc.Server, s *Service, backupSIDs ...string) {
	srv.Register(fssagent.FileServerVSSAgentSyntaxV1_0, Handler{S: s, BackupSIDs: backupSIDs}.serverHandle())
}

func (h Handler) callerOf(ctx context.Context) Caller {
	c, ok := rpc.CallerFromContext(ctx)
	if !ok {
		return Caller{}
	}
	out := Caller{Address: c.ClientAddress, AuthLevel: c.AuthLevel, Log: rpc.Logger(ctx)}
	if c.Session != nil {
		out.SMBSession = true
		out.BackupCapable = c.Session.IsBackupCapable(h.BackupSIDs...)
		out.Name = c.Session.Domain + `\` + c.Session.User
	}
	if c.Identity != nil {
		out.RPCAuth = true
		out.RPCBackupCapable = c.Identity.IsBackupCapable(h.BackupSIDs...)
		if !out.SMBSession {
			out.Name = c.Identity.String()
		}
	}
	return out
}

func (h Handler) GetSupportedVersion(ctx context.Context, _ *fssagent.GetSupportedVersionRequest) (*fssagent.GetSupportedVersionResponse, error) {
	start := time.Now()
	min, max, rc := h.S.GetSupportedVersion(ctx, h.callerOf(ctx))
	h.observe(ctx, "GetSupportedVersion", 0, false, start, uuid.Nil, nil, rc)
	return &fssagent.GetSupportedVersionResponse{MinVersion: min, MaxVersion: max, Return: uint32(rc)}, nil
}

func (h Handler) SetContext(ctx context.Context, req *fssagent.SetContextRequest) (*fssagent.SetContextResponse, error) {
	start := time.Now()
	rc := h.S.SetContext(ctx, h.callerOf(ctx), req.Context)
	h.observe(ctx, "SetContext", 1, true, start, uuid.Nil, nil, rc)
	return &fssagent.SetContextResponse{Return: uint32(rc)}, nil
}

func (h Handler) StartShadowCopySet(ctx context.Context, req *fssagent.StartShadowCopySetRequest) (*fssagent.StartShadowCopySetResponse, error) {
	start := time.Now()
	id, rc := h.S.StartShadowCopySet(ctx, h.callerOf(ctx), msdtyp.UUID(req.ClientShadowCopySetID))
	h.observe(ctx, "StartShadowCopySet", 2, true, start, id, nil, rc)
	return &fssagent.StartShadowCopySetResponse{ShadowCopySetID: msdtyp.GUID(id), Return: uint32(rc)}, nil
}

func (h Handler) AddToShadowCopySet(ctx context.Context, req *fssagent.AddToShadowCopySetRequest) (*fssagent.AddToShadowCopySetResponse, error) {
	start := time.Now()
	id, rc := h.S.AddToShadowCopySet(ctx, h.callerOf(ctx), msdtyp.UUID(req.ShadowCopySetID), req.ShareName)
	h.observe(ctx, "AddToShadowCopySet", 3, true, start, msdtyp.UUID(req.ShadowCopySetID), []string{req.ShareName}, rc)
	return &fssagent.AddToShadowCopySetResponse{ShadowCopyID: msdtyp.GUID(id), Return: uint32(rc)}, nil
}

func (h Handler) CommitShadowCopySet(ctx context.Context, req *fssagent.CommitShadowCopySetRequest) (*fssagent.CommitShadowCopySetResponse, error) {
	rc := h.onSet(ctx, "CommitShadowCopySet", 4, req.ShadowCopySetID, func(c Caller, id uuid.UUID) HResult {
		return h.S.CommitShadowCopySet(ctx, c, id, req.TimeoutInMilliseconds)
	})
	return &fssagent.CommitShadowCopySetResponse{Return: rc}, nil
}

func (h Handler) ExposeShadowCopySet(ctx context.Context, req *fssagent.ExposeShadowCopySetRequest) (*fssagent.ExposeShadowCopySetResponse, error) {
	rc := h.onSet(ctx, "ExposeShadowCopySet", 5, req.ShadowCopySetID, func(c Caller, id uuid.UUID) HResult {
		return h.S.ExposeShadowCopySet(ctx, c, id, req.TimeoutInMilliseconds)
	})
	return &fssagent.ExposeShadowCopySetResponse{Return: rc}, nil
}

func (h Handler) RecoveryCompleteShadowCopySet(ctx context.Context, req *fssagent.RecoveryCompleteShadowCopySetRequest) (*fssagent.RecoveryCompleteShadowCopySetResponse, error) {
	rc := h.onSet(ctx, "RecoveryCompleteShadowCopySet", 6, req.ShadowCopySetID, func(c Caller, id uuid.UUID) HResult {
		return h.S.RecoveryCompleteShadowCopySet(ctx, c, id)
	})
	return &fssagent.RecoveryCompleteShadowCopySetResponse{Return: rc}, nil
}

func (h Handler) AbortShadowCopySet(ctx context.Context, req *fssagent.AbortShadowCopySetRequest) (*fssagent.AbortShadowCopySetResponse, error) {
	rc := h.onSet(ctx, "AbortShadowCopySet", 7, req.ShadowCopySetID, func(c Caller, id uuid.UUID) HResult {
		return h.S.AbortShadowCopySet(ctx, c, id)
	})
	return &fssagent.AbortShadowCopySetResponse{Return: rc}, nil
}

func (h Handler) IsPathSupported(ctx context.Context, req *fssagent.IsPathSupportedRequest) (*fssagent.IsPathSupportedResponse, error) {
	start := time.Now()
	ok, owner, rc := h.S.IsPathSupported(ctx, h.callerOf(ctx), req.ShareName)
	h.observe(ctx, "IsPathSupported", 8, false, start, uuid.Nil, []string{req.ShareName}, rc)
	return &fssagent.IsPathSupportedResponse{SupportedByThisProvider: ok, OwnerMachineName: owner, Return: uint32(rc)}, nil
}

func (h Handler) IsPathShadowCopied(ctx context.Context, req *fssagent.IsPathShadowCopiedRequest) (*fssagent.IsPathShadowCopiedResponse, error) {
	start := time.Now()
	ok, compat, rc := h.S.IsPathShadowCopied(ctx, h.callerOf(ctx), req.ShareName)
	h.observe(ctx, "IsPathShadowCopied", 9, false, start, uuid.Nil, []string{req.ShareName}, rc)
	return &fssagent.IsPathShadowCopiedResponse{ShadowCopyPresent: ok, ShadowCopyCompatibility: compat, Return: uint32(rc)}, nil
}

func (h Handler) GetShareMapping(ctx context.Context, req *fssagent.GetShareMappingRequest) (*fssagent.GetShareMappingResponse, error) {
	start := time.Now()
	m, rc := h.S.GetShareMapping(ctx, h.callerOf(ctx), msdtyp.UUID(req.ShadowCopyID), msdtyp.UUID(req.ShadowCopySetID), req.ShareName, req.Level)
	h.observe(ctx, "GetShareMapping", 10, false, start, msdtyp.UUID(req.ShadowCopySetID), []string{req.ShareName}, rc)
	resp := &fssagent.GetShareMappingResponse{Return: uint32(rc)}
	if rc == S_OK {
		resp.ShareMapping = &fssagent.ShareMapping{Value: &fssagent.ShareMapping_1{ShareMapping1: &fssagent.ShareMapping1{
			ShadowCopySetID:     msdtyp.GUID(m.SetID),
			ShadowCopyID:        msdtyp.GUID(m.ShadowCopyID),
			ShareNameUNC:        m.ShareNameUNC,
			ShadowCopyShareName: m.ExposedUNC,
			CreationTimestamp:   msdtyp.Filetime(m.Created),
		}}}
	}
	return resp, nil
}

func (h Handler) DeleteShareMapping(ctx context.Context, req *fssagent.DeleteShareMappingRequest) (*fssagent.DeleteShareMappingResponse, error) {
	start := time.Now()
	rc := h.S.DeleteShareMapping(ctx, h.callerOf(ctx), msdtyp.UUID(req.ShadowCopySetID), msdtyp.UUID(req.ShadowCopyID), req.ShareName)
	h.observe(ctx, "DeleteShareMapping", 11, true, start, msdtyp.UUID(req.ShadowCopySetID), []string{req.ShareName}, rc)
	return &fssagent.DeleteShareMappingResponse{Return: uint32(rc)}, nil
}

func (h Handler) PrepareShadowCopySet(ctx context.Context, req *fssagent.PrepareShadowCopySetRequest) (*fssagent.PrepareShadowCopySetResponse, error) {
	rc := h.onSet(ctx, "PrepareShadowCopySet", 12, req.ShadowCopySetID, func(c Caller, id uuid.UUID) HResult {
		return h.S.PrepareShadowCopySet(ctx, c, id, req.TimeoutInMilliseconds)
	})
	return &fssagent.PrepareShadowCopySetResponse{Return: rc}, nil
}

// onSet runs call, a state-changing method on the set setID names, and
// observes it under op and opnum with the set's shares as they were before
// the call (a deleted set has none after it).
func (h Handler) onSet(ctx context.Context, op string, opnum uint16, setID *dtyp.GUID, call func(Caller, uuid.UUID) HResult) uint32 {
	start := time.Now()
	id := msdtyp.UUID(setID)
	shares := h.S.setShares(id)
	rc := call(h.callerOf(ctx), id)
	h.observe(ctx, op, opnum, true, start, id, shares, rc)
	return uint32(rc)
}
