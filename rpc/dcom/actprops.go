package dcom

// actprops.go: the activation properties BLOB (MS-DCOM §2.2.22): parsing
// pActProperties of RemoteCreateInstance/RemoteGetClassObject and producing
// ppActProperties.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/oiweiwei/go-msrpc/msrpc/dcom"
	"github.com/oiweiwei/go-msrpc/ndr"

	"github.com/fsrvpd/fsrvpd/rpc"
)

// Activation is what a client asks for in an activation blob.
type Activation struct {
	// CLSID is InstantiationInfoData.classId.
	CLSID *dcom.ClassID
	// IIDs are the requested interfaces, 1 to 0x8000 of them.
	IIDs []*dcom.IID
	// Protseqs are ScmRequestInfoData's requested protocol sequences.
	Protseqs []uint16
	// ClientVersion is InstantiationInfoData.clientCOMVersion (ignored on
	// receipt, reported for logs).
	ClientVersion *dcom.COMVersion
	// DestCtx is CustomHeader.destCtx.
	DestCtx uint32
}

// maxActivationBlob bounds pActProperties.
const maxActivationBlob = 64 << 10

// activationError carries the HRESULT an activation fails with.
type activationError struct {
	hr  uint32
	msg string
}

func (e *activationError) Error() string {
	return fmt.Sprintf("dcom: activation 0x%08x: %s", e.hr, e.msg)
}

// HRESULT returns the HRESULT of an error from ParseActivation:
// RPC_E_INVALID_OBJREF or E_INVALIDARG; E_INVALIDARG for other errors.
func HRESULT(err error) uint32 {
	var ae *activationError
	if errors.As(err, &ae) {
		return ae.hr
	}
	return EInvalidArg
}

func badObjRef(format string, a ...any) error {
	return &activationError{hr: RPCEInvalidObjRef, msg: fmt.Sprintf(format, a...)}
}

func badBlob(format string, a ...any) error {
	return &activationError{hr: EInvalidArg, msg: fmt.Sprintf(format, a...)}
}

// ParseActivation decodes pActProperties: an MInterfacePointer holding an
// OBJREF_CUSTOM of CLSID_ActivationPropertiesIn (else RPC_E_INVALID_OBJREF)
// whose data is an activation properties BLOB (else E_INVALIDARG): a
// CustomHeader with 1 to 10 properties, each NDR type-serialized (MS-RPCE
// §2.2.6). InstantiationInfoData and ScmRequestInfoData are required;
// unknown properties are ignored; an ActivationContextInfoData whose
// contexts are not valid OBJREFs is RPC_E_INVALID_OBJREF. Size labels are
// checked before anything is allocated, and nothing here panics on any
// input.
func ParseActivation(ip *dcom.InterfacePointer) (*Activation, error) {
	if ip == nil || len(ip.Data) == 0 {
		return nil, badObjRef("no pActProperties")
	}
	if len(ip.Data) > maxActivationBlob {
		// go-msrpc decodes OBJREF_CUSTOM data one octet at a time: bound
		// the work a client can ask for (Windows' blobs are ~1 KiB).
		return nil, badBlob("pActProperties of %d bytes (at most %d)", len(ip.Data), maxActivationBlob)
	}
	ref, err := ParseObjRef(ip.Data)
	if err != nil {
		return nil, badObjRef("pActProperties: %v", err)
	}
	custom, ok := ref.ObjectReference.GetValue().(*dcom.ObjectReferenceCustom)
	if !ok || ref.Flags != dcom.ObjectReferenceTypeCustom {
		return nil, badObjRef("pActProperties is no OBJREF_CUSTOM")
	}
	if !custom.ClassID.Equal(dcom.ActivationPropertiesInClassID) {
		return nil, badObjRef("pActProperties of class %s", custom.ClassID)
	}
	return parseBlob(custom.ObjectData)
}

