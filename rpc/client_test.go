package rpc_test

// Tests that drive the server with go-msrpc's client.

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	fsrvp "github.com/oiweiwei/go-msrpc/msrpc/fsrvp/fileservervssagent/v1"
)

func TestClientCall(t *testing.T) {
	for _, tc := range []struct {
		name string
		bind []dcerpc.Option
	}{
		{"NDR20", nil},
		{"NDR64", []dcerpc.Option{dcerpc.WithNDR64()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := startTCP(t, newServer(&fakeFSRVP{}))
			cli, _ := dialFSRVP(t, addr, nil, tc.bind...)
			ctx := context.Background()

			v, err := cli.GetSupportedVersion(ctx, &fsrvp.GetSupportedVersionRequest{})
			if err != nil {
				t.Fatalf("GetSupportedVersion: %v", err)
			}
			if v.MinVersion != 1 || v.MaxVersion != 2 || v.Return != 0 {
				t.Errorf("GetSupportedVersion = %+v", v)
			}
			p, err := cli.IsPathSupported(ctx, &fsrvp.IsPathSupportedRequest{ShareName: "whoami"})
			if err != nil {
				t.Fatalf("IsPathSupported: %v", err)
			}
			if want := "ncacn_ip_tcp|127.0.0.1"; !p.SupportedByThisProvider || p.OwnerMachineName != want {
				t.Errorf("IsPathSupported = %+v, want owner %q", p, want)
			}
		})
	}
}

// TestClientFaults checks the fault statuses go-msrpc's client sees. Its
// transport closes after any fault, so each case dials anew.
func TestClientFaults(t *testing.T) {
	addr, _ := startTCP(t, newServer(&fakeFSRVP{}))
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		call func(fsrvp.FileServerVSSAgentClient) error
		want string
	}{
		{"Unimplemented", func(c fsrvp.FileServerVSSAgentClient) error {
			_, err := c.CommitShadowCopySet(ctx, &fsrvp.CommitShadowCopySetRequest{})
			return err
		}, "nca_op_rng_error"},
		{"HandlerError", func(c fsrvp.FileServerVSSAgentClient) error {
			_, err := c.SetContext(ctx, &fsrvp.SetContextRequest{})
			return err
		}, "0x1c000012"},
		{"FaultError", func(c fsrvp.FileServerVSSAgentClient) error {
			_, err := c.AbortShadowCopySet(ctx, &fsrvp.AbortShadowCopySetRequest{})
			return err
		}, "0x00000005"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cli, _ := dialFSRVP(t, addr, nil)
			if err := tc.call(cli); !contains(err, tc.want) {
				t.Errorf("err = %v, want %s", err, tc.want)
			}
		})
	}
}

// TestClientFragmentation sends a 30 KB share name (60 KB of UTF-16) and
// gets it echoed back. (go-msrpc's WithFragmentSize does not reach its
// bind, which always offers 4096; raw tests cover smaller sizes.)
func TestClientFragmentation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		dial    []dcerpc.Option
		bind    []dcerpc.Option
		minFrag int
	}{
		{"WithFragmentSize", []dcerpc.Option{dcerpc.WithFragmentSize(2048)}, nil, 3},
		{"Default", nil, nil, 3},
		{"NDR64", nil, []dcerpc.Option{dcerpc.WithNDR64()}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, cnt := startTCP(t, newServer(&fakeFSRVP{}))
			cli, _ := dialFSRVP(t, addr, tc.dial, tc.bind...)
			name := strings.Repeat("0123456789abcdef", 30<<10/16)
			p, err := cli.IsPathSupported(context.Background(), &fsrvp.IsPathSupportedRequest{ShareName: name})
			if err != nil {
				t.Fatalf("IsPathSupported: %v", err)
			}
			if p.OwnerMachineName != name {
				t.Errorf("echo differs: got %d chars, want %d", len(p.OwnerMachineName), len(name))
			}
			if n := cnt.get(true, dcerpc.PacketTypeRequest); n < tc.minFrag {
				t.Errorf("request fragments = %d, want >= %d", n, tc.minFrag)
			}
			if n := cnt.get(false, dcerpc.PacketTypeResponse); n < tc.minFrag {
				t.Errorf("response fragments = %d, want >= %d", n, tc.minFrag)
			}
		})
	}
}

func TestClientConcurrentConns(t *testing.T) {
	fake := &fakeFSRVP{}
	addr, cnt := startTCP(t, newServer(fake))
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			cc, err := dcerpc.Dial(ctx, binding(t, addr))
			if err != nil {
				errs <- err
				return
			}
			defer cc.Close(ctx)
			cli, err := fsrvp.NewFileServerVSSAgentClient(ctx, cc, dcerpc.WithInsecure())
			if err != nil {
				errs <- err
				return
			}
			for j := 0; j < 5; j++ {
				if _, err := cli.IsPathSupported(ctx, &fsrvp.IsPathSupportedRequest{ShareName: "x"}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := fake.calls.Load(); got != 5*n {
		t.Errorf("calls = %d, want %d", got, 5*n)
	}
	cnt.mu.Lock()
	defer cnt.mu.Unlock()
	if cnt.conns != n {
		t.Errorf("connections = %d, want %d", cnt.conns, n)
	}
}

func TestShutdownWaitsForCall(t *testing.T) {
	fake := &fakeFSRVP{started: make(chan struct{}), block: make(chan struct{})}
	s := newServer(fake)
	addr, _ := startTCP(t, s)
	cli, _ := dialFSRVP(t, addr, nil)

	res := make(chan error, 1)
	go func() {
		_, err := cli.GetSupportedVersion(context.Background(), &fsrvp.GetSupportedVersionRequest{})
		res <- err
	}()
	<-fake.started

	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v while a call was running", err)
	case err := <-res:
		t.Fatalf("call returned %v before it was released", err)
	default:
	}
	close(fake.block)
	if err := <-res; err != nil {
		t.Errorf("in-flight call: %v", err)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

func TestShutdownForce(t *testing.T) {
	fake := &fakeFSRVP{started: make(chan struct{}), block: make(chan struct{})}
	defer close(fake.block)
	s := newServer(fake)
	addr, _ := startTCP(t, s)
	cli, _ := dialFSRVP(t, addr, nil)
	go cli.GetSupportedVersion(context.Background(), &fsrvp.GetSupportedVersionRequest{})
	<-fake.started

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Shutdown(ctx); err != context.Canceled {
		t.Errorf("Shutdown with an expired context = %v, want context.Canceled", err)
	}
}
