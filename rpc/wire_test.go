package rpc_test

// Wire-level tests with hand-built PDUs.

import (
	"bytes"
	"encoding/binary"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	"github.com/oiweiwei/go-msrpc/msrpc/epm/epm/v3"
	fsrvp "github.com/oiweiwei/go-msrpc/msrpc/fsrvp/fileservervssagent/v1"
	"github.com/oiweiwei/go-msrpc/ndr"

	"github.com/fsrvpd/fsrvpd/rpc"
)

var fsrvpSyntax = fsrvp.FileServerVSSAgentSyntaxV1_0

// versionStub is GetSupportedVersion's response: 1, 2, S_OK.
var versionStub = []byte{1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0}

func isPathSupportedStub(t testing.TB, name string) []byte {
	t.Helper()
	b, err := ndr.Marshal(&fsrvp.IsPathSupportedRequest{ShareName: name})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func isPathSupportedOwner(t testing.TB, stub []byte) string {
	t.Helper()
	var r fsrvp.IsPathSupportedResponse
	if err := ndr.Unmarshal(stub, &r); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	return r.OwnerMachineName
}

func TestWireBindResults(t *testing.T) {
	addr, _ := startTCP(t, newServer(&fakeFSRVP{}))
	c := dialRaw(t, "tcp", addr)
	ack := c.bind(pfcHeaderSign, 5840,
		rawCtx{0, fsrvpSyntax, []*dcerpc.SyntaxID{ndr20}},
		rawCtx{1, fsrvpSyntax, []*dcerpc.SyntaxID{ndr20, ndr64}},
		rawCtx{2, unknownSyntax, []*dcerpc.SyntaxID{ndr20}},
		rawCtx{3, fsrvpSyntax, []*dcerpc.SyntaxID{bogusTransfer}},
		rawCtx{4, fsrvpSyntax, []*dcerpc.SyntaxID{featureSyntax(3)}},
	)
	_, port, _ := net.SplitHostPort(addr)
	if ack.secAddr != port {
		t.Errorf("secondary address %q, want %q", ack.secAddr, port)
	}
	if ack.maxXmit != 5840 || ack.maxRecv != 5840 || ack.assoc == 0 {
		t.Errorf("bind_ack %+v", ack)
	}
	if ack.flags&pfcHeaderSign != 0 {
		t.Errorf("PFC_SUPPORT_HEADER_SIGN echoed without header signing")
	}
	want := []struct {
		result, reason uint16
		ts             *dcerpc.SyntaxID
	}{
		{0, 0, ndr20},      // acceptance
		{0, 0, ndr64},      // NDR64 preferred
		{2, 1, zeroSyntax}, // abstract syntax not supported
		{2, 2, zeroSyntax}, // transfer syntaxes not supported
		{3, 2, zeroSyntax}, // negotiate_ack: keep conn on orphan only
	}
	if len(ack.results) != len(want) {
		t.Fatalf("%d results, want %d", len(ack.results), len(want))
	}
	for i, w := range want {
		r := ack.results[i]
		if r.result != w.result || r.reason != w.reason || !r.is(w.ts) {
			t.Errorf("result %d = %+v, want %+v", i, r, w)
		}
	}
	for _, ctxID := range []uint16{0, 1} {
		resp, status, _ := c.call(uint32(10+ctxID), ctxID, 0, nil, 1000)
		if status != 0 || !bytes.Equal(resp, versionStub) {
			t.Errorf("context %d: status %#x stub % x", ctxID, status, resp)
		}
	}
}

func TestWireAssocGroup(t *testing.T) {
	addr, _ := startTCP(t, newServer(&fakeFSRVP{}))
	ctx := rawCtx{0, fsrvpSyntax, []*dcerpc.SyntaxID{ndr20}}

	c := dialRaw(t, "tcp", addr)
	c.send(frame(ptBind, pfcWhole, 1, bindBody(5840, 0x1234, ctx)))
	if a := parseAck(t, c.recv(ptBindAck)); a.assoc != 0x1234 {
		t.Errorf("assoc group %#x, want the client's 0x1234", a.assoc)
	}
	a1 := dialRaw(t, "tcp", addr).bind(0, 5840, ctx)
	a2 := dialRaw(t, "tcp", addr).bind(0, 5840, ctx)
	if a1.assoc == 0 || a2.assoc == 0 || a1.assoc == a2.assoc {
		t.Errorf("new assoc groups %#x and %#x, want distinct and nonzero", a1.assoc, a2.assoc)
	}
}

func TestWireFragmentSize(t *testing.T) {
	for _, tc := range []struct {
		server, client uint16
		want           int
	}{
		{0, 1000, 2048},    // raised to Windows' minimum
		{0, 3001, 3000},    // rounded down to 8
		{0, 65535, 5840},   // our default
		{4000, 9000, 4000}, // our setting
	} {
		t.Run(strconv.Itoa(int(tc.client)), func(t *testing.T) {
			s := newServer(&fakeFSRVP{})
			s.MaxRecvFrag = tc.server
			addr, _ := startTCP(t, s)
			c := dialRaw(t, "tcp", addr)
			ack := c.bind(0, tc.client, rawCtx{0, fsrvpSyntax, []*dcerpc.SyntaxID{ndr20}})
			if int(ack.maxXmit) != tc.want || int(ack.maxRecv) != tc.want {
				t.Fatalf("negotiated %d/%d, want %d", ack.maxXmit, ack.maxRecv, tc.want)
			}
			name := strings.Repeat("z", 10000)
			resp, status, frags := c.call(2, 0, 8, isPathSupportedStub(t, name), 1500)
			if status != 0 || isPathSupportedOwner(t, resp) != name {
				t.Fatalf("status %#x", status)
			}
			for i, f := range frags {
				if n := 16 + len(f.body); n > tc.want {
					t.Errorf("fragment %d is %d bytes, over %d", i, n, tc.want)
				}
				wantHint := len(resp) - i*(tc.want-24)
				if hint := int(binary.LittleEndian.Uint32(f.body)); hint != wantHint {
					t.Errorf("fragment %d alloc_hint %d, want %d", i, hint, wantHint)
				}
			}
			if len(frags) < 3 {
				t.Errorf("%d response fragments, want >= 3", len(frags))
			}
		})
	}
}

func TestWireAlterContext(t *testing.T) {
	s := newServer(&fakeFSRVP{})
	// A second interface, served here by the FSRVP handler.
	s.Register(epm.EpmSyntaxV3_0, fsrvp.NewFileServerVSSAgentServerHandle(&fakeFSRVP{}))
	addr, _ := startTCP(t, s)
	c := dialRaw(t, "tcp", addr)
	c.bind(0, 5840, rawCtx{0, fsrvpSyntax, []*dcerpc.SyntaxID{ndr20}})

	c.send(frame(ptAlter, pfcWhole, 2, bindBody(0, 0,
		rawCtx{1, epm.EpmSyntaxV3_0, []*dcerpc.SyntaxID{ndr64}},
		rawCtx{2, unknownSyntax, []*dcerpc.SyntaxID{ndr20}},
		rawCtx{0, fsrvpSyntax, []*dcerpc.SyntaxID{ndr20}}, // re-proposed unchanged
	)))
	a := parseAck(t, c.recv(ptAlterResp))
	if len(a.results) != 3 || a.results[0].result != 0 || !a.results[0].is(ndr64) ||
		a.results[1].result != 2 || a.results[1].reason != 1 || a.results[2].result != 0 {
		t.Fatalf("alter_context_resp results %+v", a.results)
	}
	for _, ctxID := range []uint16{0, 1} {
		if resp, status, _ := c.call(uint32(3+ctxID), ctxID, 0, nil, 100); status != 0 || !bytes.Equal(resp, versionStub) {
			t.Errorf("context %d: status %#x", ctxID, status)
		}
	}
}

func TestWireCallFaults(t *testing.T) {
	addr, _ := startTCP(t, newServer(&fakeFSRVP{}))
	c := dialRaw(t, "tcp", addr)
	c.bind(0, 5840, rawCtx{0, fsrvpSyntax, []*dcerpc.SyntaxID{ndr20}})
	for i, tc := range []struct {
		name          string
		ctxID, opnum  uint16
		stub          []byte
		status        uint32
		didNotExecute bool
	}{
		{"UnknownContext", 9, 0, nil, rpc.StatusUnknownInterface, true},
		{"OpnumOutOfRange", 0, 99, nil, rpc.StatusOpRangeError, true},
		{"Unimplemented", 0, 4, make([]byte, 20), rpc.StatusOpRangeError, true},
		{"BadStub", 0, 8, []byte{1, 2, 3}, rpc.StatusBadStubData, true},
		{"HandlerError", 0, 1, make([]byte, 4), rpc.StatusFaultUnspec, false},
		{"FaultError", 0, 7, make([]byte, 16), rpc.StatusAccessDenied, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			callID := uint32(100 + i)
			_, status, frags := c.call(callID, tc.ctxID, tc.opnum, tc.stub, 1000)
			f := frags[len(frags)-1]
			if status != tc.status {
				t.Errorf("status %#x, want %#x", status, tc.status)
			}
			if got := f.flags&pfcDidNotExecute != 0; got != tc.didNotExecute {
				t.Errorf("PFC_DID_NOT_EXECUTE = %v, want %v", got, tc.didNotExecute)
			}
			if ctxID := binary.LittleEndian.Uint16(f.body[4:]); ctxID != tc.ctxID {
				t.Errorf("fault context id %d, want %d", ctxID, tc.ctxID)
			}
		})
	}
	// Faults leave the connection usable.
	if resp, status, _ := c.call(200, 0, 0, nil, 1000); status != 0 || !bytes.Equal(resp, versionStub) {
		t.Errorf("call after faults: status %#x", status)
	}
}

