package fsrvp

import (
	"context"
	"encoding/binary"
	"time"

	"github.com/google/uuid"
	"github.com/oiweiwei/go-msrpc/msrpc/dtyp"
	fssagent "github.com/oiweiwei/go-msrpc/msrpc/fsrvp/fileservervssagent/v1"

	"github.com/fsrvpd/fsrvpd/rpc"
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
	srv.Register(fssagent.FileServerVSSAgentSyntaxV1_0, fssagent.NewFileServerVSSAgentServerHandle(Handler{S: s, BackupSIDs: backupSIDs}))
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

// guidIn converts a wire GUID; NULL pointers and GUID_NULL become uuid.Nil.
func guidIn(g *dtyp.GUID) uuid.UUID {
	if g == nil || len(g.Data4) != 8 {
		return uuid.Nil
	}
	var u uuid.UUID
	binary.BigEndian.PutUint32(u[0:4], g.Data1)
	binary.BigEndian.PutUint16(u[4:6], g.Data2)
	binary.BigEndian.PutUint16(u[6:8], g.Data3)
	copy(u[8:], g.Data4)
	return u
}

func guidOut(u uuid.UUID) *dtyp.GUID {
	return &dtyp.GUID{
		Data1: binary.BigEndian.Uint32(u[0:4]),
		Data2: binary.BigEndian.Uint16(u[4:6]),
		Data3: binary.BigEndian.Uint16(u[6:8]),
		Data4: append([]byte(nil), u[8:]...),
	}
}

// fileTime converts to a FILETIME: 100 ns intervals since 1601-01-01 UTC.
func fileTime(t time.Time) int64 {
	const epochDelta = 116444736000000000 // 1601 → 1970 in 100 ns
	return t.UnixNano()/100 + epochDelta
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
	id, rc := h.S.StartShadowCopySet(ctx, h.callerOf(ctx), guidIn(req.ClientShadowCopySetID))
	h.observe(ctx, "StartShadowCopySet", 2, true, start, id, nil, rc)
	return &fssagent.StartShadowCopySetResponse{ShadowCopySetID: guidOut(id), Return: uint32(rc)}, nil
}

func (h Handler) AddToShadowCopySet(ctx context.Context, req *fssagent.AddToShadowCopySetRequest) (*fssagent.AddToShadowCopySetResponse, error) {
	start := time.Now()
	id, rc := h.S.AddToShadowCopySet(ctx, h.callerOf(ctx), guidIn(req.ShadowCopySetID), req.ShareName)
	h.observe(ctx, "AddToShadowCopySet", 3, true, start, guidIn(req.ShadowCopySetID), []string{req.ShareName}, rc)
	return &fssagent.AddToShadowCopySetResponse{ShadowCopyID: guidOut(id), Return: uint32(rc)}, nil
}

func (h Handler) CommitShadowCopySet(ctx context.Context, req *fssagent.CommitShadowCopySetRequest) (*fssagent.CommitShadowCopySetResponse, error) {
	start := time.Now()
	shares := h.S.setShares(guidIn(req.ShadowCopySetID))
	rc := h.S.CommitShadowCopySet(ctx, h.callerOf(ctx), guidIn(req.ShadowCopySetID), req.TimeoutInMilliseconds)
	h.observe(ctx, "CommitShadowCopySet", 4, true, start, guidIn(req.ShadowCopySetID), shares, rc)
	return &fssagent.CommitShadowCopySetResponse{Return: uint32(rc)}, nil
}

func (h Handler) ExposeShadowCopySet(ctx context.Context, req *fssagent.ExposeShadowCopySetRequest) (*fssagent.ExposeShadowCopySetResponse, error) {
	start := time.Now()
	shares := h.S.setShares(guidIn(req.ShadowCopySetID))
	rc := h.S.ExposeShadowCopySet(ctx, h.callerOf(ctx), guidIn(req.ShadowCopySetID), req.TimeoutInMilliseconds)
	h.observe(ctx, "ExposeShadowCopySet", 5, true, start, guidIn(req.ShadowCopySetID), shares, rc)
	return &fssagent.ExposeShadowCopySetResponse{Return: uint32(rc)}, nil
}

func (h Handler) RecoveryCompleteShadowCopySet(ctx context.Context, req *fssagent.RecoveryCompleteShadowCopySetRequest) (*fssagent.RecoveryCompleteShadowCopySetResponse, error) {
	start := time.Now()
	shares := h.S.setShares(guidIn(req.ShadowCopySetID))
	rc := h.S.RecoveryCompleteShadowCopySet(ctx, h.callerOf(ctx), guidIn(req.ShadowCopySetID))
	h.observe(ctx, "RecoveryCompleteShadowCopySet", 6, true, start, guidIn(req.ShadowCopySetID), shares, rc)
	return &fssagent.RecoveryCompleteShadowCopySetResponse{Return: uint32(rc)}, nil
}

func (h Handler) AbortShadowCopySet(ctx context.Context, req *fssagent.AbortShadowCopySetRequest) (*fssagent.AbortShadowCopySetResponse, error) {
	start := time.Now()
	shares := h.S.setShares(guidIn(req.ShadowCopySetID))
	rc := h.S.AbortShadowCopySet(ctx, h.callerOf(ctx), guidIn(req.ShadowCopySetID))
	h.observe(ctx, "AbortShadowCopySet", 7, true, start, guidIn(req.ShadowCopySetID), shares, rc)
	return &fssagent.AbortShadowCopySetResponse{Return: uint32(rc)}, nil
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
	m, rc := h.S.GetShareMapping(ctx, h.callerOf(ctx), guidIn(req.ShadowCopyID), guidIn(req.ShadowCopySetID), req.ShareName, req.Level)
	h.observe(ctx, "GetShareMapping", 10, false, start, guidIn(req.ShadowCopySetID), []string{req.ShareName}, rc)
	resp := &fssagent.GetShareMappingResponse{Return: uint32(rc)}
	if rc == S_OK {
		resp.ShareMapping = &fssagent.ShareMapping{Value: &fssagent.ShareMapping_1{ShareMapping1: &fssagent.ShareMapping1{
			ShadowCopySetID:     guidOut(m.SetID),
			ShadowCopyID:        guidOut(m.ShadowCopyID),
			ShareNameUNC:        m.ShareNameUNC,
			ShadowCopyShareName: m.ExposedUNC,
			CreationTimestamp:   fileTime(m.Created),
		}}}
	}
	return resp, nil
}

func (h Handler) DeleteShareMapping(ctx context.Context, req *fssagent.DeleteShareMappingRequest) (*fssagent.DeleteShareMappingResponse, error) {
	start := time.Now()
	rc := h.S.DeleteShareMapping(ctx, h.callerOf(ctx), guidIn(req.ShadowCopySetID), guidIn(req.ShadowCopyID), req.ShareName)
	h.observe(ctx, "DeleteShareMapping", 11, true, start, guidIn(req.ShadowCopySetID), []string{req.ShareName}, rc)
	return &fssagent.DeleteShareMappingResponse{Return: uint32(rc)}, nil
}

func (h Handler) PrepareShadowCopySet(ctx context.Context, req *fssagent.PrepareShadowCopySetRequest) (*fssagent.PrepareShadowCopySetResponse, error) {
	start := time.Now()
	shares := h.S.setShares(guidIn(req.ShadowCopySetID))
	rc := h.S.PrepareShadowCopySet(ctx, h.callerOf(ctx), guidIn(req.ShadowCopySetID), req.TimeoutInMilliseconds)
	h.observe(ctx, "PrepareShadowCopySet", 12, true, start, guidIn(req.ShadowCopySetID), shares, rc)
	return &fssagent.PrepareShadowCopySetResponse{Return: uint32(rc)}, nil
}
