// Package msdtyp converts between the MS-DTYP wire types of go-msrpc's
// dtyp package and Go's: GUID (MS-DTYP §2.3.4) and uuid.UUID, FILETIME
// (§2.3.3) and time.Time. The FSRVP and SCMP servers and clients all use
// it, so a GUID or a time reads the same on both sides.
package msdtyp

import (
	"encoding/binary"
	"time"

	"github.com/google/uuid"
	"github.com/oiweiwei/go-msrpc/msrpc/dtyp"
)

// GUID converts u (RFC 4122 byte order, the order of its string form) to
// a dtyp.GUID (Data1..Data3 as integers, Data4 as bytes), so that both
// print the same string.
func GUID(u uuid.UUID) *dtyp.GUID {
	return &dtyp.GUID{
		Data1: binary.BigEndian.Uint32(u[0:4]),
		Data2: binary.BigEndian.Uint16(u[4:6]),
		Data3: binary.BigEndian.Uint16(u[6:8]),
		Data4: append([]byte(nil), u[8:16]...),
	}
}

// UUID is the inverse of GUID. A NULL pointer gives uuid.Nil, a short
// Data4 (never the case for a GUID decoded from NDR) zero bytes in its
// place.
func UUID(g *dtyp.GUID) uuid.UUID {
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

// unixOffset is the number of 100 ns intervals between 1601-01-01 and
// 1970-01-01 (UTC).
const unixOffset = 116444736000000000

// Time converts a FILETIME (100 ns intervals since 1601-01-01 UTC) to a
// UTC time.Time. Zero maps to the zero time.Time.
func Time(ft int64) time.Time {
	if ft == 0 {
		return time.Time{}
	}
	d := ft - unixOffset
	return time.Unix(d/1e7, (d%1e7)*100).UTC()
}

// Filetime is the inverse of Time, truncating to 100 ns. The zero
// time.Time maps to 0.
func Filetime(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()*1e7 + int64(t.Nanosecond()/100) + unixOffset
}
