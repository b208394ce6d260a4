package rpc_test

// A hand-written PDU codec for tests (C706 §12.6), independent of go-msrpc,
// so that the wire format itself is under test.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	"github.com/oiweiwei/go-msrpc/midl/uuid"
)

const (
	ptRequest   = 0
	ptResponse  = 2
	ptFault     = 3
	ptBind      = 11
	ptBindAck   = 12
	ptBindNak   = 13
	ptAlter     = 14
	ptAlterResp = 15
	ptAuth3     = 16
	ptCancel    = 18
	ptOrphaned  = 19

	pfcFirst         = 0x01
	pfcLast          = 0x02
	pfcHeaderSign    = 0x04
	pfcConcMPX       = 0x10
	pfcDidNotExecute = 0x20
	pfcObject        = 0x80
	pfcWhole         = pfcFirst | pfcLast
)

var (
	unknownSyntax = &dcerpc.SyntaxID{IfUUID: uuid.MustParse("01234567-89ab-cdef-0123-456789abcdef"), IfVersionMajor: 1}
	bogusTransfer = &dcerpc.SyntaxID{IfUUID: uuid.MustParse("fedcba98-7654-3210-fedc-ba9876543210"), IfVersionMajor: 1}
	ndr20         = dcerpc.TransferNDRSyntaxV2_0
	ndr64         = dcerpc.TransferNDR64SyntaxV1_0
	zeroSyntax    = &dcerpc.SyntaxID{IfUUID: &uuid.UUID{}}
)

// rawCtx is one presentation context element of a bind.
type rawCtx struct {
	id        uint16
	abstract  *dcerpc.SyntaxID
	transfers []*dcerpc.SyntaxID
}

func appendSyntax(b []byte, s *dcerpc.SyntaxID) []byte {
	u := s.IfUUID
	b = binary.LittleEndian.AppendUint32(b, u.TimeLow)
	b = binary.LittleEndian.AppendUint16(b, u.TimeMid)
	b = binary.LittleEndian.AppendUint16(b, u.TimeHiAndVersion)
	b = append(b, u.ClockSeqHiAndReserved, u.ClockSeqLow)
	b = append(b, u.Node[:]...)
	b = binary.LittleEndian.AppendUint16(b, s.IfVersionMajor)
	return binary.LittleEndian.AppendUint16(b, s.IfVersionMinor)
}

// frame prepends a little-endian rpc 5.0 header to body.
func frame(ptype, flags byte, callID uint32, body []byte) []byte {
	b := []byte{5, 0, ptype, flags, 0x10, 0, 0, 0}
	b = binary.LittleEndian.AppendUint16(b, uint16(16+len(body)))
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint32(b, callID)
	return append(b, body...)
}

// bindBody encodes a bind or alter_context body (C706 §12.6.4.3).
func bindBody(maxFrag uint16, assoc uint32, ctxs ...rawCtx) []byte {
	b := binary.LittleEndian.AppendUint16(nil, maxFrag)
	b = binary.LittleEndian.AppendUint16(b, maxFrag)
	b = binary.LittleEndian.AppendUint32(b, assoc)
	b = append(b, byte(len(ctxs)), 0, 0, 0)
	for _, c := range ctxs {
		b = binary.LittleEndian.AppendUint16(b, c.id)
		b = append(b, byte(len(c.transfers)), 0)
		b = appendSyntax(b, c.abstract)
		for _, ts := range c.transfers {
			b = appendSyntax(b, ts)
		}
	}
	return b
}

// requestBody encodes a request body (C706 §12.6.4.9) without object.
func requestBody(ctxID, opnum uint16, allocHint int, stub []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(allocHint))
	b = binary.LittleEndian.AppendUint16(b, ctxID)
	b = binary.LittleEndian.AppendUint16(b, opnum)
	return append(b, stub...)
}

// featureSyntax is the bind-time feature negotiation syntax for flags.
func featureSyntax(flags byte) *dcerpc.SyntaxID {
	return &dcerpc.SyntaxID{IfUUID: uuid.New(0x6cb71c2c, 0x9812, 0x4540, flags, 0, [6]byte{}), IfVersionMajor: 1}
}

// pdu is a decoded PDU from the server.
type pdu struct {
	ptype, flags byte
	callID       uint32
	authLen      int
	body         []byte
}

// rawConn is a client speaking raw PDUs.
type rawConn struct {
	t  testing.TB
	nc net.Conn
}

func dialRaw(t testing.TB, network, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout(network, addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(wait))
	return &rawConn{t: t, nc: nc}
}

func (c *rawConn) send(pdus ...[]byte) {
	c.t.Helper()
	for _, p := range pdus {
		if _, err := c.nc.Write(p); err != nil {
			c.t.Fatalf("write: %v", err)
		}
	}
}

