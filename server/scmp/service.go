package scmp

// service.go: the SnapshotMgmt class and the four SCMP interfaces over the
// Model (MS-SCMP §3.1.4), served through rpc/dcom.

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom/scmp"
	diffmgmt "github.com/oiweiwei/go-msrpc/msrpc/dcom/scmp/ivssdifferentialsoftwaresnapshotmgmt/v0"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom/scmp/ivssenummgmtobject/v0"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom/scmp/ivssenumobject/v0"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom/scmp/ivsssnapshotmgmt/v0"
	"github.com/oiweiwei/go-msrpc/msrpc/dtyp"

	"github.com/fsrvpd/fsrvpd/rpc"
	ourdcom "github.com/fsrvpd/fsrvpd/rpc/dcom"
	"github.com/fsrvpd/fsrvpd/rpc/msdtyp"
)

// HRESULTs (MS-SCMP §2.2.4).
const (
	sOK                       uint32 = 0
	sFalse                    uint32 = 1
	eInvalidArg               uint32 = 0x80070057
	eUnexpected               uint32 = 0x8000FFFF
	vssEProviderNotRegistered uint32 = 0x80042304
	vssEObjectNotFound        uint32 = 0x80042308
	vssEVolumeNotSupported    uint32 = 0x8004230C
	vssEObjectAlreadyExists   uint32 = 0x8004230D
	vssEVolumeInUse           uint32 = 0x8004231D
	vssEMaxDiffAreas          uint32 = 0x8004231E
	vssEInsufficientStorage   uint32 = 0x8004231F
)

// Identifiers (the digest's §2).
var (
	// CLSID is CLSID_VssSnapshotMgmt {0B5A2C52-3EB9-470A-96E2-6C6D4570E40F}.
	CLSID = &dcom.ClassID{Data1: 0x0b5a2c52, Data2: 0x3eb9, Data3: 0x470a, Data4: []byte{0x96, 0xe2, 0x6c, 0x6d, 0x45, 0x70, 0xe4, 0x0f}}
	// ProviderID is VSS_SWPRV_ProviderId {B5946137-7B9F-4925-AF80-51ABD60B20D5}.
	ProviderID = uuid.MustParse("b5946137-7b9f-4925-af80-51abd60b20d5")
)

// ctxClientAccessible is VSS_CTX_CLIENT_ACCESSIBLE: PERSISTENT |
// CLIENT_ACCESSIBLE | NO_AUTO_RELEASE | NO_WRITERS.
const ctxClientAccessible = 0x1D

func hr32(hr uint32) int32 { return int32(hr) }

// Service serves SCMP over a Model.
type Service struct {
	m    *Model
	dcom *ourdcom.Server
}

// Register makes the SnapshotMgmt class activatable on d and declares the
// four SCMP interfaces. Call it before d.RegisterExporter.
func Register(d *ourdcom.Server, m *Model) *Service {
	s := &Service{m: m, dcom: d}
	d.RegisterClass(ourdcom.Class{CLSID: CLSID, Name: "VssSnapshotMgmt", New: func(context.Context) (*ourdcom.Object, error) {
		return ourdcom.NewObject("VssSnapshotMgmt", ourdcom.Interface{IID: ivsssnapshotmgmt.SnapshotManagementIID,
			Handle: ivsssnapshotmgmt.NewSnapshotManagementServerHandle(&snapshotMgmt{s})}), nil
	}},
		ivsssnapshotmgmt.SnapshotManagementSyntaxV0_0,
		diffmgmt.DifferentialSoftwareSnapshotManagementSyntaxV0_0,
		ivssenumobject.EnumObjectSyntaxV0_0,
		ivssenummgmtobject.EnumManagementObjectSyntaxV0_0)
	return s
}

// providerCheck validates a ProviderId: NULL or GUID_NULL is E_INVALIDARG,
// any but the system provider VSS_E_PROVIDER_NOT_REGISTERED.
func providerCheck(id *scmp.ID) uint32 {
	g := (*dtyp.GUID)(id)
	if g == nil || g.IsZero() {
		return eInvalidArg
	}
	if !g.Equal(msdtyp.GUID(ProviderID)) {
		return vssEProviderNotRegistered
	}
	return sOK
}

type snapshotMgmt struct{ s *Service }

var _ ivsssnapshotmgmt.SnapshotManagementServer = (*snapshotMgmt)(nil)