// bigEndian re-encodes p's header as a big-endian sender would.
func bigEndian(p []byte) []byte {
	p = bytes.Clone(p)
	p[4] = 0
	binary.BigEndian.PutUint16(p[8:], uint16(len(p)))
	binary.BigEndian.PutUint16(p[10:], 0)
	binary.BigEndian.PutUint32(p[12:], 1)
	return p
}

// TestWireMalformed sends broken or out-of-order PDUs. Each must get the
// listed replies and then a closed connection, never a hang or a panic.
func TestWireMalformed(t *testing.T) {
	fsrvpCtx := rawCtx{0, fsrvpSyntax, []*dcerpc.SyntaxID{ndr20}}
	bind := frame(ptBind, pfcWhole, 1, bindBody(5840, 0, fsrvpCtx))
	withHeader := func(p []byte, off int, v ...byte) []byte {
		p = bytes.Clone(p)
		copy(p[off:], v)
		return p
	}
	authBind := frame(ptBind, pfcWhole, 1, append(bindBody(5840, 0, fsrvpCtx), make([]byte, 8+16)...))
	binary.LittleEndian.PutUint16(authBind[10:], 16)

	for _, tc := range []struct {
		name    string
		send    [][]byte
		replies []byte   // PDU types expected before the close
		status  []uint32 // fault status or bind_nak reason per reply, if checked
	}{
		{"Garbage", [][]byte{bytes.Repeat([]byte{0xff}, 64)}, nil, nil},
		{"ShortFragLength", [][]byte{withHeader(bind, 8, 10, 0)}, nil, nil},
		{"AuthBeyondFrag", [][]byte{withHeader(bind, 10, 200, 0)}, nil, nil},
		{"TruncatedBody", [][]byte{bind[:40]}, nil, nil},
		{"BindVersion4", [][]byte{withHeader(bind, 0, 4)}, []byte{ptBindNak}, []uint32{4}},
		{"BindMinor2", [][]byte{withHeader(bind, 1, 2)}, []byte{ptBindNak}, []uint32{4}},
		{"BindBigEndian", [][]byte{bigEndian(bind)}, []byte{ptBindNak}, []uint32{0}},
		{"BindNoContexts", [][]byte{frame(ptBind, pfcWhole, 1, bindBody(5840, 0))}, []byte{ptBindNak}, []uint32{0}},
		{"BindTruncatedContexts", [][]byte{frame(ptBind, pfcWhole, 1, bindBody(5840, 0, fsrvpCtx)[:20])}, []byte{ptBindNak}, []uint32{0}},
		{"BindNoTransfer", [][]byte{frame(ptBind, pfcWhole, 1, bindBody(5840, 0, rawCtx{0, fsrvpSyntax, nil}))}, []byte{ptBindNak}, []uint32{0}},
		{"BindWithAuth", [][]byte{authBind}, []byte{ptBindNak}, []uint32{8}},
		{"SecondBind", [][]byte{bind, bind}, []byte{ptBindAck, ptBindNak}, []uint32{0, 0}},
		{"RequestBeforeBind", [][]byte{frame(ptRequest, pfcWhole, 2, requestBody(0, 0, 0, nil))}, []byte{ptFault}, []uint32{rpc.StatusProtocolError}},
		{"AlterBeforeBind", [][]byte{withHeader(bind, 2, ptAlter)}, []byte{ptFault}, []uint32{rpc.StatusProtocolError}},
		{"ServerPDUFromClient", [][]byte{bind, frame(ptResponse, pfcWhole, 2, make([]byte, 8))}, []byte{ptBindAck, ptFault}, []uint32{0, rpc.StatusProtocolError}},
		{"UnknownType", [][]byte{bind, frame(77, pfcWhole, 2, nil)}, []byte{ptBindAck, ptFault}, []uint32{0, rpc.StatusProtocolError}},
		{"StrayFragment", [][]byte{bind, frame(ptRequest, pfcLast, 2, requestBody(0, 0, 0, nil))}, []byte{ptBindAck, ptFault}, []uint32{0, rpc.StatusProtocolError}},
		{"ShortRequest", [][]byte{bind, frame(ptRequest, pfcWhole, 2, make([]byte, 5))}, []byte{ptBindAck, ptFault}, []uint32{0, rpc.StatusProtocolError}},
		{"InterleavedWithoutMPX", [][]byte{bind,
			frame(ptRequest, pfcFirst, 2, requestBody(0, 8, 0, []byte{1})),
			frame(ptRequest, pfcFirst, 3, requestBody(0, 8, 0, []byte{1}))},
			[]byte{ptBindAck, ptFault}, []uint32{0, rpc.StatusProtocolError}},
		{"ContextRebound", [][]byte{bind, frame(ptAlter, pfcWhole, 2, bindBody(0, 0, rawCtx{0, fsrvpSyntax, []*dcerpc.SyntaxID{ndr64}}))},
			[]byte{ptBindAck, ptFault}, []uint32{0, rpc.StatusProtocolError}},
		{"RequestWithAuth", [][]byte{bind, withHeader(frame(ptRequest, pfcWhole, 2, requestBody(0, 0, 0, make([]byte, 24))), 10, 8)},
			[]byte{ptBindAck, ptFault}, []uint32{0, rpc.StatusAccessDenied}},
		{"Auth3Unauthenticated", [][]byte{bind, frame(ptAuth3, pfcWhole, 2, make([]byte, 4))},
			[]byte{ptBindAck, ptFault}, []uint32{0, rpc.StatusProtocolError}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := startTCP(t, newServer(&fakeFSRVP{}))
			c := dialRaw(t, "tcp", addr)
			c.send(tc.send...)
			if tc.name == "TruncatedBody" {
				c.nc.(*net.TCPConn).CloseWrite()
			}
			for i, pt := range tc.replies {
				p := c.recv(pt)
				switch {
				case tc.status == nil:
				case pt == ptFault && faultStatus(p) != tc.status[i]:
					t.Errorf("fault status %#x, want %#x", faultStatus(p), tc.status[i])
				case pt == ptBindNak && uint32(binary.LittleEndian.Uint16(p.body)) != tc.status[i]:
					t.Errorf("bind_nak reason %d, want %d", binary.LittleEndian.Uint16(p.body), tc.status[i])
				}
			}
			c.expectClosed()
			// The server still works.
			dialRaw(t, "tcp", addr).bind(0, 5840, fsrvpCtx)
		})
	}
}

