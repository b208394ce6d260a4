package dcom

import "github.com/oiweiwei/go-msrpc/msrpc/dcom"

// HRESULTs and status codes (MS-DCOM §2.2.11, §3.1.2.5, §3.2.4; MS-ERREF).
const (
	SOK                   uint32 = 0x00000000
	SFalse                uint32 = 0x00000001
	ENotImpl              uint32 = 0x80004001
	ENoInterface          uint32 = 0x80004002
	EAccessDenied         uint32 = 0x80070005
	EInvalidArg           uint32 = 0x80070057
	EOutOfMemory          uint32 = 0x8007000E
	RPCEDisconnected      uint32 = 0x80010108 // unknown IPID on an ORPC call
	RPCEVersionMismatch   uint32 = 0x80010110
	RPCEInvalidHeader     uint32 = 0x80010111 // ORPCTHIS.flags ≠ 0
	RPCEInvalidObject     uint32 = 0x80010114 // RemQueryInterface: unknown ripid
	RPCEInvalidObjRef     uint32 = 0x8001011D
	COEObjNotReg          uint32 = 0x800401FB // RemAddRef: unknown IPID
	REGDBEClassNotReg     uint32 = 0x80040154
	ErrorAccessDenied     uint32 = 5
	ORInvalidOXID         uint32 = 1910
	ORInvalidOID          uint32 = 1911
	ORInvalidSet          uint32 = 1912
	maxRequestedIfaces           = 0x8000 // MAX_REQUESTED_INTERFACES
	maxActivationProperty        = 10     // cIfs of the CustomHeader
)

// COM version reported and accepted: 5.7 (MS-DCOM §1.7). A caller's major
// version must be 5 and its minor at most 7.
const (
	VersionMajor = 5
	VersionMinor = 7
)

// Version returns a fresh COMVERSION 5.7.
func Version() *dcom.COMVersion {
	return &dcom.COMVersion{MajorVersion: VersionMajor, MinorVersion: VersionMinor}
}

// checkVersion returns RPC_E_VERSION_MISMATCH unless v is 5.x with x ≤ 7
// (MS-DCOM §3.1.1.5.7, §3.2.4.1.1.1).
func checkVersion(v *dcom.COMVersion) uint32 {
	if v == nil || v.MajorVersion != VersionMajor || v.MinorVersion > VersionMinor {
		return RPCEVersionMismatch
	}
	return SOK
}

// Protocol tower ids in string bindings (MS-DCOM §2.2.19.3).
const towerTCP = 0x0007

// Authentication services in security bindings (MS-RPCE §2.2.1.1.7).
const (
	AuthnNone      uint16 = 0x0000
	AuthnNegotiate uint16 = 0x0009
	AuthnWinNT     uint16 = 0x000A // NTLM
	AuthnKerberos  uint16 = 0x0010
)

// hr32 converts an HRESULT to the int32 of go-msrpc's return fields.
func hr32(hr uint32) int32 { return int32(hr) }