// GetProviderMgmtInterface (opnum 3, §3.1.4.2.1).
func (x *snapshotMgmt) GetProviderManagementInterface(ctx context.Context, req *ivsssnapshotmgmt.GetProviderManagementInterfaceRequest) (*ivsssnapshotmgmt.GetProviderManagementInterfaceResponse, error) {
	resp := &ivsssnapshotmgmt.GetProviderManagementInterfaceResponse{That: &dcom.ORPCThat{}}
	if req.InterfaceID == nil || !req.InterfaceID.GUID().Equal(diffmgmt.DifferentialSoftwareSnapshotManagementIID.GUID()) {
		resp.Return = hr32(eInvalidArg)
		return resp, nil
	}
	if hr := providerCheck(req.ProviderID); hr != sOK {
		resp.Return = hr32(hr)
		return resp, nil
	}
	obj := ourdcom.NewObject("VssDifferentialSoftwareSnapshotMgmt", ourdcom.Interface{IID: diffmgmt.DifferentialSoftwareSnapshotManagementIID,
		Handle: diffmgmt.NewDifferentialSoftwareSnapshotManagementServerHandle(&diffMgmt{x.s})})
	ip, err := x.s.dcom.Export(ctx, obj, req.InterfaceID)
	if err != nil {
		return nil, err
	}
	resp.Interface = (*dcom.Unknown)(ip)
	return resp, nil
}

// QueryVolumesSupportedForSnapshots (opnum 4, §3.1.4.2.2).
func (x *snapshotMgmt) QueryVolumesSupportedForSnapshots(ctx context.Context, req *ivsssnapshotmgmt.QueryVolumesSupportedForSnapshotsRequest) (*ivsssnapshotmgmt.QueryVolumesSupportedForSnapshotsResponse, error) {
	resp := &ivsssnapshotmgmt.QueryVolumesSupportedForSnapshotsResponse{That: &dcom.ORPCThat{}}
	if hr := providerCheck(req.ProviderID); hr != sOK {
		resp.Return = hr32(hr)
		return resp, nil
	}
	vols, err := x.s.m.Volumes(ctx)
	if err != nil {
		rpc.Logger(ctx).WithError(err).Warn("scmp: listing volumes failed")
		resp.Return = hr32(eUnexpected)
		return resp, nil
	}
	items := make([]*scmp.ManagementObjectProperty, len(vols))
	for i, v := range vols {
		items[i] = &scmp.ManagementObjectProperty{Type: scmp.ManagementObjectTypeVolume, Object: &scmp.ManagementObjectUnion{
			Value: &scmp.ManagementObjectUnion_Volume{Volume: &scmp.VolumeProperty{VolumeName: v.Name, VolumeDisplayName: v.Display}}}}
	}
	ip, err := x.s.exportMgmtEnum(ctx, &cursor[*scmp.ManagementObjectProperty]{items: items})
	if err != nil {
		return nil, err
	}
	resp.Enum = (*scmp.EnumManagementObject)(ip)
	return resp, nil
}

// QuerySnapshotsByVolume (opnum 5, §3.1.4.2.3).
func (x *snapshotMgmt) QuerySnapshotsByVolume(ctx context.Context, req *ivsssnapshotmgmt.QuerySnapshotsByVolumeRequest) (*ivsssnapshotmgmt.QuerySnapshotsByVolumeResponse, error) {
	resp := &ivsssnapshotmgmt.QuerySnapshotsByVolumeResponse{That: &dcom.ORPCThat{}}
	if req.VolumeName == "" {
		resp.Return = hr32(eInvalidArg)
		return resp, nil
	}
	if hr := providerCheck(req.ProviderID); hr != sOK {
		resp.Return = hr32(hr)
		return resp, nil
	}
	v, err := x.s.m.Lookup(ctx, req.VolumeName)
	if err != nil {
		resp.Return = hr32(vssEObjectNotFound)
		return resp, nil
	}
	var items []*scmp.ObjectProperty
	for _, sc := range x.s.m.ShadowCopies(v) {
		items = append(items, &scmp.ObjectProperty{Type: scmp.ObjectTypeSnapshot, Object: &scmp.ObjectUnion{Value: &scmp.ObjectUnion_Snap{Snap: &scmp.SnapshotProperty{
			SnapshotID:           (*scmp.ID)(msdtyp.GUID(sc.ID)),
			SnapshotSetID:        (*scmp.ID)(msdtyp.GUID(sc.SetID)),
			SnapshotsCount:       int32(sc.SetSize),
			SnapshotDeviceObject: sc.SnapshotPath,
			OriginalVolumeName:   v.Name,
			OriginatingMachine:   x.s.m.cfg.ServerName,
			ServiceMachine:       x.s.m.cfg.ServerName,
			ProviderID:           (*scmp.ID)(msdtyp.GUID(ProviderID)),
			SnapshotAttributes:   ctxClientAccessible,
			CreationTimestamp:    msdtyp.Filetime(sc.Created),
			Status:               scmp.SnapshotStateCreated,
		}}}})
	}
	ip, err := x.s.exportObjEnum(ctx, &cursor[*scmp.ObjectProperty]{items: items})
	if err != nil {
		return nil, err
	}
	resp.Enum = (*scmp.EnumObject)(ip)
	return resp, nil
}

