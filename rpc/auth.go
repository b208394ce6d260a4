package rpc

// auth.go: the plug-in interfaces for DCE/RPC authentication (MS-RPCE
// §2.2.2.11, §3.3.1.5.2) and the authenticated identity. The runtime side
// (verifier exchange and per-PDU protection) is in authconn.go.

import (
	"context"
	"errors"
	"strings"
)

// Authentication types (MS-RPCE §2.2.1.1.7). The runtime accepts the types
// of the configured AuthProviders.
const (
	AuthTypeNone     uint8 = 0
	AuthTypeSPNEGO   uint8 = 9  // RPC_C_AUTHN_GSS_NEGOTIATE
	AuthTypeNTLM     uint8 = 10 // RPC_C_AUTHN_WINNT
	AuthTypeKerberos uint8 = 16 // RPC_C_AUTHN_GSS_KERBEROS
)

// Authentication levels (MS-RPCE §2.2.1.1.8). The runtime serves connect,
// integrity and privacy; call and packet (3, 4) are refused at bind as
// Samba does, none (1) is the unauthenticated connection.
const (
	AuthLevelNone      uint8 = 1
	AuthLevelConnect   uint8 = 2
	AuthLevelCall      uint8 = 3
	AuthLevelPkt       uint8 = 4
	AuthLevelIntegrity uint8 = 5 // RPC_C_AUTHN_LEVEL_PKT_INTEGRITY, "sign"
	AuthLevelPrivacy   uint8 = 6 // RPC_C_AUTHN_LEVEL_PKT_PRIVACY, "seal"
)

// AuthLevelName returns "none", "connect", "integrity", "privacy", ...
func AuthLevelName(level uint8) string {
	switch level {
	case 0, AuthLevelNone:
		return "none"
	case AuthLevelConnect:
		return "connect"
	case AuthLevelCall:
		return "call"
	case AuthLevelPkt:
		return "packet"
	case AuthLevelIntegrity:
		return "integrity"
	case AuthLevelPrivacy:
		return "privacy"
	}
	return "unknown"
}

// An AuthProvider is a security provider for one auth_type. The Server
// looks providers up by the auth_type of a bind's sec_trailer and creates
// one SecurityContext per auth_context_id of a connection.
type AuthProvider interface {
	// AuthType is the auth_type the provider serves (AuthTypeNTLM, ...).
	AuthType() uint8
	// NewContext returns a fresh acceptor context for a connection
	// described by info. It is called from the connection's read loop.
	NewContext(info ConnInfo) (SecurityContext, error)
}

// A SecurityContext is the acceptor side of one security context. The
// runtime calls Accept with every token the client sends (in bind,
// alter_context and auth3) until it reports done; after that it calls
// SignatureSize, Wrap and Unwrap for every protected PDU. Wrap and Unwrap
// are called in the order the PDUs travel (responses are signed in the
// order they are written), never concurrently with each other in one
// direction; a context keeps its own sequence numbers.
type SecurityContext interface {
	// Accept consumes one token from the client and returns the token to
	// send back (nil for none) and whether the context is established.
	// An error ends the exchange: the client is refused. Errors wrapping
	// ErrAuthFailed are credential failures (wrong password, unknown
	// account), anything else is a malformed or unexpected token.
	Accept(ctx context.Context, token []byte) (reply []byte, done bool, err error)
	// Identity is the authenticated client; valid once Accept reported
	// done. The runtime shares it among calls: it must not change.
	Identity() *Identity
	// SignatureSize is the length of the auth_value of a PDU protected at
	// level, AuthLevelIntegrity or AuthLevelPrivacy (16 for NTLM at
	// both; a Kerberos MIC token and wrap token differ).
	SignatureSize(level uint8) int
	// Wrap protects an outgoing PDU: at AuthLevelIntegrity it writes the
	// signature into m.Signature; at AuthLevelPrivacy it also encrypts
	// m.Body in place.
	Wrap(m *Message) error
	// Unwrap checks an incoming PDU: it verifies m.Signature (and the
	// sequence number: a replayed or reordered PDU fails) and at
	// AuthLevelPrivacy decrypts m.Body in place first. Any error closes
	// the connection.
	Unwrap(m *Message) error
}

// Message is one PDU to protect or check (MS-RPCE §2.2.2.11-12). PDU is the
// whole fragment without its auth_value: the 16-byte header, the request or
// response header, the stub, the auth padding and the 8-byte sec_trailer.
// Body is the part of PDU that is encrypted at AuthLevelPrivacy: the stub
// and its padding (it aliases PDU). Signature is the auth_value.
//
// Which parts the signature covers is the mechanism's business: NTLMSSP
// always signs the whole PDU (as Windows and Samba do); a GSS mechanism
// signs the header and the sec_trailer only when HeaderSign is set.
type Message struct {
	Level      uint8 // AuthLevelIntegrity or AuthLevelPrivacy
	HeaderSign bool  // PFC_SUPPORT_HEADER_SIGN was negotiated at bind
	PDU        []byte
	Body       []byte
	Signature  []byte
}

// ErrAuthFailed marks credential failures reported by a SecurityContext or
// a credential source: unknown account, wrong password, disabled account.
// The runtime logs them at Info without details that could help guessing.
var ErrAuthFailed = errors.New("rpc: authentication failed")

// Identity is the client authenticated by a security provider: who, and the
// groups authorization looks at. It is shared by every call of the security
// context; do not modify it.
type Identity struct {
	// User and Domain are the account and its domain as the credential
	// source resolved them (not necessarily as the client typed them).
	User, Domain string
	// Workstation is the client's machine name, when the mechanism carries
	// one (NTLM does).
	Workstation string
	// SIDs are the user's SID followed by its group SIDs, as known to the
	// credential source (config accounts, winbind, a Kerberos PAC). Empty
	// when the source knows none.
	SIDs []string
	// Mechanism names the mechanism that authenticated the client, e.g.
	// "NTLM" or "SPNEGO/NTLM" or "SPNEGO/Kerberos".
	Mechanism string
}

// String returns DOMAIN\user for logs.
func (id *Identity) String() string {
	if id == nil {
		return ""
	}
	if id.Domain == "" {
		return id.User
	}
	return id.Domain + `\` + id.User
}

// HasSID reports whether sid is among the identity's SIDs (case-insensitive).
func (id *Identity) HasSID(sid string) bool {
	if id == nil {
		return false
	}
	for _, x := range id.SIDs {
		if strings.EqualFold(x, sid) {
			return true
		}
	}
	return false
}

// IsBackupCapable is the authorization rule of Session.IsBackupCapable for
// an RPC-authenticated client: a member of Administrators or Backup
// Operators, or of one of extraSIDs. A nil Identity is never capable.
func (id *Identity) IsBackupCapable(extraSIDs ...string) bool {
	if id == nil {
		return false
	}
	if id.HasSID(SIDAdministrators) || id.HasSID(SIDBackupOperators) {
		return true
	}
	for _, x := range extraSIDs {
		if x != "" && id.HasSID(x) {
			return true
		}
	}
	return false
}