func TestWireMaxRequestSize(t *testing.T) {
	for _, frag := range []int{4000, 12000} {
		t.Run(strconv.Itoa(frag), func(t *testing.T) {
			s := newServer(&fakeFSRVP{})
			s.MaxRequestSize = 10000
			addr, _ := startTCP(t, s)
			c := dialRaw(t, "tcp", addr)
			c.bind(0, 5840, rawCtx{0, fsrvpSyntax, []*dcerpc.SyntaxID{ndr20}})
			c.sendRequest(2, 0, 8, isPathSupportedStub(t, strings.Repeat("q", 6000)), frag)
			if p := c.recv(ptFault); faultStatus(p) != rpc.StatusAccessDenied {
				t.Errorf("fault %#x, want %#x", faultStatus(p), rpc.StatusAccessDenied)
			}
			c.expectClosed()
		})
	}
}

func TestWireOrphaned(t *testing.T) {
	addr, _ := startTCP(t, newServer(&fakeFSRVP{}))
	c := dialRaw(t, "tcp", addr)
	c.bind(0, 5840, rawCtx{0, fsrvpSyntax, []*dcerpc.SyntaxID{ndr20}})
	c.send(
		frame(ptRequest, pfcFirst, 5, requestBody(0, 8, 100, make([]byte, 40))),
		frame(ptOrphaned, pfcWhole, 5, nil),
		frame(ptCancel, pfcWhole, 5, nil),
	)
	// The partial call is gone: the same call id starts afresh.
	if resp, status, _ := c.call(5, 0, 0, nil, 100); status != 0 || !bytes.Equal(resp, versionStub) {
		t.Errorf("status %#x", status)
	}
}

