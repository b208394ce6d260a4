package dcom

// exporter.go: the object exporter: ORPC dispatch by IPID (MS-DCOM
// §3.1.1.5.1-7) and IRemUnknown/IRemUnknown2 (§3.1.1.5.6).

import (
	"context"
	"encoding/binary"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom/iremunknown/v0"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom/iremunknown2/v0"
	"github.com/oiweiwei/go-msrpc/msrpc/dtyp"
	"github.com/oiweiwei/go-msrpc/ndr"

	"github.com/fsrvpd/fsrvpd/rpc"
)

// RegisterExporter serves IRemUnknown, IRemUnknown2 and every interface
// declared with RegisterClass on srv, the server of the exporter's port.
// Register the classes first.
func (s *Server) RegisterExporter(srv *rpc.Server) {
	ru := s.dispatch(remUnknownKey, iremunknown2.NewRemoteUnknown2ServerHandle(&remUnknown{s}))
	srv.Register(iremunknown.RemoteUnknownSyntaxV0_0, ru)
	srv.Register(iremunknown2.RemoteUnknown2SyntaxV0_0, ru)
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, syn := range s.iids {
		srv.Register(syn, s.dispatch(k, nil))
	}
}

var (
	remUnknownKey  = guidKey(iremunknown.RemoteUnknownIID.GUID())
	remUnknown2Key = guidKey(iremunknown2.RemoteUnknown2IID.GUID())
)

// objectKey is the context key of the object an ORPC call addresses.
type objectKey struct{}

// ObjectFromContext returns the object the ORPC call of ctx was dispatched
// to.
func ObjectFromContext(ctx context.Context) (*Object, bool) {
	o, ok := ctx.Value(objectKey{}).(*Object)
	return o, ok && o != nil
}

// orpcFault fails an ORPC call with hr as the fault status.
func orpcFault(ctx context.Context, hr uint32, why string) (dcerpc.Operation, error) {
	rpc.Logger(ctx).WithField("hresult", hr).Infof("dcom: ORPC call refused: %s", why)
	return nil, &rpc.FaultError{Status: hr}
}

// dispatch returns the handler of interface iid: it checks the ORPCTHIS
// (version, then flags) and the caller, looks the IPID up, and hands the
// call to the object's handler for iid (remunk for IRemUnknown(2), whose
// IPID is the exporter's ipidRemUnknown).
func (s *Server) dispatch(iid string, remunk dcerpc.ServerHandle) dcerpc.ServerHandle {
	return func(ctx context.Context, opnum int, r ndr.Reader) (dcerpc.Operation, error) {
		req, ok := rpc.RequestFromContext(ctx)
		if !ok {
			return orpcFault(ctx, RPCEDisconnected, "no request")
		}
		// ORPCTHIS starts the stub: COMVERSION at 0, flags at 4, in NDR 2.0
		// and NDR64 alike (MS-DCOM §2.2.13.1).
		if len(req.Stub) < 8 {
			return nil, &rpc.FaultError{Status: rpc.StatusBadStubData}
		}
		v := &dcom.COMVersion{MajorVersion: binary.LittleEndian.Uint16(req.Stub), MinorVersion: binary.LittleEndian.Uint16(req.Stub[2:])}
		if hr := checkVersion(v); hr != SOK {
			return orpcFault(ctx, hr, "COM version")
		}
		if !s.allowed(ctx) {
			if iid == remUnknownKey {
				return orpcFault(ctx, EAccessDenied, "access denied")
			}
			return orpcFault(ctx, ErrorAccessDenied, "access denied")
		}
		if binary.LittleEndian.Uint32(req.Stub[4:]) != 0 {
			return orpcFault(ctx, RPCEInvalidHeader, "ORPCTHIS flags")
		}
		if req.Object == nil {
			return orpcFault(ctx, RPCEDisconnected, "no IPID")
		}
		ipid := guidKey(dtyp.GUIDFromUUID(req.Object))
		if opnum < 3 {
			return nil, nil // IUnknown's opnums are never on the wire: nca_op_rng_error
		}
		if remunk != nil {
			if ipid != s.ipidRemUnkKey {
				return orpcFault(ctx, RPCEDisconnected, "unknown IPID")
			}
			s.mu.Lock()
			s.sweepLocked()
			s.mu.Unlock()
			return remunk(ctx, opnum, r)
		}
		s.mu.Lock()
		s.sweepLocked()
		ie := s.ipids[ipid]
		if ie != nil {
			ie.oid.lastCall = s.now()
		}
		s.mu.Unlock()
		if ie == nil {
			return orpcFault(ctx, RPCEDisconnected, "unknown IPID")
		}
		in, ok := ie.oid.obj.ifaces[iid]
		if !ok || guidKey(ie.iid.GUID()) != iid {
			return orpcFault(ctx, ENoInterface, "IPID of another interface")
		}
		ctx = context.WithValue(ctx, objectKey{}, ie.oid.obj)
		return in.Handle(ctx, opnum, r)
	}
}

// remUnknown implements IRemUnknown2 for the exporter's ipidRemUnknown.
type remUnknown struct{ s *Server }

