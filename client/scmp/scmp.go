// Package scmp is an MS-SCMP client built on go-msrpc's DCOM client stubs
// (IObjectExporter, IRemoteSCMActivator, the SCMP client set): it
// activates CLSID_VssSnapshotMgmt on a server's resolver (TCP 135), then
// lists volumes, shadow copies and storage associations and manages the
// latter, as the Shadow Copies tab of Computer Management does (MS-SCMP
// §4). It shares no code with the server side (rpc/dcom, server/scmp).
package scmp

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/oiweiwei/go-msrpc/dcerpc"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom/iobjectexporter/v0"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom/iremotescmactivator/v0"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom/iremunknown/v0"
	gscmp "github.com/oiweiwei/go-msrpc/msrpc/dcom/scmp"
	scmpclient "github.com/oiweiwei/go-msrpc/msrpc/dcom/scmp/client"
	diffmgmt "github.com/oiweiwei/go-msrpc/msrpc/dcom/scmp/ivssdifferentialsoftwaresnapshotmgmt/v0"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom/scmp/ivssenummgmtobject/v0"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom/scmp/ivssenumobject/v0"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom/scmp/ivsssnapshotmgmt/v0"
	"github.com/oiweiwei/go-msrpc/msrpc/dtyp"
	"github.com/oiweiwei/go-msrpc/ssp/gssapi"

	"github.com/fsrvpd/fsrvpd/rpc/msdtyp"
)

// Identifiers (VSS SDK vsmgmt.h; MS-SCMP §1.9).
var (
	// CLSIDSnapshotMgmt is CLSID_VssSnapshotMgmt.
	CLSIDSnapshotMgmt = &dcom.ClassID{Data1: 0x0b5a2c52, Data2: 0x3eb9, Data3: 0x470a, Data4: []byte{0x96, 0xe2, 0x6c, 0x6d, 0x45, 0x70, 0xe4, 0x0f}}
	// SystemProvider is VSS_SWPRV_ProviderId.
	SystemProvider = uuid.MustParse("b5946137-7b9f-4925-af80-51abd60b20d5")
)

// HRESULT is a failing SCMP or DCOM return value.
type HRESULT uint32

var names = map[HRESULT]string{
	0x80070005: "E_ACCESSDENIED", 0x80070057: "E_INVALIDARG", 0x80004002: "E_NOINTERFACE",
	0x80042304: "VSS_E_PROVIDER_NOT_REGISTERED", 0x80042306: "VSS_E_PROVIDER_VETO", 0x80042308: "VSS_E_OBJECT_NOT_FOUND",
	0x8004230C: "VSS_E_VOLUME_NOT_SUPPORTED", 0x8004230D: "VSS_E_OBJECT_ALREADY_EXISTS", 0x8004231D: "VSS_E_VOLUME_IN_USE",
	0x8004231E: "VSS_E_MAXIMUM_DIFFAREA_ASSOCIATIONS_REACHED", 0x8004231F: "VSS_E_INSUFFICIENT_STORAGE",
	0x80040154: "REGDB_E_CLASSNOTREG", 0x80010108: "RPC_E_DISCONNECTED", 0x80010110: "RPC_E_VERSION_MISMATCH",
}

func (h HRESULT) Error() string {
	if n, ok := names[h]; ok {
		return fmt.Sprintf("%s (0x%08X)", n, uint32(h))
	}
	return fmt.Sprintf("HRESULT 0x%08X", uint32(h))
}

// Options configure Dial.
type Options struct {
	// ResolverPort is the resolver's TCP port; 0 means 135.
	ResolverPort int
	// Timeout bounds the dial and every call; 0 means 60 s.
	Timeout time.Duration
	// Security are the go-msrpc bind options of the authenticated calls
	// (activation and the exporter), e.g. client.Auth.RPCOptions();
	// empty means unauthenticated. ServerAlive2 is always unauthenticated.
	Security []dcerpc.Option
}

// Client is an activated VssSnapshotMgmt object.
type Client struct {
	version   *dcom.COMVersion
	resolver  dcerpc.Conn
	exporter  dcerpc.Conn
	cli       scmpclient.Client
	mgmt      *dcom.IPID
	remUnk    *dcom.IPID
	diff      *dcom.IPID
	held      []*dcom.IPID // references to release at Close
	callTimer time.Duration
	stop      context.CancelFunc
}

// Volume is a VSS_VOLUME_PROP.
type Volume struct {
	Name    string `json:"name"`
	Display string `json:"display_name"`
}

