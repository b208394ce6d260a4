package rpc

// pdu.go: the connection-oriented common header and the few PDU encodings
// that go-msrpc gets wrong or that are simpler by hand. Bodies that go-msrpc
// encodes correctly (bind_ack, bind_nak, alter_context_resp, fault) go
// through its exported PDU types and the NDR 2.0 writer.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	"github.com/oiweiwei/go-msrpc/ndr"
)

const (
	// headerSize is the size of the common header (C706 §12.6.3.1).
	headerSize = dcerpc.HeaderSize
	// requestHeaderSize is alloc_hint, p_cont_id and opnum (C706 §12.6.4.9).
	requestHeaderSize = 8
	// responseHeaderSize is alloc_hint, p_cont_id, cancel_count and a
	// reserved octet (C706 §12.6.4.10). go-msrpc's Response.WriteTo writes
	// only 7 of these 8 bytes, so responses are encoded here.
	responseHeaderSize = 8
	// objectUUIDSize is the optional object field of a request.
	objectUUIDSize = 16
	// secTrailerSize is auth_verifier_co_t without auth_value (C706 §13.2.6.1).
	secTrailerSize = 8
	// rpcVersion and the accepted minor versions (C706 §12.6.3.1, MS-RPCE §2.2.2.1).
	rpcVersion         = 5
	rpcVersionMinorMax = 1
)

// drepNDR is the data representation the runtime sends and the only one it
// accepts: little-endian integers, ASCII characters, IEEE floats (C706 §14.1).
var drepNDR = ndr.DefaultDataRepresentation

// errProtocol marks a PDU that violates the protocol; the connection answers
// with nca_proto_error where a reply is possible and is then closed.
var errProtocol = errors.New("rpc: protocol error")

// protoErrorf returns an error wrapping errProtocol.
func protoErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errProtocol}, args...)...)
}

// decodeHeader decodes the 16-byte common header. Integers are decoded in the
// byte order announced by the sender's drep (C706 §12.6.3.1: "in the data
// representation of the sender"), so that a big-endian peer can at least be
// told no.
func decodeHeader(b []byte) dcerpc.Header {
	var order binary.ByteOrder = binary.BigEndian
	if b[4]&0xf0 == 0x10 {
		order = binary.LittleEndian
	}
	return dcerpc.Header{
		RPCVersion:      b[0],
		RPCVersionMinor: b[1],
		PacketType:      dcerpc.PacketType(b[2]),
		PacketFlags:     dcerpc.PacketFlag(b[3]),
		PacketDRep:      ndr.DataRepresentation(binary.LittleEndian.Uint32(b[4:8])),
		FragLength:      order.Uint16(b[8:10]),
		AuthLength:      order.Uint16(b[10:12]),
		CallID:          order.Uint32(b[12:16]),
	}
}

// checkHeader validates the fields needed before the body is read: the
// version and the lengths. It never allocates.
func checkHeader(h dcerpc.Header) error {
	if h.RPCVersion != rpcVersion || h.RPCVersionMinor > rpcVersionMinorMax {
		return protoErrorf("rpc version %d.%d", h.RPCVersion, h.RPCVersionMinor)
	}
	if h.FragLength < headerSize {
		return protoErrorf("frag_length %d shorter than the header", h.FragLength)
	}
	if h.AuthLength != 0 && int(h.AuthLength)+secTrailerSize > int(h.FragLength)-headerSize {
		return protoErrorf("auth_length %d exceeds frag_length %d", h.AuthLength, h.FragLength)
	}
	return nil
}

// supportedDRep reports whether the runtime can read data in drep. Only the
// NDR default (little-endian, ASCII, IEEE) is accepted.
func supportedDRep(d ndr.DataRepresentation) bool {
	const mask = 0x0000ffff // reserved octets are ignored
	return uint32(d)&mask == uint32(drepNDR)
}

// putHeader encodes a common header into b[:16]. The runtime always sends
// little-endian NDR with rpc_vers 5.0 and never an auth verifier (yet).
func putHeader(b []byte, ptype dcerpc.PacketType, flags dcerpc.PacketFlag, fragLen int, callID uint32) {
	b[0], b[1], b[2], b[3] = rpcVersion, 0, byte(ptype), byte(flags)
	binary.LittleEndian.PutUint32(b[4:8], uint32(drepNDR))
	binary.LittleEndian.PutUint16(b[8:10], uint16(fragLen))
	binary.LittleEndian.PutUint16(b[10:12], 0)
	binary.LittleEndian.PutUint32(b[12:16], callID)
}

// encodePDU returns a complete PDU: a header followed by the NDR encoding of
// body. It is used for the PDUs that go-msrpc encodes correctly.
func encodePDU(ptype dcerpc.PacketType, flags dcerpc.PacketFlag, callID uint32, body dcerpc.PDU) ([]byte, error) {
	w := ndr.NDR20(make([]byte, 0, 128), drepNDR)
	if err := body.WriteTo(context.Background(), w); err != nil {
		return nil, fmt.Errorf("encode %s: %w", ptype, err)
	}
	stub := w.Bytes()
	if headerSize+len(stub) > 0xffff {
		return nil, fmt.Errorf("encode %s: %d bytes do not fit a fragment", ptype, len(stub))
	}
	b := make([]byte, headerSize+len(stub))
	putHeader(b, ptype, flags, len(b), callID)
	copy(b[headerSize:], stub)
	return b, nil
}

// appendResponseFragment appends one response fragment (C706 §12.6.4.10)
// carrying chunk to dst. allocHint is the number of stub bytes that remain,
// this chunk included, as Windows and Samba send it.
func appendResponseFragment(dst []byte, flags dcerpc.PacketFlag, callID uint32, ctxID uint16, allocHint int, chunk []byte) []byte {
	n := headerSize + responseHeaderSize + len(chunk)
	start := len(dst)
	dst = append(dst, make([]byte, headerSize+responseHeaderSize)...)
	putHeader(dst[start:], dcerpc.PacketTypeResponse, flags, n, callID)
	body := dst[start+headerSize:]
	binary.LittleEndian.PutUint32(body[0:4], uint32(allocHint))
	binary.LittleEndian.PutUint16(body[4:6], ctxID)
	body[6], body[7] = 0, 0 // cancel_count, reserved
	return append(dst, chunk...)
}

// faultPDU encodes a fault (C706 §12.6.4.7). PFC_DID_NOT_EXECUTE is set
// only when the manager routine was not entered.
func faultPDU(callID uint32, ctxID uint16, status uint32, didNotExecute bool) []byte {
	flags := dcerpc.PacketFlagFirstFrag | dcerpc.PacketFlagLastFrag
	if didNotExecute {
		flags |= dcerpc.PacketFlagDidNotExecute
	}
	b, err := encodePDU(dcerpc.PacketTypeFault, flags, callID, &dcerpc.Fault{ContextID: ctxID, Status: status})
	if err != nil {
		// A fault body is 16 fixed bytes; encoding cannot fail.
		panic(err)
	}
	return b
}
