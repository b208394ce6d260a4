package client

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"strconv"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	"github.com/oiweiwei/go-msrpc/msrpc/dcetypes"
	"github.com/oiweiwei/go-msrpc/msrpc/dtyp"
	epm "github.com/oiweiwei/go-msrpc/msrpc/epm/epm/v3"
	"github.com/sirupsen/logrus"
)

// DefaultEndpointMapperPort is the well-known port of the DCE/RPC endpoint
// mapper.
const DefaultEndpointMapperPort = "135"

// eptStatusOK is the ept_map status for success; anything else (for example
// EPT_S_NOT_REGISTERED, 0x16c9a0d6) is a failure.
const eptStatusOK = 0

// endpointMapper implements dcerpc.EndpointMapper by calling ept_map on an
// endpoint mapper at a configurable address. go-msrpc's own mapper
// (epm.NewMapper) always dials the well-known port 135, while fsrvpd's -epm
// flag may move the endpoint mapper elsewhere.
type endpointMapper struct {
	addr    string // host:port of the endpoint mapper
	host    string // FSRVP server host, put into the returned bindings
	opts    []dcerpc.Option
	log     *logrus.Entry
	dialCtx func(context.Context) (context.Context, context.CancelFunc)
}

var _ dcerpc.EndpointMapper = (*endpointMapper)(nil)

// Map asks the endpoint mapper for the ncacn_ip_tcp endpoint of b's syntax.
func (m *endpointMapper) Map(ctx context.Context, b *dcerpc.Binding) ([]dcerpc.StringBinding, error) {
	ctx, cancel := m.dialCtx(ctx)
	defer cancel()

	host, port, err := net.SplitHostPort(m.addr)
	if err != nil {
		return nil, fmt.Errorf("endpoint mapper %q: %w", m.addr, err)
	}
	epmBinding := Target{Host: host, Port: port}.Binding()
	m.log.WithField("epm", m.addr).Debug("ept_map: dialing endpoint mapper")
	cc, err := dcerpc.Dial(ctx, epmBinding, m.opts...)
	if err != nil {
		return nil, fmt.Errorf("endpoint mapper %s: %w", m.addr, err)
	}
	defer cc.Close(context.WithoutCancel(ctx))
	cli, err := epm.NewEpmClient(ctx, cc, dcerpc.WithInsecure())
	if err != nil {
		return nil, fmt.Errorf("endpoint mapper %s: %w", m.addr, err)
	}
	resp, err := cli.Map(ctx, &epm.MapRequest{
		Object:      &dtyp.GUID{},
		MapTower:    mapTower(&b.SyntaxID),
		EntryHandle: &epm.LookupHandle{},
		MaxTowers:   4,
	})
	if err != nil {
		return nil, fmt.Errorf("endpoint mapper %s: ept_map: %w", m.addr, err)
	}
	if resp.Status != eptStatusOK {
		return nil, fmt.Errorf("endpoint mapper %s: ept_map: status 0x%08x (interface %s not registered?)", m.addr, resp.Status, b.SyntaxID.IfUUID)
	}
	var out []dcerpc.StringBinding
	for _, tw := range resp.Towers {
		if tw == nil {
			continue
		}
		sb := tw.Binding().StringBinding
		if sb.ProtocolSequence != dcerpc.ProtocolSequenceIPTCP || sb.Endpoint == "" {
			continue
		}
		// Dial the host we were asked to use, whatever address the server
		// registered (often 0.0.0.0 or an address we cannot reach).
		sb.NetworkAddress = m.host
		out = append(out, sb)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("endpoint mapper %s: ept_map returned no ncacn_ip_tcp endpoint for %s", m.addr, b.SyntaxID.IfUUID)
	}
	m.log.WithField("epm", m.addr).WithField("binding", out[0].String()).Debug("ept_map: resolved")
	return out, nil
}

// mapTower builds the ept_map query tower for syntax over ncacn_ip_tcp with
// NDR 2.0: interface, transfer syntax, RPC connection-oriented, TCP port 0,
// IP 0.0.0.0.
func mapTower(syntax *dcerpc.SyntaxID) *dcetypes.Tower {
	le16 := func(v uint16) []byte { b := make([]byte, 2); binary.LittleEndian.PutUint16(b, v); return b }
	return dcetypes.FloorsToTower([]*dcetypes.Floor{
		{Protocol: uint8(dcetypes.ProtocolUUID), UUID: syntax.IfUUID, VersionMajor: syntax.IfVersionMajor, Data: le16(syntax.IfVersionMinor)},
		{Protocol: uint8(dcetypes.ProtocolUUID), UUID: dcerpc.TransferNDRSyntaxV2_0.IfUUID, VersionMajor: dcerpc.TransferNDRSyntaxV2_0.IfVersionMajor, Data: le16(dcerpc.TransferNDRSyntaxV2_0.IfVersionMinor)},
		{Protocol: uint8(dcetypes.ProtocolRPC_CO), Data: le16(0)},
		{Protocol: uint8(dcetypes.ProtocolTCP), Data: []byte{0, 0}},
		{Protocol: uint8(dcetypes.ProtocolIP), Data: []byte{0, 0, 0, 0}},
	})
}

// epmAddr returns the endpoint mapper address for host: addr if set (a port
// alone, "host:port" or a host alone), else host:135.
func epmAddr(host, addr string) (string, error) {
	if addr == "" {
		return net.JoinHostPort(host, DefaultEndpointMapperPort), nil
	}
	if _, err := strconv.ParseUint(addr, 10, 16); err == nil {
		return net.JoinHostPort(host, addr), nil
	}
	t, err := ParseTarget(addr)
	if err != nil {
		return "", fmt.Errorf("endpoint mapper: %w", err)
	}
	if t.Port == "" {
		t.Port = DefaultEndpointMapperPort
	}
	return net.JoinHostPort(t.Host, t.Port), nil
}