// ShadowCopy is a VSS_SNAPSHOT_PROP.
type ShadowCopy struct {
	ID             uuid.UUID `json:"id"`
	SetID          uuid.UUID `json:"set_id"`
	SetCount       int32     `json:"set_count"`
	DeviceObject   string    `json:"device_object"`
	OriginalVolume string    `json:"original_volume"`
	Machine        string    `json:"machine"`
	Attributes     int32     `json:"attributes"`
	Created        time.Time `json:"created"`
	Provider       uuid.UUID `json:"provider"`
	Status         uint32    `json:"status"`
}

// DiffArea is a VSS_DIFF_AREA_PROP.
type DiffArea struct {
	Volume    string `json:"volume"`
	Storage   string `json:"storage_volume"`
	Maximum   int64  `json:"maximum_bytes"`
	Allocated int64  `json:"allocated_bytes"`
	Used      int64  `json:"used_bytes"`
}

// DiffVolume is a VSS_DIFF_VOLUME_PROP.
type DiffVolume struct {
	Name    string `json:"name"`
	Display string `json:"display_name"`
	Free    int64  `json:"free_bytes"`
	Total   int64  `json:"total_bytes"`
}

func (c *Client) this() *dcom.ORPCThis {
	return &dcom.ORPCThis{Version: c.version, CID: (*dcom.CID)(msdtyp.GUID(uuid.New()))}
}

// check turns a call's outcome into an error: err only when no response
// came back (go-msrpc also returns an error for every non-zero return
// value, which the response carries).
func check(noResp bool, ret func() int32, err error) error {
	if noResp {
		return err
	}
	if hr := ret(); hr != 0 {
		return HRESULT(uint32(hr))
	}
	return nil
}

// Dial activates CLSID_VssSnapshotMgmt on host: ServerAlive2 on the
// resolver (unauthenticated, MS-DCOM §3.2.4.1.1.1), RemoteCreateInstance,
// then a connection to the exporter at the port of its OXID bindings (on
// host: the client never follows a host name the server sends).
func Dial(ctx context.Context, host string, o Options) (_ *Client, err error) {
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	port := o.ResolverPort
	if port == 0 {
		port = 135
	}
	c := &Client{callTimer: o.Timeout}
	// go-msrpc ties a connection's goroutines to the context of its bind:
	// bind with one that lives until Close.
	life, stop := context.WithCancel(context.WithoutCancel(ctx))
	c.stop = stop
	bindCtx := func() context.Context {
		if len(o.Security) > 0 {
			return gssapi.NewSecurityContext(life) // credentials stay out of go-msrpc's global store
		}
		return life
	}
	defer func() {
		if err != nil {
			c.Close(context.Background())
		}
	}()
	c.resolver, err = dcerpc.Dial(ctx, net.JoinHostPort(host, strconv.Itoa(port)), dcerpc.WithTimeout(o.Timeout))
	if err != nil {
		return nil, fmt.Errorf("scmp: dial resolver: %w", err)
	}
	oe, err := iobjectexporter.NewObjectExporterClient(life, c.resolver, dcerpc.WithInsecure())
	if err != nil {
		return nil, fmt.Errorf("scmp: bind IObjectExporter: %w", err)
	}
	alive, err := oe.ServerAlive2(ctx, &iobjectexporter.ServerAlive2Request{})
	if err != nil {
		return nil, fmt.Errorf("scmp: ServerAlive2: %w", err)
	}
	c.version = &dcom.COMVersion{MajorVersion: 5, MinorVersion: min(alive.COMVersion.MinorVersion, 7)}
	act, err := iremotescmactivator.NewRemoteSCMActivatorClient(bindCtx(), c.resolver, secOrInsecure(o.Security)...)
	if err != nil {
		return nil, fmt.Errorf("scmp: bind IRemoteSCMActivator: %w", err)
	}
	props := &dcom.ActivationProperties{DestinationContext: 2, Properties: []dcom.ActivationProperty{
		&dcom.InstantiationInfoData{ClassID: CLSIDSnapshotMgmt, IIDCount: 1, IID: []*dcom.IID{ivsssnapshotmgmt.SnapshotManagementIID},
			ClientCOMVersion: c.version},
		&dcom.SpecialPropertiesData{SessionID: 0xffffffff},
		&dcom.LocationInfoData{},
		&dcom.SecurityInfoData{},
		&dcom.SCMRequestInfoData{RemoteRequest: &dcom.CustomRemoteRequestSCMInfo{ClientImpLevel: 2, RequestedProtocolSequencesCount: 1, RequestedProtocolSequences: []uint16{7}}},
	}}
	in, err := props.ActivationPropertiesIn()
	if err != nil {
		return nil, err
	}
	r, err := act.RemoteCreateInstance(ctx, &iremotescmactivator.RemoteCreateInstanceRequest{ORPCThis: c.this(), ActPropertiesIn: in})
	if err := check(r == nil, func() int32 { return r.Return }, err); err != nil {
		return nil, fmt.Errorf("scmp: activation: %w", err)
	}
	var out dcom.ActivationProperties
	if err := out.Parse(r.ActPropertiesOut); err != nil {
		return nil, fmt.Errorf("scmp: activation reply: %w", err)
	}
	reply, po := out.SCMReplyInfoData(), out.PropertiesOutInfo()
	if reply == nil || reply.RemoteReply == nil || po == nil || len(po.HResults) != 1 || len(po.InterfaceData) != 1 {
		return nil, fmt.Errorf("scmp: activation reply without ScmReplyInfo or PropsOutInfo")
	}
	if po.HResults[0] != 0 {
		return nil, fmt.Errorf("scmp: activation: %w", HRESULT(uint32(po.HResults[0])))
	}
	c.mgmt, c.remUnk = po.InterfaceData[0].IPID(), reply.RemoteReply.IPIDRemoteUnknown
	c.held = append(c.held, c.mgmt)
	eport := ""
	for _, b := range reply.RemoteReply.OXIDBindings.GetStringBindings() {
		if i := strings.LastIndexByte(b.NetworkAddr, '['); i >= 0 && b.TowerID == 7 {
			eport = strings.TrimSuffix(b.NetworkAddr[i+1:], "]")
			break
		}
	}
	if eport == "" {
		return nil, fmt.Errorf("scmp: no ncacn_ip_tcp endpoint in the OXID bindings")
	}
	c.exporter, err = dcerpc.Dial(ctx, net.JoinHostPort(host, eport), dcerpc.WithTimeout(o.Timeout))
	if err != nil {
		return nil, fmt.Errorf("scmp: dial exporter: %w", err)
	}
	c.cli, err = scmpclient.NewClient(bindCtx(), c.exporter, secOrInsecure(o.Security)...)
	if err != nil {
		return nil, fmt.Errorf("scmp: bind: %w", err)
	}
	return c, nil
}

