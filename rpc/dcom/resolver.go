package dcom

// resolver.go: the object resolver (IObjectExporter, MS-DCOM §3.1.2.5.1)
// and the activator (IRemoteSCMActivator, §3.1.2.5.2), served on TCP 135
// next to the endpoint mapper.

import (
	"context"

	"github.com/oiweiwei/go-msrpc/msrpc/dcom"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom/iactivation/v0"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom/iobjectexporter/v0"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom/iremotescmactivator/v0"
	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/rpc"
)

// RegisterResolver serves IObjectExporter and IRemoteSCMActivator on srv,
// normally the server listening on TCP 135 that also carries the endpoint
// mapper (rpc/epm): one listener, one presentation context per interface.
func (s *Server) RegisterResolver(srv *rpc.Server) {
	srv.Register(iobjectexporter.ObjectExporterSyntaxV0_0, iobjectexporter.NewObjectExporterServerHandle(&resolver{s}))
	srv.Register(iactivation.ActivationSyntaxV0_0, iactivation.NewActivationServerHandle(&legacyActivator{activator{s}}))
	srv.Register(iremotescmactivator.RemoteSCMActivatorSyntaxV0_0, iremotescmactivator.NewRemoteSCMActivatorServerHandle(&activator{s}))
}

type resolver struct{ s *Server }

var _ iobjectexporter.ObjectExporterServer = (*resolver)(nil)

// resolverAllowed applies the exporter's authentication level to the
// resolver's calls other than ServerAlive(2), which MUST NOT be
// permission-checked (MS-DCOM §3.1.2.5.1.6).
func (r *resolver) allowed(ctx context.Context) bool { return r.s.allowed(ctx) }

// ResolveOXID (opnum 0, §3.1.2.5.1.1).
func (r *resolver) ResolveOXID(ctx context.Context, req *iobjectexporter.ResolveOXIDRequest) (*iobjectexporter.ResolveOXIDResponse, error) {
	if !r.allowed(ctx) {
		return &iobjectexporter.ResolveOXIDResponse{Return: ErrorAccessDenied}, nil
	}
	if req.OXID != r.s.oxid {
		return &iobjectexporter.ResolveOXIDResponse{Return: ORInvalidOXID}, nil
	}
	return &iobjectexporter.ResolveOXIDResponse{
		OXIDBindings: r.s.exporterBindings(ctx), RemoteUnknown: r.s.ipidRemUnk, AuthnHint: r.s.cfg.AuthnHint,
	}, nil
}

// ResolveOxid2 (opnum 4, §3.1.2.5.1.5): ResolveOxid plus the COM version.
func (r *resolver) ResolveOxid2(ctx context.Context, req *iobjectexporter.ResolveOxid2Request) (*iobjectexporter.ResolveOxid2Response, error) {
	if !r.allowed(ctx) {
		return &iobjectexporter.ResolveOxid2Response{Return: ErrorAccessDenied}, nil
	}
	if req.OXID != r.s.oxid {
		return &iobjectexporter.ResolveOxid2Response{Return: ORInvalidOXID}, nil
	}
	return &iobjectexporter.ResolveOxid2Response{
		OXIDBindings: r.s.exporterBindings(ctx), RemoteUnknown: r.s.ipidRemUnk, AuthnHint: r.s.cfg.AuthnHint,
		COMVersion: Version(),
	}, nil
}

// SimplePing (opnum 1, §3.1.2.5.1.2).
func (r *resolver) SimplePing(ctx context.Context, req *iobjectexporter.SimplePingRequest) (*iobjectexporter.SimplePingResponse, error) {
	if !r.allowed(ctx) {
		return &iobjectexporter.SimplePingResponse{Return: ErrorAccessDenied}, nil
	}
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked()
	ps := s.sets[req.SetID]
	if ps == nil {
		return &iobjectexporter.SimplePingResponse{Return: ORInvalidSet}, nil
	}
	ps.lastPing = s.now()
	return &iobjectexporter.SimplePingResponse{}, nil
}

// ComplexPing (opnum 2, §3.1.2.5.1.3): create or update a ping set.
func (r *resolver) ComplexPing(ctx context.Context, req *iobjectexporter.ComplexPingRequest) (*iobjectexporter.ComplexPingResponse, error) {
	if !r.allowed(ctx) {
		return &iobjectexporter.ComplexPingResponse{Return: ErrorAccessDenied}, nil
	}
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked()
	var ps *pingSet
	if req.SetID == 0 {
		ps = &pingSet{id: newID(), oids: map[uint64]struct{}{}}
	} else if ps = s.sets[req.SetID]; ps == nil {
		return &iobjectexporter.ComplexPingResponse{Return: ORInvalidSet}, nil
	} else if ps.seq > req.SequenceNum {
		// A stale, reordered request: no-op (§3.1.2.5.1.3).
		return &iobjectexporter.ComplexPingResponse{SetID: ps.id}, nil
	}
	for _, oid := range req.AddToSet {
		if s.oids[oid] == nil {
			return &iobjectexporter.ComplexPingResponse{SetID: req.SetID, Return: ORInvalidOID}, nil
		}
	}
	for _, oid := range req.AddToSet {
		if _, ok := ps.oids[oid]; !ok {
			ps.oids[oid] = struct{}{}
			s.oids[oid].pings++
		}
	}
	for _, oid := range req.DeleteFromSet {
		if _, ok := ps.oids[oid]; ok {
			delete(ps.oids, oid)
			if oe := s.oids[oid]; oe != nil {
				oe.pings--
				oe.lastCall = s.now() // the idle timeout starts now
			}
		}
	}
	ps.seq, ps.lastPing = req.SequenceNum, s.now()
	s.sets[ps.id] = ps
	return &iobjectexporter.ComplexPingResponse{SetID: ps.id}, nil
}

