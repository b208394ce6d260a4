// Package epm is a minimal DCE/RPC endpoint mapper (C706 Appendix O, the
// ept interface e1af8308-5d1f-11c9-91a4-08002b14a0fa v3.0) that tells
// clients on which TCP port our interfaces listen. Samba's rpcclient always
// asks the mapper on port 135 for ncacn_ip_tcp bindings, and go-msrpc's
// client asks it (with ept_lookup) when a binding has no endpoint.
//
// It serves go-msrpc's generated EPM stub through an rpc.Server:
//
//	m := epm.New(epm.Entry{Syntax: fsrvp.FileServerVSSAgentSyntaxV1_0, Port: 41345})
//	srv.Register(epm.Syntax, m.Handle())
//
// Implemented: ept_map, ept_lookup and ept_lookup_handle_free. The other
// operations (insert, delete, inq_object, mgmt_delete) answer
// nca_op_rng_error. Only ncacn_ip_tcp entries are mapped.
package epm

import (
	"context"
	"net"
	"sync"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	"github.com/oiweiwei/go-msrpc/msrpc/dtyp"
	epmv3 "github.com/oiweiwei/go-msrpc/msrpc/epm/epm/v3"

	"github.com/fsrvpd/fsrvpd/rpc"
)

// Syntax is the endpoint mapper interface, v3.0.
var Syntax = epmv3.EpmSyntaxV3_0

// Status codes of ept_map and ept_lookup.
const (
	StatusOK = 0
	// StatusNotRegistered is ept_s_not_registered: no (more) entries
	// match. Samba calls the same value EPMAPPER_STATUS_NO_MORE_ENTRIES.
	StatusNotRegistered uint32 = 0x16c9a0d6
)

// Entry is one interface the mapper advertises on ncacn_ip_tcp.
type Entry struct {
	// Syntax is the interface UUID and version.
	Syntax *dcerpc.SyntaxID
	// Annotation is a free-form description, at most 63 bytes.
	Annotation string
	// Port is the TCP port the interface listens on.
	Port int
	// Host is the IPv4 address put in towers. Empty means the address the
	// client reached the mapper on, which suits a daemon listening on all
	// addresses.
	Host string
}

// Mapper answers endpoint mapper requests from its entries. It is safe for
// concurrent use; entries may be added while it serves.
type Mapper struct {
	mu      sync.RWMutex
	entries []Entry
}

// New returns a Mapper advertising entries.
func New(entries ...Entry) *Mapper {
	m := &Mapper{}
	for _, e := range entries {
		m.Add(e)
	}
	return m
}

