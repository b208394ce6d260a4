package dcom

// server.go: the Server (one object exporter, its resolver and activator),
// classes, objects and the IPID/OID tables.

import (
	"context"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom"
	"github.com/oiweiwei/go-msrpc/msrpc/dtyp"
	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/rpc"
)

// Defaults for Config's zero values.
const (
	// DefaultPingTimeout is 3 × the 120 s ping period (MS-DCOM §3.2.2.2.1).
	DefaultPingTimeout = 6 * time.Minute
	// DefaultIdleTimeout reclaims objects no ping set holds and nobody
	// called for this long.
	DefaultIdleTimeout = 6 * time.Minute
	// DefaultMaxObjects is the default of Config.MaxObjects.
	DefaultMaxObjects = 1 << 16
)

// Config configures a Server.
type Config struct {
	// Logger receives the logs; nil means logrus' standard logger.
	Logger *logrus.Entry
	// ExporterPort is the TCP port of the listener the exporter's
	// interfaces are served on (RegisterExporter); it goes into the OXID
	// bindings as host[port]. It may be set after New, before clients
	// activate (SetExporterPort).
	ExporterPort int
	// Hosts are the network addresses put in string bindings. Empty means
	// the local address the client reached us on, so that a client is
	// never sent a name it did not already use.
	Hosts []string
	// Security lists the security bindings advertised (e.g. NTLM and
	// Negotiate); empty advertises none.
	Security []SecurityBinding
	// AuthnHint is the minimum authentication level of the exporter
	// (MS-RPCE §2.2.1.1.8), reported in ResolveOxid2 and ScmReplyInfo.
	// Calls below it fail with E_ACCESSDENIED (activation) or a fault
	// ERROR_ACCESS_DENIED (ORPC, resolver except ServerAlive(2)).
	AuthnHint uint32
	// Authorize, if set, decides whether a caller may activate and call
	// objects (launch and access permission); false means E_ACCESSDENIED.
	Authorize func(*rpc.Caller) bool
	// PingTimeout and IdleTimeout: see the package documentation; 0 means
	// the defaults.
	PingTimeout, IdleTimeout time.Duration
	// MaxObjects caps the exported objects; 0 means DefaultMaxObjects.
	// Beyond it (after reclaiming the idle ones) exports fail with
	// E_OUTOFMEMORY, so a client that never releases cannot grow the
	// tables without bound.
	MaxObjects int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Class is a COM class clients can activate.
type Class struct {
	// CLSID identifies the class.
	CLSID *dcom.ClassID
	// Name is used in logs.
	Name string
	// New makes an object for an activation. An error fails the
	// activation with E_OUTOFMEMORY (the only generic HRESULT for "could
	// not create"), and is logged.
	New func(ctx context.Context) (*Object, error)
}

// Interface is one interface of an object: its IID and the go-msrpc
// generated server handle of its implementation.
type Interface struct {
	IID    *dcom.IID
	Handle dcerpc.ServerHandle
}

// Object is a COM object: the interfaces it implements. It supports
// IUnknown implicitly. The zero Object has only IUnknown.
type Object struct {
	ifaces map[string]Interface
	// Name is used in logs.
	Name string
	// OnRelease, if set, is called once when the exporter drops the
	// object (released, or reclaimed after the idle or ping timeout).
	OnRelease func()
}

// NewObject returns an object implementing ifaces.
func NewObject(name string, ifaces ...Interface) *Object {
	o := &Object{Name: name, ifaces: make(map[string]Interface, len(ifaces))}
	for _, in := range ifaces {
		o.ifaces[guidKey(in.IID.GUID())] = in
	}
	return o
}

// Supports reports whether the object implements iid.
func (o *Object) Supports(iid *dcom.IID) bool {
	if iid.GUID().Equal(IIDUnknown.GUID()) {
		return true
	}
	_, ok := o.ifaces[guidKey(iid.GUID())]
	return ok
}

// ipidEntry is one exported interface of an object (MS-DCOM §3.1.1.1).
type ipidEntry struct {
	ipid            *dcom.IPID
	iid             *dcom.IID
	oid             *oidEntry
	public, private uint32
}

// oidEntry is one exported object.
type oidEntry struct {
	oid      uint64
	obj      *Object
	ipids    map[string]*ipidEntry // by IID
	lastCall time.Time
	pings    int // ping sets holding it
}

// pingSet is a client's ping set (MS-DCOM §3.2.1.1).
type pingSet struct {
	id       uint64
	oids     map[uint64]struct{}
	seq      uint16
	lastPing time.Time
}

// Server is one object exporter (one OXID) with the object resolver and
// activator in front of it. Safe for concurrent use.
type Server struct {
	cfg           Config
	oxid          uint64
	ipidRemUnk    *dcom.IPID
	ipidRemUnkKey string

	mu        sync.Mutex
	classes   map[string]Class
	iids      map[string]*dcerpc.SyntaxID // application interfaces served
	ipids     map[string]*ipidEntry
	oids      map[uint64]*oidEntry
	sets      map[uint64]*pingSet
	port      int
	lastSweep time.Time
}

// New returns a Server with no classes.
func New(cfg Config) *Server {
	s := &Server{
		cfg:        cfg,
		oxid:       newID(),
		ipidRemUnk: (*dcom.IPID)(newGUID()),
		classes:    map[string]Class{},
		iids:       map[string]*dcerpc.SyntaxID{},
		ipids:      map[string]*ipidEntry{},
		oids:       map[uint64]*oidEntry{},
		sets:       map[uint64]*pingSet{},
		port:       cfg.ExporterPort,
	}
	s.ipidRemUnkKey = guidKey(s.ipidRemUnk.GUID())
	return s
}

// OXID returns the exporter's OXID.
func (s *Server) OXID() uint64 { return s.oxid }

// SetExporterPort sets Config.ExporterPort, e.g. once the exporter's
// listener is bound.
func (s *Server) SetExporterPort(port int) {
	s.mu.Lock()
	s.port = port
	s.mu.Unlock()
}

// RegisterClass makes c activatable and declares the interfaces its
// objects (and the objects they hand out) implement, so that
// RegisterExporter serves them. Call it before RegisterExporter.
func (s *Server) RegisterClass(c Class, ifaces ...*dcerpc.SyntaxID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.classes[guidKey(c.CLSID.GUID())] = c
	for _, in := range ifaces {
		s.iids[guidKey(dtyp.GUIDFromUUID(in.IfUUID))] = in
	}
}

func (s *Server) log() *logrus.Entry {
	if s.cfg.Logger != nil {
		return s.cfg.Logger
	}
	return logrus.NewEntry(logrus.StandardLogger())
}

func (s *Server) now() time.Time {
	if s.cfg.Now != nil {
		return s.cfg.Now()
	}
	return time.Now()
}

func (s *Server) pingTimeout() time.Duration {
	if s.cfg.PingTimeout > 0 {
		return s.cfg.PingTimeout
	}
	return DefaultPingTimeout
}

func (s *Server) idleTimeout() time.Duration {
	if s.cfg.IdleTimeout > 0 {
		return s.cfg.IdleTimeout
	}
	return DefaultIdleTimeout
}

// hosts returns the hosts for string bindings: Config.Hosts, or the local
// address the caller used.
func (s *Server) hosts(ctx context.Context) []string {
	if len(s.cfg.Hosts) > 0 {
		return s.cfg.Hosts
	}
	if c, ok := rpc.CallerFromContext(ctx); ok && c.LocalAddr != nil {
		if h, _, err := net.SplitHostPort(c.LocalAddr.String()); err == nil {
			return []string{h}
		}
	}
	return []string{"127.0.0.1"}
}

// resolverBindings are the resolver's bindings: hosts without endpoints
// (ServerAlive2, the saResAddr of OBJREFs).
func (s *Server) resolverBindings(ctx context.Context) *dcom.DualStringArray {
	return dualStringArray(s.hosts(ctx), s.cfg.Security)
}

// exporterBindings are the OXID's bindings: host[port].
func (s *Server) exporterBindings(ctx context.Context) *dcom.DualStringArray {
	s.mu.Lock()
	port := s.port
	s.mu.Unlock()
	hs := s.hosts(ctx)
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h + "[" + strconv.Itoa(port) + "]"
	}
	return dualStringArray(out, s.cfg.Security)
}

