package msdtyp

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/oiweiwei/go-msrpc/ndr"
)

// WriteWString's counts are UTF-16 code units, for NDR20 and NDR64, and
// go-msrpc's reader reads back the string; go-msrpc's own writer gets the
// counts wrong for the non-ASCII ones (the reason WriteWString exists).
func TestWriteWString(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		in, out string
		units   uint64 // with the NUL
	}{
		{`\\FSRVPD\share1\`, `\\FSRVPD\share1\`, 17},
		{`\\FSRVPD\Données\`, `\\FSRVPD\Données\`, 18},
		{`\\FSRVPD\資料@{x}`, `\\FSRVPD\資料@{x}`, 16},
		{"\\\\h\\\U0001F4BE", "\\\\h\\\U0001F4BE", 7}, // a surrogate pair: two units
		{"", "", 1},
		{"ab\x00cd", "ab", 3},
	} {
		for _, ndr64 := range []bool{false, true} {
			codec, size := ndr.NDR20, 4
			if ndr64 {
				codec, size = ndr.NDR64, 8
			}
			w := codec(nil, ndr.DefaultDataRepresentation)
			if err := WriteWString(ctx, w, c.in); err != nil {
				t.Fatal(err)
			}
			b := w.Bytes()
			count := func(off int) uint64 {
				if size == 8 {
					return binary.LittleEndian.Uint64(b[off:])
				}
				return uint64(binary.LittleEndian.Uint32(b[off:]))
			}
			if count(0) != c.units || count(size) != 0 || count(2*size) != c.units || len(b) != 3*size+2*int(c.units) {
				t.Errorf("%q ndr64=%v: counts %d/%d/%d, %d bytes, want %d units", c.in, ndr64, count(0), count(size), count(2*size), len(b), c.units)
			}
			var got string
			if err := ndr.ReadUTF16NString(ctx, codec(b, ndr.DefaultDataRepresentation), &got); err != nil || got != c.out {
				t.Errorf("%q ndr64=%v: read back %q, %v", c.in, ndr64, got, err)
			}
		}
	}
	// What the workaround is for.
	if ndr.UTF16NLen(`\\FSRVPD\Données\`) == 18 {
		t.Log("go-msrpc counts UTF-16 code units now: WriteWString may be retired")
	}
}