type diffMgmt struct{ s *Service }

var _ diffmgmt.DifferentialSoftwareSnapshotManagementServer = (*diffMgmt)(nil)

// assocHR maps Model errors to HRESULTs.
func assocHR(ctx context.Context, err error) uint32 {
	switch {
	case err == nil:
		return sOK
	case errors.Is(err, ErrExists):
		return vssEObjectAlreadyExists
	case errors.Is(err, ErrNotFound):
		return vssEObjectNotFound
	case errors.Is(err, ErrInUse):
		return vssEVolumeInUse
	case errors.Is(err, ErrTooSmall):
		return vssEInsufficientStorage
	case errors.Is(err, ErrOtherStorage):
		return vssEVolumeNotSupported
	default:
		rpc.Logger(ctx).WithError(err).Error("scmp: storage association change failed")
		return eUnexpected
	}
}

// AddDiffArea (opnum 3, §3.1.4.4.1).
func (x *diffMgmt) AddDiffArea(ctx context.Context, req *diffmgmt.AddDiffAreaRequest) (*diffmgmt.AddDiffAreaResponse, error) {
	resp := &diffmgmt.AddDiffAreaResponse{That: &dcom.ORPCThat{}}
	if req.VolumeName == "" || req.DiffAreaVolumeName == "" {
		resp.Return = hr32(eInvalidArg)
		return resp, nil
	}
	v, err1 := x.s.m.Lookup(ctx, req.VolumeName)
	w, err2 := x.s.m.Lookup(ctx, req.DiffAreaVolumeName)
	if err1 != nil || err2 != nil {
		resp.Return = hr32(vssEVolumeNotSupported)
		return resp, nil
	}
	if req.MaximumDiffSpace == 0 || req.MaximumDiffSpace < -1 {
		resp.Return = hr32(eInvalidArg)
		return resp, nil
	}
	if v.GUID != w.GUID {
		// Only the volume itself can hold its copy-on-write data; a
		// volume that has its association already is at the maximum.
		das, _ := x.s.m.DiffAreas(ctx)
		for _, da := range das {
			if da.Volume.GUID == v.GUID {
				resp.Return = hr32(vssEMaxDiffAreas)
				return resp, nil
			}
		}
	}
	resp.Return = hr32(assocHR(ctx, x.s.m.AddDiffArea(ctx, v, w, req.MaximumDiffSpace)))
	return resp, nil
}

// ChangeDiffAreaMaximumSize (opnum 4, §3.1.4.4.2).
func (x *diffMgmt) ChangeDiffAreaMaximumSize(ctx context.Context, req *diffmgmt.ChangeDiffAreaMaximumSizeRequest) (*diffmgmt.ChangeDiffAreaMaximumSizeResponse, error) {
	resp := &diffmgmt.ChangeDiffAreaMaximumSizeResponse{That: &dcom.ORPCThat{}}
	if req.VolumeName == "" || req.DiffAreaVolumeName == "" || req.MaximumDiffSpace < -1 {
		resp.Return = hr32(eInvalidArg)
		return resp, nil
	}
	v, err1 := x.s.m.Lookup(ctx, req.VolumeName)
	w, err2 := x.s.m.Lookup(ctx, req.DiffAreaVolumeName)
	if err1 != nil || err2 != nil {
		resp.Return = hr32(vssEObjectNotFound)
		return resp, nil
	}
	resp.Return = hr32(assocHR(ctx, x.s.m.ChangeDiffAreaMaximumSize(ctx, v, w, req.MaximumDiffSpace)))
	return resp, nil
}

