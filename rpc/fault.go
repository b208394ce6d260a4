package rpc

// fault.go: fault status codes and the mapping from a handler's result to a
// fault. Every status the runtime can send is listed here.

import (
	"errors"
	"fmt"

	"github.com/oiweiwei/go-msrpc/dcerpc"
)

// Fault status codes sent by the runtime (C706 Appendix E; MS-RPCE §2.2.2.11
// lists the Windows values).
const (
	// StatusOpRangeError (nca_op_rng_error): the opnum is not defined by the
	// interface, or the manager routine is not implemented.
	StatusOpRangeError uint32 = 0x1c010002
	// StatusUnknownInterface (nca_unk_if): the request names a presentation
	// context that was never accepted on this connection.
	StatusUnknownInterface uint32 = 0x1c010003
	// StatusProtocolError (nca_proto_error): the PDU breaks the protocol. The
	// connection is closed after this fault.
	StatusProtocolError uint32 = 0x1c01000b
	// StatusFaultUnspec (nca_s_fault_unspec): a handler returned an error that
	// carries no status of its own, panicked, or its response did not encode.
	// Windows clients report it as RPC_S_CALL_FAILED.
	StatusFaultUnspec uint32 = 0x1c000012
	// StatusBadStubData (RPC_X_BAD_STUB_DATA): the request stub did not
	// unmarshal. Windows and Samba (DCERPC_FAULT_NDR) use this value.
	StatusBadStubData uint32 = 0x000006f7
	// StatusAccessDenied (ERROR_ACCESS_DENIED, Samba's DCERPC_FAULT_ACCESS_DENIED):
	// sent when a reassembled request exceeds Server.MaxRequestSize, as
	// Samba does for its 4 MiB limit; the connection is then closed.
	StatusAccessDenied uint32 = 0x00000005
	// StatusSecPkgError (RPC_S_SEC_PKG_ERROR): an alter_context carried an
	// auth verifier, but no security provider is configured.
	StatusSecPkgError uint32 = 0x00000721
)

// FaultError lets a handler choose the status of the fault PDU sent instead
// of a response. The runtime treats the call as executed
// (PFC_DID_NOT_EXECUTE clear).
//
// Protocol outcomes ("MUST fail with E_X") belong in the operation's return
// value, not here; FaultError is for "cannot serve this call at all".
type FaultError struct {
	Status uint32
}

func (e *FaultError) Error() string {
	return fmt.Sprintf("rpc: fault 0x%08x", e.Status)
}

// callFault describes a fault to send for a call.
type callFault struct {
	status        uint32
	didNotExecute bool
	err           error // the handler error, for the log; may be nil
}

// faultForHandler maps a generated ServerHandle's result to a fault, or nil
// when the operation must be marshalled and sent. err is inspected before op
// because generated handlers return a zeroed operation together with an
// error.
//
//   - *FaultError                        → its status, executed
//   - dcerpc.ErrNotImplemented            → nca_op_rng_error, not executed
//   - other error with a nil operation    → RPC_X_BAD_STUB_DATA, not executed
//     (generated handlers return (nil, err) only when the request stub
//     fails to unmarshal)
//   - other error                        → nca_s_fault_unspec, executed
//   - (nil, nil): unknown opnum          → nca_op_rng_error, not executed
func faultForHandler(op dcerpc.Operation, err error) *callFault {
	var fe *FaultError
	switch {
	case err == nil && op != nil:
		return nil
	case err == nil:
		return &callFault{status: StatusOpRangeError, didNotExecute: true}
	case errors.As(err, &fe):
		return &callFault{status: fe.Status, err: err}
	case errors.Is(err, dcerpc.ErrNotImplemented):
		return &callFault{status: StatusOpRangeError, didNotExecute: true, err: err}
	case op == nil:
		return &callFault{status: StatusBadStubData, didNotExecute: true, err: err}
	default:
		return &callFault{status: StatusFaultUnspec, err: err}
	}
}