func TestWireMultiplexed(t *testing.T) {
	addr, _ := startTCP(t, newServer(&fakeFSRVP{}))
	c := dialRaw(t, "tcp", addr)
	if ack := c.bind(pfcConcMPX, 5840, rawCtx{0, fsrvpSyntax, []*dcerpc.SyntaxID{ndr20}}); ack.flags&pfcConcMPX == 0 {
		t.Errorf("PFC_CONC_MPX not acknowledged")
	}
	name := strings.Repeat("m", 3000)
	stub := isPathSupportedStub(t, name)
	c.send(
		frame(ptRequest, pfcFirst, 1, requestBody(0, 8, len(stub), stub[:1000])),
		frame(ptRequest, pfcWhole, 2, requestBody(0, 0, 0, nil)),
		frame(ptRequest, 0, 1, requestBody(0, 8, len(stub)-1000, stub[1000:4000])),
		frame(ptRequest, pfcLast, 1, requestBody(0, 8, len(stub)-4000, stub[4000:])),
	)
	got := map[uint32][]byte{}
	for done := 0; done < 2; {
		p := c.recv(ptResponse)
		got[p.callID] = append(got[p.callID], p.body[8:]...)
		if p.flags&pfcLast != 0 {
			done++
		}
	}
	if !bytes.Equal(got[2], versionStub) || isPathSupportedOwner(t, got[1]) != name {
		t.Errorf("responses %v", got)
	}
}

