package scmp

// enum.go: IVssEnumObject and IVssEnumMgmtObject (MS-SCMP §3.1.4.3,
// §3.1.4.5): a fixed snapshot of the query's results and a cursor.

import (
	"context"
	"sync"

	"github.com/oiweiwei/go-msrpc/msrpc/dcom"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom/scmp"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom/scmp/ivssenummgmtobject/v0"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom/scmp/ivssenumobject/v0"

	ourdcom "github.com/fsrvpd/fsrvpd/rpc/dcom"
)

// cursor is an enumerator's state.
type cursor[T any] struct {
	mu    sync.Mutex
	items []T
	pos   int
}

// next returns up to n items from the cursor and advances it; S_FALSE when
// fewer than n are left. n = 0 is E_INVALIDARG.
func (c *cursor[T]) next(n uint32) ([]T, uint32) {
	if n == 0 {
		return nil, eInvalidArg
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := min(uint64(n), uint64(len(c.items)-c.pos))
	out := c.items[c.pos : c.pos+int(k)]
	c.pos += int(k)
	if k < uint64(n) {
		return out, sFalse
	}
	return out, sOK
}

func (c *cursor[T]) skip(n uint32) uint32 {
	if n == 0 {
		return eInvalidArg
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if uint64(c.pos)+uint64(n) > uint64(len(c.items)) {
		c.pos = len(c.items)
		return sFalse
	}
	c.pos += int(n)
	return sOK
}

func (c *cursor[T]) reset() {
	c.mu.Lock()
	c.pos = 0
	c.mu.Unlock()
}

// clone copies the collection and the position.
func (c *cursor[T]) clone() *cursor[T] {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &cursor[T]{items: append([]T(nil), c.items...), pos: c.pos}
}

func (s *Service) exportObjEnum(ctx context.Context, c *cursor[*scmp.ObjectProperty]) (*dcom.InterfacePointer, error) {
	obj := ourdcom.NewObject("VssEnumObject", ourdcom.Interface{IID: ivssenumobject.EnumObjectIID,
		Handle: ivssenumobject.NewEnumObjectServerHandle(&enumObject{s: s, c: c})})
	return s.dcom.Export(ctx, obj, ivssenumobject.EnumObjectIID)
}

func (s *Service) exportMgmtEnum(ctx context.Context, c *cursor[*scmp.ManagementObjectProperty]) (*dcom.InterfacePointer, error) {
	obj := ourdcom.NewObject("VssEnumMgmtObject", ourdcom.Interface{IID: ivssenummgmtobject.EnumManagementObjectIID,
		Handle: ivssenummgmtobject.NewEnumManagementObjectServerHandle(&enumMgmt{s: s, c: c})})
	return s.dcom.Export(ctx, obj, ivssenummgmtobject.EnumManagementObjectIID)
}

type enumObject struct {
	ivssenumobject.UnimplementedEnumObjectServer
	s *Service
	c *cursor[*scmp.ObjectProperty]
}

func (e *enumObject) Next(ctx context.Context, req *ivssenumobject.NextRequest) (*ivssenumobject.NextResponse, error) {
	items, hr := e.c.next(req.Count)
	return &ivssenumobject.NextResponse{That: &dcom.ORPCThat{}, Count: req.Count, Entries: items, Fetched: uint32(len(items)), Return: hr32(hr)}, nil
}

func (e *enumObject) Skip(ctx context.Context, req *ivssenumobject.SkipRequest) (*ivssenumobject.SkipResponse, error) {
	return &ivssenumobject.SkipResponse{That: &dcom.ORPCThat{}, Return: hr32(e.c.skip(req.Count))}, nil
}

func (e *enumObject) Reset(ctx context.Context, req *ivssenumobject.ResetRequest) (*ivssenumobject.ResetResponse, error) {
	e.c.reset()
	return &ivssenumobject.ResetResponse{That: &dcom.ORPCThat{}}, nil
}

func (e *enumObject) Clone(ctx context.Context, req *ivssenumobject.CloneRequest) (*ivssenumobject.CloneResponse, error) {
	ip, err := e.s.exportObjEnum(ctx, e.c.clone())
	if err != nil {
		return nil, err
	}
	return &ivssenumobject.CloneResponse{That: &dcom.ORPCThat{}, Enum: (*scmp.EnumObject)(ip)}, nil
}

type enumMgmt struct {
	ivssenummgmtobject.UnimplementedEnumManagementObjectServer
	s *Service
	c *cursor[*scmp.ManagementObjectProperty]
}

func (e *enumMgmt) Next(ctx context.Context, req *ivssenummgmtobject.NextRequest) (*ivssenummgmtobject.NextResponse, error) {
	items, hr := e.c.next(req.Count)
	return &ivssenummgmtobject.NextResponse{That: &dcom.ORPCThat{}, Count: req.Count, Entries: items, Fetched: uint32(len(items)), Return: hr32(hr)}, nil
}

func (e *enumMgmt) Skip(ctx context.Context, req *ivssenummgmtobject.SkipRequest) (*ivssenummgmtobject.SkipResponse, error) {
	return &ivssenummgmtobject.SkipResponse{That: &dcom.ORPCThat{}, Return: hr32(e.c.skip(req.Count))}, nil
}

func (e *enumMgmt) Reset(ctx context.Context, req *ivssenummgmtobject.ResetRequest) (*ivssenummgmtobject.ResetResponse, error) {
	e.c.reset()
	return &ivssenummgmtobject.ResetResponse{That: &dcom.ORPCThat{}}, nil
}

func (e *enumMgmt) Clone(ctx context.Context, req *ivssenummgmtobject.CloneRequest) (*ivssenummgmtobject.CloneResponse, error) {
	ip, err := e.s.exportMgmtEnum(ctx, e.c.clone())
	if err != nil {
		return nil, err
	}
	return &ivssenummgmtobject.CloneResponse{That: &dcom.ORPCThat{}, Enum: (*scmp.EnumManagementObject)(ip)}, nil
}