var _ iremunknown2.RemoteUnknown2Server = (*remUnknown)(nil)

// RemoteQueryInterface (opnum 3, §3.1.1.5.6.1.1).
func (u *remUnknown) RemoteQueryInterface(ctx context.Context, req *iremunknown.RemoteQueryInterfaceRequest) (*iremunknown.RemoteQueryInterfaceResponse, error) {
	resp := &iremunknown.RemoteQueryInterfaceResponse{That: &dcom.ORPCThat{}}
	obj, hr := u.object(req.IPID)
	if hr != SOK {
		resp.Return = hr32(hr)
		return resp, nil
	}
	resp.IIDsCount = req.IIDsCount
	good := 0
	for _, iid := range req.IIDs {
		res := &dcom.RemoteQueryInterfaceResult{HResult: hr32(ENoInterface), Std: &dcom.StdObjectReference{IPID: &dcom.IPID{}}}
		if iid != nil && obj.Supports(iid) {
			if std, err := u.s.export(obj, iid, req.ReferencesCount); err == nil {
				res.HResult, res.Std = 0, std
				good++
			}
		}
		resp.QueryInterfaceResults = append(resp.QueryInterfaceResults, res)
	}
	if good == 0 && len(req.IIDs) > 0 {
		resp.Return = hr32(ENoInterface)
	}
	return resp, nil
}

// RemoteQueryInterface2 (opnum 6, §3.1.1.5.7.1): full OBJREFs.
func (u *remUnknown) RemoteQueryInterface2(ctx context.Context, req *iremunknown2.RemoteQueryInterface2Request) (*iremunknown2.RemoteQueryInterface2Response, error) {
	resp := &iremunknown2.RemoteQueryInterface2Response{That: &dcom.ORPCThat{}}
	obj, hr := u.object(req.IPID)
	if hr != SOK {
		resp.Return = hr32(hr)
		return resp, nil
	}
	resp.IIDsCount = req.IIDsCount
	good := 0
	for _, iid := range req.IIDs {
		hr, ip := hr32(ENoInterface), (*dcom.InterfacePointer)(nil)
		if iid != nil && obj.Supports(iid) {
			if p, err := u.s.Export(ctx, obj, iid); err == nil {
				hr, ip = 0, p
				good++
			}
		}
		resp.HResult = append(resp.HResult, hr)
		resp.Interface = append(resp.Interface, ip)
	}
	if good == 0 && len(req.IIDs) > 0 {
		resp.Return = hr32(ENoInterface)
	}
	return resp, nil
}

// object returns the object behind ripid, or RPC_E_INVALID_OBJECT.
func (u *remUnknown) object(ripid *dtyp.GUID) (*Object, uint32) {
	if ripid == nil {
		return nil, RPCEInvalidObject
	}
	u.s.mu.Lock()
	defer u.s.mu.Unlock()
	ie := u.s.ipids[guidKey(ripid)]
	if ie == nil {
		return nil, RPCEInvalidObject
	}
	ie.oid.lastCall = u.s.now()
	return ie.oid.obj, SOK
}

// RemoteAddReference (opnum 4, §3.1.1.5.6.1.2).
func (u *remUnknown) RemoteAddReference(ctx context.Context, req *iremunknown.RemoteAddReferenceRequest) (*iremunknown.RemoteAddReferenceResponse, error) {
	resp := &iremunknown.RemoteAddReferenceResponse{That: &dcom.ORPCThat{}, InterfaceReferencesCount: req.InterfaceReferencesCount}
	u.s.mu.Lock()
	defer u.s.mu.Unlock()
	for _, ref := range req.InterfaceReferences {
		var ie *ipidEntry
		if ref != nil && ref.IPID != nil {
			ie = u.s.ipids[guidKey(ref.IPID.GUID())]
		}
		if ie == nil {
			resp.Results = append(resp.Results, hr32(COEObjNotReg))
			resp.Return = hr32(COEObjNotReg)
			continue
		}
		ie.public += ref.PublicReferencesCount
		ie.private += ref.PrivateReferencesCount
		ie.oid.lastCall = u.s.now()
		resp.Results = append(resp.Results, 0)
	}
	return resp, nil
}

// RemoteRelease (opnum 5, §3.1.1.5.6.1.3): counts never go below zero; an
// IPID with none left is dropped, and an object with no IPIDs left.
func (u *remUnknown) RemoteRelease(ctx context.Context, req *iremunknown.RemoteReleaseRequest) (*iremunknown.RemoteReleaseResponse, error) {
	resp := &iremunknown.RemoteReleaseResponse{That: &dcom.ORPCThat{}}
	u.s.mu.Lock()
	defer u.s.mu.Unlock()
	for _, ref := range req.InterfaceReferences {
		if ref == nil || ref.IPID == nil {
			continue
		}
		ie := u.s.ipids[guidKey(ref.IPID.GUID())]
		if ie == nil {
			continue
		}
		ie.public -= min(ie.public, ref.PublicReferencesCount)
		ie.private -= min(ie.private, ref.PrivateReferencesCount)
		if ie.public+ie.private == 0 {
			u.s.dropIPIDLocked(ie)
		}
	}
	return resp, nil
}
