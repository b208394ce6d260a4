package krb5

import (
	"encoding/asn1"
	"errors"
	"fmt"
)

// The Kerberos mechanism's object identifiers (RFC 1964 1, and the one
// Windows puts first in SPNEGO's mechTypes, MS-KILE 3.1.5.6).
var (
	OIDKerberos   = asn1.ObjectIdentifier{1, 2, 840, 113554, 1, 2, 2}
	OIDMSKerberos = asn1.ObjectIdentifier{1, 2, 840, 48018, 1, 2, 2}
)

// TOK_ID values of the innerToken (RFC 4121 4.1).
var (
	tokAPReq    = [2]byte{0x01, 0x00}
	tokAPRep    = [2]byte{0x02, 0x00}
	tokKRBError = [2]byte{0x03, 0x00}
)

// ASN.1 application tags of the Kerberos messages (RFC 4120 5.5).
const (
	tagAPReq = 0x6e // [APPLICATION 14]
	tagAPRep = 0x6f // [APPLICATION 15]
)

var errToken = errors.New("krb5: malformed token")

// derLength reads a DER length at b and returns it and the number of bytes
// it took. Lengths above 16 MiB are refused: no Kerberos token is that big.
func derLength(b []byte) (n, size int, err error) {
	if len(b) == 0 {
		return 0, 0, errToken
	}
	if b[0] < 0x80 {
		return int(b[0]), 1, nil
	}
	k := int(b[0] & 0x7f)
	if k == 0 || k > 3 || len(b) < 1+k {
		return 0, 0, errToken
	}
	for _, c := range b[1 : 1+k] {
		n = n<<8 | int(c)
	}
	if n < 0x80 {
		return 0, 0, errToken // not minimal
	}
	return n, 1 + k, nil
}

func derAppendLength(b []byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(b, byte(n))
	case n < 0x100:
		return append(b, 0x81, byte(n))
	case n < 0x10000:
		return append(b, 0x82, byte(n>>8), byte(n))
	default:
		return append(b, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
}

// UnwrapInitialToken takes a GSS InitialContextToken (RFC 2743 3.1:
// [APPLICATION 0] { thisMech OID, innerToken }) apart. It returns the
// mechanism OID, the two-byte TOK_ID and the Kerberos message after it.
func UnwrapInitialToken(b []byte) (asn1.ObjectIdentifier, [2]byte, []byte, error) {
	var id [2]byte
	if len(b) < 2 || b[0] != 0x60 {
		return nil, id, nil, errToken
	}
	n, size, err := derLength(b[1:])
	if err != nil || 1+size+n != len(b) {
		return nil, id, nil, fmt.Errorf("%w: outer length", errToken)
	}
	rest := b[1+size:]
	if len(rest) < 2 || rest[0] != 0x06 {
		return nil, id, nil, fmt.Errorf("%w: no mechanism OID", errToken)
	}
	on, osize, err := derLength(rest[1:])
	if err != nil || 1+osize+on > len(rest) {
		return nil, id, nil, fmt.Errorf("%w: OID length", errToken)
	}
	var oid asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(rest[:1+osize+on], &oid); err != nil {
		return nil, id, nil, fmt.Errorf("%w: OID: %v", errToken, err)
	}
	rest = rest[1+osize+on:]
	if len(rest) < 2 {
		return nil, id, nil, fmt.Errorf("%w: no TOK_ID", errToken)
	}
	copy(id[:], rest)
	return oid, id, rest[2:], nil
}

// WrapInitialToken frames a Kerberos message the way RFC 4121 4.1 does:
// [APPLICATION 0] { krb5 OID, TOK_ID, message }.
func WrapInitialToken(id [2]byte, msg []byte) []byte {
	oid, _ := asn1.Marshal(OIDKerberos)
	inner := make([]byte, 0, len(oid)+2+len(msg))
	inner = append(append(append(inner, oid...), id[:]...), msg...)
	out := derAppendLength([]byte{0x60}, len(inner))
	return append(out, inner...)
}

// isKerberosOID reports whether oid names the Kerberos mechanism.
func isKerberosOID(oid asn1.ObjectIdentifier) bool {
	return oid.Equal(OIDKerberos) || oid.Equal(OIDMSKerberos)
}

// splitAPReq accepts an AP-REQ either raw (DCE style, auth type 16) or in a
// GSS InitialContextToken, and tells which it was.
func splitAPReq(b []byte) (apreq []byte, framed bool, err error) {
	if len(b) == 0 {
		return nil, false, fmt.Errorf("%w: empty", errToken)
	}
	switch b[0] {
	case tagAPReq:
		return b, false, nil
	case 0x60:
		oid, id, msg, err := UnwrapInitialToken(b)
		if err != nil {
			return nil, false, err
		}
		if !isKerberosOID(oid) {
			return nil, false, fmt.Errorf("krb5: token for mechanism %v, not Kerberos", oid)
		}
		if id != tokAPReq {
			return nil, false, fmt.Errorf("krb5: token id %x, want an AP-REQ (0100)", id[:])
		}
		if len(msg) == 0 || msg[0] != tagAPReq {
			return nil, false, fmt.Errorf("%w: inner message is not an AP-REQ", errToken)
		}
		return msg, true, nil
	}
	return nil, false, fmt.Errorf("%w: first byte %#x is neither an AP-REQ nor a GSS token", errToken, b[0])
}

// splitAPRep accepts the client's DCE-style AP-REP, raw or framed.
func splitAPRep(b []byte) ([]byte, error) {
	if len(b) > 0 && b[0] == 0x60 {
		oid, id, msg, err := UnwrapInitialToken(b)
		if err != nil {
			return nil, err
		}
		if !isKerberosOID(oid) || id != tokAPRep {
			return nil, fmt.Errorf("%w: not a Kerberos AP-REP", errToken)
		}
		b = msg
	}
	if len(b) == 0 || b[0] != tagAPRep {
		return nil, fmt.Errorf("%w: not an AP-REP", errToken)
	}
	return b, nil
}
