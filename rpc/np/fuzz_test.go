package np

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"testing"
)

// FuzzHandshake feeds arbitrary bytes to the request decoder, both as a
// blob and through ReadRequest's length framing. It must never panic,
// must fail or return a request whose session converts without panicking,
// and must not allocate beyond a small multiple of the input.
func FuzzHandshake(f *testing.F) {
	for _, file := range captures(f) {
		f.Add(readHex(f, file))
	}
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 12, 'N', 'P', 'A', 'M', 8, 0, 0, 0, 8, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > MaxRequestSize {
			return
		}
		// Fix the length word up so that the fuzzer reaches the body.
		fixed := bytes.Clone(b)
		if len(fixed) >= 4 {
			binary.BigEndian.PutUint32(fixed, uint32(len(fixed)-4))
		}
		for _, in := range [][]byte{b, fixed} {
			q, err := DecodeRequest(in)
			if err != nil {
				continue
			}
			if len(q.SIDs)*8 > len(in) || len(q.Groups)*8 > len(in) || len(q.SessionKey) > len(in) {
				t.Fatalf("decoded more than the input holds: %d SIDs, %d groups", len(q.SIDs), len(q.Groups))
			}
			s, err := q.Session()
			if err == nil {
				s.IsBackupCapable("S-1-5-32-544")
			}
			if _, err := ReadRequest(bytes.NewReader(in)); err != nil {
				t.Fatalf("ReadRequest rejects what DecodeRequest accepts: %v", err)
			}
			rep := EncodeReply(q.Level, FileTypeMessageMode)
			if len(rep) != 36 {
				t.Fatal("reply length")
			}
		}
	})
}

// Decoding allocates in proportion to the input, whatever counts the
// input claims.
func TestDecodeAllocationBounded(t *testing.T) {
	blob := readHex(t, captures(t)[0])
	for _, off := range []int{200, 204, 364, 384, 132, 156} {
		b := bytes.Clone(blob)
		binary.LittleEndian.PutUint32(b[off:], 0xfffffff0)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if _, err := DecodeRequest(b); err == nil {
			t.Errorf("count at %d: decoded", off)
		}
		runtime.ReadMemStats(&after)
		if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
			t.Errorf("count at %d: %d bytes allocated", off, n)
		}
	}
}
