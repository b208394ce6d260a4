package scmp_test

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/oiweiwei/go-msrpc/dcerpc"
	muuid "github.com/oiweiwei/go-msrpc/midl/uuid"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom"
	gscmp "github.com/oiweiwei/go-msrpc/msrpc/dcom/scmp"
	scmpclient "github.com/oiweiwei/go-msrpc/msrpc/dcom/scmp/client"
	diffmgmt "github.com/oiweiwei/go-msrpc/msrpc/dcom/scmp/ivssdifferentialsoftwaresnapshotmgmt/v0"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom/scmp/ivssenummgmtobject/v0"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom/scmp/ivssenumobject/v0"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom/scmp/ivsssnapshotmgmt/v0"
	"github.com/oiweiwei/go-msrpc/msrpc/dtyp"
	"github.com/oiweiwei/go-msrpc/ndr"
	"github.com/sirupsen/logrus"

	scmpc "github.com/fsrvpd/fsrvpd/client/scmp"
	"github.com/fsrvpd/fsrvpd/rpc"
	ourdcom "github.com/fsrvpd/fsrvpd/rpc/dcom"
	"github.com/fsrvpd/fsrvpd/server/fsrvp"
	"github.com/fsrvpd/fsrvpd/server/scmp"
	"github.com/fsrvpd/fsrvpd/server/state"
	"github.com/fsrvpd/fsrvpd/shares"
	"github.com/fsrvpd/fsrvpd/storage/dir"
)

// fakeInventory stands for the FSRVP service: n shadow copies of one
// volume, one set each.
type fakeInventory struct{ copies []fsrvp.ShadowCopyInfo }

func (f *fakeInventory) ShadowCopies() []fsrvp.ShadowCopyInfo { return f.copies }
func (f *fakeInventory) ReleaseShadowCopy(context.Context, uuid.UUID, string) error {
	return nil
}

type env struct {
	mgmt   *dcom.IPID
	cli    scmpclient.Client
	volume string
}