// allowed applies AuthnHint and Authorize to the caller of ctx.
func (s *Server) allowed(ctx context.Context) bool {
	c, ok := rpc.CallerFromContext(ctx)
	if !ok {
		return false
	}
	if uint32(c.AuthLevel) < s.cfg.AuthnHint {
		return false
	}
	return s.cfg.Authorize == nil || s.cfg.Authorize(c)
}

// Export marshals obj's interface iid: it registers the object (a new OID)
// if it is not exported yet, creates or reuses the IPID for iid, adds
// initialPublicRefs public references and returns the OBJREF_STANDARD.
// Handlers that hand out objects (an enumerator, a sub-interface) call it.
func (s *Server) Export(ctx context.Context, obj *Object, iid *dcom.IID) (*dcom.InterfacePointer, error) {
	std, err := s.export(obj, iid, initialPublicRefs)
	if err != nil {
		return nil, err
	}
	return marshalStandard(iid, std, s.resolverBindings(ctx))
}

// export adds refs public references to obj's IPID for iid; the caller
// must know that obj supports iid.
func (s *Server) export(obj *Object, iid *dcom.IID, refs uint32) (*dcom.StdObjectReference, error) {
	if !obj.Supports(iid) {
		return nil, &rpc.FaultError{Status: ENoInterface}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var oe *oidEntry
	for _, o := range s.oids {
		if o.obj == obj {
			oe = o
			break
		}
	}
	if oe == nil {
		max := s.cfg.MaxObjects
		if max <= 0 {
			max = DefaultMaxObjects
		}
		if len(s.oids) >= max {
			s.lastSweep = time.Time{}
			s.sweepLocked()
		}
		if len(s.oids) >= max {
			s.log().WithField("objects", len(s.oids)).Warn("dcom: object table full")
			return nil, &rpc.FaultError{Status: EOutOfMemory}
		}
		oe = &oidEntry{oid: newID(), obj: obj, ipids: map[string]*ipidEntry{}, lastCall: s.now()}
		s.oids[oe.oid] = oe
	}
	k := guidKey(iid.GUID())
	ie := oe.ipids[k]
	if ie == nil {
		ie = &ipidEntry{ipid: (*dcom.IPID)(newGUID()), iid: iid, oid: oe}
		oe.ipids[k] = ie
		s.ipids[guidKey(ie.ipid.GUID())] = ie
	}
	ie.public += refs
	return &dcom.StdObjectReference{PublicReferencesCount: refs, OXID: s.oxid, OID: oe.oid, IPID: ie.ipid}, nil
}

// dropIPIDLocked removes an IPID, and its object when it was the last.
func (s *Server) dropIPIDLocked(ie *ipidEntry) {
	delete(s.ipids, guidKey(ie.ipid.GUID()))
	oe := ie.oid
	delete(oe.ipids, guidKey(ie.iid.GUID()))
	if len(oe.ipids) == 0 {
		s.dropOIDLocked(oe, "released")
	}
}

func (s *Server) dropOIDLocked(oe *oidEntry, why string) {
	for _, ie := range oe.ipids {
		delete(s.ipids, guidKey(ie.ipid.GUID()))
	}
	delete(s.oids, oe.oid)
	for _, ps := range s.sets {
		delete(ps.oids, oe.oid)
	}
	s.log().WithFields(logrus.Fields{"object": oe.obj.Name, "oid": oe.oid, "reason": why}).Debug("dcom: object dropped")
	if oe.obj.OnRelease != nil {
		go oe.obj.OnRelease()
	}
}

// sweepLocked drops expired ping sets and idle objects no ping set holds.
// It runs at most every tenth of the shorter timeout.
func (s *Server) sweepLocked() {
	now := s.now()
	period := min(s.pingTimeout(), s.idleTimeout()) / 10
	if now.Sub(s.lastSweep) < period {
		return
	}
	s.lastSweep = now
	for id, ps := range s.sets {
		if now.Sub(ps.lastPing) > s.pingTimeout() {
			for oid := range ps.oids {
				if oe := s.oids[oid]; oe != nil {
					oe.pings--
				}
			}
			delete(s.sets, id)
		}
	}
	for _, oe := range s.oids {
		if oe.pings <= 0 && now.Sub(oe.lastCall) > s.idleTimeout() {
			s.dropOIDLocked(oe, "idle")
		}
	}
}

// Objects returns the number of exported objects, for tests and metrics.
func (s *Server) Objects() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.oids)
}
