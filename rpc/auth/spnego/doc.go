// Package spnego is an SPNEGO acceptor (RFC 4178, MS-SPNG) for the rpc
// runtime (auth_type 9, RPC_C_AUTHN_GSS_NEGOTIATE). It negotiates one of
// its Mechanisms (NTLM, Kerberos, ...) from the client's NegTokenInit,
// relays the mechanism's tokens in NegTokenResp, and checks and sends the
// mechListMIC. After the exchange the chosen mechanism's context protects
// the PDUs.
package spnego
