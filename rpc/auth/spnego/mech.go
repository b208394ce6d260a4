package spnego

import (
	"encoding/asn1"

	"github.com/fsrvpd/fsrvpd/rpc"
)

// Mechanism is a GSS mechanism that SPNEGO can negotiate (RFC 4178): NTLM
// (package rpc/auth/ntlm's Mechanism) or Kerberos. The SPNEGO acceptor
// chooses the first of the client's mechTypes that one of its Mechanisms
// claims, and then drives that Mechanism's context with the inner tokens.
type Mechanism interface {
	// OIDs are the object identifiers the mechanism answers to, the
	// preferred one first (Kerberos: 1.2.840.48018.1.2.2 (MS KRB5) and
	// 1.2.840.113554.1.2.2). The chosen one is echoed as supportedMech.
	OIDs() []asn1.ObjectIdentifier
	// Name is a short name for logs and rpc.Identity.Mechanism ("NTLM").
	Name() string
	// NewContext returns a fresh acceptor context. Its Accept gets the
	// mechanism's own tokens (SPNEGO framing removed); Wrap, Unwrap and
	// SignatureSize are used for the RPC PDUs unchanged.
	NewContext(info rpc.ConnInfo) (rpc.SecurityContext, error)
}

// MICContext is implemented by mechanism contexts that support
// per-message integrity (GSS_GetMIC / GSS_VerifyMIC), which SPNEGO needs
// for the mechListMIC (RFC 4178 §5). A context without it is used only
// when the client sends no mechListMIC.
type MICContext interface {
	// VerifyMIC checks the client's mechListMIC over msg (the DER encoding
	// of the client's MechTypeList).
	VerifyMIC(msg, mic []byte) error
	// MakeMIC returns the acceptor's mechListMIC over msg.
	MakeMIC(msg []byte) ([]byte, error)
}
