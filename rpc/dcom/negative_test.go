package dcom_test

import (
	"context"
	"testing"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom/iactivation/v0"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom/iobjectexporter/v0"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom/iremotescmactivator/v0"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom/iremunknown/v0"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom/scmp/ivssenumobject/v0"
	"github.com/oiweiwei/go-msrpc/msrpc/dtyp"

	ourdcom "github.com/fsrvpd/fsrvpd/rpc/dcom"
)

// activateEnum activates the test class for IVssEnumObject and returns its
// IPID.
func activateEnum(t *testing.T, e *env) *dcom.IPID {
	t.Helper()
	in, err := activationProps(testCLSID, ivssenumobject.EnumObjectIID).ActivationPropertiesIn()
	if err != nil {
		t.Fatal(err)
	}
	resp := activate(t, e.addr, this(), in)
	var out dcom.ActivationProperties
	if resp.Return != 0 || out.Parse(resp.ActPropertiesOut) != nil {
		t.Fatalf("activation: 0x%08x", uint32(resp.Return))
	}
	return out.PropertiesOutInfo().InterfaceData[0].IPID()
}

// enumClient connects to the exporter (the same listener here). go-msrpc's
// transport closes after a fault, so each call gets its own.
func enumClient(t *testing.T, e *env, ipid *dcom.IPID) ivssenumobject.EnumObjectClient {
	t.Helper()
	c, err := ivssenumobject.NewEnumObjectClient(context.Background(), dial(t, e.addr), dcom.WithIPID(ipid), dcerpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestORPCErrors: the exporter's checks, in order, as fault statuses.
func TestORPCErrors(t *testing.T) {
	e := newEnv(t)
	ipid := activateEnum(t, e)
	ctx := context.Background()
	unknown := &dcom.IPID{Data1: 1, Data4: make([]byte, 8)}
	for _, tc := range []struct {
		name string
		ipid *dcom.IPID
		this *dcom.ORPCThis
		want uint32
	}{
		{"unknown IPID", unknown, this(), ourdcom.RPCEDisconnected},
		{"flags", ipid, &dcom.ORPCThis{Version: &dcom.COMVersion{MajorVersion: 5, MinorVersion: 7}, Flags: 1, CID: &dcom.CID{}}, ourdcom.RPCEInvalidHeader},
		{"minor 8", ipid, &dcom.ORPCThis{Version: &dcom.COMVersion{MajorVersion: 5, MinorVersion: 8}, CID: &dcom.CID{}}, ourdcom.RPCEVersionMismatch},
		{"major 6", ipid, &dcom.ORPCThis{Version: &dcom.COMVersion{MajorVersion: 6, MinorVersion: 1}, CID: &dcom.CID{}}, ourdcom.RPCEVersionMismatch},
		{"version before flags", unknown, &dcom.ORPCThis{Version: &dcom.COMVersion{MajorVersion: 4}, Flags: 1, CID: &dcom.CID{}}, ourdcom.RPCEVersionMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := enumClient(t, e, tc.ipid).Next(ctx, &ivssenumobject.NextRequest{This: tc.this, Count: 1})
			if !hasStatus(err, tc.want) {
				t.Errorf("err = %v, want 0x%08x", err, tc.want)
			}
		})
	}
	// An IPID used on another interface: E_NOINTERFACE.
	ru, err := iremunknown.NewRemoteUnknownClient(ctx, dial(t, e.addr), dcom.WithIPID(ipid), dcerpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ru.RemoteRelease(ctx, &iremunknown.RemoteReleaseRequest{This: this()}); !hasStatus(err, ourdcom.RPCEDisconnected) {
		t.Errorf("IRemUnknown on an object's IPID: %v", err)
	}
	if e.calls.Load() != 0 {
		t.Errorf("%d calls reached the object", e.calls.Load())
	}
	// The object still works.
	if r, _ := enumClient(t, e, ipid).Next(ctx, &ivssenumobject.NextRequest{This: this(), Count: 1}); r == nil || r.Return != 1 {
		t.Errorf("Next after the refusals: %+v", r)
	}
}

// TestActivationErrors: the HRESULTs of RemoteCreateInstance.
func TestActivationErrors(t *testing.T) {
	e := newEnv(t)
	good, _ := activationProps(testCLSID, ivssenumobject.EnumObjectIID).ActivationPropertiesIn()
	unknownClass, _ := activationProps(&dcom.ClassID{Data1: 9, Data4: make([]byte, 8)}, ivssenumobject.EnumObjectIID).ActivationPropertiesIn()
	noIface, _ := activationProps(testCLSID, iremunknown.RemoteUnknownIID).ActivationPropertiesIn()
	noSCM := activationProps(testCLSID, ivssenumobject.EnumObjectIID)
	noSCM.Properties = noSCM.Properties[:4]
	noSCMIn, _ := noSCM.ActivationPropertiesIn()
	for _, tc := range []struct {
		name string
		this *dcom.ORPCThis
		in   *dcom.InterfacePointer
		want uint32
	}{
		{"version", &dcom.ORPCThis{Version: &dcom.COMVersion{MajorVersion: 5, MinorVersion: 9}, CID: &dcom.CID{}}, good, ourdcom.RPCEVersionMismatch},
		{"unknown CLSID", this(), unknownClass, ourdcom.REGDBEClassNotReg},
		{"unsupported IID", this(), noIface, ourdcom.ENoInterface},
		{"no ScmRequestInfo", this(), noSCMIn, ourdcom.EInvalidArg},
		{"no OBJREF", this(), &dcom.InterfacePointer{Data: []byte("MEOW")}, ourdcom.RPCEInvalidObjRef},
		{"standard OBJREF", this(), stdObjRef(t), ourdcom.RPCEInvalidObjRef},
		{"truncated blob", this(), truncate(t, good), ourdcom.EInvalidArg},
		{"oversized", this(), &dcom.InterfacePointer{Data: append(append([]byte(nil), good.Data...), make([]byte, 70<<10)...)}, ourdcom.EInvalidArg},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := activate(t, e.addr, tc.this, tc.in)
			if uint32(r.Return) != tc.want || r.ActPropertiesOut != nil {
				t.Errorf("Return 0x%08x, out %v; want 0x%08x", uint32(r.Return), r.ActPropertiesOut != nil, tc.want)
			}
		})
	}
	if e.s.Objects() != 0 {
		t.Errorf("%d objects after failed activations", e.s.Objects())
	}
}

