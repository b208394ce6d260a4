package dcom

// objref.go: OBJREFs, DUALSTRINGARRAYs and GUID helpers (MS-DCOM §2.2.18,
// §2.2.19).

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf16"

	"github.com/oiweiwei/go-msrpc/msrpc/dcom"
	"github.com/oiweiwei/go-msrpc/msrpc/dtyp"
	"github.com/oiweiwei/go-msrpc/ndr"
)

// OBJREF flags (MS-DCOM §2.2.18.1) and STDOBJREF flags (§2.2.18.2).
const (
	objrefStandard = 0x1
	objrefHandler  = 0x2
	objrefCustom   = 0x4
	objrefExtended = 0x8
	sorfNoPing     = 0x1000
	objrefMinSize  = 4 + 4 + 16
	objrefSig      = 0x574f454d // "MEOW"
)

// initialPublicRefs is the cPublicRefs of a newly marshaled reference
// (MS-DCOM §3.1.1.5.1: SHOULD be 5).
const initialPublicRefs = 5

// IIDUnknown is IID_IUnknown {00000000-0000-0000-C000-000000000046}; every
// object supports it.
var IIDUnknown = &dcom.IID{Data4: []byte{0xc0, 0, 0, 0, 0, 0, 0, 0x46}}

// guidKey is a GUID's canonical lower-case string, the key of our tables.
func guidKey(g *dtyp.GUID) string { return g.String() }

// newGUID returns a random (version 4) GUID.
func newGUID() *dtyp.GUID {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return &dtyp.GUID{
		Data1: binary.BigEndian.Uint32(b[0:4]),
		Data2: binary.BigEndian.Uint16(b[4:6]),
		Data3: binary.BigEndian.Uint16(b[6:8]),
		Data4: append([]byte(nil), b[8:]...),
	}
}

// newID returns a random non-zero 64-bit id (OXID, OID, SETID).
func newID() uint64 {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			panic(err)
		}
		if id := binary.LittleEndian.Uint64(b[:]); id != 0 {
			return id
		}
	}
}

// SecurityBinding is one SECURITYBINDING of a DUALSTRINGARRAY.
type SecurityBinding struct {
	AuthnSvc uint16 // AuthnWinNT, AuthnNegotiate, AuthnKerberos
	SPN      string // principal name, may be empty
}

// dualStringArray builds a DUALSTRINGARRAY (MS-DCOM §2.2.19.1) of
// ncacn_ip_tcp string bindings ("host" or "host[port]") and security
// bindings. Empty lists still get their terminators.
func dualStringArray(bindings []string, sec []SecurityBinding) *dcom.DualStringArray {
	var a []uint16
	for _, b := range bindings {
		a = append(a, towerTCP)
		a = append(a, utf16.Encode([]rune(b))...)
		a = append(a, 0)
	}
	if len(bindings) == 0 {
		a = append(a, 0)
	}
	a = append(a, 0)
	off := len(a)
	for _, s := range sec {
		a = append(a, s.AuthnSvc, 0xffff)
		a = append(a, utf16.Encode([]rune(s.SPN))...)
		a = append(a, 0)
	}
	if len(sec) == 0 {
		a = append(a, 0)
	}
	a = append(a, 0)
	return &dcom.DualStringArray{EntriesLength: uint16(len(a)), SecurityOffset: uint16(off), StringArray: a}
}

// marshalStandard encodes an OBJREF_STANDARD for iid as an MInterfacePointer
// (MS-DCOM §2.2.18.4).
func marshalStandard(iid *dcom.IID, std *dcom.StdObjectReference, resolver *dcom.DualStringArray) (*dcom.InterfacePointer, error) {
	ref := &dcom.ObjectReference{
		Signature: []byte(dcom.ObjectReferenceCustomSignature), // "MEOW"
		Flags:     dcom.ObjectReferenceTypeStandard,
		IID:       iid,
		ObjectReference: &dcom.ObjectReference_ObjectReference{
			Value: &dcom.ObjectReference_Standard{
				Standard: &dcom.ObjectReferenceStandard{Std: std, ResolverAddr: resolver},
			},
		},
	}
	b, err := ndr.Marshal(ref, ndr.Opaque)
	if err != nil {
		return nil, fmt.Errorf("dcom: marshal OBJREF: %w", err)
	}
	return &dcom.InterfacePointer{DataCount: uint32(len(b)), Data: b}, nil
}

