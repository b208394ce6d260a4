package krb5

import (
	"context"
	"encoding/asn1"
	"errors"
	"fmt"

	"github.com/fsrvpd/fsrvpd/rpc"
)

// Provider is the rpc.AuthProvider for auth type 16 and, through OIDs,
// Name and NewContext, a Mechanism of package rpc/auth/spnego.
type Provider struct {
	Acceptor *Acceptor
}

// NewProvider wraps an Acceptor.
func NewProvider(a *Acceptor) *Provider { return &Provider{Acceptor: a} }

// AuthType implements rpc.AuthProvider.
func (p *Provider) AuthType() uint8 { return rpc.AuthTypeKerberos }

// OIDs lists Microsoft's Kerberos OID first, as Windows does.
func (p *Provider) OIDs() []asn1.ObjectIdentifier {
	return []asn1.ObjectIdentifier{OIDMSKerberos, OIDKerberos}
}

// Name implements spnego.Mechanism.
func (p *Provider) Name() string { return "Kerberos" }

// NewContext implements rpc.AuthProvider and spnego.Mechanism.
func (p *Provider) NewContext(rpc.ConnInfo) (rpc.SecurityContext, error) {
	return &rpcContext{c: p.Acceptor.NewContext()}, nil
}

// rpcContext adapts Context to rpc.SecurityContext.
type rpcContext struct {
	c  *Context
	id *rpc.Identity
}

func (r *rpcContext) Accept(_ context.Context, tok []byte) ([]byte, bool, error) {
	out, done, err := r.c.Accept(tok)
	if err != nil {
		// A ticket we cannot decrypt, an expired or replayed one: the
		// client is refused (RFC 4120 3.2.3 errors are credential errors).
		return nil, false, fmt.Errorf("%w: %v", rpc.ErrAuthFailed, err)
	}
	if done {
		id := r.c.Identity()
		domain := id.Domain
		if domain == "" {
			domain = id.Realm
		}
		r.id = &rpc.Identity{User: id.User, Domain: domain, SIDs: append([]string(nil), id.SIDs...), Mechanism: "Kerberos"}
	}
	return out, done, nil
}

func (r *rpcContext) Identity() *rpc.Identity { return r.id }

// SignatureSize depends on the level: a MIC token at integrity, a wrap
// token at privacy.
func (r *rpcContext) SignatureSize(level uint8) int {
	if level == rpc.AuthLevelPrivacy {
		return r.c.SealSize()
	}
	return r.c.SignatureSize()
}

// parts splits a PDU as MS-RPCE 2.2.2.11 and MS-KILE 3.4.5.4 want it: with
// header signing the header and the sec_trailer are signed too; without,
// only the stub and its padding.
func parts(m *rpc.Message, seal bool) ([]Part, error) {
	if !m.HeaderSign {
		return []Part{{B: m.Body, Seal: seal}}, nil
	}
	start := len(m.PDU) - 8 - len(m.Body)
	if start < 0 || len(m.PDU) < 8 {
		return nil, errors.New("krb5: PDU shorter than its body and trailer")
	}
	return []Part{{B: m.PDU[:start]}, {B: m.Body, Seal: seal}, {B: m.PDU[len(m.PDU)-8:]}}, nil
}

func (r *rpcContext) Wrap(m *rpc.Message) error {
	p, err := parts(m, m.Level == rpc.AuthLevelPrivacy)
	if err != nil {
		return err
	}
	var sig []byte
	if m.Level == rpc.AuthLevelPrivacy {
		sig, err = r.c.Seal(p...)
	} else {
		sig, err = r.c.Sign(p...)
	}
	if err != nil {
		return err
	}
	if len(sig) != len(m.Signature) {
		return fmt.Errorf("krb5: token of %d bytes for a %d-byte auth_value", len(sig), len(m.Signature))
	}
	copy(m.Signature, sig)
	return nil
}

func (r *rpcContext) Unwrap(m *rpc.Message) error {
	p, err := parts(m, m.Level == rpc.AuthLevelPrivacy)
	if err != nil {
		return err
	}
	if m.Level == rpc.AuthLevelPrivacy {
		return r.c.Unseal(m.Signature, p...)
	}
	return r.c.Verify(m.Signature, p...)
}

// VerifyMIC and MakeMIC serve SPNEGO's mechListMIC (spnego.MICContext).
func (r *rpcContext) VerifyMIC(msg, mic []byte) error { return r.c.Verify(mic, Part{B: msg}) }

func (r *rpcContext) MakeMIC(msg []byte) ([]byte, error) { return r.c.Sign(Part{B: msg}) }
