package spnego

import (
	"bytes"
	"context"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/fsrvpd/fsrvpd/rpc"
	"github.com/fsrvpd/fsrvpd/rpc/auth/ntlm"
)

var (
	oidMSKRB5 = asn1.ObjectIdentifier{1, 2, 840, 48018, 1, 2, 2}
	oidKRB5   = asn1.ObjectIdentifier{1, 2, 840, 113554, 1, 2, 2}
)

// fakeMech completes after one token "hello" and answers "welcome"; it
// stands for Kerberos in tests of the generic selection.
type fakeMech struct{}

func (fakeMech) OIDs() []asn1.ObjectIdentifier { return []asn1.ObjectIdentifier{oidMSKRB5, oidKRB5} }
func (fakeMech) Name() string                  { return "Fake" }
func (fakeMech) NewContext(rpc.ConnInfo) (rpc.SecurityContext, error) {
	return &fakeCtx{}, nil
}

type fakeCtx struct{ done bool }

func (c *fakeCtx) Accept(_ context.Context, tok []byte) ([]byte, bool, error) {
	if string(tok) != "hello" {
		return nil, false, rpc.ErrAuthFailed
	}
	c.done = true
	return []byte("welcome"), true, nil
}
func (c *fakeCtx) Identity() *rpc.Identity   { return &rpc.Identity{User: "kuser", Mechanism: "Fake"} }
func (c *fakeCtx) SignatureSize(uint8) int   { return 0 }
func (c *fakeCtx) Wrap(*rpc.Message) error   { return nil }
func (c *fakeCtx) Unwrap(*rpc.Message) error { return nil }

func initToken(mechs []asn1.ObjectIdentifier, tok []byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.Tag(0x60), func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(OID)
		b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						for _, m := range mechs {
							b.AddASN1ObjectIdentifier(m)
						}
					})
				})
				if tok != nil {
					b.AddASN1(cbasn1.Tag(2).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) { b.AddASN1OctetString(tok) })
				}
			})
		})
	})
	return b.BytesOrPanic()
}

func ntlmNegotiate() []byte {
	b := make([]byte, 32)
	copy(b, "NTLMSSP\x00")
	binary.LittleEndian.PutUint32(b[8:], 1)
	binary.LittleEndian.PutUint32(b[12:], 0xe2088235)
	return b
}

func provider() *Provider {
	n := ntlm.NewProvider(ntlm.Config{Verifier: ntlm.NewAccounts(nil)})
	return NewProvider(fakeMech{}, n)
}

