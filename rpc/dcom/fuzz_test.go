package dcom_test

import (
	"testing"

	"github.com/oiweiwei/go-msrpc/msrpc/dcom"
	"github.com/oiweiwei/go-msrpc/msrpc/dcom/scmp/ivssenumobject/v0"
	"github.com/oiweiwei/go-msrpc/ndr"

	ourdcom "github.com/fsrvpd/fsrvpd/rpc/dcom"
)

func ndrMarshalOpaque(m ndr.Marshaler) ([]byte, error) { return ndr.Marshal(m, ndr.Opaque) }

// FuzzParseActivation feeds arbitrary pActProperties OBJREFs to the
// activation parser: it must never panic, and must fail with
// RPC_E_INVALID_OBJREF or E_INVALIDARG or succeed with 1..0x8000 IIDs.
func FuzzParseActivation(f *testing.F) {
	in, err := activationProps(testCLSID, ivssenumobject.EnumObjectIID, ourdcom.IIDUnknown).ActivationPropertiesIn()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(in.Data)
	f.Add(in.Data[:len(in.Data)/2])
	f.Add([]byte("MEOW\x04\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ourdcom.ParseActivation(&dcom.InterfacePointer{Data: b})
		if err != nil {
			if hr := ourdcom.HRESULT(err); hr != ourdcom.RPCEInvalidObjRef && hr != ourdcom.EInvalidArg {
				t.Fatalf("HRESULT 0x%08x for %v", hr, err)
			}
			return
		}
		if a.CLSID == nil || len(a.IIDs) < 1 || len(a.IIDs) > 0x8000 {
			t.Fatalf("accepted %+v", a)
		}
	})
}

// FuzzParseObjRef: OBJREF parsing never panics.
func FuzzParseObjRef(f *testing.F) {
	in, err := activationProps(testCLSID, ivssenumobject.EnumObjectIID).ActivationPropertiesIn()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(in.Data)
	ref := &dcom.ObjectReference{Signature: []byte("MEOW"), Flags: dcom.ObjectReferenceTypeStandard, IID: ourdcom.IIDUnknown,
		ObjectReference: &dcom.ObjectReference_ObjectReference{Value: &dcom.ObjectReference_Standard{Standard: &dcom.ObjectReferenceStandard{
			Std: &dcom.StdObjectReference{IPID: &dcom.IPID{}}, ResolverAddr: &dcom.DualStringArray{EntriesLength: 4, SecurityOffset: 2, StringArray: make([]uint16, 4)}}}}}
	b, err := ndrMarshalOpaque(ref)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		ourdcom.ParseObjRef(b)
	})
}

// FuzzActivationBlob fuzzes the activation properties BLOB inside a
// well-formed OBJREF_CUSTOM of CLSID_ActivationPropertiesIn, so that the
// mutations reach the CustomHeader and property decoders.
func FuzzActivationBlob(f *testing.F) {
	blob, err := activationProps(testCLSID, ivssenumobject.EnumObjectIID, ourdcom.IIDUnknown).Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(blob)
	f.Add(blob[:len(blob)-8])
	f.Fuzz(func(t *testing.T, blob []byte) {
		if len(blob) > 64<<10 {
			return // refused before decoding (maxActivationBlob)
		}
		ref := &dcom.ObjectReference{Signature: []byte("MEOW"), Flags: dcom.ObjectReferenceTypeCustom, IID: dcom.ActivationPropertiesInIID,
			ObjectReference: &dcom.ObjectReference_ObjectReference{Value: &dcom.ObjectReference_Custom{Custom: &dcom.ObjectReferenceCustom{
				ClassID: dcom.ActivationPropertiesInClassID, Size: uint32(len(blob)), ObjectData: blob}}}}
		b, err := ndrMarshalOpaque(ref)
		if err != nil {
			return
		}
		a, err := ourdcom.ParseActivation(&dcom.InterfacePointer{Data: b})
		if err != nil {
			if hr := ourdcom.HRESULT(err); hr != ourdcom.RPCEInvalidObjRef && hr != ourdcom.EInvalidArg {
				t.Fatalf("HRESULT 0x%08x for %v", hr, err)
			}
			return
		}
		if a.CLSID == nil || len(a.IIDs) < 1 || len(a.IIDs) > 0x8000 {
			t.Fatalf("accepted %+v", a)
		}
	})
}
