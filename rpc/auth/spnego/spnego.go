package spnego

import (
	"context"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/fsrvpd/fsrvpd/rpc"
)

// OID is SPNEGO's object identifier (RFC 4178 §3).
var OID = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 2}

// negState values (RFC 4178 §4.2.2).
const (
	acceptCompleted  = 0
	acceptIncomplete = 1
	reject           = 2
)

// Provider is the rpc.AuthProvider for auth_type 9 over Mechanisms, in the
// server's order of preference only where the client leaves a choice: the
// client's order decides (RFC 4178 §3.2).
type Provider struct {
	Mechanisms []Mechanism
}

// NewProvider returns a provider negotiating among mechs.
func NewProvider(mechs ...Mechanism) *Provider {
	return &Provider{Mechanisms: mechs}
}

// AuthType implements rpc.AuthProvider.
func (p *Provider) AuthType() uint8 { return rpc.AuthTypeSPNEGO }

// NewContext implements rpc.AuthProvider.
func (p *Provider) NewContext(info rpc.ConnInfo) (rpc.SecurityContext, error) {
	return &Context{p: p, info: info}, nil
}

// Context is one SPNEGO acceptor context; after the exchange it delegates
// the per-PDU protection to the chosen mechanism's context.
type Context struct {
	p    *Provider
	info rpc.ConnInfo

	started   bool
	done      bool
	mech      Mechanism
	mechOID   asn1.ObjectIdentifier
	firstPick bool   // the chosen mechanism is the client's first
	mechTypes []byte // DER of the client's MechTypeList, for the mechListMIC
	inner     rpc.SecurityContext
	identity  *rpc.Identity
}

// Accept implements rpc.SecurityContext.
func (c *Context) Accept(ctx context.Context, token []byte) ([]byte, bool, error) {
	if c.done {
		return nil, false, errors.New("spnego: token after the context was established")
	}
	if !c.started {
		c.started = true
		init, err := ParseNegTokenInit(token)
		if err != nil {
			return nil, false, err
		}
		if err := c.choose(init.MechTypes); err != nil {
			return encodeResp(reject, nil, nil, nil), false, err
		}
		c.mechTypes = init.MechTypesDER
		if c.inner, err = c.mech.NewContext(c.info); err != nil {
			return nil, false, err
		}
		if !c.firstPick || init.MechToken == nil {
			// The optimistic token belongs to another mechanism: ask
			// for a token of the chosen one.
			return encodeResp(acceptIncomplete, c.mechOID, nil, nil), false, nil
		}
		return c.step(ctx, init.MechToken, init.MechListMIC, true)
	}
	resp, err := ParseNegTokenResp(token)
	if err != nil {
		return nil, false, err
	}
	if resp.NegState == reject {
		return nil, false, fmt.Errorf("%w: client rejected the negotiation", rpc.ErrAuthFailed)
	}
	return c.step(ctx, resp.ResponseToken, resp.MechListMIC, false)
}

// choose picks the first of the client's mechanisms that we serve.
func (c *Context) choose(client []asn1.ObjectIdentifier) error {
	for i, oid := range client {
		for _, m := range c.p.Mechanisms {
			for _, o := range m.OIDs() {
				if o.Equal(oid) {
					c.mech, c.mechOID, c.firstPick = m, oid, i == 0
					return nil
				}
			}
		}
	}
	names := make([]string, len(client))
	for i, o := range client {
		names[i] = o.String()
	}
	return fmt.Errorf("%w: no common mechanism among %s", rpc.ErrAuthFailed, strings.Join(names, ", "))
}