func secOrInsecure(sec []dcerpc.Option) []dcerpc.Option {
	if len(sec) == 0 {
		return []dcerpc.Option{dcerpc.WithInsecure()}
	}
	return sec
}

// Raw returns go-msrpc's SCMP client set on the exporter connection and
// the IPID of the activated IVssSnapshotMgmt, for calls this package does
// not wrap (tests of enumerator rules).
func (c *Client) Raw() (scmpclient.Client, *dcom.IPID) { return c.cli, c.mgmt }

// Close releases the references held and closes the connections.
func (c *Client) Close(ctx context.Context) error {
	if c.cli != nil && len(c.held) > 0 {
		refs := make([]*dcom.RemoteInterfaceReference, len(c.held))
		for i, ipid := range c.held {
			refs[i] = &dcom.RemoteInterfaceReference{IPID: ipid, PublicReferencesCount: 5}
		}
		c.cli.RemoteUnknown().IPID(ctx, c.remUnk).RemoteRelease(ctx, &iremunknown.RemoteReleaseRequest{
			This: c.this(), InterfaceReferencesCount: uint16(len(refs)), InterfaceReferences: refs})
		c.held = nil
	}
	for _, cc := range []dcerpc.Conn{c.exporter, c.resolver} {
		if cc != nil {
			cc.Close(ctx)
		}
	}
	c.exporter, c.resolver = nil, nil
	if c.stop != nil {
		c.stop()
	}
	return nil
}

// release drops the 5 references of an enumerator's OBJREF.
func (c *Client) release(ctx context.Context, ipid *dcom.IPID) {
	c.cli.RemoteUnknown().IPID(ctx, c.remUnk).RemoteRelease(ctx, &iremunknown.RemoteReleaseRequest{This: c.this(), InterfaceReferencesCount: 1,
		InterfaceReferences: []*dcom.RemoteInterfaceReference{{IPID: ipid, PublicReferencesCount: 5}}})
}

// batch is how many items Next asks for at a time.
const batch = 16

