package msdtyp

import (
	"context"
	"strings"
	"unicode/utf16"

	"github.com/oiweiwei/go-msrpc/ndr"
)

// WriteWString writes s as the referent of a [string] wchar_t* (LPWSTR): a
// conformant varying array of UTF-16 code units ending in a NUL, with
// max_count and actual_count in code units (C706 §14.3.4, NDR strings).
//
// go-msrpc v1.5.2's ndr.WriteUTF16NString, which its generated stubs call,
// counts the UTF-8 bytes of s instead (ndr.UTF16NLen), so a string with any
// non-ASCII character goes out declaring more code units than it carries
// and the reader fails with bad stub data (a share named "Données" or
// "資料"). The FSRVP client's requests and the server's responses that carry
// names are written with this function instead; reading is unaffected.
//
// As in C, s ends at its first NUL.
func WriteWString(_ context.Context, w ndr.Writer, s string) error {
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	units := utf16.Encode([]rune(s))
	n := uint64(len(units)) + 1
	for _, size := range []uint64{n, 0, n} { // max_count, offset, actual_count
		if err := w.WriteSize(size); err != nil {
			return err
		}
	}
	for _, u := range units {
		if err := w.WriteData(u); err != nil {
			return err
		}
	}
	return w.WriteData(uint16(0))
}

// WString is a marshaler of s with WriteWString, for a pointer's referent
// (ndr.Writer.WritePointer).
func WString(s string) ndr.Marshaler {
	return ndr.MarshalNDRFunc(func(ctx context.Context, w ndr.Writer) error { return WriteWString(ctx, w, s) })
}
