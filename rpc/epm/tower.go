package epm

// tower.go: protocol towers (C706 Appendix L; MS-RPCE §2.2.1.2.1). A tower
// is a count of floors, each a left-hand side (protocol identifier, plus
// UUID and major version for syntax floors) and a right-hand side (address
// data), all lengths little-endian. The map tower comes from the client,
// so it is parsed here with bounds checks rather than with go-msrpc's
// Tower.Floors, which trusts the lengths.

import (
	"encoding/binary"
	"net"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	"github.com/oiweiwei/go-msrpc/midl/uuid"
	"github.com/oiweiwei/go-msrpc/msrpc/dcetypes"
)

// Floor protocol identifiers used here.
const (
	protoUUID   = 0x0d
	protoRPCCO  = 0x0b // connection-oriented RPC
	protoTCP    = 0x07
	protoIP     = 0x09
	maxFloors   = 8
	syntaxLHS   = 1 + 16 + 2
	minorRHSLen = 2
)

// mapQuery is what an ept_map tower asks for.
type mapQuery struct {
	iface, transfer dcerpc.SyntaxID
}

// parseMapTower decodes the floors of an ept_map tower for ncacn_ip_tcp:
// interface, transfer syntax, RPC connection-oriented, and TCP if present.
func parseMapTower(b []byte) (mapQuery, bool) {
	var q mapQuery
	floors, ok := splitFloors(b)
	if !ok || len(floors) < 3 {
		return q, false
	}
	if !syntaxFloor(floors[0], &q.iface) || !syntaxFloor(floors[1], &q.transfer) {
		return q, false
	}
	if len(floors[2].lhs) != 1 || floors[2].lhs[0] != protoRPCCO {
		return q, false
	}
	if len(floors) > 3 && (len(floors[3].lhs) != 1 || floors[3].lhs[0] != protoTCP) {
		return q, false
	}
	if !q.transfer.Is(dcerpc.TransferNDRSyntaxV2_0) && !q.transfer.Is(dcerpc.TransferNDR64SyntaxV1_0) {
		return q, false
	}
	return q, true
}

type rawFloor struct{ lhs, rhs []byte }

func splitFloors(b []byte) ([]rawFloor, bool) {
	if len(b) < 2 {
		return nil, false
	}
	n := int(binary.LittleEndian.Uint16(b))
	if n > maxFloors {
		return nil, false
	}
	b = b[2:]
	floors := make([]rawFloor, 0, n)
	for i := 0; i < n; i++ {
		var f rawFloor
		for _, side := range []*[]byte{&f.lhs, &f.rhs} {
			if len(b) < 2 {
				return nil, false
			}
			l := int(binary.LittleEndian.Uint16(b))
			if len(b) < 2+l {
				return nil, false
			}
			*side, b = b[2:2+l], b[2+l:]
		}
		floors = append(floors, f)
	}
	return floors, true
}

// syntaxFloor decodes a UUID floor: lhs 0x0d, UUID, major; rhs minor.
func syntaxFloor(f rawFloor, s *dcerpc.SyntaxID) bool {
	if len(f.lhs) != syntaxLHS || f.lhs[0] != protoUUID || len(f.rhs) != minorRHSLen {
		return false
	}
	s.IfUUID = &uuid.UUID{}
	if err := s.IfUUID.DecodeBinary(f.lhs[1:17]); err != nil {
		return false
	}
	s.IfVersionMajor = binary.LittleEndian.Uint16(f.lhs[17:])
	s.IfVersionMinor = binary.LittleEndian.Uint16(f.rhs)
	return true
}

// tower builds the five-floor ncacn_ip_tcp tower for e.
func tower(e *Entry, transfer *dcerpc.SyntaxID, ip net.IP) *dcetypes.Tower {
	minor := func(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
	return dcetypes.FloorsToTower([]*dcetypes.Floor{
		{Protocol: protoUUID, UUID: e.Syntax.IfUUID, VersionMajor: e.Syntax.IfVersionMajor, Data: minor(e.Syntax.IfVersionMinor)},
		{Protocol: protoUUID, UUID: transfer.IfUUID, VersionMajor: transfer.IfVersionMajor, Data: minor(transfer.IfVersionMinor)},
		{Protocol: protoRPCCO, Data: minor(0)},
		{Protocol: protoTCP, Data: binary.BigEndian.AppendUint16(nil, uint16(e.Port))}, // port in network order
		{Protocol: protoIP, Data: ip.To4()},
	})
}
