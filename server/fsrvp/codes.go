package fsrvp

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/fsrvpd/fsrvpd/shares"
	"github.com/fsrvpd/fsrvpd/storage"
)

// HResult is the DWORD every FSRVP method returns (MS-FSRVP §2.2.4).
type HResult uint32

// Return codes, MS-FSRVP §2.2.4 and the method sections of §3.1.4.
const (
	S_OK                                HResult = 0x00000000
	E_ACCESSDENIED                      HResult = 0x80070005
	E_INVALIDARG                        HResult = 0x80070057
	E_OUTOFMEMORY                       HResult = 0x8007000E
	FSRVP_E_BAD_STATE                   HResult = 0x80042301
	FSRVP_E_OBJECT_NOT_FOUND            HResult = 0x80042308
	FSRVP_E_NOT_SUPPORTED               HResult = 0x8004230C
	FSRVP_E_OBJECT_ALREADY_EXISTS       HResult = 0x8004230D
	FSRVP_E_SHADOW_COPY_SET_IN_PROGRESS HResult = 0x80042316
	FSRVP_E_UNSUPPORTED_CONTEXT         HResult = 0x8004231B
	FSSAGENT_E_TIMEOUT                  HResult = 0x80042500 // §3.1.4.5, Commit only
	FSRVP_E_SHADOWCOPYSET_ID_MISMATCH   HResult = 0x80042501
	FSRVP_E_WAIT_TIMEOUT                HResult = 0x00000102 // §3.1.4.6, §3.1.4.12
	FSRVP_E_WAIT_FAILED                 HResult = 0xFFFFFFFF

	// Errors of the underlying snapshot utility, which §3.1.4.5 passes
	// through unchanged. These are the VSS codes Windows' agent returns for
	// the same conditions.
	VSS_E_UNEXPECTED_PROVIDER_ERROR HResult = 0x8004230F
	VSS_E_INSUFFICIENT_STORAGE      HResult = 0x8004231F
	VSS_E_UNEXPECTED                HResult = 0x80042302
)

var codeNames = map[HResult]string{
	S_OK:                                "S_OK",
	E_ACCESSDENIED:                      "E_ACCESSDENIED",
	E_INVALIDARG:                        "E_INVALIDARG",
	E_OUTOFMEMORY:                       "E_OUTOFMEMORY",
	FSRVP_E_BAD_STATE:                   "FSRVP_E_BAD_STATE",
	FSRVP_E_OBJECT_NOT_FOUND:            "FSRVP_E_OBJECT_NOT_FOUND",
	FSRVP_E_NOT_SUPPORTED:               "FSRVP_E_NOT_SUPPORTED",
	FSRVP_E_OBJECT_ALREADY_EXISTS:       "FSRVP_E_OBJECT_ALREADY_EXISTS",
	FSRVP_E_SHADOW_COPY_SET_IN_PROGRESS: "FSRVP_E_SHADOW_COPY_SET_IN_PROGRESS",
	FSRVP_E_UNSUPPORTED_CONTEXT:         "FSRVP_E_UNSUPPORTED_CONTEXT",
	FSSAGENT_E_TIMEOUT:                  "FSSAGENT_E_TIMEOUT",
	FSRVP_E_SHADOWCOPYSET_ID_MISMATCH:   "FSRVP_E_SHADOWCOPYSET_ID_MISMATCH",
	FSRVP_E_WAIT_TIMEOUT:                "FSRVP_E_WAIT_TIMEOUT",
	FSRVP_E_WAIT_FAILED:                 "FSRVP_E_WAIT_FAILED",
	VSS_E_UNEXPECTED_PROVIDER_ERROR:     "VSS_E_UNEXPECTED_PROVIDER_ERROR",
	VSS_E_INSUFFICIENT_STORAGE:          "VSS_E_INSUFFICIENT_STORAGE",
	VSS_E_UNEXPECTED:                    "VSS_E_UNEXPECTED",
}

func (h HResult) String() string {
	if n, ok := codeNames[h]; ok {
		return fmt.Sprintf("%s (0x%08X)", n, uint32(h))
	}
	return fmt.Sprintf("0x%08X", uint32(h))
}

// providerCode maps an error of the snapshot backend or the share exposer to
// the HRESULT the client sees, in one place.
func providerCode(err error) HResult {
	switch {
	case err == nil:
		return S_OK
	case errors.Is(err, storage.ErrNotSupported):
		return FSRVP_E_NOT_SUPPORTED
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, shares.ErrNotFound):
		return FSRVP_E_OBJECT_NOT_FOUND
	case errors.Is(err, storage.ErrAlreadyExists), errors.Is(err, shares.ErrExists):
		return FSRVP_E_OBJECT_ALREADY_EXISTS
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return VSS_E_INSUFFICIENT_STORAGE
	case errors.Is(err, syscall.ENOMEM):
		return E_OUTOFMEMORY
	default:
		return VSS_E_UNEXPECTED_PROVIDER_ERROR
	}
}