// drainMgmt reads an IVssEnumMgmtObject to its end (S_FALSE) and releases it.
func (c *Client) drainMgmt(ctx context.Context, ip *dcom.InterfacePointer) ([]*gscmp.ManagementObjectProperty, error) {
	ipid := ip.IPID()
	defer c.release(ctx, ipid)
	e := c.cli.EnumManagementObject().IPID(ctx, ipid)
	var out []*gscmp.ManagementObjectProperty
	for {
		r, err := e.Next(ctx, &ivssenummgmtobject.NextRequest{This: c.this(), Count: batch})
		if r == nil {
			return nil, err
		}
		out = append(out, r.Entries[:min(int(r.Fetched), len(r.Entries))]...)
		switch r.Return {
		case 0:
			continue
		case 1: // S_FALSE: the end
			return out, nil
		default:
			return nil, HRESULT(uint32(r.Return))
		}
	}
}

// Volumes lists the volumes that support shadow copies
// (QueryVolumesSupportedForSnapshots, MS-SCMP §3.1.4.2.2).
func (c *Client) Volumes(ctx context.Context) ([]Volume, error) {
	r, err := c.cli.SnapshotManagement().IPID(ctx, c.mgmt).QueryVolumesSupportedForSnapshots(ctx, &ivsssnapshotmgmt.QueryVolumesSupportedForSnapshotsRequest{
		This: c.this(), ProviderID: (*gscmp.ID)(msdtyp.GUID(SystemProvider)), Context: 0x1D})
	if err := check(r == nil, func() int32 { return r.Return }, err); err != nil {
		return nil, err
	}
	items, err := c.drainMgmt(ctx, r.Enum.InterfacePointer())
	if err != nil {
		return nil, err
	}
	var out []Volume
	for _, it := range items {
		if v, ok := it.Object.GetValue().(*gscmp.VolumeProperty); ok && it.Type == gscmp.ManagementObjectTypeVolume {
			out = append(out, Volume{Name: v.VolumeName, Display: v.VolumeDisplayName})
		}
	}
	return out, nil
}

// fromFileTime converts a FILETIME.
// ShadowCopies lists the shadow copies of a volume (QuerySnapshotsByVolume).
func (c *Client) ShadowCopies(ctx context.Context, volume string) ([]ShadowCopy, error) {
	r, err := c.cli.SnapshotManagement().IPID(ctx, c.mgmt).QuerySnapshotsByVolume(ctx, &ivsssnapshotmgmt.QuerySnapshotsByVolumeRequest{
		This: c.this(), VolumeName: volume, ProviderID: (*gscmp.ID)(msdtyp.GUID(SystemProvider))})
	if err := check(r == nil, func() int32 { return r.Return }, err); err != nil {
		return nil, err
	}
	ipid := r.Enum.InterfacePointer().IPID()
	defer c.release(ctx, ipid)
	e := c.cli.EnumObject().IPID(ctx, ipid)
	var out []ShadowCopy
	for {
		n, err := e.Next(ctx, &ivssenumobject.NextRequest{This: c.this(), Count: batch})
		if n == nil {
			return nil, err
		}
		for _, it := range n.Entries[:min(int(n.Fetched), len(n.Entries))] {
			s, ok := it.Object.GetValue().(*gscmp.SnapshotProperty)
			if !ok || it.Type != gscmp.ObjectTypeSnapshot {
				continue
			}
			out = append(out, ShadowCopy{
				ID: msdtyp.UUID((*dtyp.GUID)(s.SnapshotID)), SetID: msdtyp.UUID((*dtyp.GUID)(s.SnapshotSetID)), SetCount: s.SnapshotsCount,
				DeviceObject: s.SnapshotDeviceObject, OriginalVolume: s.OriginalVolumeName, Machine: s.ServiceMachine,
				Attributes: s.SnapshotAttributes, Created: msdtyp.Time(s.CreationTimestamp),
				Provider: msdtyp.UUID((*dtyp.GUID)(s.ProviderID)), Status: uint32(s.Status),
			})
		}
		switch n.Return {
		case 0:
			continue
		case 1:
			return out, nil
		default:
			return nil, HRESULT(uint32(n.Return))
		}
	}
}

// diffMgmt returns IVssDifferentialSoftwareSnapshotMgmt
// (GetProviderMgmtInterface), once.
func (c *Client) diffMgmt(ctx context.Context) (diffmgmt.DifferentialSoftwareSnapshotManagementClient, error) {
	if c.diff == nil {
		r, err := c.cli.SnapshotManagement().IPID(ctx, c.mgmt).GetProviderManagementInterface(ctx, &ivsssnapshotmgmt.GetProviderManagementInterfaceRequest{
			This: c.this(), ProviderID: (*gscmp.ID)(msdtyp.GUID(SystemProvider)), InterfaceID: diffmgmt.DifferentialSoftwareSnapshotManagementIID})
		if err := check(r == nil, func() int32 { return r.Return }, err); err != nil {
			return nil, err
		}
		c.diff = r.Interface.InterfacePointer().IPID()
		c.held = append(c.held, c.diff)
	}
	return c.cli.DifferentialSoftwareSnapshotManagement().IPID(ctx, c.diff), nil
}