func TestWireObjectUUID(t *testing.T) {
	addr, _ := startTCP(t, newServer(&fakeFSRVP{}))
	c := dialRaw(t, "tcp", addr)
	c.bind(0, 5840, rawCtx{0, fsrvpSyntax, []*dcerpc.SyntaxID{ndr20}})
	body := requestBody(0, 0, 0, nil)
	body = append(body, bytes.Repeat([]byte{0xab}, 16)...) // object UUID
	c.send(frame(ptRequest, pfcWhole|pfcObject, 7, body))
	if p := c.recv(ptResponse); !bytes.Equal(p.body[8:], versionStub) {
		t.Errorf("stub % x", p.body[8:])
	}
}

func TestWireUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rpc.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	serve(t, newServer(&fakeFSRVP{}), l)
	c := dialRaw(t, "unix", path)
	ack := c.bind(0, 5840, rawCtx{0, fsrvpSyntax, []*dcerpc.SyntaxID{ndr20}})
	if ack.secAddr != "" {
		t.Errorf("secondary address %q on a unix socket", ack.secAddr)
	}
	resp, status, _ := c.call(2, 0, 8, isPathSupportedStub(t, "whoami"), 1000)
	if got := isPathSupportedOwner(t, resp); status != 0 || got != "ncalrpc|local" {
		t.Errorf("caller %q, status %#x", got, status)
	}
}

// TestWireCallIDReuse reuses one call id as soon as each reply arrives.
func TestWireCallIDReuse(t *testing.T) {
	addr, _ := startTCP(t, newServer(&fakeFSRVP{}))
	c := dialRaw(t, "tcp", addr)
	c.bind(0, 5840, rawCtx{0, fsrvpSyntax, []*dcerpc.SyntaxID{ndr20}})
	for i := 0; i < 200; i++ {
		if _, status, _ := c.call(1, 0, 0, nil, 100); status != 0 {
			t.Fatalf("call %d: fault %#x", i, status)
		}
	}
}
