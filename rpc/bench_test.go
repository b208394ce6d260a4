package rpc_test

import (
	"context"
	"testing"
	"time"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	fsrvp "github.com/oiweiwei/go-msrpc/msrpc/fsrvp/fileservervssagent/v1"
)

// BenchmarkCallLoopback measures one small call (IsPathSupported) round
// trip over loopback TCP with go-msrpc's client, client cost included.
func BenchmarkCallLoopback(b *testing.B) {
	addr, _ := startTCP(b, newServer(&fakeFSRVP{}))
	cli, _ := dialFSRVP(b, addr, nil)
	ctx := context.Background()
	req := &fsrvp.IsPathSupportedRequest{ShareName: `\\server\share`}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cli.IsPathSupported(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCallRaw measures the same call with a hand-written client, so
// that mostly the server's cost is counted.
func BenchmarkCallRaw(b *testing.B) {
	addr, _ := startTCP(b, newServer(&fakeFSRVP{}))
	c := dialRaw(b, "tcp", addr)
	c.nc.SetDeadline(time.Time{})
	c.bind(0, 5840, rawCtx{0, fsrvpSyntax, []*dcerpc.SyntaxID{ndr20}})
	req := frame(ptRequest, pfcWhole, 2, requestBody(0, 8, 0, isPathSupportedStub(b, `\\server\share`)))
	b.ReportAllocs()
	for b.Loop() {
		c.send(req)
		if p, err := c.next(); err != nil || p.ptype != ptResponse {
			b.Fatalf("%v %d", err, p.ptype)
		}
	}
}