// next reads one PDU; io.EOF means the server closed the connection.
func (c *rawConn) next() (pdu, error) {
	var h [16]byte
	if _, err := io.ReadFull(c.nc, h[:]); err != nil {
		return pdu{}, err
	}
	body := make([]byte, int(binary.LittleEndian.Uint16(h[8:10]))-16)
	if _, err := io.ReadFull(c.nc, body); err != nil {
		return pdu{}, err
	}
	return pdu{ptype: h[2], flags: h[3], callID: binary.LittleEndian.Uint32(h[12:]), authLen: int(binary.LittleEndian.Uint16(h[10:12])), body: body}, nil
}

func (c *rawConn) recv(ptype byte) pdu {
	c.t.Helper()
	p, err := c.next()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	if p.ptype != ptype {
		c.t.Fatalf("got PDU type %d (body % x), want %d", p.ptype, p.body, ptype)
	}
	return p
}

// expectClosed reads until the server closes the connection.
func (c *rawConn) expectClosed() {
	c.t.Helper()
	for {
		p, err := c.next()
		var ne net.Error
		switch {
		case err == nil:
			c.t.Errorf("unexpected PDU type %d before close", p.ptype)
		case errors.As(err, &ne) && ne.Timeout():
			c.t.Fatalf("connection not closed: %v", err)
		default:
			return // EOF or reset
		}
	}
}

// bind sends a bind and returns the bind_ack.
func (c *rawConn) bind(flags byte, maxFrag uint16, ctxs ...rawCtx) bindAck {
	c.t.Helper()
	c.send(frame(ptBind, pfcWhole|flags, 1, bindBody(maxFrag, 0, ctxs...)))
	return parseAck(c.t, c.recv(ptBindAck))
}

// call sends a request in fragments of at most frag stub bytes and returns
// the reassembled response stub (or the fault status) and the fragments.
func (c *rawConn) call(callID uint32, ctxID, opnum uint16, stub []byte, frag int) (resp []byte, status uint32, frags []pdu) {
	c.t.Helper()
	c.sendRequest(callID, ctxID, opnum, stub, frag)
	return c.response(callID)
}

func (c *rawConn) sendRequest(callID uint32, ctxID, opnum uint16, stub []byte, frag int) {
	c.t.Helper()
	for off := 0; off == 0 || off < len(stub); off += frag {
		end := min(off+frag, len(stub))
		var flags byte
		if off == 0 {
			flags |= pfcFirst
		}
		if end == len(stub) {
			flags |= pfcLast
		}
		c.send(frame(ptRequest, flags, callID, requestBody(ctxID, opnum, len(stub)-off, stub[off:end])))
	}
}

func (c *rawConn) response(callID uint32) (resp []byte, status uint32, frags []pdu) {
	c.t.Helper()
	for {
		p, err := c.next()
		if err != nil {
			c.t.Fatalf("read response: %v", err)
		}
		if p.callID != callID {
			c.t.Fatalf("call id %d, want %d", p.callID, callID)
		}
		frags = append(frags, p)
		switch p.ptype {
		case ptFault:
			return nil, binary.LittleEndian.Uint32(p.body[8:12]), frags
		case ptResponse:
			resp = append(resp, p.body[8:]...)
			if p.flags&pfcLast != 0 {
				return resp, 0, frags
			}
		default:
			c.t.Fatalf("PDU type %d in a response", p.ptype)
		}
	}
}

type result struct {
	result, reason uint16
	transfer       []byte // 20 bytes
}

type bindAck struct {
	flags            byte
	maxXmit, maxRecv uint16
	assoc            uint32
	secAddr          string
	results          []result
}

func parseAck(t testing.TB, p pdu) bindAck {
	t.Helper()
	b := p.body
	a := bindAck{flags: p.flags, maxXmit: binary.LittleEndian.Uint16(b), maxRecv: binary.LittleEndian.Uint16(b[2:]), assoc: binary.LittleEndian.Uint32(b[4:])}
	n := int(binary.LittleEndian.Uint16(b[8:]))
	if n > 0 {
		a.secAddr = string(b[10 : 10+n-1])
	}
	off := (16+10+n+3)&^3 - 16 // pad to 4 from the PDU start
	count := int(b[off])
	off += 4
	for i := 0; i < count; i++ {
		r := b[off+24*i:]
		a.results = append(a.results, result{binary.LittleEndian.Uint16(r), binary.LittleEndian.Uint16(r[2:]), r[4:24]})
	}
	return a
}

func (r result) is(ts *dcerpc.SyntaxID) bool {
	return bytes.Equal(r.transfer, appendSyntax(nil, ts))
}

func faultStatus(p pdu) uint32 { return binary.LittleEndian.Uint32(p.body[8:12]) }