// Add advertises e. An annotation longer than 63 bytes is truncated.
func (m *Mapper) Add(e Entry) {
	if len(e.Annotation) > maxAnnotation {
		e.Annotation = e.Annotation[:maxAnnotation]
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries = append(m.entries, e)
}

// Handle returns the handler to register under Syntax.
func (m *Mapper) Handle() dcerpc.ServerHandle {
	return epmv3.NewEpmServerHandle(&server{m: m})
}

// maxAnnotation leaves room for the NUL of ept_entry_t's char[64].
const maxAnnotation = 63

// server adapts Mapper to the generated interface; unimplemented
// operations fall through to ErrNotImplemented.
type server struct {
	epmv3.UnimplementedEpmServer
	m *Mapper
}

// Map implements ept_map: the map tower names an interface, a transfer
// syntax and a protocol; the answer is the same tower completed with our
// port and address. Only ncacn_ip_tcp with NDR 2.0 or NDR64 is mapped.
func (s *server) Map(ctx context.Context, req *epmv3.MapRequest) (*epmv3.MapResponse, error) {
	resp := &epmv3.MapResponse{
		MaxTowers:   req.MaxTowers,
		EntryHandle: zeroHandle(),
		Status:      StatusNotRegistered,
	}
	if req.MapTower == nil {
		return resp, nil
	}
	q, ok := parseMapTower(req.MapTower.TowerOctetString)
	if !ok {
		rpc.Logger(ctx).Debug("epm: unusable map tower")
		return resp, nil
	}
	for _, e := range s.m.match(func(e *Entry) bool { return compatible(e.Syntax, &q.iface) }) {
		if uint32(len(resp.Towers)) >= req.MaxTowers {
			break
		}
		resp.Towers = append(resp.Towers, tower(&e, &q.transfer, hostIP(ctx, e.Host)))
	}
	if resp.TowersLength = uint32(len(resp.Towers)); resp.TowersLength > 0 {
		resp.Status = StatusOK
	}
	return resp, nil
}

// ept_lookup inquiry types and version options (C706 Appendix O).
const (
	inquiryAll     = 0 // RPC_C_EP_ALL_ELTS
	inquiryByIf    = 1 // RPC_C_EP_MATCH_BY_IF
	inquiryByObj   = 2 // RPC_C_EP_MATCH_BY_OBJ
	inquiryByBoth  = 3 // RPC_C_EP_MATCH_BY_BOTH
	versAll        = 1 // RPC_C_VERS_ALL
	versCompatible = 2 // RPC_C_VERS_COMPATIBLE
	versExact      = 3 // RPC_C_VERS_EXACT
	versMajorOnly  = 4 // RPC_C_VERS_MAJOR_ONLY
	versUpto       = 5 // RPC_C_VERS_UPTO
)

// Lookup implements ept_lookup. Entries carry the nil object UUID and a
// tower with NDR 2.0. When more entries match than max_ents, the returned
// handle encodes where to resume, so no state is kept per client.
func (s *server) Lookup(ctx context.Context, req *epmv3.LookupRequest) (*epmv3.LookupResponse, error) {
	resp := &epmv3.LookupResponse{MaxEntries: req.MaxEntries, EntryHandle: zeroHandle(), Status: StatusNotRegistered}
	matches := s.m.match(func(e *Entry) bool { return lookupMatch(req, e) })
	start := resumeAt(req.EntryHandle)
	if start >= len(matches) {
		return resp, nil
	}
	ip := hostIP(ctx, "")
	for i := start; i < len(matches) && uint32(len(resp.Entries)) < req.MaxEntries; i++ {
		e := &matches[i]
		if e.Host != "" {
			ip = hostIP(ctx, e.Host)
		}
		resp.Entries = append(resp.Entries, &epmv3.Entry{
			Object:     &dtyp.GUID{},
			Tower:      tower(e, dcerpc.TransferNDRSyntaxV2_0, ip),
			Annotation: e.Annotation,
		})
	}
	if next := start + len(resp.Entries); next < len(matches) {
		resp.EntryHandle = resumeHandle(next)
	}
	if resp.EntriesLength = uint32(len(resp.Entries)); resp.EntriesLength > 0 {
		resp.Status = StatusOK
	}
	return resp, nil
}

// LookupHandleFree implements ept_lookup_handle_free; handles hold no state.
func (s *server) LookupHandleFree(ctx context.Context, req *epmv3.LookupHandleFreeRequest) (*epmv3.LookupHandleFreeResponse, error) {
	return &epmv3.LookupHandleFreeResponse{EntryHandle: zeroHandle()}, nil
}

func lookupMatch(req *epmv3.LookupRequest, e *Entry) bool {
	switch req.InquiryType {
	case inquiryAll:
		return true
	case inquiryByObj:
		return req.Object == nil || req.Object.IsZero()
	case inquiryByIf, inquiryByBoth:
		if req.InquiryType == inquiryByBoth && req.Object != nil && !req.Object.IsZero() {
			return false
		}
		if req.InterfaceID == nil || req.InterfaceID.UUID == nil || !req.InterfaceID.UUID.UUID().Equals(e.Syntax.IfUUID) {
			return false
		}
		major, minor := req.InterfaceID.VersMajor, req.InterfaceID.VersMinor
		have := e.Syntax
		switch req.VersOption {
		case versAll:
			return true
		case versCompatible:
			return have.IfVersionMajor == major && have.IfVersionMinor >= minor
		case versExact:
			return have.IfVersionMajor == major && have.IfVersionMinor == minor
		case versMajorOnly:
			return have.IfVersionMajor == major
		case versUpto:
			return have.IfVersionMajor < major || have.IfVersionMajor == major && have.IfVersionMinor <= minor
		}
	}
	return false
}

// compatible applies C706's rule: same UUID and major, minor at least the
// requested one.
func compatible(have, want *dcerpc.SyntaxID) bool {
	return have.IfUUID.Equals(want.IfUUID) && have.IfVersionMajor == want.IfVersionMajor && have.IfVersionMinor >= want.IfVersionMinor
}

// match returns a snapshot of the entries for which f holds.
func (m *Mapper) match(f func(*Entry) bool) []Entry {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []Entry
	for i := range m.entries {
		if f(&m.entries[i]) {
			out = append(out, m.entries[i])
		}
	}
	return out
}

// hostIP returns the IPv4 address for towers: host if set, else the local
// address of the caller's connection, else 0.0.0.0.
func hostIP(ctx context.Context, host string) net.IP {
	if ip := net.ParseIP(host).To4(); ip != nil {
		return ip
	}
	if c, ok := rpc.CallerFromContext(ctx); ok {
		if a, ok := c.LocalAddr.(*net.TCPAddr); ok && a.IP.To4() != nil {
			return a.IP.To4()
		}
	}
	return net.IPv4zero.To4()
}

func zeroHandle() *epmv3.LookupHandle {
	return &epmv3.LookupHandle{UUID: &dtyp.GUID{}}
}

// resumeHandle encodes a lookup position in a context handle.
func resumeHandle(next int) *epmv3.LookupHandle {
	return &epmv3.LookupHandle{UUID: &dtyp.GUID{Data1: uint32(next), Data2: 0x4550, Data3: 0x4d31, Data4: make([]byte, 8)}}
}

// resumeAt decodes resumeHandle; anything else starts at 0.
func resumeAt(h *epmv3.LookupHandle) int {
	if h == nil || h.UUID == nil || h.UUID.Data2 != 0x4550 || h.UUID.Data3 != 0x4d31 {
		return 0
	}
	return int(h.UUID.Data1)
}