// newEnv serves SCMP over a dir volume with five shadow copies and
// activates it with go-msrpc's clients.
func newEnv(t *testing.T) *env {
	t.Helper()
	root := t.TempDir()
	vol := filepath.Join(root, "vol")
	if err := os.MkdirAll(filepath.Join(vol, "s"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := dir.New(dir.Config{Volumes: []string{vol}, SnapshotDir: filepath.Join(root, "snaps")})
	if err != nil {
		t.Fatal(err)
	}
	db, err := state.Open(filepath.Join(root, "state.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	bv, err := b.Volume(context.Background(), vol)
	if err != nil {
		t.Fatal(err)
	}
	inv := &fakeInventory{}
	for i := range 5 {
		inv.copies = append(inv.copies, fsrvp.ShadowCopyInfo{ID: uuid.New(), SetID: uuid.New(), SetSize: 1, VolumeID: bv.ID, VolumeRoot: vol,
			SnapshotPath: filepath.Join(root, "snaps", strconv.Itoa(i)), Created: time.Unix(int64(1e9+i), 0)})
	}
	res, _ := shares.NewStatic([]shares.BaseShare{{Name: "s", Path: filepath.Join(vol, "s")}})
	l := logrus.New()
	l.SetOutput(io.Discard)
	m := scmp.New(scmp.Config{Backend: b, Shares: res, Inventory: inv, DB: db, ServerName: "FILER", Logger: logrus.NewEntry(l)})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	d := ourdcom.New(ourdcom.Config{Logger: logrus.NewEntry(l), ExporterPort: port})
	scmp.Register(d, m)
	srv := &rpc.Server{Logger: logrus.NewEntry(l)}
	d.RegisterResolver(srv)
	d.RegisterExporter(srv)
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})

	// Activate through client/scmp, then talk to the objects directly.
	c, err := scmpc.Dial(context.Background(), "127.0.0.1", scmpc.Options{ResolverPort: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	vols, err := c.Volumes(context.Background())
	if err != nil || len(vols) != 1 {
		t.Fatalf("volumes %v, %v", vols, err)
	}
	cli, mgmt := c.Raw()
	return &env{mgmt: mgmt, cli: cli, volume: vols[0].Name}
}

func this() *dcom.ORPCThis {
	return &dcom.ORPCThis{Version: &dcom.COMVersion{MajorVersion: 5, MinorVersion: 7}, CID: &dcom.CID{Data4: make([]byte, 8)}}
}

func provider(u uuid.UUID) *gscmp.ID {
	return (*gscmp.ID)(dtyp.GUIDFromUUID(muuid.MustParse(u.String())))
}

// opnum8 is IVssDifferentialSoftwareSnapshotMgmt's reserved opnum 8, sent
// with just an ORPCTHIS.
type opnum8 struct{}

func (opnum8) OpNum() int     { return 8 }
func (opnum8) OpName() string { return "Opnum08NotUsedOnWire" }
func (opnum8) MarshalNDRRequest(ctx context.Context, w ndr.Writer) error {
	return this().MarshalNDR(ctx, w)
}
func (opnum8) UnmarshalNDRRequest(context.Context, ndr.Reader) error  { return nil }
func (opnum8) MarshalNDRResponse(context.Context, ndr.Writer) error   { return nil }
func (opnum8) UnmarshalNDRResponse(context.Context, ndr.Reader) error { return nil }

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(strings.ToLower(s), strings.ToLower(x)) {
			return true
		}
	}
	return false
}

// TestEnumObject: Next returns S_FALSE on a short batch, Skip past the end
// S_FALSE, Reset rewinds, Clone keeps the position; celt 0 is E_INVALIDARG.
func TestEnumObject(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r, err := e.cli.SnapshotManagement().IPID(ctx, e.mgmt).QuerySnapshotsByVolume(ctx, &ivsssnapshotmgmt.QuerySnapshotsByVolumeRequest{
		This: this(), VolumeName: e.volume, ProviderID: provider(scmpc.SystemProvider)})
	if err != nil {
		t.Fatal(err)
	}
	en := e.cli.EnumObject().IPID(ctx, r.Enum.InterfacePointer().IPID())
	next := func(en ivssenumobject.EnumObjectClient, n uint32) (int, int32) {
		t.Helper()
		x, err := en.Next(ctx, &ivssenumobject.NextRequest{This: this(), Count: n})
		if x == nil {
			t.Fatalf("Next(%d): %v", n, err)
		}
		return int(x.Fetched), x.Return
	}
	if n, hr := next(en, 2); n != 2 || hr != 0 {
		t.Fatalf("Next(2) = %d, %#x", n, hr)
	}
	cr, err := en.Clone(ctx, &ivssenumobject.CloneRequest{This: this()})
	if err != nil {
		t.Fatal(err)
	}
	clone := e.cli.EnumObject().IPID(ctx, cr.Enum.InterfacePointer().IPID())
	if n, hr := next(en, 4); n != 3 || hr != 1 {
		t.Fatalf("Next(4) at 2 = %d, %#x; want 3, S_FALSE", n, hr)
	}
	if n, hr := next(clone, 10); n != 3 || hr != 1 {
		t.Fatalf("clone Next(10) = %d, %#x; want the same position", n, hr)
	}
	if _, err := en.Reset(ctx, &ivssenumobject.ResetRequest{This: this()}); err != nil {
		t.Fatal(err)
	}
	if s, _ := en.Skip(ctx, &ivssenumobject.SkipRequest{This: this(), Count: 4}); s == nil || s.Return != 0 {
		t.Fatalf("Skip(4) = %+v", s)
	}
	if s, _ := en.Skip(ctx, &ivssenumobject.SkipRequest{This: this(), Count: 2}); s == nil || s.Return != 1 {
		t.Fatalf("Skip past the end = %+v", s)
	}
	if n, hr := next(en, 1); n != 0 || hr != 1 {
		t.Fatalf("Next at the end = %d, %#x", n, hr)
	}
	if _, hr := next(en, 0); uint32(hr) != 0x80070057 {
		t.Fatalf("Next(0) = %#x", hr)
	}
	if s, _ := en.Skip(ctx, &ivssenumobject.SkipRequest{This: this(), Count: 0}); s == nil || uint32(s.Return) != 0x80070057 {
		t.Fatalf("Skip(0) = %+v", s)
	}
	// A huge celt allocates nothing up front.
	if _, err := en.Reset(ctx, &ivssenumobject.ResetRequest{This: this()}); err != nil {
		t.Fatal(err)
	}
	if n, hr := next(en, 0xFFFFFFFF); n != 5 || hr != 1 {
		t.Fatalf("Next(0xFFFFFFFF) = %d, %#x", n, hr)
	}
}

// TestEnumMgmtObject: the same rules on IVssEnumMgmtObject.
func TestEnumMgmtObject(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r, err := e.cli.SnapshotManagement().IPID(ctx, e.mgmt).QueryVolumesSupportedForSnapshots(ctx, &ivsssnapshotmgmt.QueryVolumesSupportedForSnapshotsRequest{
		This: this(), ProviderID: provider(scmpc.SystemProvider), Context: 0x1D})
	if err != nil {
		t.Fatal(err)
	}
	en := e.cli.EnumManagementObject().IPID(ctx, r.Enum.InterfacePointer().IPID())
	x, _ := en.Next(ctx, &ivssenummgmtobject.NextRequest{This: this(), Count: 3})
	if x == nil || x.Fetched != 1 || x.Return != 1 || x.Entries[0].Type != gscmp.ManagementObjectTypeVolume {
		t.Fatalf("Next(3) = %+v", x)
	}
	cr, err := en.Clone(ctx, &ivssenummgmtobject.CloneRequest{This: this()})
	if err != nil {
		t.Fatal(err)
	}
	clone := e.cli.EnumManagementObject().IPID(ctx, cr.Enum.InterfacePointer().IPID())
	if x, _ := clone.Next(ctx, &ivssenummgmtobject.NextRequest{This: this(), Count: 1}); x == nil || x.Fetched != 0 || x.Return != 1 {
		t.Fatalf("clone at the end: %+v", x)
	}
	en.Reset(ctx, &ivssenummgmtobject.ResetRequest{This: this()})
	if x, _ := en.Next(ctx, &ivssenummgmtobject.NextRequest{This: this(), Count: 1}); x == nil || x.Fetched != 1 || x.Return != 0 {
		t.Fatalf("Next(1) after Reset: %+v", x)
	}
	if s, _ := en.Skip(ctx, &ivssenummgmtobject.SkipRequest{This: this(), Count: 1}); s == nil || s.Return != 1 {
		t.Fatalf("Skip past the end: %+v", s)
	}
}

// TestProviderAndInterfaceErrors: the validation order and HRESULTs of
// IVssSnapshotMgmt, and the refused opnum 8 of the diff-area interface.
func TestProviderAndInterfaceErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sm := e.cli.SnapshotManagement().IPID(ctx, e.mgmt)
	other := uuid.MustParse("11111111-2222-3333-4444-555555555555")
	if r, _ := sm.QueryVolumesSupportedForSnapshots(ctx, &ivsssnapshotmgmt.QueryVolumesSupportedForSnapshotsRequest{This: this(), ProviderID: provider(uuid.Nil)}); r == nil || uint32(r.Return) != 0x80070057 {
		t.Errorf("GUID_NULL provider: %+v", r)
	}
	if r, _ := sm.QueryVolumesSupportedForSnapshots(ctx, &ivsssnapshotmgmt.QueryVolumesSupportedForSnapshotsRequest{This: this(), ProviderID: provider(other)}); r == nil || uint32(r.Return) != 0x80042304 {
		t.Errorf("unknown provider: %+v", r)
	}
	if r, _ := sm.QuerySnapshotsByVolume(ctx, &ivsssnapshotmgmt.QuerySnapshotsByVolumeRequest{This: this(), ProviderID: provider(scmpc.SystemProvider)}); r == nil || uint32(r.Return) != 0x80070057 {
		t.Errorf("NULL volume: %+v", r)
	}
	// InterfaceId is checked before ProviderId.
	if r, _ := sm.GetProviderManagementInterface(ctx, &ivsssnapshotmgmt.GetProviderManagementInterfaceRequest{This: this(), ProviderID: provider(other),
		InterfaceID: ivssenumobject.EnumObjectIID}); r == nil || uint32(r.Return) != 0x80070057 {
		t.Errorf("wrong IID: %+v", r)
	}
	if r, _ := sm.GetProviderManagementInterface(ctx, &ivsssnapshotmgmt.GetProviderManagementInterfaceRequest{This: this(), ProviderID: provider(other),
		InterfaceID: diffmgmt.DifferentialSoftwareSnapshotManagementIID}); r == nil || uint32(r.Return) != 0x80042304 {
		t.Errorf("unknown provider: %+v", r)
	}
	r, err := sm.GetProviderManagementInterface(ctx, &ivsssnapshotmgmt.GetProviderManagementInterfaceRequest{This: this(), ProviderID: provider(scmpc.SystemProvider),
		InterfaceID: diffmgmt.DifferentialSoftwareSnapshotManagementIID})
	if err != nil || r.Return != 0 {
		t.Fatalf("GetProviderMgmtInterface: %+v, %v", r, err)
	}
	ref := r.Interface.InterfacePointer().GetObjectReference()
	if !ref.IID.GUID().Equal(diffmgmt.DifferentialSoftwareSnapshotManagementIID.GUID()) {
		t.Errorf("OBJREF iid %v", ref.IID)
	}
	// Opnum 8 (Opnum08NotUsedOnWire) on a fresh connection: nca_op_rng_error.
	dm := e.cli.DifferentialSoftwareSnapshotManagement().IPID(ctx, r.Interface.InterfacePointer().IPID())
	if x, _ := dm.QueryDiffAreasForVolume(ctx, &diffmgmt.QueryDiffAreasForVolumeRequest{This: this()}); x == nil || uint32(x.Return) != 0x80070057 {
		t.Errorf("NULL volume: %+v", x)
	}
	sub, err := e.cli.Conn().(dcerpc.SubConn).SubConn(ctx, diffmgmt.DifferentialSoftwareSnapshotManagementSyntaxV0_0)
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Invoke(ctx, opnum8{}, dcom.WithIPID(r.Interface.InterfacePointer().IPID())); err == nil || !containsAny(err.Error(), "nca_op_rng_error", "1c010002", "range") {
		t.Errorf("opnum 8: %v", err)
	} else {
		t.Logf("opnum 8: %v", err)
	}
}
