package rpc_test

// Server lifecycle: idle timeout, connection limit, logger and caller.

import (
	"bytes"
	"context"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	"github.com/oiweiwei/go-msrpc/midl/uuid"
	fsrvp "github.com/oiweiwei/go-msrpc/msrpc/fsrvp/fileservervssagent/v1"
	"github.com/oiweiwei/go-msrpc/ndr"

	"github.com/fsrvpd/fsrvpd/rpc"
)

func TestIdleTimeout(t *testing.T) {
	s := newServer(&fakeFSRVP{})
	s.IdleTimeout = 50 * time.Millisecond
	addr, _ := startTCP(t, s)
	c := dialRaw(t, "tcp", addr)
	c.bind(0, 5840, rawCtx{0, fsrvpSyntax, []*dcerpc.SyntaxID{ndr20}})
	c.expectClosed()
}

// TestIdleTimeoutSparesRunningCall: a call longer than the idle timeout
// keeps its connection.
func TestIdleTimeoutSparesRunningCall(t *testing.T) {
	fake := &fakeFSRVP{started: make(chan struct{}), block: make(chan struct{})}
	s := newServer(fake)
	s.IdleTimeout = 20 * time.Millisecond
	addr, _ := startTCP(t, s)
	c := dialRaw(t, "tcp", addr)
	c.bind(0, 5840, rawCtx{0, fsrvpSyntax, []*dcerpc.SyntaxID{ndr20}})
	c.sendRequest(2, 0, 0, nil, 100)
	<-fake.started
	time.Sleep(10 * s.IdleTimeout)
	close(fake.block)
	if resp, status, _ := c.response(2); status != 0 || !bytes.Equal(resp, versionStub) {
		t.Errorf("status %#x", status)
	}
}

func TestMaxConns(t *testing.T) {
	s := newServer(&fakeFSRVP{})
	s.MaxConns = 1
	addr, _ := startTCP(t, s)
	ctx := rawCtx{0, fsrvpSyntax, []*dcerpc.SyntaxID{ndr20}}
	c1 := dialRaw(t, "tcp", addr)
	c1.bind(0, 5840, ctx)

	c2 := dialRaw(t, "tcp", addr) // queued in the kernel's backlog
	c2.send(frame(ptBind, pfcWhole, 1, bindBody(5840, 0, ctx)))
	c2.nc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if p, err := c2.next(); err == nil {
		t.Fatalf("second connection served (PDU type %d) while the first is open", p.ptype)
	}
	c1.nc.Close()
	c2.nc.SetReadDeadline(time.Now().Add(wait))
	c2.recv(ptBindAck)
}

// TestCallContext checks what a handler finds in its context.
func TestCallContext(t *testing.T) {
	var got struct {
		caller *rpc.Caller
		fields []string
	}
	s := &rpc.Server{Logger: testLogger()}
	s.Register(fsrvp.FileServerVSSAgentSyntaxV1_0, func(ctx context.Context, opnum int, r ndr.Reader) (dcerpc.Operation, error) {
		got.caller, _ = rpc.CallerFromContext(ctx)
		for k := range rpc.Logger(ctx).Data {
			got.fields = append(got.fields, k)
		}
		return fsrvp.NewFileServerVSSAgentServerHandle(&fakeFSRVP{})(ctx, opnum, r)
	})
	addr, _ := startTCP(t, s)
	c := dialRaw(t, "tcp", addr)
	ack := c.bind(0, 5840, rawCtx{0, fsrvpSyntax, []*dcerpc.SyntaxID{ndr20}})
	if _, status, _ := c.call(3, 0, 0, nil, 100); status != 0 {
		t.Fatalf("status %#x", status)
	}
	sort.Strings(got.fields)
	if want := "call_id conn iface opnum remote"; strings.Join(got.fields, " ") != want {
		t.Errorf("log fields %v, want %s", got.fields, want)
	}
	cl := got.caller
	if cl == nil || cl.Transport != rpc.TransportTCP || cl.ClientAddress != "127.0.0.1" ||
		cl.AssocGroupID != ack.assoc || cl.ConnID == 0 || cl.AuthLevel != 0 ||
		cl.LocalAddr.String() != addr || cl.RemoteAddr.String() != c.nc.LocalAddr().String() {
		t.Errorf("caller %+v", cl)
	}
	if _, ok := rpc.CallerFromContext(context.Background()); ok {
		t.Error("caller in a bare context")
	}
	if rpc.Logger(context.Background()) == nil {
		t.Error("Logger returned nil")
	}
}

func TestServeAfterShutdown(t *testing.T) {
	s := newServer(&fakeFSRVP{})
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(l); err != rpc.ErrServerClosed {
		t.Errorf("Serve after Shutdown = %v", err)
	}
	if _, err := net.Dial("tcp", l.Addr().String()); err == nil {
		t.Error("Serve left its listener open")
	}
}

// TestRequestContext checks that a handler sees the request's object UUID
// (PFC_OBJECT_UUID) and stub through RequestFromContext.
func TestRequestContext(t *testing.T) {
	type seen struct {
		object string
		stub   int
		ndr64  bool
	}
	got := make(chan seen, 2)
	s := &rpc.Server{Logger: testLogger()}
	s.Register(fsrvp.FileServerVSSAgentSyntaxV1_0, func(ctx context.Context, opnum int, r ndr.Reader) (dcerpc.Operation, error) {
		req, ok := rpc.RequestFromContext(ctx)
		if !ok || int(req.Opnum) != opnum {
			t.Errorf("request %+v, %v for opnum %d", req, ok, opnum)
		} else {
			sn := seen{stub: len(req.Stub), ndr64: req.NDR64}
			if req.Object != nil {
				sn.object = req.Object.String()
			}
			got <- sn
		}
		return fsrvp.NewFileServerVSSAgentServerHandle(&fakeFSRVP{})(ctx, opnum, r)
	})
	addr, _ := startTCP(t, s)
	cli, _ := dialFSRVP(t, addr, nil)
	ctx := context.Background()
	obj := uuid.MustParse("01234567-89ab-cdef-0123-456789abcdef")
	if _, err := cli.IsPathSupported(ctx, &fsrvp.IsPathSupportedRequest{ShareName: "x"}, dcerpc.WithObjectUUID(obj)); err != nil {
		t.Fatal(err)
	}
	if sn := <-got; sn.object != obj.String() || sn.stub == 0 || sn.ndr64 {
		t.Errorf("with object: %+v", sn)
	}
	if _, err := cli.GetSupportedVersion(ctx, &fsrvp.GetSupportedVersionRequest{}); err != nil {
		t.Fatal(err)
	}
	if sn := <-got; sn.object != "" {
		t.Errorf("without object: %+v", sn)
	}
	if _, ok := rpc.RequestFromContext(context.Background()); ok {
		t.Error("request in a bare context")
	}
}
