package ntlm

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strings"

	"golang.org/x/crypto/md4" //nolint:staticcheck // MD4 is what NTOWF is made of (MS-NLMP §3.3.1)

	"github.com/fsrvpd/fsrvpd/rpc"
)

// Account is a local account with its NT hash (NTOWFv1: MD4 of the UTF-16LE
// password, the value Samba's smbpasswd stores).
type Account struct {
	// User is the account name; matched case-insensitively.
	User string
	// Domain, when set, must match the domain the client sends
	// (case-insensitively); empty accepts any domain, as a standalone
	// Samba server does.
	Domain string
	// NTHash is the account's NT hash.
	NTHash [16]byte
	// SIDs are the account's SID and groups, handed on in rpc.Identity
	// (e.g. rpc.SIDBackupOperators for an account allowed to back up).
	SIDs []string
}

// NTHash returns the NT hash of a password.
func NTHash(password string) [16]byte {
	h := md4.New()
	h.Write(toUTF16(password))
	var out [16]byte
	copy(out[:], h.Sum(nil))
	return out
}

// ParseNTHash decodes a 32-digit hexadecimal NT hash.
func ParseNTHash(s string) ([16]byte, error) {
	var out [16]byte
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != 16 {
		return out, fmt.Errorf("ntlm: an NT hash is 32 hexadecimal digits")
	}
	copy(out[:], b)
	return out, nil
}

// Accounts is a Verifier over a fixed list of accounts (the daemon's
// configuration). It verifies NTLMv2 responses only.
type Accounts struct {
	list []Account
}

// NewAccounts returns a Verifier for list.
func NewAccounts(list []Account) *Accounts {
	return &Accounts{list: append([]Account(nil), list...)}
}

func (a *Accounts) lookup(user, domain string) *Account {
	for i := range a.list {
		acc := &a.list[i]
		if strings.EqualFold(acc.User, user) && (acc.Domain == "" || equalFoldDomain(acc.Domain, domain)) {
			return acc
		}
	}
	return nil
}

// Verify implements Verifier (MS-NLMP §3.3.2 NTLMv2). NTOWFv2 is keyed
// with the domain the client sent, then with it in upper case, then with
// none, as Samba's ntlm_password_check tries them.
func (a *Accounts) Verify(_ context.Context, r *Response) (*rpc.Identity, []byte, error) {
	acc := a.lookup(r.User, r.Domain)
	if acc == nil {
		return nil, nil, fmt.Errorf("%w: unknown account %q", rpc.ErrAuthFailed, r.User)
	}
	if len(r.NTResponse) < 16+28 {
		return nil, nil, fmt.Errorf("%w: not an NTLMv2 response", rpc.ErrAuthFailed)
	}
	for _, dom := range []string{r.Domain, strings.ToUpper(r.Domain), ""} {
		if key := NTLMv2SessionKey(acc.NTHash, r.User, dom, r.ServerChallenge, r.NTResponse); key != nil {
			id := &rpc.Identity{User: acc.User, Domain: r.Domain, Workstation: r.Workstation, SIDs: append([]string(nil), acc.SIDs...)}
			if acc.Domain != "" {
				id.Domain = acc.Domain
			}
			return id, key, nil
		}
		if dom == "" {
			break
		}
	}
	return nil, nil, fmt.Errorf("%w: wrong password for %q", rpc.ErrAuthFailed, r.User)
}

// NTLMv2SessionKey checks an NTLMv2 response against ntHash and returns
// the SessionBaseKey, or nil if it does not match (MS-NLMP §3.3.2).
func NTLMv2SessionKey(ntHash [16]byte, user, domain string, challenge [8]byte, ntResponse []byte) []byte {
	if len(ntResponse) < 16 {
		return nil
	}
	m := hmac.New(md5.New, ntHash[:])
	m.Write(toUTF16(strings.ToUpper(user) + domain))
	responseKey := m.Sum(nil)
	m = hmac.New(md5.New, responseKey)
	m.Write(challenge[:])
	m.Write(ntResponse[16:])
	proof := m.Sum(nil)
	if !hmac.Equal(proof, ntResponse[:16]) {
		return nil
	}
	m = hmac.New(md5.New, responseKey)
	m.Write(proof)
	return m.Sum(nil)
}
