// Package krb5 is fsrvpd's Kerberos acceptor for DCE/RPC: auth type 16
// (RPC_C_AUTHN_GSS_KERBEROS) and the Kerberos mechanism inside SPNEGO
// (OIDs 1.2.840.113554.1.2.2 and Microsoft's 1.2.840.48018.1.2.2).
//
// The acceptor decrypts the AP-REQ with the service's keys from a keytab,
// checks the ticket's times and the authenticator (gokrb5's fork, the one
// go-msrpc depends on), reads the client's SIDs from the ticket's PAC
// (MS-PAC 2.5 KERB_VALIDATION_INFO: the domain groups, ExtraSids and
// resource groups) and answers with an AP-REP that carries a fresh acceptor
// subkey. Both exchanges are supported:
//
//   - DCE style (GSS_C_DCE_STYLE, MS-KILE 3.4.5.1 and 3.2.5.1): the client
//     sends a raw AP-REQ, the server answers with a raw AP-REP and the
//     client's third leg (auth3 or alter_context) is an AP-REP of its own,
//     encrypted in the session key and naming the server's sequence number;
//   - GSS-framed (RFC 4121 4.1): the AP-REQ in an InitialContextToken, one
//     reply (an AP-REP when the client asked for mutual authentication).
//
// Per-message protection is RFC 4121 4.2 (CFX tokens) with the DCE/RPC
// rules of MS-KILE 3.4.5.4 and 3.4.5.5: at integrity level a MIC token over
// the PDU's header, stub and sec_trailer; at privacy level a wrap token
// whose stub is encrypted in place and whose header and trailer are signed
// but left in clear (header signing), EC 16 and the DCE rotation by RRC+EC.
// Only the AES enctypes (17, 18) are accepted for it; RC4 and DES session
// keys are refused with an error.
package krb5
