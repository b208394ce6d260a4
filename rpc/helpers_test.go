package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	fsrvp "github.com/oiweiwei/go-msrpc/msrpc/fsrvp/fileservervssagent/v1"
	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/rpc"
)

// wait bounds every blocking step of a test; it only prevents hangs.
const wait = 30 * time.Second

// testLogger discards logs unless -v is given.
func testLogger() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	if testing.Verbose() {
		l.SetOutput(os.Stderr)
		l.SetLevel(logrus.DebugLevel)
	}
	return logrus.NewEntry(l)
}

// fakeFSRVP is a test implementation of the generated FSRVP interface.
//
//   - GetSupportedVersion returns 1..2; if block is set it first signals
//     started and waits for block to close.
//   - IsPathSupported echoes ShareName into OwnerMachineName, or, for
//     "whoami", describes the caller.
//   - SetContext fails with a plain error, AbortShadowCopySet with a
//     FaultError; the rest are unimplemented.
type fakeFSRVP struct {
	fsrvp.UnimplementedFileServerVSSAgentServer
	started chan struct{}
	block   chan struct{}
	calls   atomic.Int64
}

func (f *fakeFSRVP) GetSupportedVersion(ctx context.Context, _ *fsrvp.GetSupportedVersionRequest) (*fsrvp.GetSupportedVersionResponse, error) {
	f.calls.Add(1)
	if f.block != nil {
		f.started <- struct{}{}
		<-f.block
	}
	return &fsrvp.GetSupportedVersionResponse{MinVersion: 1, MaxVersion: 2}, nil
}

func (f *fakeFSRVP) IsPathSupported(ctx context.Context, req *fsrvp.IsPathSupportedRequest) (*fsrvp.IsPathSupportedResponse, error) {
	f.calls.Add(1)
	name := req.ShareName
	if name == "whoami" {
		c, ok := rpc.CallerFromContext(ctx)
		if !ok {
			return nil, errors.New("no caller")
		}
		name = c.Transport + "|" + c.ClientAddress
		if c.Identity != nil {
			name += fmt.Sprintf("|%d|%d|%s|%s", c.AuthType, c.AuthLevel, c.Identity, c.Identity.Mechanism)
		}
	}
	return &fsrvp.IsPathSupportedResponse{SupportedByThisProvider: true, OwnerMachineName: name}, nil
}

func (f *fakeFSRVP) SetContext(context.Context, *fsrvp.SetContextRequest) (*fsrvp.SetContextResponse, error) {
	return nil, errors.New("boom")
}

func (f *fakeFSRVP) AbortShadowCopySet(context.Context, *fsrvp.AbortShadowCopySetRequest) (*fsrvp.AbortShadowCopySetResponse, error) {
	return nil, &rpc.FaultError{Status: rpc.StatusAccessDenied}
}

// newServer returns a Server serving fake on FSRVP.
func newServer(fake *fakeFSRVP) *rpc.Server {
	s := &rpc.Server{Logger: testLogger()}
	s.Register(fsrvp.FileServerVSSAgentSyntaxV1_0, fsrvp.NewFileServerVSSAgentServerHandle(fake))
	return s
}

// serve runs s on l until the test ends; cleanup shuts it down and checks
// that Serve returned ErrServerClosed.
func serve(t testing.TB, s *rpc.Server, l net.Listener) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-errc; !errors.Is(err, rpc.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
}

// startTCP serves s on a loopback port and returns the listener's address.
// The listener counts the PDUs it carries.
func startTCP(t testing.TB, s *rpc.Server) (string, *counter) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: l, c: &counter{}}
	serve(t, s, cl)
	return l.Addr().String(), cl.c
}

// binding returns "ncacn_ip_tcp:127.0.0.1[port]" for addr.
func binding(t testing.TB, addr string) string {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return "ncacn_ip_tcp:" + host + "[" + port + "]"
}

// dialFSRVP connects go-msrpc's client. dialOpts go to dcerpc.Dial,
// bindOpts to the bind.
func dialFSRVP(t testing.TB, addr string, dialOpts []dcerpc.Option, bindOpts ...dcerpc.Option) (fsrvp.FileServerVSSAgentClient, dcerpc.Conn) {
	t.Helper()
	// go-msrpc's transport goroutines live as long as the bind's context,
	// so it must not be cancelled before the test ends.
	ctx := context.Background()
	cc, err := dcerpc.Dial(ctx, binding(t, addr), dialOpts...)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { cc.Close(context.Background()) })
	cli, err := fsrvp.NewFileServerVSSAgentClient(ctx, cc, append(bindOpts, dcerpc.WithInsecure())...)
	if err != nil {
		t.Fatalf("bind: %v", err)
	}
	return cli, cc
}

// counter counts PDUs by direction and packet type, and accepted conns.
type counter struct {
	mu    sync.Mutex
	conns int
	in    map[dcerpc.PacketType]int // client → server
	out   map[dcerpc.PacketType]int // server → client
}

func (c *counter) get(in bool, pt dcerpc.PacketType) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if in {
		return c.in[pt]
	}
	return c.out[pt]
}

func (c *counter) add(in bool, pt dcerpc.PacketType) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := &c.out
	if in {
		m = &c.in
	}
	if *m == nil {
		*m = make(map[dcerpc.PacketType]int)
	}
	(*m)[pt]++
}

type countingListener struct {
	net.Listener
	c *counter
}

func (l *countingListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.c.mu.Lock()
	l.c.conns++
	l.c.mu.Unlock()
	return &countingConn{Conn: nc, in: &framer{c: l.c, in: true}, out: &framer{c: l.c}}, nil
}

type countingConn struct {
	net.Conn
	in, out *framer
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.in.feed(b[:n])
	return n, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	// Count before writing: the client may check the count as soon as
	// the bytes arrive, before Write returns.
	c.out.feed(b)
	return c.Conn.Write(b)
}

// framer splits a byte stream into PDUs by frag_length.
type framer struct {
	c    *counter
	in   bool
	hdr  []byte
	skip int
}

func (f *framer) feed(b []byte) {
	for len(b) > 0 {
		if f.skip > 0 {
			n := min(f.skip, len(b))
			f.skip, b = f.skip-n, b[n:]
			continue
		}
		n := min(16-len(f.hdr), len(b))
		f.hdr, b = append(f.hdr, b[:n]...), b[n:]
		if len(f.hdr) == 16 {
			f.c.add(f.in, dcerpc.PacketType(f.hdr[2]))
			f.skip = int(f.hdr[8]) | int(f.hdr[9])<<8 - 16
			f.hdr = f.hdr[:0]
		}
	}
}

// contains reports whether err's text mentions s.
func contains(err error, s string) bool {
	return err != nil && strings.Contains(err.Error(), s)
}

// panicHook records log entries about recovered panics.
type panicHook struct {
	mu  sync.Mutex
	msg string
}

func (h *panicHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h *panicHook) Fire(e *logrus.Entry) error {
	if p, ok := e.Data["panic"]; ok {
		h.mu.Lock()
		h.msg = fmt.Sprintf("%s: %v\n%v", e.Message, p, e.Data["stack"])
		h.mu.Unlock()
	}
	return nil
}

func (h *panicHook) take() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.msg
	h.msg = ""
	return m
}