// step feeds a mechanism token and, once the mechanism is done, checks the
// client's mechListMIC and sends ours (RFC 4178 §5).
func (c *Context) step(ctx context.Context, tok, mic []byte, first bool) ([]byte, bool, error) {
	reply, done, err := c.inner.Accept(ctx, tok)
	if err != nil {
		return nil, false, err
	}
	var oid asn1.ObjectIdentifier
	if first {
		oid = c.mechOID
	}
	if !done {
		if mic != nil {
			return nil, false, errors.New("spnego: mechListMIC before the mechanism completed")
		}
		return encodeResp(acceptIncomplete, oid, reply, nil), false, nil
	}
	mc, canMIC := c.inner.(MICContext)
	var ourMIC []byte
	switch {
	case mic != nil && !canMIC:
		return nil, false, fmt.Errorf("spnego: %s cannot check the mechListMIC", c.mech.Name())
	case mic != nil:
		if err := mc.VerifyMIC(c.mechTypes, mic); err != nil {
			return nil, false, err
		}
		if ourMIC, err = mc.MakeMIC(c.mechTypes); err != nil {
			return nil, false, err
		}
	case !c.firstPick && canMIC:
		// The client's preferred mechanism was passed over: without the
		// MIC a downgrade could not be told apart (RFC 4178 §5).
		return nil, false, fmt.Errorf("%w: mechListMIC missing after choosing %s", rpc.ErrAuthFailed, c.mech.Name())
	}
	c.done = true
	id := c.inner.Identity()
	if id != nil {
		cp := *id
		cp.Mechanism = "SPNEGO/" + c.mech.Name()
		id = &cp
	}
	c.identity = id
	return encodeResp(acceptCompleted, oid, reply, ourMIC), true, nil
}

// Identity implements rpc.SecurityContext.
func (c *Context) Identity() *rpc.Identity { return c.identity }

// SignatureSize implements rpc.SecurityContext.
func (c *Context) SignatureSize(level uint8) int { return c.inner.SignatureSize(level) }

// Wrap implements rpc.SecurityContext with the chosen mechanism.
func (c *Context) Wrap(m *rpc.Message) error {
	if !c.done {
		return errors.New("spnego: context not established")
	}
	return c.inner.Wrap(m)
}

// Unwrap implements rpc.SecurityContext with the chosen mechanism.
func (c *Context) Unwrap(m *rpc.Message) error {
	if !c.done {
		return errors.New("spnego: context not established")
	}
	return c.inner.Unwrap(m)
}

// NegTokenInit is the client's first token (RFC 4178 §4.2.1; MS-SPNG's
// NegTokenInit2 differs only in fields a client does not send).
type NegTokenInit struct {
	MechTypes    []asn1.ObjectIdentifier
	MechTypesDER []byte // the MechTypeList as sent, for the mechListMIC
	MechToken    []byte // nil if absent
	MechListMIC  []byte // nil if absent
}

var errMalformed = errors.New("spnego: malformed token")

// ParseNegTokenInit parses an InitialContextToken carrying a NegTokenInit
// (RFC 2743 §3.1: [APPLICATION 0] { thisMech OID, innerToken }).
func ParseNegTokenInit(b []byte) (*NegTokenInit, error) {
	in := cryptobyte.String(b)
	var app, tok, seq cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !in.ReadASN1(&app, cbasn1.Tag(0x60)) || !in.Empty() ||
		!app.ReadASN1ObjectIdentifier(&oid) || !oid.Equal(OID) ||
		!app.ReadASN1(&tok, cbasn1.Tag(0).ContextSpecific().Constructed()) || !app.Empty() ||
		!tok.ReadASN1(&seq, cbasn1.SEQUENCE) || !tok.Empty() {
		return nil, fmt.Errorf("%w: not a NegTokenInit", errMalformed)
	}
	t := &NegTokenInit{}
	var types cryptobyte.String
	if !seq.ReadASN1(&types, cbasn1.Tag(0).ContextSpecific().Constructed()) {
		return nil, fmt.Errorf("%w: NegTokenInit without mechTypes", errMalformed)
	}
	t.MechTypesDER = append([]byte(nil), types...)
	var list cryptobyte.String
	if !types.ReadASN1(&list, cbasn1.SEQUENCE) || !types.Empty() {
		return nil, fmt.Errorf("%w: bad MechTypeList", errMalformed)
	}
	for !list.Empty() {
		var o asn1.ObjectIdentifier
		if !list.ReadASN1ObjectIdentifier(&o) {
			return nil, fmt.Errorf("%w: bad mechanism OID", errMalformed)
		}
		t.MechTypes = append(t.MechTypes, o)
	}
	if len(t.MechTypes) == 0 {
		return nil, fmt.Errorf("%w: empty MechTypeList", errMalformed)
	}
	// [1] reqFlags (ignored), [2] mechToken, [3] mechListMIC.
	if !seq.SkipOptionalASN1(cbasn1.Tag(1).ContextSpecific().Constructed()) {
		return nil, fmt.Errorf("%w: bad reqFlags", errMalformed)
	}
	var err error
	if t.MechToken, err = optionalOctets(&seq, 2); err != nil {
		return nil, err
	}
	if t.MechListMIC, err = optionalOctets(&seq, 3); err != nil {
		return nil, err
	}
	if !seq.Empty() {
		return nil, fmt.Errorf("%w: trailing NegTokenInit fields", errMalformed)
	}
	return t, nil
}

