package rpc

import (
	"context"
	"fmt"

	"github.com/oiweiwei/go-msrpc/ndr"
)

// boundedReader guards go-msrpc's NDR decoder against size labels that
// claim more elements than the request carries.
//
// go-msrpc's generated unmarshalers and string readers allocate the slice
// for a conformant or varying array from the size label before reading a
// single element (ndr.ReadUTF16NString does make([]uint16, actual_count)),
// so a 40-byte request with a count of 0xFFFFFFFF makes the server
// allocate 8 GiB, and an NDR64 count of 2^63 panics in makeslice. Every
// element of an array or string occupies at least one octet of the stub,
// so a size label larger than what is left of the stub can never be valid
// input: ReadSize refuses it, and the call ends in a bad-stub-data fault
// (RPC_X_BAD_STUB_DATA) before anything is allocated.
//
// The decoder reads the referents of embedded pointers through the reader
// it was built with, not through a wrapper around it, so ReadPointer and
// ReadDeferred are implemented here as well (the same rules as go-msrpc's
// NDR20 and NDR64 readers: a 4- or 8-octet referent id, 0 for NULL,
// referents decoded after the structure that holds them) and every level
// of a request passes through ReadSize below.
type boundedReader struct {
	ndr.Reader
	size     int // total stub length
	ndr64    bool
	deferred []ndr.Unmarshaler
	ptrs     map[uint64]ndr.Pointer // NDR20 full-pointer aliasing
}

// NewNDRReader returns the reader the runtime decodes requests with, for
// NDR data a handler finds inside a request (e.g. a DCOM activation blob's
// type-serialized properties): little-endian NDR 2.0 or NDR64 over b, with
// every size label checked against the octets left in b before go-msrpc's
// decoder allocates for it.
func NewNDRReader(b []byte, ndr64 bool) ndr.Reader {
	return newBoundedReader(b, ndr64)
}

func newBoundedReader(stub []byte, ndr64 bool) *boundedReader {
	r := &boundedReader{size: len(stub), ndr64: ndr64}
	if ndr64 {
		r.Reader = ndr.NDR64(stub, drepNDR)
	} else {
		r.Reader = ndr.NDR20(stub, drepNDR)
	}
	return r
}

// ReadSize reads a maximum count, offset or actual count and refuses one
// larger than the rest of the stub.
func (r *boundedReader) ReadSize(sz *uint64) error {
	if err := r.Reader.ReadSize(sz); err != nil {
		return err
	}
	if left := uint64(r.size - r.Offset()); *sz > left {
		n := *sz
		*sz = 0
		return r.SetErr(fmt.Errorf("ndr: size label %d exceeds the %d octets left in the request", n, left))
	}
	return nil
}

// ReadPointer reads a referent id and queues the referent, decoded by
// ReadDeferred through this reader.
func (r *boundedReader) ReadPointer(ptr ndr.Pointer, setter func(any), mrs ...ndr.Unmarshaler) error {
	if err := r.Err(); err != nil {
		return err
	}
	var id uint64
	if r.ndr64 {
		if err := r.ReadData(&id); err != nil {
			return r.SetErr(err)
		}
	} else {
		var id32 uint32
		if err := r.ReadData(&id32); err != nil {
			return r.SetErr(err)
		}
		id = uint64(id32)
	}
	if id == 0 {
		return nil
	}
	if !r.ndr64 && id != 0x72657355 && id != 0x55736572 { // 'User' marks an embedded referent
		if r.ptrs == nil {
			r.ptrs = map[uint64]ndr.Pointer{}
		}
		if p, ok := r.ptrs[id]; ok {
			setter(p)
			return nil
		}
		r.ptrs[id] = ptr
	}
	r.deferred = append(r.deferred, mrs...)
	return nil
}

// ReadDeferred decodes the referents queued since the last call.
func (r *boundedReader) ReadDeferred() error {
	if err := r.Err(); err != nil {
		return err
	}
	d := r.deferred
	r.deferred = nil
	for _, u := range d {
		if err := r.Unmarshal(context.Background(), u); err != nil {
			return r.SetErr(err)
		}
	}
	return nil
}

// Unmarshal decodes u and its referents through this reader.
func (r *boundedReader) Unmarshal(ctx context.Context, u ndr.Unmarshaler) error {
	if err := r.Err(); err != nil {
		return err
	}
	if err := u.UnmarshalNDR(ctx, r); err != nil {
		return r.SetErr(err)
	}
	if err := r.ReadDeferred(); err != nil {
		return err
	}
	if hook, ok := u.(ndr.AfterUnmarshalNDR); ok {
		if err := hook.AfterUnmarshalNDR(ctx); err != nil {
			return r.SetErr(err)
		}
	}
	return nil
}