// marshalCustom encodes an OBJREF_CUSTOM (MS-DCOM §2.2.18.6) of iid and
// clsid around data. go-msrpc's ActivationProperties.ActivationPropertiesOut
// cannot be used: it always writes IID_IActivationPropertiesIn and
// CLSID_ActivationPropertiesIn.
func marshalCustom(iid *dcom.IID, clsid *dcom.ClassID, data []byte) (*dcom.InterfacePointer, error) {
	ref := &dcom.ObjectReference{
		Signature: []byte(dcom.ObjectReferenceCustomSignature),
		Flags:     dcom.ObjectReferenceTypeCustom,
		IID:       iid,
		ObjectReference: &dcom.ObjectReference_ObjectReference{
			Value: &dcom.ObjectReference_Custom{
				// reserved: Windows puts the data length + 8 there, as
				// go-msrpc's encoder does; receivers ignore it.
				Custom: &dcom.ObjectReferenceCustom{ClassID: clsid, Size: uint32(len(data)) + 8, ObjectData: data},
			},
		},
	}
	b, err := ndr.Marshal(ref, ndr.Opaque)
	if err != nil {
		return nil, fmt.Errorf("dcom: marshal OBJREF_CUSTOM: %w", err)
	}
	return &dcom.InterfacePointer{DataCount: uint32(len(b)), Data: b}, nil
}

// ErrInvalidObjRef is returned by ParseObjRef for anything that is not a
// well-formed OBJREF.
var ErrInvalidObjRef = errors.New("dcom: invalid OBJREF")

// ParseObjRef decodes an OBJREF (the abData of an MInterfacePointer). It
// checks the signature, that exactly one known flag is set and that the
// variant's fixed part is present, and never panics: go-msrpc's decoder
// is run under recover.
func ParseObjRef(b []byte) (ref *dcom.ObjectReference, err error) {
	if len(b) < objrefMinSize || binary.LittleEndian.Uint32(b) != objrefSig {
		return nil, ErrInvalidObjRef
	}
	var min int
	switch binary.LittleEndian.Uint32(b[4:]) {
	case objrefStandard:
		min = objrefMinSize + 40 + 4 // STDOBJREF + the smallest DUALSTRINGARRAY header
	case objrefHandler:
		min = objrefMinSize + 40 + 16 + 4
	case objrefCustom:
		min = objrefMinSize + 16 + 4 + 4
	case objrefExtended:
		min = objrefMinSize + 40 + 4 + 4
	default:
		return nil, ErrInvalidObjRef
	}
	if len(b) < min {
		return nil, ErrInvalidObjRef
	}
	defer func() {
		if r := recover(); r != nil {
			ref, err = nil, fmt.Errorf("%w: %v", ErrInvalidObjRef, r)
		}
	}()
	ref = &dcom.ObjectReference{}
	if err := ndr.Unmarshal(b, ref, ndr.Opaque); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidObjRef, err)
	}
	if ref.ObjectReference == nil || ref.ObjectReference.GetValue() == nil {
		return nil, ErrInvalidObjRef
	}
	if std, ok := ref.ObjectReference.GetValue().(*dcom.ObjectReferenceStandard); ok {
		if std.Std == nil || std.ResolverAddr == nil || int(std.ResolverAddr.SecurityOffset) > len(std.ResolverAddr.StringArray) {
			return nil, ErrInvalidObjRef
		}
	}
	return ref, nil
}
