// Package client is a Go client for MS-FSRVP, the File Server Remote VSS
// Protocol, built on the generated stubs of github.com/oiweiwei/go-msrpc.
//
// A Client wraps one DCE/RPC connection and offers one method per FSRVP opnum
// (GetSupportedVersion, SetContext, StartShadowCopySet, ...), taking and
// returning plain Go types: uuid.UUID for GUIDs, time.Time for FILETIMEs.
// Create and Delete run the whole client-side sequence of MS-FSRVP §4 (the
// "happy path"): they are what most callers want.
//
// # Errors
//
// FSRVP methods never raise RPC faults; they return an HRESULT-style DWORD.
// A non-zero return value becomes a *HResultError carrying the operation name
// and the code; Code(err) extracts it and CodeName names it. Anything that
// kept the call from producing a return value (dial, bind, endpoint mapper,
// network, RPC fault, timeout) is a *TransportError, which wraps the
// underlying go-msrpc or net error.
//
// # Targets
//
// Dial accepts "host" (port from the endpoint mapper), "host:port" and
// ncacn_ip_tcp string bindings, with or without an endpoint:
// "ncacn_ip_tcp:10.0.0.1[49152]", "ncacn_ip_tcp:10.0.0.1". Without a port the
// client asks the endpoint mapper (ept_map) on host:135, or on the address
// given with WithEndpointMapper.
//
// # Security
//
// Connections are unauthenticated (dcerpc.WithInsecure) for now. The seam for
// authentication is WithRPCOptions: passing dcerpc security options there
// (credentials, sign, seal) replaces the insecure default.
//
// The FSRVP server keeps its state independently of connections, so one
// sequence may be spread over several Clients (the fsrvp CLI does that).
package client
