package client

import (
	"encoding/binary"

	"github.com/google/uuid"
	"github.com/oiweiwei/go-msrpc/msrpc/dtyp"
)

// guidToDTYP converts a uuid.UUID (RFC 4122 byte order, i.e. the order of its
// string form) to a dtyp.GUID (Data1..Data3 as integers, Data4 as bytes), so
// that both print the same string.
func guidToDTYP(u uuid.UUID) *dtyp.GUID {
	return &dtyp.GUID{
		Data1: binary.BigEndian.Uint32(u[0:4]),
		Data2: binary.BigEndian.Uint16(u[4:6]),
		Data3: binary.BigEndian.Uint16(u[6:8]),
		Data4: append([]byte(nil), u[8:16]...),
	}
}

// dtypToGUID is the inverse of guidToDTYP. A nil GUID or a short Data4 gives
// the corresponding zero bytes.
func dtypToGUID(g *dtyp.GUID) uuid.UUID {
	var u uuid.UUID
	if g == nil {
		return u
	}
	binary.BigEndian.PutUint32(u[0:4], g.Data1)
	binary.BigEndian.PutUint16(u[4:6], g.Data2)
	binary.BigEndian.PutUint16(u[6:8], g.Data3)
	copy(u[8:16], g.Data4)
	return u
}
