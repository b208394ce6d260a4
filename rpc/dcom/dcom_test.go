package dcom_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom/iobjectexporter/v0"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom/iremotescmactivator/v0"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom/iremunknown/v0"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom/iremunknown2/v0"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom/scmp/ivssenumobject/v0"
	"github.com/oiweiwei/go-msrpc/msrpc/dtyp"
	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/rpc"
	ourdcom "github.com/fsrvpd/fsrvpd/rpc/dcom"
)

func testLogger() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	if testing.Verbose() {
		l.SetOutput(os.Stderr)
		l.SetLevel(logrus.DebugLevel)
	}
	return logrus.NewEntry(l)
}

// testCLSID is the class the tests activate; its objects implement
// IVssEnumObject through fakeEnum.
var testCLSID = &dcom.ClassID{Data1: 0x11112222, Data2: 0x3333, Data3: 0x4444, Data4: []byte{1, 2, 3, 4, 5, 6, 7, 8}}

// fakeEnum counts Next calls and answers S_FALSE with nothing.
type fakeEnum struct {
	ivssenumobject.UnimplementedEnumObjectServer
	calls *atomic.Int64
}

func (f *fakeEnum) Next(ctx context.Context, req *ivssenumobject.NextRequest) (*ivssenumobject.NextResponse, error) {
	if _, ok := ourdcom.ObjectFromContext(ctx); !ok {
		return nil, fmt.Errorf("no object in the context")
	}
	f.calls.Add(1)
	return &ivssenumobject.NextResponse{That: &dcom.ORPCThat{}, Count: req.Count, Return: 1}, nil
}

type env struct {
	s        *ourdcom.Server
	addr     string // resolver and exporter on one listener
	calls    atomic.Int64
	released atomic.Int64
	clock    atomic.Int64 // seconds added to the real clock
}

func newEnv(t *testing.T, mod ...func(*ourdcom.Config)) *env {
	t.Helper()
	e := &env{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = l.Addr().String()
	cfg := ourdcom.Config{
		Logger:       testLogger(),
		ExporterPort: l.Addr().(*net.TCPAddr).Port,
		Security:     []ourdcom.SecurityBinding{{AuthnSvc: ourdcom.AuthnWinNT}},
		Now:          func() time.Time { return time.Now().Add(time.Duration(e.clock.Load()) * time.Second) },
	}
	for _, m := range mod {
		m(&cfg)
	}
	e.s = ourdcom.New(cfg)
	e.s.RegisterClass(ourdcom.Class{CLSID: testCLSID, Name: "test", New: func(context.Context) (*ourdcom.Object, error) {
		o := ourdcom.NewObject("enum", ourdcom.Interface{IID: ivssenumobject.EnumObjectIID,
			Handle: ivssenumobject.NewEnumObjectServerHandle(&fakeEnum{calls: &e.calls})})
		o.OnRelease = func() { e.released.Add(1) }
		return o, nil
	}}, ivssenumobject.EnumObjectSyntaxV0_0)
	srv := &rpc.Server{Logger: testLogger()}
	e.s.RegisterResolver(srv)
	e.s.RegisterExporter(srv)
	go srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return e
}

func dial(t *testing.T, addr string) dcerpc.Conn {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	cc, err := dcerpc.Dial(context.Background(), "ncacn_ip_tcp:"+host+"["+port+"]")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close(context.Background()) })
	return cc
}

func activationProps(clsid *dcom.ClassID, iids ...*dcom.IID) *dcom.ActivationProperties {
	return &dcom.ActivationProperties{
		DestinationContext: 2,
		Properties: []dcom.ActivationProperty{
			&dcom.InstantiationInfoData{ClassID: clsid, IIDCount: uint32(len(iids)), IID: iids,
				ClientCOMVersion: &dcom.COMVersion{MajorVersion: 5, MinorVersion: 7}},
			&dcom.SpecialPropertiesData{SessionID: 0xffffffff},
			&dcom.LocationInfoData{},
			&dcom.SecurityInfoData{},
			&dcom.SCMRequestInfoData{RemoteRequest: &dcom.CustomRemoteRequestSCMInfo{
				ClientImpLevel: 2, RequestedProtocolSequencesCount: 1, RequestedProtocolSequences: []uint16{7}}},
		},
	}
}