func TestSelectsClientsFirstCommonMechanism(t *testing.T) {
	// The client prefers the fake Kerberos: its optimistic token is used.
	sc, _ := provider().NewContext(rpc.ConnInfo{})
	reply, done, err := sc.Accept(context.Background(), initToken([]asn1.ObjectIdentifier{oidKRB5, ntlm.OID}, []byte("hello")))
	if err != nil || !done {
		t.Fatalf("Accept: %v %v", done, err)
	}
	r, err := ParseNegTokenResp(reply)
	if err != nil || r.NegState != acceptCompleted || !r.SupportedMech.Equal(oidKRB5) || string(r.ResponseToken) != "welcome" {
		t.Fatalf("reply %+v %v", r, err)
	}
	if id := sc.Identity(); id.User != "kuser" || id.Mechanism != "SPNEGO/Fake" {
		t.Errorf("identity %+v", id)
	}

	// NTLM first: its NEGOTIATE gets a CHALLENGE.
	sc, _ = provider().NewContext(rpc.ConnInfo{})
	reply, done, err = sc.Accept(context.Background(), initToken([]asn1.ObjectIdentifier{ntlm.OID, oidKRB5}, ntlmNegotiate()))
	if err != nil || done {
		t.Fatalf("Accept: %v %v", done, err)
	}
	if r, err = ParseNegTokenResp(reply); err != nil || r.NegState != acceptIncomplete || !r.SupportedMech.Equal(ntlm.OID) || !bytes.HasPrefix(r.ResponseToken, []byte("NTLMSSP\x00\x02")) {
		t.Fatalf("reply %+v %v", r, err)
	}

	// An unknown first mechanism: its optimistic token is dropped and
	// the chosen one (fake) asked for a token.
	sc, _ = provider().NewContext(rpc.ConnInfo{})
	reply, _, err = sc.Accept(context.Background(), initToken([]asn1.ObjectIdentifier{{1, 2, 3}, oidMSKRB5}, []byte("other")))
	if r, err = ParseNegTokenResp(reply); err != nil || r.NegState != acceptIncomplete || !r.SupportedMech.Equal(oidMSKRB5) || r.ResponseToken != nil {
		t.Fatalf("reply %+v %v", r, err)
	}
	// The fake has no MIC support, so no mechListMIC is needed.
	if _, done, err = sc.Accept(context.Background(), encodeResp(-1, nil, []byte("hello"), nil)); err != nil || !done {
		t.Fatalf("second leg: %v %v", done, err)
	}

	// Nothing in common.
	sc, _ = provider().NewContext(rpc.ConnInfo{})
	if _, _, err = sc.Accept(context.Background(), initToken([]asn1.ObjectIdentifier{{1, 2, 3}}, nil)); !errors.Is(err, rpc.ErrAuthFailed) {
		t.Errorf("no common mechanism: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	good := initToken([]asn1.ObjectIdentifier{ntlm.OID}, []byte{1})
	for i := range good {
		if _, err := ParseNegTokenInit(good[:i]); err == nil {
			t.Fatalf("truncated NegTokenInit (%d bytes) accepted", i)
		}
	}
	if _, err := ParseNegTokenInit(initToken(nil, nil)); err == nil {
		t.Error("empty mechTypes accepted")
	}
	r := encodeResp(acceptIncomplete, ntlm.OID, []byte("tok"), []byte("mic"))
	p, err := ParseNegTokenResp(r)
	if err != nil || p.NegState != acceptIncomplete || !p.SupportedMech.Equal(ntlm.OID) || string(p.ResponseToken) != "tok" || string(p.MechListMIC) != "mic" {
		t.Fatalf("round trip %+v %v", p, err)
	}
	// supportedMech is a bare OID ([1] OID), not wrapped in a SEQUENCE.
	if !bytes.Contains(r, []byte{0xa1, 0x0c, 0x06, 0x0a}) {
		t.Errorf("supportedMech encoding % x", r)
	}
}

// FuzzTokens feeds arbitrary first and second tokens to an acceptor with
// NTLM and a fake mechanism, and to the parsers.
//
//	go test ./rpc/auth/spnego -run '^$' -fuzz FuzzTokens -fuzztime 20s
func FuzzTokens(f *testing.F) {
	f.Add(initToken([]asn1.ObjectIdentifier{ntlm.OID}, ntlmNegotiate()), encodeResp(-1, nil, []byte("NTLMSSP\x00\x03\x00\x00\x00"), []byte("0123456789abcdef")))
	f.Add(initToken([]asn1.ObjectIdentifier{{1, 2, 3}, oidKRB5}, nil), encodeResp(-1, nil, []byte("hello"), nil))
	f.Add(initToken([]asn1.ObjectIdentifier{oidMSKRB5}, []byte("hello")), []byte{0xa1, 0})
	f.Fuzz(func(t *testing.T, first, second []byte) {
		ParseNegTokenInit(second)
		ParseNegTokenResp(first)
		sc, _ := provider().NewContext(rpc.ConnInfo{})
		if _, done, err := sc.Accept(context.Background(), first); err != nil || done {
			return
		}
		if _, done, err := sc.Accept(context.Background(), second); done && err == nil {
			if id := sc.Identity(); id == nil || id.User != "kuser" {
				t.Fatalf("established without credentials: %+v", id)
			}
		}
	})
}