func diffAreas(items []*gscmp.ManagementObjectProperty) []DiffArea {
	var out []DiffArea
	for _, it := range items {
		if d, ok := it.Object.GetValue().(*gscmp.DiffAreaProperty); ok && it.Type == gscmp.ManagementObjectTypeDiffArea {
			out = append(out, DiffArea{Volume: d.VolumeName, Storage: d.DiffAreaVolumeName, Maximum: d.MaximumDiffSpace,
				Allocated: d.AllocatedDiffSpace, Used: d.UsedDiffSpace})
		}
	}
	return out
}

// DiffAreasFor lists the storage associations of an original volume
// (QueryDiffAreasForVolume).
func (c *Client) DiffAreasFor(ctx context.Context, volume string) ([]DiffArea, error) {
	d, err := c.diffMgmt(ctx)
	if err != nil {
		return nil, err
	}
	r, err := d.QueryDiffAreasForVolume(ctx, &diffmgmt.QueryDiffAreasForVolumeRequest{This: c.this(), VolumeName: volume})
	if err := check(r == nil, func() int32 { return r.Return }, err); err != nil {
		return nil, err
	}
	items, err := c.drainMgmt(ctx, r.Enum.InterfacePointer())
	return diffAreas(items), err
}

// DiffAreasOn lists the storage associations stored on a volume
// (QueryDiffAreasOnVolume).
func (c *Client) DiffAreasOn(ctx context.Context, volume string) ([]DiffArea, error) {
	d, err := c.diffMgmt(ctx)
	if err != nil {
		return nil, err
	}
	r, err := d.QueryDiffAreasOnVolume(ctx, &diffmgmt.QueryDiffAreasOnVolumeRequest{This: c.this(), VolumeName: volume})
	if err := check(r == nil, func() int32 { return r.Return }, err); err != nil {
		return nil, err
	}
	items, err := c.drainMgmt(ctx, r.Enum.InterfacePointer())
	return diffAreas(items), err
}

// DiffVolumes lists the volumes that can hold a volume's storage
// (QueryVolumesSupportedForDiffAreas).
func (c *Client) DiffVolumes(ctx context.Context, volume string) ([]DiffVolume, error) {
	d, err := c.diffMgmt(ctx)
	if err != nil {
		return nil, err
	}
	r, err := d.QueryVolumesSupportedForDiffAreas(ctx, &diffmgmt.QueryVolumesSupportedForDiffAreasRequest{This: c.this(), OriginalVolumeName: volume})
	if err := check(r == nil, func() int32 { return r.Return }, err); err != nil {
		return nil, err
	}
	items, err := c.drainMgmt(ctx, r.Enum.InterfacePointer())
	if err != nil {
		return nil, err
	}
	var out []DiffVolume
	for _, it := range items {
		if v, ok := it.Object.GetValue().(*gscmp.DiffVolumeProperty); ok {
			out = append(out, DiffVolume{Name: v.VolumeName, Display: v.VolumeDisplayName, Free: v.VolumeFreeSpace, Total: v.VolumeTotalSpace})
		}
	}
	return out, nil
}

// AddDiffArea creates a storage association (maximum -1: unbounded).
func (c *Client) AddDiffArea(ctx context.Context, volume, storage string, maximum int64) error {
	d, err := c.diffMgmt(ctx)
	if err != nil {
		return err
	}
	r, err := d.AddDiffArea(ctx, &diffmgmt.AddDiffAreaRequest{This: c.this(), VolumeName: volume, DiffAreaVolumeName: storage, MaximumDiffSpace: maximum})
	return check(r == nil, func() int32 { return r.Return }, err)
}

// ChangeDiffAreaMaximumSize resizes a storage association; 0 removes it.
func (c *Client) ChangeDiffAreaMaximumSize(ctx context.Context, volume, storage string, maximum int64) error {
	d, err := c.diffMgmt(ctx)
	if err != nil {
		return err
	}
	r, err := d.ChangeDiffAreaMaximumSize(ctx, &diffmgmt.ChangeDiffAreaMaximumSizeRequest{This: c.this(), VolumeName: volume, DiffAreaVolumeName: storage, MaximumDiffSpace: maximum})
	return check(r == nil, func() int32 { return r.Return }, err)
}