// QueryVolumesSupportedForDiffAreas (opnum 5, §3.1.4.4.3): a volume's
// storage can only be the volume itself.
func (x *diffMgmt) QueryVolumesSupportedForDiffAreas(ctx context.Context, req *diffmgmt.QueryVolumesSupportedForDiffAreasRequest) (*diffmgmt.QueryVolumesSupportedForDiffAreasResponse, error) {
	resp := &diffmgmt.QueryVolumesSupportedForDiffAreasResponse{That: &dcom.ORPCThat{}}
	if req.OriginalVolumeName == "" {
		resp.Return = hr32(eInvalidArg)
		return resp, nil
	}
	var items []*scmp.ManagementObjectProperty
	if v, err := x.s.m.Lookup(ctx, req.OriginalVolumeName); err == nil {
		free, total := Space(v)
		items = append(items, &scmp.ManagementObjectProperty{Type: scmp.ManagementObjectTypeDiffVolume, Object: &scmp.ManagementObjectUnion{
			Value: &scmp.ManagementObjectUnion_DiffVolume{DiffVolume: &scmp.DiffVolumeProperty{
				VolumeName: v.Name, VolumeDisplayName: v.Display, VolumeFreeSpace: free, VolumeTotalSpace: total}}}})
	}
	ip, err := x.s.exportMgmtEnum(ctx, &cursor[*scmp.ManagementObjectProperty]{items: items})
	if err != nil {
		return nil, err
	}
	resp.Enum = (*scmp.EnumManagementObject)(ip)
	return resp, nil
}

// diffAreaEnum lists the associations whose original (for) or storage (on)
// volume is name.
func (x *diffMgmt) diffAreaEnum(ctx context.Context, name string) (*scmp.EnumManagementObject, uint32, error) {
	if name == "" {
		return nil, eInvalidArg, nil
	}
	var items []*scmp.ManagementObjectProperty
	if v, err := x.s.m.Lookup(ctx, name); err == nil {
		das, err := x.s.m.DiffAreas(ctx)
		if err != nil {
			rpc.Logger(ctx).WithError(err).Warn("scmp: listing storage associations failed")
			return nil, eUnexpected, nil
		}
		for _, da := range das {
			if da.Volume.GUID != v.GUID {
				continue
			}
			items = append(items, &scmp.ManagementObjectProperty{Type: scmp.ManagementObjectTypeDiffArea, Object: &scmp.ManagementObjectUnion{
				Value: &scmp.ManagementObjectUnion_DiffArea{DiffArea: &scmp.DiffAreaProperty{
					VolumeName: da.Volume.Name, DiffAreaVolumeName: da.Volume.Name,
					MaximumDiffSpace: da.MaxBytes, AllocatedDiffSpace: da.Used, UsedDiffSpace: da.Used}}}})
		}
	}
	ip, err := x.s.exportMgmtEnum(ctx, &cursor[*scmp.ManagementObjectProperty]{items: items})
	if err != nil {
		return nil, 0, err
	}
	return (*scmp.EnumManagementObject)(ip), sOK, nil
}

// QueryDiffAreasForVolume (opnum 6, §3.1.4.4.4).
func (x *diffMgmt) QueryDiffAreasForVolume(ctx context.Context, req *diffmgmt.QueryDiffAreasForVolumeRequest) (*diffmgmt.QueryDiffAreasForVolumeResponse, error) {
	e, hr, err := x.diffAreaEnum(ctx, req.VolumeName)
	if err != nil {
		return nil, err
	}
	return &diffmgmt.QueryDiffAreasForVolumeResponse{That: &dcom.ORPCThat{}, Enum: e, Return: hr32(hr)}, nil
}

// QueryDiffAreasOnVolume (opnum 7, §3.1.4.4.5).
func (x *diffMgmt) QueryDiffAreasOnVolume(ctx context.Context, req *diffmgmt.QueryDiffAreasOnVolumeRequest) (*diffmgmt.QueryDiffAreasOnVolumeResponse, error) {
	e, hr, err := x.diffAreaEnum(ctx, req.VolumeName)
	if err != nil {
		return nil, err
	}
	return &diffmgmt.QueryDiffAreasOnVolumeResponse{That: &dcom.ORPCThat{}, Enum: e, Return: hr32(hr)}, nil
}