// stdObjRef is an OBJREF_STANDARD, which is no activation blob.
func stdObjRef(t *testing.T) *dcom.InterfacePointer {
	ref := &dcom.ObjectReference{Signature: []byte("MEOW"), Flags: dcom.ObjectReferenceTypeStandard, IID: ourdcom.IIDUnknown,
		ObjectReference: &dcom.ObjectReference_ObjectReference{Value: &dcom.ObjectReference_Standard{Standard: &dcom.ObjectReferenceStandard{
			Std: &dcom.StdObjectReference{IPID: &dcom.IPID{}}, ResolverAddr: &dcom.DualStringArray{EntriesLength: 4, SecurityOffset: 2, StringArray: make([]uint16, 4)}}}}}
	b, err := ndrMarshalOpaque(ref)
	if err != nil {
		t.Fatal(err)
	}
	return &dcom.InterfacePointer{Data: b}
}

// truncate cuts the activation blob inside an OBJREF_CUSTOM short.
func truncate(t *testing.T, ip *dcom.InterfacePointer) *dcom.InterfacePointer {
	return &dcom.InterfacePointer{Data: ip.Data[:len(ip.Data)-40]}
}

// TestLifetime: an object nobody pings nor calls is reclaimed after the
// idle timeout; one in a ping set lives while the set is pinged; ping set
// errors are the OR_ codes.
func TestLifetime(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := activateEnum(t, e)
	b := activateEnum(t, e)
	oe, err := iobjectexporter.NewObjectExporterClient(ctx, dial(t, e.addr), dcerpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	// b's OID, as a client learns it from a STDOBJREF.
	oidB := oidOf(t, e, b)
	cp, err := oe.ComplexPing(ctx, &iobjectexporter.ComplexPingRequest{AddToSetCount: 1, AddToSet: []uint64{oidB}})
	if err != nil || cp.SetID == 0 {
		t.Fatalf("ComplexPing = %+v, %v", cp, err)
	}
	if r, _ := oe.ComplexPing(ctx, &iobjectexporter.ComplexPingRequest{SetID: cp.SetID, SequenceNum: 1, AddToSetCount: 1, AddToSet: []uint64{12345}}); r == nil || r.Return != ourdcom.ORInvalidOID {
		t.Errorf("ComplexPing(unknown OID) = %+v", r)
	}
	if r, _ := oe.SimplePing(ctx, &iobjectexporter.SimplePingRequest{SetID: 777}); r == nil || r.Return != ourdcom.ORInvalidSet {
		t.Errorf("SimplePing(unknown set) = %+v", r)
	}
	// 5 minutes pass, a ping, 5 more: a is idle for 10 (> 6), b pinged.
	e.clock.Store(300)
	if r, err := oe.SimplePing(ctx, &iobjectexporter.SimplePingRequest{SetID: cp.SetID}); err != nil || r.Return != 0 {
		t.Fatalf("SimplePing = %+v, %v", r, err)
	}
	e.clock.Store(600)
	if _, err := enumClient(t, e, a).Next(ctx, &ivssenumobject.NextRequest{This: this(), Count: 1}); !hasStatus(err, ourdcom.RPCEDisconnected) {
		t.Errorf("idle object: %v", err)
	}
	if r, _ := enumClient(t, e, b).Next(ctx, &ivssenumobject.NextRequest{This: this(), Count: 1}); r == nil || r.Return != 1 {
		t.Errorf("pinged object: %+v", r)
	}
	// No more pings: the set expires after 6 minutes, then b idles out.
	e.clock.Store(600 + 370)
	oe.ServerAlive2(ctx, &iobjectexporter.ServerAlive2Request{})
	if r, _ := oe.SimplePing(ctx, &iobjectexporter.SimplePingRequest{SetID: cp.SetID}); r == nil || r.Return != ourdcom.ORInvalidSet {
		t.Errorf("SimplePing(expired set) = %+v", r)
	}
	e.clock.Store(600 + 370 + 370)
	if _, err := enumClient(t, e, b).Next(ctx, &ivssenumobject.NextRequest{This: this(), Count: 1}); !hasStatus(err, ourdcom.RPCEDisconnected) {
		t.Errorf("object of an expired set: %v", err)
	}
	waitFor(t, func() bool { return e.released.Load() == 2 })
	if n := e.s.Objects(); n != 0 {
		t.Errorf("%d objects left", n)
	}
}

// oidOf returns the OID of ipid's object through RemQueryInterface.
func oidOf(t *testing.T, e *env, ipid *dcom.IPID) uint64 {
	t.Helper()
	ru, err := iremunknown.NewRemoteUnknownClient(context.Background(), dial(t, e.addr), dcom.WithIPID(remUnknownIPID(t, e)), dcerpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	q, err := ru.RemoteQueryInterface(context.Background(), &iremunknown.RemoteQueryInterfaceRequest{This: this(), IPID: ipid.GUID(),
		ReferencesCount: 1, IIDsCount: 1, IIDs: []*dcom.IID{ivssenumobject.EnumObjectIID}})
	if err != nil {
		t.Fatal(err)
	}
	return q.QueryInterfaceResults[0].Std.OID
}

func remUnknownIPID(t *testing.T, e *env) *dcom.IPID {
	oe, err := iobjectexporter.NewObjectExporterClient(context.Background(), dial(t, e.addr), dcerpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	r, err := oe.ResolveOxid2(context.Background(), &iobjectexporter.ResolveOxid2Request{OXID: e.s.OXID()})
	if err != nil {
		t.Fatal(err)
	}
	return r.RemoteUnknown
}

// TestRemoteGetClassObject: a known class answers a class object with
// IUnknown only (no IClassFactory); an unknown one REGDB_E_CLASSNOTREG.
func TestRemoteGetClassObject(t *testing.T) {
	e := newEnv(t)
	iidClassFactory := &dcom.IID{Data1: 1, Data4: []byte{0xc0, 0, 0, 0, 0, 0, 0, 0x46}}
	cli, err := iremotescmactivator.NewRemoteSCMActivatorClient(context.Background(), dial(t, e.addr), dcerpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	in, _ := activationProps(testCLSID, ourdcom.IIDUnknown, iidClassFactory).ActivationPropertiesIn()
	r, _ := cli.RemoteGetClassObject(context.Background(), &iremotescmactivator.RemoteGetClassObjectRequest{ORPCThis: this(), ActPropertiesIn: in})
	var out dcom.ActivationProperties
	if r == nil || r.Return != 0 || out.Parse(r.ActPropertiesOut) != nil {
		t.Fatalf("RemoteGetClassObject = %+v", r)
	}
	po := out.PropertiesOutInfo()
	if po == nil || po.HResults[0] != 0 || uint32(po.HResults[1]) != ourdcom.ENoInterface {
		t.Fatalf("PropsOutInfo %+v", po)
	}
	unknown, _ := activationProps(&dcom.ClassID{Data1: 7, Data4: make([]byte, 8)}, ourdcom.IIDUnknown).ActivationPropertiesIn()
	if r, _ := cli.RemoteGetClassObject(context.Background(), &iremotescmactivator.RemoteGetClassObjectRequest{ORPCThis: this(), ActPropertiesIn: unknown}); r == nil || uint32(r.Return) != ourdcom.REGDBEClassNotReg {
		t.Fatalf("unknown class: %+v", r)
	}
}

// TestLegacyRemoteActivation: IActivation::RemoteActivation (pre-5.6
// clients) activates the same objects; unknown classes and bad versions
// come back in phr with error_status_t 0.
func TestLegacyRemoteActivation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cli, err := iactivation.NewActivationClient(ctx, dial(t, e.addr), dcerpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	r, err := cli.RemoteActivation(ctx, &iactivation.RemoteActivationRequest{
		ORPCThis: this(), ClassID: testCLSID.GUID(), Interfaces: 2, IIDs: []*dcom.IID{ivssenumobject.EnumObjectIID, iremunknown.RemoteUnknownIID},
		RequestedProtocolSequencesCount: 1, RequestedProtocolSequences: []uint16{7},
	})
	if err != nil || r.Return != 0 || r.HResult != 0 || r.OXID != e.s.OXID() || len(r.Results) != 2 || r.Results[0] != 0 ||
		uint32(r.Results[1]) != ourdcom.ENoInterface || r.InterfaceData[1] != nil {
		t.Fatalf("RemoteActivation = %+v, %v", r, err)
	}
	if r, _ := enumClient(t, e, r.InterfaceData[0].IPID()).Next(ctx, &ivssenumobject.NextRequest{This: this(), Count: 1}); r == nil || r.Return != 1 {
		t.Errorf("Next on a legacy-activated object: %+v", r)
	}
	// (A request without IIDs does not even decode: a bad-stub fault.)
	for name, tc := range map[string]struct {
		req  *iactivation.RemoteActivationRequest
		want uint32
	}{
		"unknown class": {&iactivation.RemoteActivationRequest{ORPCThis: this(), ClassID: &dtyp.GUID{Data1: 5, Data4: make([]byte, 8)}, Interfaces: 1,
			IIDs: []*dcom.IID{ivssenumobject.EnumObjectIID}}, ourdcom.REGDBEClassNotReg},
		"version": {&iactivation.RemoteActivationRequest{ORPCThis: &dcom.ORPCThis{Version: &dcom.COMVersion{MajorVersion: 4}, CID: &dcom.CID{}},
			ClassID: testCLSID.GUID(), Interfaces: 1, IIDs: []*dcom.IID{ivssenumobject.EnumObjectIID}}, ourdcom.RPCEVersionMismatch},
	} {
		r, err := cli.RemoteActivation(ctx, tc.req)
		if r == nil || r.Return != 0 || uint32(r.HResult) != tc.want {
			t.Errorf("%s: %+v, %v; want phr 0x%08x", name, r, err, tc.want)
		}
	}
}

// TestMaxObjects: past Config.MaxObjects an activation fails with
// E_OUTOFMEMORY until objects are released or reclaimed.
func TestMaxObjects(t *testing.T) {
	e := newEnv(t, func(c *ourdcom.Config) { c.MaxObjects = 2 })
	activateEnum(t, e)
	activateEnum(t, e)
	in, _ := activationProps(testCLSID, ivssenumobject.EnumObjectIID).ActivationPropertiesIn()
	if r := activate(t, e.addr, this(), in); uint32(r.Return) != ourdcom.EOutOfMemory {
		t.Fatalf("third activation: 0x%08x", uint32(r.Return))
	}
	e.clock.Store(400) // both idle for more than 6 minutes
	activateEnum(t, e)
	if n := e.s.Objects(); n != 1 {
		t.Errorf("%d objects after the reclaim", n)
	}
}
