package fsrvp

import (
	"context"
	"errors"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	"github.com/oiweiwei/go-msrpc/msrpc/dtyp"
	fssagent "github.com/oiweiwei/go-msrpc/msrpc/fsrvp/fileservervssagent/v1"
	"github.com/oiweiwei/go-msrpc/ndr"

	"github.com/fsrvpd/fsrvpd/rpc/msdtyp"
)

// serverHandle is go-msrpc's generated dispatcher for h, except for the two
// responses that carry names, IsPathSupported (OwnerMachineName) and
// GetShareMapping (ShareNameUNC, ShadowCopyShareName): go-msrpc v1.5.2
// writes strings with counts in UTF-8 bytes, so a share or server name
// with a non-ASCII character would reach the client as bad stub data.
// Those two are marshaled here, with msdtyp.WriteWString; their requests
// are read by the generated code, which reads strings correctly.
func (h Handler) serverHandle() dcerpc.ServerHandle {
	generated := fssagent.NewFileServerVSSAgentServerHandle(h)
	return func(ctx context.Context, opnum int, r ndr.Reader) (dcerpc.Operation, error) {
		switch opnum {
		case 8:
			req := &fssagent.IsPathSupportedRequest{}
			if err := req.UnmarshalNDR(ctx, r); err != nil {
				return nil, err
			}
			resp, err := h.IsPathSupported(ctx, req)
			return isPathSupportedOp{IsPathSupportedResponse: resp}, err
		case 10:
			req := &fssagent.GetShareMappingRequest{}
			if err := req.UnmarshalNDR(ctx, r); err != nil {
				return nil, err
			}
			resp, err := h.GetShareMapping(ctx, req)
			if resp != nil && resp.Level == 0 {
				resp.Level = req.Level // the union's discriminant is the request's Level
			}
			return getShareMappingOp{GetShareMappingResponse: resp}, err
		}
		return generated(ctx, opnum, r)
	}
}

// responseOp is the server half of an operation: only
// MarshalNDRResponse is ever called.
type responseOp struct{}

var errServerOnly = errors.New("fsrvp: server-side operation")

func (responseOp) MarshalNDRRequest(context.Context, ndr.Writer) error    { return errServerOnly }
func (responseOp) UnmarshalNDRRequest(context.Context, ndr.Reader) error  { return errServerOnly }
func (responseOp) UnmarshalNDRResponse(context.Context, ndr.Reader) error { return errServerOnly }

// wstringPtr writes a unique pointer to s (NULL for ""), as go-msrpc's
// stubs do for an LPWSTR.
func wstringPtr(w ndr.Writer, s string) error {
	if s == "" {
		return w.WritePointer(nil)
	}
	return w.WritePointer(&s, msdtyp.WString(s))
}

// isPathSupportedOp: [out] BOOL *SupportedByThisProvider, [out, string]
// LPWSTR *OwnerMachineName, DWORD return (MS-FSRVP §3.1.4.9, opnum 8).
type isPathSupportedOp struct {
	responseOp
	*fssagent.IsPathSupportedResponse
}

func (isPathSupportedOp) OpNum() int     { return 8 }
func (isPathSupportedOp) OpName() string { return "/FileServerVssAgent/v1/IsPathSupported" }

func (o isPathSupportedOp) MarshalNDRResponse(_ context.Context, w ndr.Writer) error {
	supported := int32(0)
	if o.SupportedByThisProvider {
		supported = 1
	}
	if err := w.WriteData(supported); err != nil {
		return err
	}
	if err := wstringPtr(w, o.OwnerMachineName); err != nil {
		return err
	}
	if err := w.WriteDeferred(); err != nil {
		return err
	}
	return w.WriteData(o.Return)
}

// getShareMappingOp: [out, switch_is(Level)] PFSSAGENT_SHARE_MAPPING
// ShareMapping, DWORD return (§3.1.4.11, opnum 10). Level 1 is a unique pointer to
// FSSAGENT_SHARE_MAPPING_1 (§2.2.1.1): two GUIDs, two LPWSTRs, a LONGLONG.
type getShareMappingOp struct {
	responseOp
	*fssagent.GetShareMappingResponse
}

func (getShareMappingOp) OpNum() int     { return 10 }
func (getShareMappingOp) OpName() string { return "/FileServerVssAgent/v1/GetShareMapping" }

func (o getShareMappingOp) MarshalNDRResponse(ctx context.Context, w ndr.Writer) error {
	if err := w.WriteUnionAlign(9); err != nil {
		return err
	}
	if err := w.WriteSwitch(o.Level); err != nil {
		return err
	}
	if err := w.WriteAlign(9); err != nil {
		return err
	}
	if o.Level == 1 {
		var m *fssagent.ShareMapping1
		if o.ShareMapping != nil {
			if v, ok := o.ShareMapping.Value.(*fssagent.ShareMapping_1); ok {
				m = v.ShareMapping1
			}
		}
		if m == nil {
			if err := w.WritePointer(nil); err != nil {
				return err
			}
		} else if err := w.WritePointer(&m, ndr.MarshalNDRFunc(func(ctx context.Context, w ndr.Writer) error {
			return marshalShareMapping1(ctx, w, m)
		})); err != nil {
			return err
		}
	}
	if err := w.WriteDeferred(); err != nil {
		return err
	}
	return w.WriteData(o.Return)
}

func marshalShareMapping1(ctx context.Context, w ndr.Writer, m *fssagent.ShareMapping1) error {
	if err := w.WriteAlign(8); err != nil {
		return err
	}
	for _, g := range []*dtyp.GUID{m.ShadowCopySetID, m.ShadowCopyID} {
		if g == nil {
			g = &dtyp.GUID{}
		}
		if err := g.MarshalNDR(ctx, w); err != nil {
			return err
		}
	}
	if err := wstringPtr(w, m.ShareNameUNC); err != nil {
		return err
	}
	if err := wstringPtr(w, m.ShadowCopyShareName); err != nil {
		return err
	}
	return w.WriteData(m.CreationTimestamp)
}
