package ntlm

import (
	"context"

	"github.com/fsrvpd/fsrvpd/rpc"
)

// Verifier is a credential source: it checks an NTLM response and returns
// who the client is and the session base key (MS-NLMP §3.3.2:
// SessionBaseKey, 16 bytes) from which the signing and sealing keys are
// derived. The acceptor has already parsed and bounds-checked the
// AUTHENTICATE message; a Verifier only does the cryptographic check (or
// asks someone who can, e.g. winbind through `ntlm_auth
// --helper-protocol=ntlm-server-1` with Request-User-Session-Key, or a
// domain controller).
//
// A credential failure (unknown user, wrong password) must wrap
// rpc.ErrAuthFailed. Verify must not log the responses or the key.
type Verifier interface {
	Verify(ctx context.Context, r *Response) (id *rpc.Identity, sessionBaseKey []byte, err error)
}

// Response is what the client sent in its AUTHENTICATE message (MS-NLMP
// §2.2.1.3), decoded to UTF-8 where it is text.
type Response struct {
	// User, Domain and Workstation as the client sent them.
	User, Domain, Workstation string
	// ServerChallenge is the challenge of our CHALLENGE message.
	ServerChallenge [8]byte
	// NTResponse is NtChallengeResponse: for NTLMv2 the 16-byte NTProofStr
	// followed by the client's blob (which embeds the target info we sent);
	// LMResponse is LmChallengeResponse (LMv2: 24 bytes, or zeros).
	NTResponse, LMResponse []byte
}
