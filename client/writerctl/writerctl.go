// Package writerctl is fsrvpd's private writer-control interface: a small
// DCE/RPC interface of our own, served by fsrvpd beside FSRVP on the same
// endpoints (ncacn_ip_tcp and \PIPE\FssagentRpc through smbd), with FSRVP's
// authorization (an administrator or backup operator; unauthenticated TCP
// only where fsrvpd allows it for FSRVP). A requestor uses it to
//
//   - read a set's documents (see package client/vss) when it cannot read
//     the set's SMB share, e.g. against fsrvpd in TCP-only mode;
//   - run a writer's service-stop and service-start hooks around a
//     STOP_RESTART_SERVICE restore.
//
// Interface FsrvpdWriterControl, UUID 9c0e2390-5105-445a-9750-765329f47b87,
// version 1.0, NDR 2.0; its IDL:
//
//	DWORD ReadSetDocument(                           // opnum 0
//	    [in] GUID SetId,
//	    [in, string] wchar_t *Name,                  // e.g. "BACKUP_COMPONENTS.xml", "WRITER_METADATA/<id>.xml"
//	    [out, string] wchar_t **Document);           // the XML text
//	DWORD RunWriterService(                          // opnum 1
//	    [in, string] wchar_t *Writer,                // friendly name, writer id or instance id
//	    [in] DWORD Action);                          // ServiceStop (0) or ServiceStart (1)
//
// A requestor binds it on a connection of its own, with the bind options it
// uses for FSRVP:
//
//	raw, err := client.DialRaw(ctx, "fileserver:41345", opts...) // or client.DialRawNP
//	wc, err := writerctl.New(ctx, raw.Conn, raw.BindOptions...)
//	doc, err := wc.ReadSetDocument(ctx, setID, vss.BackupComponentsFile)
//
// fsrvpd serves the interface only when writers are configured; otherwise
// the bind is refused.
//
// Return values are HRESULTs: S_OK, E_ACCESSDENIED, E_INVALIDARG (bad
// name or action), HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND) (no such set,
// document or writer; no such hook), E_FAIL (the hook failed).
package writerctl

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/oiweiwei/go-msrpc/dcerpc"
	msuuid "github.com/oiweiwei/go-msrpc/midl/uuid"
	"github.com/oiweiwei/go-msrpc/msrpc/dtyp"
	"github.com/oiweiwei/go-msrpc/ndr"

	"github.com/fsrvpd/fsrvpd/rpc/msdtyp"
)

// SyntaxV1_0 is the interface's abstract syntax.
var SyntaxV1_0 = &dcerpc.SyntaxID{IfUUID: msuuid.MustParse("9c0e2390-5105-445a-9750-765329f47b87"), IfVersionMajor: 1}

// Actions of RunWriterService.
const (
	ServiceStop  uint32 = 0
	ServiceStart uint32 = 1
)

// Return values.
const (
	S_OK             uint32 = 0
	E_ACCESSDENIED   uint32 = 0x80070005
	E_INVALIDARG     uint32 = 0x80070057
	E_FAIL           uint32 = 0x80004005
	E_FILE_NOT_FOUND uint32 = 0x80070002
)

// Error is a non-zero return value.
type Error struct {
	Op   string
	Code uint32
}

func (e *Error) Error() string {
	name := map[uint32]string{E_ACCESSDENIED: "E_ACCESSDENIED", E_INVALIDARG: "E_INVALIDARG", E_FAIL: "E_FAIL", E_FILE_NOT_FOUND: "not found"}[e.Code]
	return fmt.Sprintf("%s: 0x%08x %s", e.Op, e.Code, name)
}

// IsNotFound reports whether err is a not-found return value.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == E_FILE_NOT_FOUND
}

// ReadSetDocumentOp is opnum 0, with hand-written NDR.
type ReadSetDocumentOp struct {
	SetID    *dtyp.GUID
	Name     string
	Document string
	Return   uint32
}

func (o *ReadSetDocumentOp) OpNum() int     { return 0 }
func (o *ReadSetDocumentOp) OpName() string { return "/FsrvpdWriterControl/v1/ReadSetDocument" }

func (o *ReadSetDocumentOp) MarshalNDRRequest(ctx context.Context, w ndr.Writer) error {
	g := o.SetID
	if g == nil {
		g = &dtyp.GUID{}
	}
	if err := g.MarshalNDR(ctx, w); err != nil {
		return err
	}
	return ndr.WriteUTF16NString(ctx, w, o.Name)
}

func (o *ReadSetDocumentOp) UnmarshalNDRRequest(ctx context.Context, r ndr.Reader) error {
	o.SetID = &dtyp.GUID{}
	if err := o.SetID.UnmarshalNDR(ctx, r); err != nil {
		return err
	}
	return ndr.ReadUTF16NString(ctx, r, &o.Name)
}

