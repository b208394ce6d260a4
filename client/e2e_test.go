package client_test

// End-to-end tests: the client over real DCE/RPC (go-msrpc's client stack,
// TCP, our rpc runtime) against clienttest.Fake.

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/fsrvpd/fsrvpd/client"
	"github.com/fsrvpd/fsrvpd/client/clienttest"
	"github.com/fsrvpd/fsrvpd/rpc"
	"github.com/google/uuid"
	"github.com/oiweiwei/go-msrpc/dcerpc"
	"github.com/oiweiwei/go-msrpc/msrpc/dcetypes"
	epm "github.com/oiweiwei/go-msrpc/msrpc/epm/epm/v3"
	fsrvp "github.com/oiweiwei/go-msrpc/msrpc/fsrvp/fileservervssagent/v1"
	"github.com/sirupsen/logrus"
)

func quietLogger() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

// serve runs an rpc.Server with handlers on 127.0.0.1 and returns its port.
func serve(t *testing.T, register func(*rpc.Server)) string {
	t.Helper()
	s := &rpc.Server{Logger: quietLogger()}
	register(s)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func serveFSRVP(t *testing.T, srv fsrvp.FileServerVSSAgentServer) string {
	return serve(t, func(s *rpc.Server) {
		s.Register(fsrvp.FileServerVSSAgentSyntaxV1_0, fsrvp.NewFileServerVSSAgentServerHandle(srv))
	})
}

// fakeEPM answers ept_map for FSRVP with port, or with status when non-zero.
type fakeEPM struct {
	epm.UnimplementedEpmServer
	port   uint16
	status uint32
}

func (e *fakeEPM) Map(ctx context.Context, req *epm.MapRequest) (*epm.MapResponse, error) {
	resp := &epm.MapResponse{MaxTowers: req.MaxTowers, EntryHandle: &epm.LookupHandle{}, Status: e.status}
	if e.status != 0 {
		return resp, nil
	}
	port := make([]byte, 2)
	binary.BigEndian.PutUint16(port, e.port)
	resp.Towers = []*dcetypes.Tower{dcetypes.FloorsToTower([]*dcetypes.Floor{
		{Protocol: uint8(dcetypes.ProtocolUUID), UUID: fsrvp.FileServerVSSAgentSyntaxUUID, VersionMajor: 1, Data: []byte{0, 0}},
		{Protocol: uint8(dcetypes.ProtocolUUID), UUID: dcerpc.TransferNDR, VersionMajor: 2, Data: []byte{0, 0}},
		{Protocol: uint8(dcetypes.ProtocolRPC_CO), Data: []byte{0, 0}},
		{Protocol: uint8(dcetypes.ProtocolTCP), Data: port},
		{Protocol: uint8(dcetypes.ProtocolIP), Data: []byte{10, 99, 99, 99}}, // unreachable: the client must use its own host
	})}
	resp.TowersLength = 1
	return resp, nil
}

func dial(t *testing.T, target string, opts ...client.Option) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, target, append([]client.Option{client.WithTimeout(10 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestE2ECreateDelete(t *testing.T) {
	f := clienttest.NewFake("share1", "share2")
	created := time.Date(2026, 11, 22, 2, 54, 54, 123456700, time.UTC)
	f.Now = func() time.Time { return created }
	port := serveFSRVP(t, f)
	for _, tc := range []struct {
		name   string
		target string
		opts   []client.Option
	}{
		{"host:port", "127.0.0.1:" + port, nil},
		{"string binding, NDR64", "ncacn_ip_tcp:127.0.0.1[" + port + "]", []client.Option{client.WithNDR64()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			c := dial(t, tc.target, tc.opts...)
			res, err := c.Create(ctx, client.CreateRequest{Context: client.CtxAppRollback | client.AttrAutoRecovery,
				Shares: []string{"share1", `\\fileserver\share2\`}, RecoveryComplete: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Mappings) != 2 || !res.RecoveryCompleted {
				t.Fatalf("%+v", res)
			}
			m := res.Mappings[0]
			if m.ShadowCopySetID != res.ShadowCopySetID || m.ShareUNC != `\\127.0.0.1\share1\` ||
				m.ExposedName != `\\FAKESRV\share1@{`+m.ShadowCopyID.String()+`}` || !m.CreationTime.Equal(created) {
				t.Errorf("mapping over the wire: %+v", m)
			}
			if _, ok := f.Sets()[res.ShadowCopySetID]; !ok {
				t.Errorf("set id %s did not survive the wire: server has %v", res.ShadowCopySetID, f.Sets())
			}
			if err := c.Delete(ctx, res.ShadowCopySetID, res.Mappings); err != nil {
				t.Fatal(err)
			}
			if len(f.Sets()) != 0 {
				t.Errorf("sets left: %v", f.Sets())
			}
		})
	}
}

func TestE2EErrors(t *testing.T) {
	ctx := context.Background()
	port := serveFSRVP(t, clienttest.NewFake("share1"))
	c := dial(t, "127.0.0.1:"+port)

	// A non-zero return value is an HResultError, not a transport error.
	err := c.RecoveryCompleteShadowCopySet(ctx, uuid.New())
	var he *client.HResultError
	if !errors.As(err, &he) || he.Op != "RecoveryCompleteShadowCopySet" || he.Code != client.EShadowCopySetIDMismatch || client.IsTransport(err) {
		t.Errorf("err = %v", err)
	}
	if _, _, err := c.IsPathSupported(ctx, c.ResolveShare("nosuch")); !isCode(err, client.EObjectNotFound) {
		t.Errorf("IsPathSupported(nosuch) = %v", err)
	}
	// The connection stays usable after FSRVP errors.
	if min, max, err := c.GetSupportedVersion(ctx); err != nil || min != 1 || max != 1 {
		t.Errorf("GetSupportedVersion = %d %d %v", min, max, err)
	}

	// An RPC fault (nca_op_rng_error for an unimplemented method) is a
	// transport error.
	c2 := dial(t, "127.0.0.1:"+serveFSRVP(t, fsrvp.UnimplementedFileServerVSSAgentServer{}))
	if _, _, err := c2.GetSupportedVersion(ctx); !client.IsTransport(err) {
		t.Errorf("fault: %v", err)
	}

	// Nobody listening.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().String()
	l.Close()
	if _, err := client.Dial(ctx, dead, client.WithTimeout(5*time.Second)); !client.IsTransport(err) {
		t.Errorf("dial %s: %v", dead, err)
	}
}

// slowServer takes a while to answer GetSupportedVersion.
type slowServer struct {
	*clienttest.Fake
	delay time.Duration
}

func (s slowServer) GetSupportedVersion(ctx context.Context, req *fsrvp.GetSupportedVersionRequest) (*fsrvp.GetSupportedVersionResponse, error) {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
	}
	return s.Fake.GetSupportedVersion(ctx, req)
}

func TestE2ECallTimeout(t *testing.T) {
	port := serveFSRVP(t, slowServer{Fake: clienttest.NewFake(), delay: 3 * time.Second})
	c := dial(t, "127.0.0.1:"+port)
	c2 := dial(t, "127.0.0.1:"+port, client.WithTimeout(300*time.Millisecond))
	start := time.Now()
	_, _, err := c2.GetSupportedVersion(context.Background())
	if !client.IsTransport(err) || time.Since(start) > 2*time.Second {
		t.Errorf("after %v: %v", time.Since(start), err)
	}
	// A slow call within the timeout succeeds (go-msrpc's own 10 s network
	// timeout is raised to the call timeout, so this would pass either way
	// at 3 s; the point is that the per-call context does not cut it short).
	if _, _, err := c.GetSupportedVersion(context.Background()); err != nil {
		t.Errorf("slow call: %v", err)
	}
}

func TestE2EEndpointMapper(t *testing.T) {
	f := clienttest.NewFake("share1")
	port := serveFSRVP(t, f)
	p, _ := strconv.Atoi(port)
	epmPort := serve(t, func(s *rpc.Server) {
		s.Register(epm.EpmSyntaxV3_0, epm.NewEpmServerHandle(&fakeEPM{port: uint16(p)}))
	})
	for _, tc := range []struct{ target, epm string }{
		{"127.0.0.1", "127.0.0.1:" + epmPort},
		{"ncacn_ip_tcp:127.0.0.1", epmPort}, // bare port: on the target host
	} {
		c := dial(t, tc.target, client.WithEndpointMapper(tc.epm))
		if _, _, err := c.GetSupportedVersion(context.Background()); err != nil {
			t.Errorf("%s via %s: %v", tc.target, tc.epm, err)
		}
		if c.ShareHost() != "127.0.0.1" {
			t.Errorf("share host %q", c.ShareHost())
		}
	}

	// Interface not registered.
	badEPM := serve(t, func(s *rpc.Server) {
		s.Register(epm.EpmSyntaxV3_0, epm.NewEpmServerHandle(&fakeEPM{status: 0x16c9a0d6}))
	})
	_, err := client.Dial(context.Background(), "127.0.0.1", client.WithEndpointMapper("127.0.0.1:"+badEPM), client.WithTimeout(5*time.Second))
	if !client.IsTransport(err) {
		t.Errorf("unregistered interface: %v", err)
	}
}
