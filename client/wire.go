package client

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/oiweiwei/go-msrpc/dcerpc"
	"github.com/oiweiwei/go-msrpc/ndr"

	"github.com/fsrvpd/fsrvpd/rpc/msdtyp"
)

// The FSRVP requests that carry a ShareName (IsPathSupported,
// IsPathShadowCopied, AddToShadowCopySet, GetShareMapping,
// DeleteShareMapping) are marshaled here: go-msrpc v1.5.2's generated stubs
// write strings with counts in UTF-8 bytes, so a share named "Données" or
// "資料" would reach any server as bad stub data (see msdtyp.WriteWString).
// Their responses are read by go-msrpc's generated types, which read
// strings correctly.

// requestOp is the client half of such a call.
type requestOp struct {
	num     int
	name    string
	marshal func(context.Context, ndr.Writer) error
	resp    ndr.Unmarshaler
}

var errClientOnly = errors.New("client: client-side operation")

func (o *requestOp) OpNum() int     { return o.num }
func (o *requestOp) OpName() string { return "/FileServerVssAgent/v1/" + o.name }
func (o *requestOp) MarshalNDRRequest(ctx context.Context, w ndr.Writer) error {
	return o.marshal(ctx, w)
}
func (o *requestOp) UnmarshalNDRResponse(ctx context.Context, r ndr.Reader) error {
	return o.resp.UnmarshalNDR(ctx, r)
}
func (o *requestOp) UnmarshalNDRRequest(context.Context, ndr.Reader) error { return errClientOnly }
func (o *requestOp) MarshalNDRResponse(context.Context, ndr.Writer) error  { return errClientOnly }

// wireCall sends req, marshaled by marshal, on c's connection and reads
// the response into a new Resp. A client without a connection (New over a
// test double, whose Conn is nil) calls generated instead, which
// marshals nothing.
func wireCall[Req, Resp any, PResp interface {
	*Resp
	ndr.Unmarshaler
}](c *Client, ctx context.Context, opnum int, name string, req *Req, marshal func(context.Context, ndr.Writer) error,
	generated func(context.Context, *Req, ...dcerpc.CallOption) (*Resp, error)) (*Resp, error) {
	conn := c.rpc.Conn()
	if conn == nil {
		return generated(ctx, req)
	}
	resp := new(Resp)
	if err := conn.Invoke(ctx, &requestOp{num: opnum, name: name, marshal: marshal, resp: PResp(resp)}); err != nil {
		return nil, err
	}
	return resp, nil
}

// writeArgs writes GUIDs, ShareNames and DWORDs in order: the shapes of
// the requests above.
func writeArgs(args ...any) func(context.Context, ndr.Writer) error {
	return func(ctx context.Context, w ndr.Writer) error {
		for _, a := range args {
			var err error
			switch v := a.(type) {
			case uuid.UUID:
				err = msdtyp.GUID(v).MarshalNDR(ctx, w)
			case string:
				err = msdtyp.WriteWString(ctx, w, v)
			case uint32:
				err = w.WriteData(v)
			default:
				err = errors.New("client: writeArgs: unexpected argument type")
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
}
