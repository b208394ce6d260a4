package epm_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	"github.com/oiweiwei/go-msrpc/msrpc/dcetypes"
	"github.com/oiweiwei/go-msrpc/msrpc/dtyp"
	epmv3 "github.com/oiweiwei/go-msrpc/msrpc/epm/epm/v3"
	fsrvp "github.com/oiweiwei/go-msrpc/msrpc/fsrvp/fileservervssagent/v1"
	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/rpc"
	"github.com/fsrvpd/fsrvpd/rpc/epm"
)

type fakeFSRVP struct {
	fsrvp.UnimplementedFileServerVSSAgentServer
}

func (fakeFSRVP) GetSupportedVersion(context.Context, *fsrvp.GetSupportedVersionRequest) (*fsrvp.GetSupportedVersionResponse, error) {
	return &fsrvp.GetSupportedVersionResponse{MinVersion: 1, MaxVersion: 2}, nil
}

// otherSyntax is a second interface advertised by the mapper.
var otherSyntax = &dcerpc.SyntaxID{IfUUID: epmv3.EpmSyntaxUUID, IfVersionMajor: 9}

// start serves FSRVP and the mapper on one loopback port, as the daemon
// would on 135 and its own port. It returns the address and the number of
// accepted connections.
func start(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	log := logrus.New()
	log.SetOutput(io.Discard)
	s := &rpc.Server{Logger: logrus.NewEntry(log)}
	m := epm.New(epm.Entry{Syntax: fsrvp.FileServerVSSAgentSyntaxV1_0, Port: port, Annotation: "FSRVP"})
	m.Add(epm.Entry{Syntax: otherSyntax, Port: 4242, Host: "192.0.2.1"})
	s.Register(epm.Syntax, m.Handle())
	s.Register(fsrvp.FileServerVSSAgentSyntaxV1_0, fsrvp.NewFileServerVSSAgentServerHandle(fakeFSRVP{}))
	cl := &countingListener{Listener: l}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(cl) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-errc; !errors.Is(err, rpc.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return l.Addr().String(), &cl.n
}

type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func binding(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	return "ncacn_ip_tcp:" + host + "[" + port + "]"
}

func dial(t *testing.T, addr string) dcerpc.Conn {
	t.Helper()
	cc, err := dcerpc.Dial(context.Background(), binding(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close(context.Background()) })
	return cc
}

// mapTower is the tower a client sends to ept_map for ncacn_ip_tcp.
func mapTower(s, transfer *dcerpc.SyntaxID) *dcetypes.Tower {
	return dcetypes.FloorsToTower([]*dcetypes.Floor{
		{Protocol: 0x0d, UUID: s.IfUUID, VersionMajor: s.IfVersionMajor, Data: []byte{byte(s.IfVersionMinor), 0}},
		{Protocol: 0x0d, UUID: transfer.IfUUID, VersionMajor: transfer.IfVersionMajor, Data: []byte{byte(transfer.IfVersionMinor), 0}},
		{Protocol: 0x0b, Data: []byte{0, 0}},
		{Protocol: 0x07, Data: []byte{0, 0}},
		{Protocol: 0x09, Data: []byte{0, 0, 0, 0}},
	})
}

func TestMap(t *testing.T) {
	addr, _ := start(t)
	_, port, _ := net.SplitHostPort(addr)
	cli, err := epmv3.NewEpmClient(context.Background(), dial(t, addr), dcerpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name           string
		iface, ts      *dcerpc.SyntaxID
		status         uint32
		endpoint, host string
	}{
		{"NDR20", fsrvp.FileServerVSSAgentSyntaxV1_0, dcerpc.TransferNDRSyntaxV2_0, epm.StatusOK, port, "127.0.0.1"},
		{"NDR64", fsrvp.FileServerVSSAgentSyntaxV1_0, dcerpc.TransferNDR64SyntaxV1_0, epm.StatusOK, port, "127.0.0.1"},
		{"FixedHost", otherSyntax, dcerpc.TransferNDRSyntaxV2_0, epm.StatusOK, "4242", "192.0.2.1"},
		{"UnknownInterface", &dcerpc.SyntaxID{IfUUID: epmv3.EpmSyntaxUUID, IfVersionMajor: 1}, dcerpc.TransferNDRSyntaxV2_0, epm.StatusNotRegistered, "", ""},
		{"UnknownTransfer", fsrvp.FileServerVSSAgentSyntaxV1_0, otherSyntax, epm.StatusNotRegistered, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := cli.Map(context.Background(), &epmv3.MapRequest{
				Object:      &dtyp.GUID{},
				MapTower:    mapTower(tc.iface, tc.ts),
				EntryHandle: &epmv3.LookupHandle{UUID: &dtyp.GUID{}},
				MaxTowers:   4,
			})
			if err != nil {
				t.Fatalf("ept_map: %v", err)
			}
			if resp.Status != tc.status {
				t.Fatalf("status %#x, want %#x", resp.Status, tc.status)
			}
			if tc.status != epm.StatusOK {
				if len(resp.Towers) != 0 {
					t.Errorf("%d towers with status not registered", len(resp.Towers))
				}
				return
			}
			if len(resp.Towers) != 1 {
				t.Fatalf("%d towers, want 1", len(resp.Towers))
			}
			b := resp.Towers[0].Binding()
			if b.StringBinding.Endpoint != tc.endpoint || b.StringBinding.NetworkAddress != tc.host ||
				!b.SyntaxID.Is(tc.iface) || !b.TransferSyntaxID.Is(tc.ts) {
				t.Errorf("tower %v, want %s[%s] %v", resp.Towers[0].Floors(), tc.host, tc.endpoint, tc.ts)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	addr, _ := start(t)
	cli, err := epmv3.NewEpmClient(context.Background(), dial(t, addr), dcerpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// All entries, one per call, following the handle until it is nil.
	var got []string
	h := &epmv3.LookupHandle{UUID: &dtyp.GUID{}}
	for i := 0; i < 3; i++ {
		resp, err := cli.Lookup(ctx, &epmv3.LookupRequest{InquiryType: 0, EntryHandle: h, MaxEntries: 1})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != epm.StatusOK {
			break
		}
		for _, e := range resp.Entries {
			got = append(got, e.Tower.Binding().StringBinding.Endpoint)
		}
		if h = resp.EntryHandle; h.UUID.IsZero() {
			break // a nil handle: no more entries
		}
	}
	_, port, _ := net.SplitHostPort(addr)
	if len(got) != 2 || got[0] != port || got[1] != "4242" {
		t.Errorf("entries %v, want [%s 4242]", got, port)
	}
	// By interface, version exact; unknown interface.
	for _, tc := range []struct {
		minor  uint16
		status uint32
	}{{0, epm.StatusOK}, {1, epm.StatusNotRegistered}} {
		resp, err := cli.Lookup(ctx, &epmv3.LookupRequest{
			InquiryType: 1, VersOption: 3, MaxEntries: 10,
			InterfaceID: &dcetypes.InterfaceID{UUID: dtyp.GUIDFromUUID(fsrvp.FileServerVSSAgentSyntaxUUID), VersMajor: 1, VersMinor: tc.minor},
		})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != tc.status || (tc.status == epm.StatusOK) != (len(resp.Entries) == 1) {
			t.Errorf("minor %d: status %#x, %d entries", tc.minor, resp.Status, len(resp.Entries))
		}
		if len(resp.Entries) == 1 && resp.Entries[0].Annotation != "FSRVP" {
			t.Errorf("annotation %q", resp.Entries[0].Annotation)
		}
	}
}

// TestGoMsrpcEndpointMapper lets go-msrpc's client find the FSRVP port
// through the mapper (it uses ept_lookup). Its mapper dials port 135; a
// dialer redirects that to the test port.
func TestGoMsrpcEndpointMapper(t *testing.T) {
	addr, conns := start(t)
	ctx := context.Background()
	redirect := dcerpc.WithDialer(dialerFunc(func(ctx context.Context, network, a string) (net.Conn, error) {
		if _, port, _ := net.SplitHostPort(a); port == "135" {
			a = addr
		}
		var d net.Dialer
		return d.DialContext(ctx, network, a)
	}))
	cc, err := dcerpc.Dial(ctx, "ncacn_ip_tcp:127.0.0.1", redirect,
		epmv3.EndpointMapper(ctx, "127.0.0.1", dcerpc.WithInsecure(), redirect))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close(ctx)
	cli, err := fsrvp.NewFileServerVSSAgentClient(ctx, cc, dcerpc.WithInsecure())
	if err != nil {
		t.Fatalf("bind through the endpoint mapper: %v", err)
	}
	if v, err := cli.GetSupportedVersion(ctx, &fsrvp.GetSupportedVersionRequest{}); err != nil || v.MaxVersion != 2 {
		t.Fatalf("GetSupportedVersion: %v %+v", err, v)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2 (mapper, then FSRVP)", n)
	}
}

// TestAlterContext binds FSRVP, then the mapper on the same connection:
// go-msrpc sends an alter_context for the second interface.
func TestAlterContext(t *testing.T) {
	addr, conns := start(t)
	ctx := context.Background()
	cc := dial(t, addr)
	fs, err := fsrvp.NewFileServerVSSAgentClient(ctx, cc, dcerpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	em, err := epmv3.NewEpmClient(ctx, cc, dcerpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.GetSupportedVersion(ctx, &fsrvp.GetSupportedVersionRequest{}); err != nil {
		t.Fatal(err)
	}
	resp, err := em.Lookup(ctx, &epmv3.LookupRequest{MaxEntries: 5})
	if err != nil || resp.Status != epm.StatusOK {
		t.Fatalf("ept_lookup after alter_context: %v, %+v", err, resp)
	}
	if _, err := fs.GetSupportedVersion(ctx, &fsrvp.GetSupportedVersionRequest{}); err != nil {
		t.Fatal(err)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

type dialerFunc func(ctx context.Context, network, addr string) (net.Conn, error)

func (f dialerFunc) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return f(ctx, network, addr)
}
