package msdtyp

import (
	"testing"

	"github.com/google/uuid"
	"github.com/oiweiwei/go-msrpc/msrpc/dtyp"
)

func TestGUIDRoundTrip(t *testing.T) {
	u := uuid.MustParse("a8e0653c-2744-4389-a61d-7373df8b2292")
	g := GUID(u)
	if g.Data1 != 0xa8e0653c || g.Data2 != 0x2744 || g.Data3 != 0x4389 || string(g.Data4) != "\xa6\x1d\x73\x73\xdf\x8b\x22\x92" {
		t.Fatalf("GUID(%s) = %+v", u, g)
	}
	if g.String() != u.String() {
		t.Errorf("dtyp string %q != uuid string %q", g.String(), u.String())
	}
	if back := UUID(g); back != u {
		t.Errorf("round trip: %s != %s", back, u)
	}
	// Same layout as go-msrpc's own midl UUID conversion.
	if m := dtyp.GUIDFromUUID(g.UUID()); !m.Equal(g) {
		t.Errorf("go-msrpc conversion disagrees: %v vs %v", m, g)
	}
	for i := 0; i < 100; i++ {
		u := uuid.New()
		if back := UUID(GUID(u)); back != u {
			t.Fatalf("round trip %s -> %s", u, back)
		}
	}
	if UUID(nil) != uuid.Nil {
		t.Error("nil GUID should map to uuid.Nil")
	}
	if UUID(&dtyp.GUID{Data1: 1, Data4: []byte{1}}) != uuid.MustParse("00000001-0000-0000-0100-000000000000") {
		t.Error("short Data4 should be zero-padded")
	}
}
