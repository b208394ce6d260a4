package client

import (
	"errors"
	"fmt"
)

// FSRVP and VSS return codes (MS-FSRVP §2.2.4, plus the values servers are
// known to send). The Go names follow the symbolic names printed by CodeName.
const (
	EAccessDenied            uint32 = 0x80070005 // E_ACCESSDENIED
	EInvalidArg              uint32 = 0x80070057 // E_INVALIDARG
	EOutOfMemory             uint32 = 0x8007000E // E_OUTOFMEMORY
	EFail                    uint32 = 0x80004005 // E_FAIL
	EBadState                uint32 = 0x80042301 // FSRVP_E_BAD_STATE
	EBadID                   uint32 = 0x80042302 // FSRVP_E_BAD_ID (Samba's name; VSS_E_UNEXPECTED)
	EObjectNotFound          uint32 = 0x80042308 // FSRVP_E_OBJECT_NOT_FOUND
	ENotSupported            uint32 = 0x8004230C // FSRVP_E_NOT_SUPPORTED
	EObjectAlreadyExists     uint32 = 0x8004230D // FSRVP_E_OBJECT_ALREADY_EXISTS
	EBadStateWS2012          uint32 = 0x80042311 // GetShareMapping before Expose on Windows Server 2012 (note <10>); unofficial name
	EShadowCopySetInProgress uint32 = 0x80042316 // FSRVP_E_SHADOW_COPY_SET_IN_PROGRESS
	EUnsupportedContext      uint32 = 0x8004231B // FSRVP_E_UNSUPPORTED_CONTEXT
	ETimeout                 uint32 = 0x80042500 // FSSAGENT_E_TIMEOUT (Commit)
	EShadowCopySetIDMismatch uint32 = 0x80042501 // FSRVP_E_SHADOWCOPYSET_ID_MISMATCH
	EWaitTimeout             uint32 = 0x00000102 // FSRVP_E_WAIT_TIMEOUT (Prepare, Expose)
	EWaitFailed              uint32 = 0xFFFFFFFF // FSRVP_E_WAIT_FAILED
)

var codeNames = map[uint32]string{
	EAccessDenied:            "E_ACCESSDENIED",
	EInvalidArg:              "E_INVALIDARG",
	EOutOfMemory:             "E_OUTOFMEMORY",
	EFail:                    "E_FAIL",
	EBadState:                "FSRVP_E_BAD_STATE",
	EBadID:                   "FSRVP_E_BAD_ID",
	EObjectNotFound:          "FSRVP_E_OBJECT_NOT_FOUND",
	ENotSupported:            "FSRVP_E_NOT_SUPPORTED",
	EObjectAlreadyExists:     "FSRVP_E_OBJECT_ALREADY_EXISTS",
	EBadStateWS2012:          "FSRVP_E_BAD_STATE_WS2012",
	EShadowCopySetInProgress: "FSRVP_E_SHADOW_COPY_SET_IN_PROGRESS",
	EUnsupportedContext:      "FSRVP_E_UNSUPPORTED_CONTEXT",
	ETimeout:                 "FSSAGENT_E_TIMEOUT",
	EShadowCopySetIDMismatch: "FSRVP_E_SHADOWCOPYSET_ID_MISMATCH",
	EWaitTimeout:             "FSRVP_E_WAIT_TIMEOUT",
	EWaitFailed:              "FSRVP_E_WAIT_FAILED",
}

// CodeName returns the symbolic name of an FSRVP return code, "S_OK" for 0,
// or "" when the code is not one of the known values.
func CodeName(code uint32) string {
	if code == 0 {
		return "S_OK"
	}
	return codeNames[code]
}

// HResultError is a non-zero return value of an FSRVP method.
type HResultError struct {
	Op   string // FSRVP method name, e.g. "AddToShadowCopySet"
	Code uint32 // the method's return value
}

// Error prints e.g. "AddToShadowCopySet: FSRVP_E_OBJECT_ALREADY_EXISTS (0x8004230D)".
func (e *HResultError) Error() string {
	if name := CodeName(e.Code); name != "" {
		return fmt.Sprintf("%s: %s (0x%08X)", e.Op, name, e.Code)
	}
	return fmt.Sprintf("%s: 0x%08X", e.Op, e.Code)
}

// Code returns the FSRVP return code carried by err (anywhere in its chain).
func Code(err error) (uint32, bool) {
	var he *HResultError
	if errors.As(err, &he) {
		return he.Code, true
	}
	return 0, false
}

// TransportError reports that an operation produced no FSRVP return value:
// dialing, binding, the endpoint mapper, the network, an RPC fault or a
// timeout failed. Err is the underlying error.
type TransportError struct {
	Op  string // FSRVP method name, or "dial"
	Err error
}

func (e *TransportError) Error() string { return e.Op + ": " + e.Err.Error() }

func (e *TransportError) Unwrap() error { return e.Err }

// IsTransport reports whether err (anywhere in its chain) is a *TransportError.
func IsTransport(err error) bool {
	var te *TransportError
	return errors.As(err, &te)
}

// ErrUnsupportedVersion is returned (wrapped) by Create and Delete when the
// server's [MinVersion, MaxVersion] does not include FSRVP version 1.
var ErrUnsupportedVersion = errors.New("server does not support FSRVP version 1")
