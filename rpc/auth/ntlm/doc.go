// Package ntlm is an NTLMSSP acceptor (MS-NLMP) for the rpc runtime:
// NEGOTIATE → CHALLENGE → AUTHENTICATE with NTLMv2 responses, extended
// session security, key exchange, and the DCE/RPC per-PDU signature and
// sealing (MS-NLMP §3.4). It is written here rather than taken from
// go-msrpc's ssp/ntlm, whose acceptor computes NTOWFv2 with the stored
// account's domain, rejects clients that send no MIC and never checks a
// sealed message's signature (see /work/shared/research/go-ecosystem.md
// §1.4); only cryptographic primitives come from libraries.
//
// Who may log on is decided by a Verifier (a credential source): Accounts
// checks NT hashes from the configuration; other sources (winbind) plug
// in through the same interface.
package ntlm
