package rpc_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	"github.com/oiweiwei/go-msrpc/msrpc/epm/epm/v3"
	fsrvp "github.com/oiweiwei/go-msrpc/msrpc/fsrvp/fileservervssagent/v1"

	"github.com/fsrvpd/fsrvpd/rpc"
)

// FuzzPDU feeds arbitrary bytes, as the whole client side of a connection,
// into a server over an in-memory pipe: PDU parsing, bind negotiation,
// reassembly, dispatch into go-msrpc's generated FSRVP stub, and the
// replies. It checks that nothing panics (a panic recovered by the
// connection's last-resort handler fails the test too) and that the
// connection ends once the input does.
//
//	go test ./rpc -run '^$' -fuzz FuzzPDU -fuzztime 60s
func FuzzPDU(f *testing.F) {
	ctx0 := rawCtx{0, fsrvpSyntax, []*dcerpc.SyntaxID{ndr20}}
	bind := frame(ptBind, pfcWhole, 1, bindBody(5840, 0, ctx0,
		rawCtx{1, fsrvpSyntax, []*dcerpc.SyntaxID{ndr64}}, rawCtx{2, unknownSyntax, []*dcerpc.SyntaxID{ndr20}},
		rawCtx{3, fsrvpSyntax, []*dcerpc.SyntaxID{featureSyntax(3)}}))
	stub := isPathSupportedStub(f, "\\\\server\\share")
	call := frame(ptRequest, pfcWhole, 2, requestBody(0, 8, len(stub), stub))
	call64 := frame(ptRequest, pfcWhole, 3, requestBody(1, 0, 0, nil))
	frag := append(append(
		frame(ptRequest, pfcFirst, 4, requestBody(0, 8, len(stub), stub[:8])),
		frame(ptRequest, 0, 4, requestBody(0, 8, len(stub)-8, stub[8:16]))...),
		frame(ptRequest, pfcLast, 4, requestBody(0, 8, len(stub)-16, stub[16:]))...)
	alter := frame(ptAlter, pfcWhole, 5, bindBody(0, 0, rawCtx{7, epm.EpmSyntaxV3_0, []*dcerpc.SyntaxID{ndr20}}))
	orphan := append(frame(ptRequest, pfcFirst, 6, requestBody(0, 8, 99, stub[:4])), frame(ptOrphaned, pfcWhole, 6, nil)...)
	mpx := frame(ptBind, pfcWhole|pfcConcMPX, 1, bindBody(2048, 7, ctx0))

	for _, seed := range [][]byte{
		bind,
		cat(bind, call),
		cat(bind, call64, frag, alter, orphan, call),
		cat(mpx, frag[:len(frag)/2], call, frag[len(frag)/2:]),
		cat(bind, frame(ptRequest, pfcWhole|pfcObject, 8, append(requestBody(0, 0, 0, nil), make([]byte, 16)...))),
		cat(bind, frame(ptRequest, pfcWhole, 9, requestBody(0, 8, 3, []byte{1, 2, 3}))),
		bind[:20],
		cat(bind, call[:30]),
		cat(bind, bind),
	} {
		f.Add(seed)
	}

	// net.Pipe arms a timer per deadline that keeps the pipe reachable
	// until it fires: a short idle timeout lets a million connections'
	// worth of them go instead of holding gigabytes for ten minutes.
	s := &rpc.Server{Logger: testLogger(), MaxRequestSize: 64 << 10, IdleTimeout: 2 * time.Second}
	s.Register(fsrvp.FileServerVSSAgentSyntaxV1_0, fsrvp.NewFileServerVSSAgentServerHandle(&fakeFSRVP{}))
	s.Register(epm.EpmSyntaxV3_0, fsrvp.NewFileServerVSSAgentServerHandle(&fakeFSRVP{}))
	panics := &panicHook{}
	s.Logger.Logger.AddHook(panics)

	f.Fuzz(func(t *testing.T, data []byte) {
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.ServeConn(server, rpc.ConnInfo{Transport: rpc.TransportTCP, ClientAddress: "fuzz"})
		}()
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			io.Copy(io.Discard, client)
		}()
		client.Write(data) // fails once the server hangs up; that is fine
		client.Close()
		<-done
		<-drained
		if p := panics.take(); p != "" {
			t.Fatalf("recovered panic: %s", p)
		}
	})
}

func cat(pdus ...[]byte) []byte { return bytes.Join(pdus, nil) }