// activate calls RemoteCreateInstance with go-msrpc's client.
func activate(t *testing.T, addr string, this *dcom.ORPCThis, in *dcom.InterfacePointer) *iremotescmactivator.RemoteCreateInstanceResponse {
	t.Helper()
	cli, err := iremotescmactivator.NewRemoteSCMActivatorClient(context.Background(), dial(t, addr), dcerpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cli.RemoteCreateInstance(context.Background(), &iremotescmactivator.RemoteCreateInstanceRequest{
		ORPCThis: this, ActPropertiesIn: in,
	})
	if resp == nil { // go-msrpc returns the response and an error for a failing HRESULT
		t.Fatalf("RemoteCreateInstance: %v", err)
	}
	return resp
}

func this() *dcom.ORPCThis {
	return &dcom.ORPCThis{Version: &dcom.COMVersion{MajorVersion: 5, MinorVersion: 7}, CID: &dcom.CID{}}
}

func TestServerAlive2(t *testing.T) {
	e := newEnv(t)
	cli, err := iobjectexporter.NewObjectExporterClient(context.Background(), dial(t, e.addr), dcerpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	r, err := cli.ServerAlive2(context.Background(), &iobjectexporter.ServerAlive2Request{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Return != 0 || r.COMVersion.MajorVersion != 5 || r.COMVersion.MinorVersion != 7 {
		t.Errorf("ServerAlive2 = %+v", r)
	}
	sb := r.ObjectResolverBindings.GetStringBindings()
	if len(sb) != 1 || sb[0].String() != "ncacn_ip_tcp:127.0.0.1" {
		t.Errorf("resolver bindings %v", sb)
	}
	if sec := r.ObjectResolverBindings.GetSecurityBindings(); len(sec) != 1 || sec[0].AuthnType != ourdcom.AuthnWinNT {
		t.Errorf("security bindings %v", sec)
	}
}

// TestActivateAndCall activates the test class with go-msrpc's client,
// resolves its OXID, calls the object by IPID on the exporter's binding,
// queries and releases it through IRemUnknown(2).
func TestActivateAndCall(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	props := activationProps(testCLSID, ivssenumobject.EnumObjectIID, iremunknown.RemoteUnknownIID)
	in, err := props.ActivationPropertiesIn()
	if err != nil {
		t.Fatal(err)
	}
	resp := activate(t, e.addr, this(), in)
	if resp.Return != 0 {
		t.Fatalf("RemoteCreateInstance = 0x%08x, want S_OK with a failing IID", uint32(resp.Return))
	}
	var out dcom.ActivationProperties
	if err := out.Parse(resp.ActPropertiesOut); err != nil {
		t.Fatalf("parse ppActProperties: %v", err)
	}
	if ref := resp.ActPropertiesOut.GetObjectReference(); !ref.IID.GUID().Equal(dcom.ActivationPropertiesOutIID.GUID()) {
		t.Errorf("ppActProperties iid %v", ref.IID)
	}
	reply, po := out.SCMReplyInfoData(), out.PropertiesOutInfo()
	if reply == nil || po == nil {
		t.Fatalf("reply %+v", out.Properties)
	}
	rr := reply.RemoteReply
	if rr.OXID != e.s.OXID() || rr.ServerVersion.MinorVersion != 7 {
		t.Errorf("ScmReplyInfo %+v", rr)
	}
	host, port, _ := net.SplitHostPort(e.addr)
	if sb := rr.OXIDBindings.GetStringBindings(); len(sb) != 1 || sb[0].String() != "ncacn_ip_tcp:"+host+"["+port+"]" {
		t.Errorf("OXID bindings %v", sb)
	}
	if len(po.HResults) != 2 || po.HResults[0] != 0 || uint32(po.HResults[1]) != ourdcom.ENoInterface || po.InterfaceData[1] != nil {
		t.Fatalf("PropsOutInfo %+v", po)
	}
	std := po.InterfaceData[0].GetStandardObjectReference()
	if std.Std.OXID != e.s.OXID() || std.Std.PublicReferencesCount != 5 || std.Std.Flags != 0 {
		t.Errorf("STDOBJREF %+v", std.Std)
	}
	ipid := po.InterfaceData[0].IPID()

	// ResolveOxid2 names the same exporter.
	oe, err := iobjectexporter.NewObjectExporterClient(ctx, dial(t, e.addr), dcerpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	ro, err := oe.ResolveOxid2(ctx, &iobjectexporter.ResolveOxid2Request{OXID: rr.OXID, RequestedProtocolSequencesCount: 1, RequestedProtocolSequences: []uint16{7}})
	if err != nil || ro.Return != 0 || !ro.RemoteUnknown.GUID().Equal(rr.IPIDRemoteUnknown.GUID()) || ro.COMVersion.MinorVersion != 7 {
		t.Fatalf("ResolveOxid2 = %+v, %v", ro, err)
	}
	// go-msrpc's client returns the response and an error for a non-zero
	// return value.
	if ro, err := oe.ResolveOxid2(ctx, &iobjectexporter.ResolveOxid2Request{OXID: rr.OXID + 1}); ro == nil || ro.Return != ourdcom.ORInvalidOXID {
		t.Errorf("ResolveOxid2(unknown) = %+v, %v", ro, err)
	}

	// Call the object on the exporter binding.
	cc, err := dcerpc.Dial(ctx, host, rr.OXIDBindings.EndpointsByProtocol("ncacn_ip_tcp")...)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close(ctx)
	enum, err := ivssenumobject.NewEnumObjectClient(ctx, cc, dcom.WithIPID(ipid), dcerpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	nr, err := enum.Next(ctx, &ivssenumobject.NextRequest{This: this(), Count: 1})
	if nr == nil || nr.Return != 1 || e.calls.Load() != 1 {
		t.Fatalf("Next = %+v, %v", nr, err)
	}

	// IRemUnknown2 on ipidRemUnknown: QI for IUnknown and an unsupported IID.
	ru2, err := iremunknown2.NewRemoteUnknown2Client(ctx, cc, dcom.WithIPID(rr.IPIDRemoteUnknown), dcerpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	qi, err := ru2.RemoteQueryInterface2(ctx, &iremunknown2.RemoteQueryInterface2Request{This: this(), IPID: ipid.GUID(),
		IIDsCount: 2, IIDs: []*dcom.IID{ourdcom.IIDUnknown, iremunknown.RemoteUnknownIID}})
	if err != nil || qi.Return != 0 || qi.HResult[0] != 0 || uint32(qi.HResult[1]) != ourdcom.ENoInterface {
		t.Fatalf("RemQueryInterface2 = %+v, %v", qi, err)
	}
	unkIPID := qi.Interface[0].IPID()
	ru, err := iremunknown.NewRemoteUnknownClient(ctx, cc, dcom.WithIPID(rr.IPIDRemoteUnknown), dcerpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	q1, err := ru.RemoteQueryInterface(ctx, &iremunknown.RemoteQueryInterfaceRequest{This: this(), IPID: dtyp.GUIDFromUUID(ipid.UUID()),
		ReferencesCount: 1, IIDsCount: 1, IIDs: []*dcom.IID{ivssenumobject.EnumObjectIID}})
	if err != nil || q1.Return != 0 || !q1.QueryInterfaceResults[0].Std.IPID.GUID().Equal(ipid.GUID()) {
		t.Fatalf("RemQueryInterface = %+v, %v", q1, err)
	}
	if q, err := ru.RemoteQueryInterface(ctx, &iremunknown.RemoteQueryInterfaceRequest{This: this(), IPID: &dtyp.GUID{Data4: make([]byte, 8)},
		ReferencesCount: 1, IIDsCount: 1, IIDs: []*dcom.IID{ourdcom.IIDUnknown}}); q == nil || uint32(q.Return) != ourdcom.RPCEInvalidObject {
		t.Errorf("RemQueryInterface(unknown ripid) = %+v, %v", q, err)
	}
	ar, err := ru.RemoteAddReference(ctx, &iremunknown.RemoteAddReferenceRequest{This: this(), InterfaceReferencesCount: 2,
		InterfaceReferences: []*dcom.RemoteInterfaceReference{{IPID: ipid, PublicReferencesCount: 1}, {IPID: &dcom.IPID{Data4: make([]byte, 8)}, PublicReferencesCount: 1}}})
	if ar == nil || len(ar.Results) != 2 || ar.Results[0] != 0 || uint32(ar.Results[1]) != ourdcom.COEObjNotReg {
		t.Fatalf("RemAddRef = %+v, %v", ar, err)
	}

	// Release everything: 5 + 1 (QI) + 1 (AddRef) on the enum IPID, 5 on IUnknown's.
	if _, err := ru.RemoteRelease(ctx, &iremunknown.RemoteReleaseRequest{This: this(), InterfaceReferencesCount: 1,
		InterfaceReferences: []*dcom.RemoteInterfaceReference{{IPID: ipid, PublicReferencesCount: 6}}}); err != nil {
		t.Fatal(err)
	}
	if e.s.Objects() != 1 {
		t.Fatalf("%d objects after a partial release", e.s.Objects())
	}
	if _, err := ru.RemoteRelease(ctx, &iremunknown.RemoteReleaseRequest{This: this(), InterfaceReferencesCount: 2,
		InterfaceReferences: []*dcom.RemoteInterfaceReference{{IPID: ipid, PublicReferencesCount: 100}, {IPID: unkIPID, PublicReferencesCount: 5}}}); err != nil {
		t.Fatal(err)
	}
	if e.s.Objects() != 0 {
		t.Fatalf("%d objects after releasing all", e.s.Objects())
	}
	waitFor(t, func() bool { return e.released.Load() == 1 })

	// The released IPID is gone: RPC_E_DISCONNECTED.
	if _, err := enum.Next(ctx, &ivssenumobject.NextRequest{This: this(), Count: 1}); !hasStatus(err, ourdcom.RPCEDisconnected) {
		t.Errorf("Next on a released IPID: %v", err)
	}
}

func waitFor(t *testing.T, f func() bool) {
	t.Helper()
	for i := 0; i < 500 && !f(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if !f() {
		t.Fatal("condition not reached")
	}
}

// hasStatus tells whether err names status hr (go-msrpc prints faults'
// statuses in hex, or by name for the ones it knows).
func hasStatus(err error, hr uint32) bool {
	return err != nil && strings.Contains(strings.ToLower(err.Error()), fmt.Sprintf("%08x", hr))
}