// ServerAlive (opnum 3, §3.1.2.5.1.4).
func (r *resolver) ServerAlive(context.Context, *iobjectexporter.ServerAliveRequest) (*iobjectexporter.ServerAliveResponse, error) {
	return &iobjectexporter.ServerAliveResponse{}, nil
}

// ServerAlive2 (opnum 5, §3.1.2.5.1.6): the COM version and the resolver's
// bindings (no endpoints); never permission-checked.
func (r *resolver) ServerAlive2(ctx context.Context, _ *iobjectexporter.ServerAlive2Request) (*iobjectexporter.ServerAlive2Response, error) {
	return &iobjectexporter.ServerAlive2Response{COMVersion: Version(), ObjectResolverBindings: r.s.resolverBindings(ctx)}, nil
}

type activator struct{ s *Server }

var _ iremotescmactivator.RemoteSCMActivatorServer = (*activator)(nil)

// RemoteGetClassObject (opnum 3, §3.1.2.5.2.3.3). We have no class
// factories (IClassFactory): a known CLSID is answered with a class object
// that supports IUnknown only, so every other requested IID gets
// E_NOINTERFACE in PropsOutInfo; an unknown CLSID REGDB_E_CLASSNOTREG.
func (a *activator) RemoteGetClassObject(ctx context.Context, req *iremotescmactivator.RemoteGetClassObjectRequest) (*iremotescmactivator.RemoteGetClassObjectResponse, error) {
	out, hr := a.activate(ctx, req.ORPCThis, req.ActPropertiesIn, true)
	return &iremotescmactivator.RemoteGetClassObjectResponse{ORPCThat: &dcom.ORPCThat{}, ActPropertiesOut: out, Return: hr32(hr)}, nil
}

// RemoteCreateInstance (opnum 4, §3.1.2.5.2.3.4).
func (a *activator) RemoteCreateInstance(ctx context.Context, req *iremotescmactivator.RemoteCreateInstanceRequest) (*iremotescmactivator.RemoteCreateInstanceResponse, error) {
	out, hr := a.activate(ctx, req.ORPCThis, req.ActPropertiesIn, false)
	return &iremotescmactivator.RemoteCreateInstanceResponse{ORPCThat: &dcom.ORPCThat{}, ActPropertiesOut: out, Return: hr32(hr)}, nil
}

// activate runs the resolver's checks in the order of §3.1.2.5.2.3.4:
// access, version, the blob, the class; then makes the object, exports
// each requested IID it supports and answers ScmReplyInfo + PropsOutInfo.
func (a *activator) activate(ctx context.Context, this *dcom.ORPCThis, in *dcom.InterfacePointer, classObject bool) (*dcom.InterfacePointer, uint32) {
	s := a.s
	log := rpc.Logger(ctx)
	if !s.allowed(ctx) {
		log.Info("dcom: activation refused: access denied")
		return nil, EAccessDenied
	}
	if this == nil {
		return nil, RPCEVersionMismatch
	}
	if hr := checkVersion(this.Version); hr != SOK {
		log.WithField("com_version", this.Version).Info("dcom: activation refused: COM version")
		return nil, hr
	}
	act, err := ParseActivation(in)
	if err != nil {
		log.WithError(err).Info("dcom: activation refused: bad activation properties")
		return nil, HRESULT(err)
	}
	g, hr := a.instantiate(ctx, log, act.CLSID, act.IIDs, classObject)
	if hr != SOK {
		return nil, hr
	}
	props := &dcom.PropertiesOutInfo{InterfacesCount: uint32(len(g.iids)), IIDs: g.iids, HResults: g.hrs, InterfaceData: g.ptrs}
	reply := &dcom.SCMReplyInfoData{RemoteReply: &dcom.CustomRemoteReplySCMInfo{
		OXID: s.oxid, OXIDBindings: s.exporterBindings(ctx), IPIDRemoteUnknown: s.ipidRemUnk,
		AuthnHint: s.cfg.AuthnHint, ServerVersion: Version(),
	}}
	out, err := marshalActivationReply(reply, props)
	if err != nil {
		log.WithError(err).Error("dcom: activation reply")
		return nil, EOutOfMemory
	}
	// Partial success is S_OK: the per-IID results say which failed
	// (Windows answers so; go-msrpc's client takes any other value as a
	// failure).
	log.WithFields(logrus.Fields{"clsid": act.CLSID.String(), "iids": len(act.IIDs), "granted": g.good}).Debug("dcom: activated")
	return out, SOK
}

