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
// Server.Auth lists AuthProviders, one per auth_type (MS-RPCE §2.2.1.1.7).
// A bind or alter_context with a sec_trailer (MS-RPCE §2.2.2.11) starts a
// security context for its auth_context_id: the provider's NewContext,
// then SecurityContext.Accept for every token of the exchange (bind →
// bind_ack, alter_context → alter_context_resp, auth3 without reply)
// until it reports done. An unknown auth_type gets bind_nak reason 8,
// other refusals (level call or packet, a bad token, wrong credentials)
// bind_nak reason 0, or an access-denied fault for alter_context; a
// failed auth3 closes the connection. Up to 8 contexts per connection.
//
//	bind(sec_trailer, token) ─► authExchange ─► Accept ─► bind_ack(token)
//	request(…, pad, sec_trailer, signature) ─► requestAuth ─► Unwrap
//	     (verify, decrypt at privacy) ─► call ─► protectedResponse ─► Wrap
//
// At integrity and privacy every request fragment must carry a verifier
// for an established context of the same type and level; Unwrap checks the
// signature and the sequence number, so a tampered, replayed or reordered
// PDU gets an access-denied fault and the connection is closed. Requests
// without verifier are accepted only at connect level (clients send none
// there). Response fragments are padded to 16 bytes and signed or sealed
// under the write lock, so sequence numbers follow the wire order. Faults
// are sent without verifier, as Samba does (dcesrv_fault_with_flags);
// clients accept them unsigned. PFC_SUPPORT_HEADER_SIGN is
// echoed (bind_ack, alter_context_resp) when the client offers it with an
// authenticated bind, and passed to the mechanism as Message.HeaderSign;
// NTLMSSP signs the whole PDU either way (Windows, Samba), GSS mechanisms
// such as Kerberos sign the header only with it. The verification trailer
// (MS-RPCE §2.2.2.13) that clients append to the stub is ignored.
//
// Caller.AuthType, AuthLevel, AuthContextID and Identity describe the
// context of each call (nil Identity: unauthenticated). Authorization is
// the handler's business (e.g. Identity.IsBackupCapable).
//
// Implementations live below rpc/auth: ntlm (NTLMSSP acceptor over a
// Verifier credential source: configured accounts, or rpc/auth/winbind),
// spnego (composes spnego.Mechanisms, each an OID plus a SecurityContext
// factory: ntlm's Provider, rpc/auth/krb5's Kerberos acceptor), krb5.

// # go-msrpc workarounds
//
// go-msrpc v1.5.2 has no server runtime and a few server-side bugs:
// Response.WriteTo writes a 7-byte response header (responses are encoded
// in pdu.go), Result.WriteTo panics on a nil TransferSyntax (rejections
// carry a zero syntax), and Request.ReadFrom reads the object UUID only
// into a non-nil field (set before decoding).
package rpc
