package rpc_test

import (
	"encoding/binary"
	"runtime"
	"testing"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	"github.com/oiweiwei/go-msrpc/msrpc/epm/epm/v3"

	"github.com/fsrvpd/fsrvpd/rpc"
	rpcepm "github.com/fsrvpd/fsrvpd/rpc/epm"
)

// TestWireHugeSizeLabel sends requests whose size labels claim billions of
// elements in a few octets: a top-level string (IsPathSupported) in NDR20
// and NDR64, and a conformant array behind an embedded pointer (ept_map's
// tower). Each must end in a bad-stub-data fault without the server
// allocating anything near the claimed size, and the connection must stay
// usable.
func TestWireHugeSizeLabel(t *testing.T) {
	s := newServer(&fakeFSRVP{})
	s.Register(epm.EpmSyntaxV3_0, rpcepm.New().Handle())
	addr, _ := startTCP(t, s)
	c := dialRaw(t, "tcp", addr)
	c.bind(0, 5840,
		rawCtx{0, fsrvpSyntax, []*dcerpc.SyntaxID{ndr20}},
		rawCtx{1, fsrvpSyntax, []*dcerpc.SyntaxID{ndr64}},
		rawCtx{2, epm.EpmSyntaxV3_0, []*dcerpc.SyntaxID{ndr20}})

	le32 := binary.LittleEndian.AppendUint32
	le64 := binary.LittleEndian.AppendUint64
	str20 := le32(le32(le32(nil, 0x7fffffff), 0), 0x7fffffff) // max_count, offset, actual_count
	str20 = append(str20, 'a', 0, 0, 0)
	str64 := le64(le64(le64(nil, 1<<62), 0), 1<<62)
	str64 = append(str64, 'a', 0, 0, 0, 0, 0, 0, 0)
	var mapReq []byte
	mapReq = le32(mapReq, 0)                     // object: NULL
	mapReq = le32(mapReq, 0x20000)               // map_tower: referent, read right after it
	mapReq = le32(mapReq, 0x7ffffff0)            // twr_t: max_count
	mapReq = le32(mapReq, 0x7ffffff0)            // tower_length
	mapReq = append(mapReq, 1, 2, 3, 4)          // tower octets
	mapReq = append(mapReq, make([]byte, 20)...) // entry_handle
	mapReq = le32(mapReq, 4)                     // max_towers

	for i, tc := range []struct {
		name         string
		ctxID, opnum uint16
		stub         []byte
	}{
		{"StringNDR20", 0, 8, str20},
		{"StringNDR64", 1, 8, str64},
		{"EmbeddedPointerNDR20", 2, 3, mapReq},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, status, _ := c.call(uint32(10+i), tc.ctxID, tc.opnum, tc.stub, 1000)
			runtime.ReadMemStats(&after)
			if status != rpc.StatusBadStubData {
				t.Errorf("status %#x, want %#x (bad stub data)", status, rpc.StatusBadStubData)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
				t.Errorf("the server allocated %d MiB for a %d-octet request", grew>>20, len(tc.stub))
			}
		})
	}
	if resp, status, _ := c.call(99, 0, 0, nil, 1000); status != 0 || len(resp) != len(versionStub) {
		t.Errorf("call after the refused requests: status %#x", status)
	}
}