// grant is the outcome of instantiate: per requested IID its HRESULT and
// OBJREF.
type grant struct {
	iids []*dcom.IID
	hrs  []int32
	ptrs []*dcom.InterfacePointer
	good int
}

// instantiate looks the class up (REGDB_E_CLASSNOTREG), makes an object
// (or a class object with IUnknown only), and exports each requested IID
// it supports; E_NOINTERFACE when none is.
func (a *activator) instantiate(ctx context.Context, log *logrus.Entry, clsid *dcom.ClassID, iids []*dcom.IID, classObject bool) (*grant, uint32) {
	s := a.s
	var err error
	log = log.WithField("clsid", clsid.String())
	s.mu.Lock()
	cls, ok := s.classes[guidKey(clsid.GUID())]
	s.sweepLocked()
	s.mu.Unlock()
	if !ok {
		log.Info("dcom: activation refused: class not registered")
		return nil, REGDBEClassNotReg
	}
	var obj *Object
	if classObject {
		obj = NewObject(cls.Name + " class object")
	} else if obj, err = cls.New(ctx); err != nil || obj == nil {
		log.WithError(err).Warn("dcom: activation failed: the class made no object")
		return nil, EOutOfMemory
	}
	g := &grant{}
	for _, iid := range iids {
		var (
			ip *dcom.InterfacePointer
			hr = ENoInterface
		)
		if obj.Supports(iid) {
			if ip, err = s.Export(ctx, obj, iid); err != nil {
				log.WithError(err).Warn("dcom: activation: export failed")
				ip, hr = nil, EOutOfMemory
			} else {
				hr = SOK
				g.good++
			}
		}
		g.iids = append(g.iids, iid)
		g.hrs = append(g.hrs, hr32(hr))
		g.ptrs = append(g.ptrs, ip)
	}
	if g.good == 0 {
		for _, hr := range g.hrs {
			if uint32(hr) == EOutOfMemory {
				return nil, EOutOfMemory
			}
		}
		log.Info("dcom: activation refused: no requested interface supported")
		return nil, ENoInterface
	}
	return g, SOK
}

// legacyActivator is IActivation (MS-DCOM §3.1.2.5.2.3.1), which all
// resolvers must support: the activation of clients before COM 5.6, with
// the blob's data as flat parameters. The return value is an
// error_status_t (ERROR_ACCESS_DENIED for a refused caller); phr and
// pResults carry the HRESULTs. Mode 0xFFFFFFFF asks for the class object.
type legacyActivator struct{ activator }

var _ iactivation.ActivationServer = (*legacyActivator)(nil)

func (a *legacyActivator) RemoteActivation(ctx context.Context, req *iactivation.RemoteActivationRequest) (*iactivation.RemoteActivationResponse, error) {
	s := a.s
	log := rpc.Logger(ctx)
	resp := &iactivation.RemoteActivationResponse{ORPCThat: &dcom.ORPCThat{}, Interfaces: req.Interfaces,
		RemoteUnknown: &dcom.IPID{Data4: make([]byte, 8)}, ServerVersion: Version()}
	if !s.allowed(ctx) {
		log.Info("dcom: legacy activation refused: access denied")
		resp.Return = ErrorAccessDenied
		return resp, nil
	}
	fail := func(hr uint32) (*iactivation.RemoteActivationResponse, error) {
		resp.HResult = hr32(hr)
		resp.Results = make([]int32, len(req.IIDs))
		resp.InterfaceData = make([]*dcom.InterfacePointer, len(req.IIDs))
		for i := range resp.Results {
			resp.Results[i] = hr32(hr)
		}
		return resp, nil
	}
	if req.ORPCThis == nil || checkVersion(req.ORPCThis.Version) != SOK {
		return fail(RPCEVersionMismatch)
	}
	if req.ClassID == nil || req.Interfaces < 1 || req.Interfaces > maxRequestedIfaces || len(req.IIDs) != int(req.Interfaces) {
		return fail(EInvalidArg)
	}
	for _, iid := range req.IIDs {
		if iid == nil {
			return fail(EInvalidArg)
		}
	}
	g, hr := a.instantiate(ctx, log, (*dcom.ClassID)(req.ClassID), req.IIDs, req.Mode == 0xFFFFFFFF)
	if hr != SOK {
		return fail(hr)
	}
	resp.OXID, resp.OXIDBindings, resp.RemoteUnknown, resp.AuthnHint = s.oxid, s.exporterBindings(ctx), s.ipidRemUnk, s.cfg.AuthnHint
	resp.Results, resp.InterfaceData = g.hrs, g.ptrs
	return resp, nil
}
