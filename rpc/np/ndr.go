package np

// ndr.go: a bounded NDR32 little-endian reader for the handful of types in
// Samba's named_pipe_auth_req. Offsets and alignment are relative to the
// start of the blob (the big-endian length word included), as Samba's
// ndr_pull does. Every length read from the wire is checked against the
// bytes left before anything is allocated; the first error sticks and
// every later read returns zero values.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrMalformed wraps every decoding error of a handshake request.
var ErrMalformed = errors.New("np: malformed named_pipe_auth_req")

// Bounds for wire counts. They are far above anything smbd sends and only
// keep a hostile blob from making us allocate much.
const (
	maxSubAuths = 15   // dom_sid: [range(0,15)] num_auths
	maxStrLen   = 4096 // one [string] pointer target, NUL included
)

type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: offset %d: %s", ErrMalformed, r.off, fmt.Sprintf(format, args...))
	}
}

func (r *reader) remaining() int { return len(r.b) - r.off }

// align skips padding to a multiple of n relative to offset 0.
func (r *reader) align(n int) {
	if r.err != nil {
		return
	}
	pad := (n - r.off%n) % n
	if pad > r.remaining() {
		r.fail("short padding")
		return
	}
	r.off += pad
}

// take returns the next n bytes, or nil after an error.
func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > r.remaining() {
		r.fail("%s: need %d bytes, have %d", what, n, r.remaining())
		return nil
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

func (r *reader) u8(what string) uint8 {
	p := r.take(1, what)
	if p == nil {
		return 0
	}
	return p[0]
}

func (r *reader) u16(what string) uint16 {
	r.align(2)
	p := r.take(2, what)
	if p == nil {
		return 0
	}
	return binary.LittleEndian.Uint16(p)
}

func (r *reader) u32(what string) uint32 {
	r.align(4)
	p := r.take(4, what)
	if p == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(p)
}

// u64 reads an 8-byte integer aligned to al: 8 for hyper, 4 for NTTIME and
// udlong.
func (r *reader) u64(al int, what string) uint64 {
	r.align(al)
	p := r.take(8, what)
	if p == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(p)
}

// ptr reads a unique pointer's referent id and reports whether it is
// non-NULL.
func (r *reader) ptr(what string) bool { return r.u32(what) != 0 }

// count reads a u32 count (a conformance or a size field) that announces
// n elements of at least minSize bytes each; more than the bytes left can
// hold is an error.
func (r *reader) count(minSize int, what string) int {
	n := r.u32(what)
	if r.err != nil {
		return 0
	}
	if uint64(n)*uint64(minSize) > uint64(r.remaining()) {
		r.fail("%s: count %d exceeds the %d bytes left", what, n, r.remaining())
		return 0
	}
	return int(n)
}

// conformance reads a conformant array's max_count and checks it against
// the size field that governs the array.
func (r *reader) conformance(want int, what string) {
	if mc := r.u32(what + " max_count"); r.err == nil && int64(mc) != int64(want) {
		r.fail("%s: max_count %d != size %d", what, mc, want)
	}
}

// str reads a [string] uint8* target: max_count, offset, actual_count,
// then actual_count bytes ending in one NUL. Embedded NULs are an error;
// invalid UTF-8 is replaced, never trusted.
func (r *reader) str(what string) string {
	r.align(4)
	maxCount := r.u32(what + " max_count")
	offset := r.u32(what + " offset")
	actual := r.u32(what + " actual_count")
	if r.err != nil {
		return ""
	}
	switch {
	case offset != 0:
		r.fail("%s: offset %d", what, offset)
	case actual == 0 || actual > maxCount:
		r.fail("%s: actual_count %d, max_count %d", what, actual, maxCount)
	case actual > maxStrLen:
		r.fail("%s: length %d over %d", what, actual, maxStrLen)
	}
	p := r.take(int(actual), what)
	if p == nil {
		return ""
	}
	if p[len(p)-1] != 0 || bytes.IndexByte(p[:len(p)-1], 0) >= 0 {
		r.fail("%s: not one NUL-terminated string", what)
		return ""
	}
	s := string(p[:len(p)-1])
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s
}

// blob reads a DATA_BLOB: u32 length and the bytes. The result aliases the
// input.
func (r *reader) blob(what string) []byte {
	n := r.count(1, what+" length")
	return r.take(n, what)
}

// sid reads a dom_sid: revision, num_auths (≤ 15), the 48-bit big-endian
// identifier authority and num_auths little-endian sub-authorities. It
// returns the S-R-I-S-S... string form.
func (r *reader) sid(what string) string {
	r.align(4)
	rev := r.u8(what + " revision")
	n := int(r.u8(what + " num_auths"))
	if r.err == nil && (rev != 1 || n > maxSubAuths) {
		r.fail("%s: revision %d, num_auths %d", what, rev, n)
	}
	ia := r.take(6, what+" authority")
	sub := r.take(4*n, what+" sub_auths")
	if r.err != nil {
		return ""
	}
	var auth uint64
	for _, b := range ia {
		auth = auth<<8 | uint64(b)
	}
	var sb strings.Builder
	sb.WriteString("S-1-")
	if auth >= 1<<32 {
		// MS-DTYP §2.4.2.1: authorities that do not fit 32 bits in hex.
		sb.WriteString("0x" + strings.ToUpper(strconv.FormatUint(auth, 16)))
	} else {
		sb.WriteString(strconv.FormatUint(auth, 10))
	}
	for i := range n {
		sb.WriteByte('-')
		sb.WriteString(strconv.FormatUint(uint64(binary.LittleEndian.Uint32(sub[4*i:])), 10))
	}
	return sb.String()
}

// guid reads a GUID (4-aligned) into its string form.
func (r *reader) guid(what string) string {
	r.align(4)
	p := r.take(16, what)
	if p == nil {
		return ""
	}
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", binary.LittleEndian.Uint32(p), binary.LittleEndian.Uint16(p[4:]),
		binary.LittleEndian.Uint16(p[6:]), p[8:10], p[10:16])
}
