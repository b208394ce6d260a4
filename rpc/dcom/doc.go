// Package dcom is the DCOM server plumbing (MS-DCOM) on top of package rpc:
// the object resolver (IObjectExporter), activation (IRemoteSCMActivator),
// and one object exporter with IRemUnknown/IRemUnknown2 that dispatches
// ORPC calls by the IPID in the request's object UUID. It knows nothing
// about the classes it serves: a Class names a CLSID and makes Objects, an
// Object maps IIDs to go-msrpc generated server handles.
//
//	TCP 135 (rpc.Server, with the endpoint mapper)
//	  IObjectExporter      ServerAlive2, ResolveOxid(2), Simple/ComplexPing
//	  IActivation          RemoteActivation (clients before COM 5.6)
//	  IRemoteSCMActivator  RemoteCreateInstance: activation blob ─► Class.New
//	                       ─► ScmReplyInfo (OXID bindings host[port]) +
//	                          PropsOutInfo (one OBJREF_STANDARD per IID)
//	exporter port (rpc.Server)
//	  every served IID ─► dispatch: ORPCTHIS version and flags, IPID lookup
//	                      ─► the object's handler for that IID
//	  IRemUnknown(2)       RemQueryInterface(2), RemAddRef, RemRelease
//
// # Lifetime
//
// Each exported interface of an object has an IPID with public and
// private reference counts (MS-DCOM §3.1.1.5.6); RemRelease to zero drops
// the IPID and the last IPID drops the object (its OID). References are
// standard (not SORF_NOPING): a client that pings keeps its OIDs alive
// through a ping set (ComplexPing/SimplePing, MS-DCOM §3.2.4.2); a ping set
// not pinged for PingTimeout (3 × 120 s) is dropped. An object that is in
// no ping set and was not called for IdleTimeout is dropped as well, which
// reclaims the objects of clients that never ping (go-msrpc's) or vanish.
// Reclamation is lazy: it runs on the resolver's and exporter's calls.
//
// # Errors
//
// ORPC-level failures are fault PDUs carrying the HRESULT (MS-DCOM
// §3.1.1.5.7, 3.2.4.1.1): RPC_E_VERSION_MISMATCH for a COM version other
// than 5.x with x ≤ 7, RPC_E_INVALID_HEADER for non-zero ORPCTHIS flags,
// RPC_E_DISCONNECTED for an unknown IPID, E_NOINTERFACE for an IPID of
// another interface. Activation failures are the method's HRESULT:
// REGDB_E_CLASSNOTREG, E_NOINTERFACE, RPC_E_INVALID_OBJREF for a pActProperties
// that is no OBJREF_CUSTOM of CLSID_ActivationPropertiesIn, E_INVALIDARG for
// a malformed activation blob. Resolver failures are the error_status_t
// codes OR_INVALID_OXID, OR_INVALID_OID and OR_INVALID_SET.
package dcom