func parseBlob(b []byte) (*Activation, error) {
	// ActivationPropertiesBlob: dwSize, dwReserved, data[dwSize].
	if len(b) < 8 {
		return nil, badBlob("blob of %d bytes", len(b))
	}
	size := uint64(binary.LittleEndian.Uint32(b))
	if size > uint64(len(b)-8) {
		return nil, badBlob("blob size %d beyond its %d bytes", size, len(b)-8)
	}
	data := b[8 : 8+size]
	hb, err := typeSerialized(data)
	if err != nil {
		return nil, badBlob("custom header: %v", err)
	}
	var hdr dcom.CustomHeader
	if err := decode(hb, &hdr); err != nil {
		return nil, badBlob("custom header: %v", err)
	}
	n := hdr.InterfacesCount
	if n < 1 || n > maxActivationProperty || len(hdr.ClassIDs) != int(n) || len(hdr.Sizes) != int(n) {
		return nil, badBlob("custom header with %d properties", n)
	}
	if uint64(hdr.TotalSize) != size || hdr.HeaderSize > hdr.TotalSize {
		return nil, badBlob("custom header sizes %d/%d, blob %d", hdr.HeaderSize, hdr.TotalSize, size)
	}
	a := &Activation{DestCtx: hdr.DestinationContext}
	var haveInst, haveSCM bool
	off := uint64(hdr.HeaderSize)
	for i := range int(n) {
		end := off + uint64(hdr.Sizes[i])
		if end > size {
			return nil, badBlob("property %d beyond the blob", i)
		}
		pb, err := typeSerialized(data[off:end])
		off = end
		if err != nil {
			return nil, badBlob("property %d: %v", i, err)
		}
		cls := hdr.ClassIDs[i]
		switch {
		case cls.Equal(dcom.InstantiationInfoClassID):
			var p dcom.InstantiationInfoData
			if err := decode(pb, &p); err != nil {
				return nil, badBlob("InstantiationInfoData: %v", err)
			}
			if p.IIDCount < 1 || p.IIDCount > maxRequestedIfaces || len(p.IID) != int(p.IIDCount) || p.ClassID == nil {
				return nil, badBlob("InstantiationInfoData with %d IIDs", p.IIDCount)
			}
			for _, iid := range p.IID {
				if iid == nil {
					return nil, badBlob("InstantiationInfoData: NULL IID")
				}
			}
			a.CLSID, a.IIDs, a.ClientVersion, haveInst = p.ClassID, p.IID, p.ClientCOMVersion, true
		case cls.Equal(dcom.SCMRequestInfoClassID):
			var p dcom.SCMRequestInfoData
			if err := decode(pb, &p); err != nil {
				return nil, badBlob("ScmRequestInfoData: %v", err)
			}
			if p.RemoteRequest == nil {
				return nil, badBlob("ScmRequestInfoData without remoteRequest")
			}
			a.Protseqs, haveSCM = p.RemoteRequest.RequestedProtocolSequences, true
		case cls.Equal(dcom.ActivationContextInfoClassID):
			var p dcom.ActivationContextInfoData
			if err := decode(pb, &p); err != nil {
				return nil, badBlob("ActivationContextInfoData: %v", err)
			}
			for _, ctx := range []*dcom.InterfacePointer{p.IfdClientContext, p.IfdPrototypeContext} {
				if ctx != nil {
					if _, err := ParseObjRef(ctx.Data); err != nil {
						return nil, badObjRef("ActivationContextInfoData: %v", err)
					}
				}
			}
		default:
			// LocationInfoData, SecurityInfoData, InstanceInfoData,
			// SpecialPropertiesData (two layouts) and anything unknown:
			// nothing we act on (MS-DCOM §3.1.2.5.2.3.3: ignore).
		}
	}
	if !haveInst || !haveSCM {
		return nil, badBlob("InstantiationInfoData or ScmRequestInfoData missing")
	}
	return a, nil
}

// typeSerialized returns the object buffer of NDR Type Serialization
// Version 1 data (MS-RPCE §2.2.6): common header 01 10 08 00 + filler,
// private header with the object buffer length, then the buffer.
func typeSerialized(b []byte) ([]byte, error) {
	if len(b) < 16 {
		return nil, fmt.Errorf("type serialization header of %d bytes", len(b))
	}
	if b[0] != 1 || b[1] != 0x10 || binary.LittleEndian.Uint16(b[2:]) != 8 {
		return nil, fmt.Errorf("type serialization header % x (want version 1, little-endian, length 8)", b[:4])
	}
	n := uint64(binary.LittleEndian.Uint32(b[8:]))
	if n > uint64(len(b)-16) {
		return nil, fmt.Errorf("object buffer of %d bytes beyond the %d left", n, len(b)-16)
	}
	return b[16 : 16+n], nil
}

// decode unmarshals NDR 2.0 data through rpc's bounded reader, under
// recover: go-msrpc's generated decoders are not written for hostile input.
func decode(b []byte, u ndr.Unmarshaler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("ndr: %v", r)
		}
	}()
	return rpc.NewNDRReader(b, false).Unmarshal(context.Background(), u)
}

// marshalActivationReply builds ppActProperties: an OBJREF_CUSTOM of
// IID_IActivationPropertiesOut and CLSID_ActivationPropertiesOut around a
// blob holding ScmReplyInfoData and PropsOutInfo (MS-DCOM §3.1.2.5.2.3.3).
func marshalActivationReply(reply *dcom.SCMReplyInfoData, out *dcom.PropertiesOutInfo) (*dcom.InterfacePointer, error) {
	props := &dcom.ActivationProperties{
		DestinationContext: 2, // MSHCTX_DIFFERENTMACHINE
		Properties:         []dcom.ActivationProperty{out, reply},
	}
	blob, err := props.Marshal()
	if err != nil {
		return nil, fmt.Errorf("dcom: marshal activation reply: %w", err)
	}
	return marshalCustom(dcom.ActivationPropertiesOutIID, dcom.ActivationPropertiesOutClassID, blob)
}