func (o *ReadSetDocumentOp) MarshalNDRResponse(ctx context.Context, w ndr.Writer) error {
	if o.Document != "" {
		doc := o.Document
		if err := w.WritePointer(&o.Document, ndr.MarshalNDRFunc(func(ctx context.Context, w ndr.Writer) error {
			return ndr.WriteUTF16NString(ctx, w, doc)
		})); err != nil {
			return err
		}
	} else if err := w.WritePointer(nil); err != nil {
		return err
	}
	if err := w.WriteDeferred(); err != nil {
		return err
	}
	return w.WriteData(o.Return)
}

func (o *ReadSetDocumentOp) UnmarshalNDRResponse(ctx context.Context, r ndr.Reader) error {
	read := ndr.UnmarshalNDRFunc(func(ctx context.Context, r ndr.Reader) error {
		return ndr.ReadUTF16NString(ctx, r, &o.Document)
	})
	if err := r.ReadPointer(&o.Document, func(p any) { o.Document = *p.(*string) }, read); err != nil {
		return err
	}
	if err := r.ReadDeferred(); err != nil {
		return err
	}
	return r.ReadData(&o.Return)
}

// RunWriterServiceOp is opnum 1, with hand-written NDR.
type RunWriterServiceOp struct {
	Writer string
	Action uint32
	Return uint32
}

func (o *RunWriterServiceOp) OpNum() int     { return 1 }
func (o *RunWriterServiceOp) OpName() string { return "/FsrvpdWriterControl/v1/RunWriterService" }

func (o *RunWriterServiceOp) MarshalNDRRequest(ctx context.Context, w ndr.Writer) error {
	if err := ndr.WriteUTF16NString(ctx, w, o.Writer); err != nil {
		return err
	}
	return w.WriteData(o.Action)
}

func (o *RunWriterServiceOp) UnmarshalNDRRequest(ctx context.Context, r ndr.Reader) error {
	if err := ndr.ReadUTF16NString(ctx, r, &o.Writer); err != nil {
		return err
	}
	return r.ReadData(&o.Action)
}

func (o *RunWriterServiceOp) MarshalNDRResponse(_ context.Context, w ndr.Writer) error {
	return w.WriteData(o.Return)
}

func (o *RunWriterServiceOp) UnmarshalNDRResponse(_ context.Context, r ndr.Reader) error {
	return r.ReadData(&o.Return)
}

// Server is what fsrvpd implements; each method returns the DWORD result.
type Server interface {
	ReadSetDocument(ctx context.Context, setID uuid.UUID, name string) (string, uint32)
	RunWriterService(ctx context.Context, writer string, action uint32) uint32
}

// NewServerHandle dispatches the interface's opnums to s, for rpc.Server's
// Register.
func NewServerHandle(s Server) dcerpc.ServerHandle {
	return func(ctx context.Context, opNum int, r ndr.Reader) (dcerpc.Operation, error) {
		switch opNum {
		case 0:
			op := &ReadSetDocumentOp{}
			if err := op.UnmarshalNDRRequest(ctx, r); err != nil {
				return nil, err
			}
			op.Document, op.Return = s.ReadSetDocument(ctx, msdtyp.UUID(op.SetID), op.Name)
			if op.Return != S_OK {
				op.Document = ""
			}
			return op, nil
		case 1:
			op := &RunWriterServiceOp{}
			if err := op.UnmarshalNDRRequest(ctx, r); err != nil {
				return nil, err
			}
			op.Return = s.RunWriterService(ctx, op.Writer, op.Action)
			return op, nil
		}
		return nil, dcerpc.ErrNotImplemented
	}
}

// Client calls the interface over a bound connection.
type Client struct {
	cc dcerpc.Conn
}

// New binds the interface on cc (a connection from dcerpc.Dial; pass the
// same security options as for FSRVP, e.g. dcerpc.WithInsecure()). As with
// go-msrpc's generated clients, ctx must live as long as the connection is
// used.
func New(ctx context.Context, cc dcerpc.Conn, opts ...dcerpc.Option) (*Client, error) {
	bound, err := cc.Bind(ctx, append(opts, dcerpc.WithAbstractSyntax(SyntaxV1_0))...)
	if err != nil {
		return nil, err
	}
	return &Client{cc: bound}, nil
}

// ReadSetDocument returns the document name (a path relative to the set's
// document directory, e.g. vss.BackupComponentsFile) of set setID.
func (c *Client) ReadSetDocument(ctx context.Context, setID uuid.UUID, name string) ([]byte, error) {
	op := &ReadSetDocumentOp{SetID: msdtyp.GUID(setID), Name: name}
	if err := c.cc.Invoke(ctx, op); err != nil {
		return nil, err
	}
	if op.Return != S_OK {
		return nil, &Error{Op: "ReadSetDocument " + name, Code: op.Return}
	}
	return []byte(op.Document), nil
}

// RunWriterService runs the service-stop (ServiceStop) or service-start
// (ServiceStart) hook of the named writer on the server and waits for it.
func (c *Client) RunWriterService(ctx context.Context, writer string, action uint32) error {
	op := &RunWriterServiceOp{Writer: writer, Action: action}
	if err := c.cc.Invoke(ctx, op); err != nil {
		return err
	}
	if op.Return != S_OK {
		return &Error{Op: "RunWriterService " + writer, Code: op.Return}
	}
	return nil
}