// NegTokenResp is a NegTokenResp (RFC 4178 §4.2.2).
type NegTokenResp struct {
	NegState      int // -1 if absent
	SupportedMech asn1.ObjectIdentifier
	ResponseToken []byte // nil if absent
	MechListMIC   []byte // nil if absent
}

// ParseNegTokenResp parses a NegotiationToken carrying a NegTokenResp
// ([1] SEQUENCE {...}).
func ParseNegTokenResp(b []byte) (*NegTokenResp, error) {
	in := cryptobyte.String(b)
	var tok, seq cryptobyte.String
	if !in.ReadASN1(&tok, cbasn1.Tag(1).ContextSpecific().Constructed()) || !in.Empty() ||
		!tok.ReadASN1(&seq, cbasn1.SEQUENCE) || !tok.Empty() {
		return nil, fmt.Errorf("%w: not a NegTokenResp", errMalformed)
	}
	r := &NegTokenResp{NegState: -1}
	var f cryptobyte.String
	var present bool
	if !seq.ReadOptionalASN1(&f, &present, cbasn1.Tag(0).ContextSpecific().Constructed()) {
		return nil, fmt.Errorf("%w: bad negState", errMalformed)
	}
	if present {
		var st cryptobyte.String
		if !f.ReadASN1(&st, cbasn1.ENUM) || len(st) != 1 || !f.Empty() {
			return nil, fmt.Errorf("%w: bad negState", errMalformed)
		}
		r.NegState = int(st[0])
	}
	if !seq.ReadOptionalASN1(&f, &present, cbasn1.Tag(1).ContextSpecific().Constructed()) {
		return nil, fmt.Errorf("%w: bad supportedMech", errMalformed)
	}
	if present {
		if !f.ReadASN1ObjectIdentifier(&r.SupportedMech) || !f.Empty() {
			return nil, fmt.Errorf("%w: bad supportedMech", errMalformed)
		}
	}
	var err error
	if r.ResponseToken, err = optionalOctets(&seq, 2); err != nil {
		return nil, err
	}
	if r.MechListMIC, err = optionalOctets(&seq, 3); err != nil {
		return nil, err
	}
	if !seq.Empty() {
		return nil, fmt.Errorf("%w: trailing NegTokenResp fields", errMalformed)
	}
	return r, nil
}

// optionalOctets reads [tag] OCTET STRING OPTIONAL; nil if absent.
func optionalOctets(s *cryptobyte.String, tag uint8) ([]byte, error) {
	var f, v cryptobyte.String
	var present bool
	if !s.ReadOptionalASN1(&f, &present, cbasn1.Tag(tag).ContextSpecific().Constructed()) {
		return nil, fmt.Errorf("%w: bad field [%d]", errMalformed, tag)
	}
	if !present {
		return nil, nil
	}
	if !f.ReadASN1(&v, cbasn1.OCTET_STRING) || !f.Empty() {
		return nil, fmt.Errorf("%w: field [%d] is not an OCTET STRING", errMalformed, tag)
	}
	return append([]byte{}, v...), nil
}

// encodeResp encodes a NegTokenResp. supportedMech is a bare OID (RFC
// 4178; go-msrpc wraps it in a SEQUENCE, which Samba refuses).
func encodeResp(state int, mech asn1.ObjectIdentifier, tok, mic []byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.Tag(1).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.ENUM, func(b *cryptobyte.Builder) { b.AddUint8(uint8(state)) })
			})
			if mech != nil {
				b.AddASN1(cbasn1.Tag(1).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(mech)
				})
			}
			if tok != nil {
				b.AddASN1(cbasn1.Tag(2).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
					b.AddASN1OctetString(tok)
				})
			}
			if mic != nil {
				b.AddASN1(cbasn1.Tag(3).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
					b.AddASN1OctetString(mic)
				})
			}
		})
	})
	return b.BytesOrPanic()
}
