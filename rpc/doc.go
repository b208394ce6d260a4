// Package rpc is a connection-oriented DCE/RPC server runtime (C706
// chapter 12 with the MS-RPCE extensions) for go-msrpc's generated server
// stubs. It knows nothing about the interfaces it serves: Register maps an
// interface syntax to a dcerpc.ServerHandle, and the runtime does
// everything that touches bytes and connections.
//
//	net.Listener ─Accept─► conn (one goroutine: the read loop)
//	                         │ readPDU: 16-byte header, checked before the
//	                         │          body is allocated (≤ 64 KiB)
//	                         ├─ bind / alter_context ─► bind.go: contexts,
//	                         │      NDR20 or NDR64, feature negotiation,
//	                         │      frag size, assoc group ─► bind_ack / nak
//	                         ├─ request fragments ─► call.go: reassembly by
//	                         │      call id (≤ MaxRequestSize)
//	                         │        └─ last fragment ─► call goroutine
//	                         │             ServerHandle(ctx, opnum, ndr.Reader)
//	                         │             op.MarshalNDRResponse ─► response
//	                         │             fragments (≤ max_xmit_frag) or
//	                         │             fault (fault.go)
//	                         └─ orphaned / co_cancel / auth3
//
// # Calls and concurrency
//
// Each connection has one read loop; each call runs in its own goroutine
// with a context carrying a Caller (CallerFromContext), the Request with
// its object UUID and stub (RequestFromContext) and a logger (Logger). Without PFC_CONC_MPX, calls of a connection run one at a time;
// with it (go-msrpc and Windows clients ask for it) up to 16 run at once and
// their request fragments may interleave. A response's fragments are always
// written back to back. A call's context is cancelled when its connection
// ends, when the client orphans it, or when Shutdown gives up waiting;
// co_cancel is only logged.
//
// # Errors
//
// Handler results map to faults as described at faultForHandler: a nil
// operation or dcerpc.ErrNotImplemented is nca_op_rng_error, a stub that
// does not unmarshal is RPC_X_BAD_STUB_DATA, *FaultError carries its own
// status, any other error is nca_s_fault_unspec. Protocol violations get a
// nca_proto_error fault (or a bind_nak for binds) and the connection is
// closed; malformed input never panics, and a panic in a handler costs only
// its call.
//
// # Authentication
//
// None yet. A bind carrying an auth verifier is answered with bind_nak
// reason 8 (authentication_type_not_recognized, MS-RPCE §2.2.2.5), an
// alter_context with one by a RPC_S_SEC_PKG_ERROR fault, and auth3 is
// ignored. Caller.AuthType and AuthLevel are 0. A security provider will
// plug in at handleBind/handleAlterContext (verifier exchange), at
// handleRequest (verify or unseal the stub before reassembly) and at
// writeResponse (sign or seal each fragment, which then needs the 16-byte
// stub alignment).
//
// # go-msrpc workarounds
//
// go-msrpc v1.5.2 has no server runtime and a few server-side bugs:
// Response.WriteTo writes a 7-byte response header (responses are encoded
// in pdu.go), Result.WriteTo panics on a nil TransferSyntax (rejections
// carry a zero syntax), and Request.ReadFrom reads the object UUID only
// into a non-nil field (set before decoding).
package rpc