// authFrame is frame with a sec_trailer and auth_value appended.
func authFrame(ptype, flags byte, callID uint32, body []byte, authType, level uint8, ctxID uint32, value []byte) []byte {
	pad := (16 - len(body)%16) % 16
	b := append(append([]byte(nil), body...), make([]byte, pad)...)
	b = append(b, authType, level, byte(pad), 0, byte(ctxID), byte(ctxID>>8), byte(ctxID>>16), byte(ctxID>>24))
	b = append(b, value...)
	f := frame(ptype, flags, callID, b)
	f[10], f[11] = byte(len(value)), byte(len(value)>>8)
	return f
}

// recordSession returns what go-msrpc's client sends for an NTLM or
// SPNEGO bind and two calls at level.
func recordSession(f *testing.F, level dcerpc.SecurityOption, spnego bool) []byte {
	addr, _ := startTCP(f, authServer(&fakeFSRVP{}))
	var mu sync.Mutex
	var rec []byte
	proxy := startProxy(f, addr, func(_ int, pdu []byte, _ [][]byte) [][]byte {
		mu.Lock()
		rec = append(rec, pdu...)
		mu.Unlock()
		return [][]byte{pdu}
	})
	cli, err := dialAuth(f, proxy, testUser, testPassword, level, spnego)
	if err != nil {
		f.Fatal(err)
	}
	for range 2 {
		if _, err := cli.IsPathSupported(context.Background(), &fsrvp.IsPathSupportedRequest{ShareName: "share1"}); err != nil {
			f.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	return bytes.Clone(rec)
}

// FuzzAuthPDU is FuzzPDU on a server with the NTLM and SPNEGO providers:
// sec_trailer parsing, the verifier exchange on bind, alter_context and
// auth3, and verifier checks on requests. Seeds include real sessions of
// go-msrpc's client (replayed, they fail at the third leg: the challenge
// differs).
//
//	go test ./rpc -run '^$' -fuzz FuzzAuthPDU -fuzztime 20s
func FuzzAuthPDU(f *testing.F) {
	ctx0 := rawCtx{0, fsrvpSyntax, []*dcerpc.SyntaxID{ndr20}}
	neg := []byte("NTLMSSP\x00\x01\x00\x00\x00\x35\x82\x08\xe2")
	for _, seed := range [][]byte{
		recordSession(f, dcerpc.WithSign(), false),
		recordSession(f, dcerpc.WithSeal(), true),
		cat(authFrame(ptBind, pfcWhole, 1, bindBody(5840, 0, ctx0), rpc.AuthTypeNTLM, rpc.AuthLevelIntegrity, 7, neg),
			authFrame(ptAuth3, pfcWhole, 2, make([]byte, 4), rpc.AuthTypeNTLM, rpc.AuthLevelIntegrity, 7, []byte("NTLMSSP\x00\x03\x00\x00\x00")),
			authFrame(ptRequest, pfcWhole, 3, requestBody(0, 0, 0, nil), rpc.AuthTypeNTLM, rpc.AuthLevelIntegrity, 7, make([]byte, 16))),
		cat(authFrame(ptBind, pfcWhole, 1, bindBody(5840, 0, ctx0), rpc.AuthTypeSPNEGO, rpc.AuthLevelPrivacy, 1, []byte{0x60, 0x03, 0x06, 0x01, 0x00}),
			authFrame(ptAlter, pfcWhole, 2, bindBody(5840, 0, ctx0), rpc.AuthTypeSPNEGO, rpc.AuthLevelPrivacy, 1, []byte{0xa1, 0x00})),
	} {
		f.Add(seed)
	}
	s := &rpc.Server{Logger: testLogger(), MaxRequestSize: 64 << 10, IdleTimeout: 2 * time.Second}
	s.Auth = authServer(&fakeFSRVP{}).Auth
	s.Register(fsrvp.FileServerVSSAgentSyntaxV1_0, fsrvp.NewFileServerVSSAgentServerHandle(&fakeFSRVP{}))
	panics := &panicHook{}
	s.Logger.Logger.AddHook(panics)
	f.Fuzz(func(t *testing.T, data []byte) {
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.ServeConn(server, rpc.ConnInfo{Transport: rpc.TransportTCP, ClientAddress: "fuzz"})
		}()
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			io.Copy(io.Discard, client)
		}()
		client.Write(data)
		client.Close()
		<-done
		<-drained
		if p := panics.take(); p != "" {
			t.Fatalf("recovered panic: %s", p)
		}
	})
}
