package ntlm

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/rc4"
	"crypto/subtle"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fsrvpd/fsrvpd/rpc"
)

// OID is the NTLMSSP mechanism's object identifier (MS-NLMP §1.9), as
// SPNEGO names it.
var OID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 2, 10}

// Config configures the acceptor.
type Config struct {
	// ServerName is the NetBIOS name of this server (MsvAvNbComputerName);
	// DomainName its NetBIOS domain or workgroup (MsvAvNbDomainName and
	// the CHALLENGE's TargetName). Empty: "FSRVPD" and "WORKGROUP".
	ServerName, DomainName string
	// DNSComputerName and DNSDomainName are sent when set.
	DNSComputerName, DNSDomainName string
	// Verifier checks the responses. Required.
	Verifier Verifier
}

// Provider is the rpc.AuthProvider for auth_type 10 (RPC_C_AUTHN_WINNT);
// it also serves as the NTLM spnego.Mechanism.
type Provider struct {
	Config
}

// NewProvider returns a provider; it panics without a Verifier.
func NewProvider(cfg Config) *Provider {
	if cfg.Verifier == nil {
		panic("ntlm: NewProvider without a Verifier")
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "FSRVPD"
	}
	if cfg.DomainName == "" {
		cfg.DomainName = "WORKGROUP"
	}
	return &Provider{Config: cfg}
}

// AuthType implements rpc.AuthProvider.
func (p *Provider) AuthType() uint8 { return rpc.AuthTypeNTLM }

// OIDs implements spnego.Mechanism.
func (p *Provider) OIDs() []asn1.ObjectIdentifier { return []asn1.ObjectIdentifier{OID} }

// Name implements spnego.Mechanism.
func (p *Provider) Name() string { return "NTLM" }

// NewContext implements rpc.AuthProvider and spnego.Mechanism.
func (p *Provider) NewContext(rpc.ConnInfo) (rpc.SecurityContext, error) {
	return &Context{cfg: &p.Config}, nil
}

// SignatureSize is the size of an NTLMSSP message signature (§2.2.2.9).
const SignatureSize = 16

// Context is one NTLMSSP acceptor context. It implements
// rpc.SecurityContext and spnego.MICContext.
type Context struct {
	cfg   *Config
	state int // 0: want NEGOTIATE, 1: want AUTHENTICATE, 2: done

	negotiate, challenge []byte
	flags                uint32
	serverChallenge      [8]byte
	identity             *rpc.Identity

	// Session security (MS-NLMP §3.4), established at done.
	sendSign, recvSign []byte
	sendSeal, recvSeal []byte // seal keys, kept to reset the RC4 handles
	send, recv         *rc4.Cipher
	sendSeq, recvSeq   uint32
}

// Accept implements rpc.SecurityContext: NEGOTIATE gets a CHALLENGE,
// AUTHENTICATE completes the context (MS-NLMP §3.2.5).
func (c *Context) Accept(ctx context.Context, token []byte) ([]byte, bool, error) {
	switch c.state {
	case 0:
		n, err := parseNegotiate(token)
		if err != nil {
			return nil, false, err
		}
		c.negotiate = append([]byte(nil), token...)
		c.flags, err = c.chooseFlags(n.flags)
		if err != nil {
			return nil, false, err
		}
		if _, err := rand.Read(c.serverChallenge[:]); err != nil {
			return nil, false, err
		}
		c.challenge = challengeMsg(c.flags, c.cfg.DomainName, c.serverChallenge, c.targetInfo())
		c.state = 1
		return c.challenge, false, nil
	case 1:
		if err := c.authenticate(ctx, token); err != nil {
			return nil, false, err
		}
		c.state = 2
		return nil, true, nil
	}
	return nil, false, errors.New("ntlm: token after the context was established")
}

// chooseFlags answers the client's NEGOTIATE flags (MS-NLMP §3.2.5.1.1).
// Unicode and extended session security are required: NTLMv1 session
// security and OEM strings are not offered.
func (c *Context) chooseFlags(client uint32) (uint32, error) {
	if client&flagUnicode == 0 {
		return 0, malformed("client does not offer Unicode")
	}
	if client&flagESS == 0 {
		return 0, fmt.Errorf("%w: client does not offer extended session security (NTLMv1 only)", rpc.ErrAuthFailed)
	}
	f := flagUnicode | flagNTLM | flagESS | flagTargetInfo | flagVersion | flagTargetTypeDomain | flagRequestTarget
	f |= client & (flagSign | flagSeal | flagAlwaysSign | flag128 | flag56 | flagKeyExch)
	return f, nil
}

func (c *Context) targetInfo() []byte {
	var ts [8]byte
	binary.LittleEndian.PutUint64(ts[:], fileTime(time.Now()))
	var b []byte
	b = appendAV(b, avNbDomainName, toUTF16(c.cfg.DomainName))
	b = appendAV(b, avNbComputerName, toUTF16(c.cfg.ServerName))
	if c.cfg.DNSDomainName != "" {
		b = appendAV(b, avDNSDomainName, toUTF16(c.cfg.DNSDomainName))
	}
	if c.cfg.DNSComputerName != "" {
		b = appendAV(b, avDNSComputerName, toUTF16(c.cfg.DNSComputerName))
	}
	// A timestamp makes clients send a MIC (MS-NLMP §3.1.5.1.2).
	b = appendAV(b, avTimestamp, ts[:])
	return appendAV(b, avEOL, nil)
}

// fileTime converts t to 100 ns ticks since 1601.
func fileTime(t time.Time) uint64 {
	return uint64(t.UnixNano()/100) + 116444736000000000
}

// authenticate checks the AUTHENTICATE message (MS-NLMP §3.2.5.1.2).
func (c *Context) authenticate(ctx context.Context, token []byte) error {
	a, err := parseAuthenticate(token)
	if err != nil {
		return err
	}
	if a.user == "" && len(a.nt) == 0 {
		return fmt.Errorf("%w: anonymous logon", rpc.ErrAuthFailed)
	}
	if len(a.nt) <= 24 {
		return fmt.Errorf("%w: NTLMv1 response from %s\\%s refused", rpc.ErrAuthFailed, a.domain, a.user)
	}
	// The client's copy of our target info, inside its NTLMv2 blob
	// (NTProofStr(16), RespType, HiRespType, reserved(6), time(8),
	// challenge(8), reserved(4), AV pairs).
	const blobAV = 16 + 28
	if len(a.nt) < blobAV+4 {
		return malformed("NTLMv2 response of %d bytes", len(a.nt))
	}
	av, err := avPairs(a.nt[blobAV:])
	if err != nil {
		return err
	}
	var avflags uint32
	if f := av[avFlags]; len(f) == 4 {
		avflags = binary.LittleEndian.Uint32(f)
	}
	if avflags&avFlagMIC != 0 && a.micAt < 0 {
		return malformed("MsvAvFlags announce a MIC the message lacks")
	}

	id, baseKey, err := c.cfg.Verifier.Verify(ctx, &Response{
		User: a.user, Domain: a.domain, Workstation: a.workstation,
		ServerChallenge: c.serverChallenge, NTResponse: a.nt, LMResponse: a.lm,
	})
	if err != nil {
		return err
	}
	if len(baseKey) != 16 {
		return errors.New("ntlm: verifier returned no session base key")
	}

	// NTLMv2: KeyExchangeKey = SessionBaseKey (§3.4.5.1).
	exported := append([]byte(nil), baseKey...)
	if c.flags&flagKeyExch != 0 {
		if len(a.encryptedKey) != 16 {
			return malformed("key exchange without a 16-byte session key")
		}
		k, _ := rc4.NewCipher(baseKey)
		k.XORKeyStream(exported, a.encryptedKey)
	}
	if avflags&avFlagMIC != 0 {
		msg := append([]byte(nil), token...)
		clear(msg[a.micAt : a.micAt+16])
		m := hmac.New(md5.New, exported)
		m.Write(c.negotiate)
		m.Write(c.challenge)
		m.Write(msg)
		if !hmac.Equal(m.Sum(nil), token[a.micAt:a.micAt+16]) {
			return fmt.Errorf("%w: MIC mismatch", rpc.ErrAuthFailed)
		}
	}
	c.deriveKeys(exported)
	if id == nil {
		id = &rpc.Identity{User: a.user, Domain: a.domain}
	}
	if id.Workstation == "" {
		id.Workstation = a.workstation
	}
	if id.Mechanism == "" {
		id.Mechanism = "NTLM"
	}
	c.identity = id
	c.negotiate, c.challenge = nil, nil
	return nil
}

const (
	magicSignC2S = "session key to client-to-server signing key magic constant\x00"
	magicSignS2C = "session key to server-to-client signing key magic constant\x00"
	magicSealC2S = "session key to client-to-server sealing key magic constant\x00"
	magicSealS2C = "session key to server-to-client sealing key magic constant\x00"
)

// deriveKeys computes SIGNKEY and SEALKEY for both directions (§3.4.5.2-3,
// extended session security).
func (c *Context) deriveKeys(exported []byte) {
	h := func(key []byte, magic string) []byte {
		s := md5.Sum(append(append([]byte(nil), key...), magic...))
		return s[:]
	}
	c.recvSign = h(exported, magicSignC2S)
	c.sendSign = h(exported, magicSignS2C)
	sealBase := exported
	switch {
	case c.flags&flag128 != 0:
	case c.flags&flag56 != 0:
		sealBase = exported[:7]
	default:
		sealBase = exported[:5]
	}
	c.recvSeal = h(sealBase, magicSealC2S)
	c.sendSeal = h(sealBase, magicSealS2C)
	c.send, _ = rc4.NewCipher(c.sendSeal)
	c.recv, _ = rc4.NewCipher(c.recvSeal)
}

// Identity implements rpc.SecurityContext.
func (c *Context) Identity() *rpc.Identity { return c.identity }

// SignatureSize implements rpc.SecurityContext.
func (c *Context) SignatureSize(uint8) int { return SignatureSize }

// mac computes the signature of msg with sequence number seq (§3.4.4.2):
// version 1, HMAC_MD5(SignKey, seq||msg)[:8] (RC4-encrypted with the
// sealing handle when keys were exchanged), seq.
func (c *Context) mac(signKey []byte, handle *rc4.Cipher, seq uint32, msg ...[]byte) []byte {
	var s [4]byte
	binary.LittleEndian.PutUint32(s[:], seq)
	m := hmac.New(md5.New, signKey)
	m.Write(s[:])
	for _, b := range msg {
		m.Write(b)
	}
	sig := make([]byte, SignatureSize)
	sig[0] = 1
	copy(sig[4:12], m.Sum(nil)[:8])
	if c.flags&flagKeyExch != 0 {
		handle.XORKeyStream(sig[4:12], sig[4:12])
	}
	copy(sig[12:], s[:])
	return sig
}

var errNotEstablished = errors.New("ntlm: context not established")

// Wrap implements rpc.SecurityContext. NTLMSSP signs the whole PDU
// (m.PDU) whatever m.HeaderSign says, as Windows and Samba do.
func (c *Context) Wrap(m *rpc.Message) error {
	if c.state != 2 {
		return errNotEstablished
	}
	if err := c.checkLevel(m.Level); err != nil {
		return err
	}
	if m.Level == rpc.AuthLevelPrivacy {
		// The signature covers the plaintext; the body is then
		// encrypted, then the checksum, with the same RC4 stream.
		var s [4]byte
		binary.LittleEndian.PutUint32(s[:], c.sendSeq)
		mm := hmac.New(md5.New, c.sendSign)
		mm.Write(s[:])
		mm.Write(m.PDU)
		sum := mm.Sum(nil)
		c.send.XORKeyStream(m.Body, m.Body)
		sig := m.Signature[:SignatureSize]
		clear(sig)
		sig[0] = 1
		copy(sig[4:12], sum[:8])
		if c.flags&flagKeyExch != 0 {
			c.send.XORKeyStream(sig[4:12], sig[4:12])
		}
		copy(sig[12:], s[:])
	} else {
		copy(m.Signature, c.mac(c.sendSign, c.send, c.sendSeq, m.PDU))
	}
	c.sendSeq++
	return nil
}

// Unwrap implements rpc.SecurityContext; a wrong signature or sequence
// number is an error wrapping rpc.ErrAuthFailed.
func (c *Context) Unwrap(m *rpc.Message) error {
	if c.state != 2 {
		return errNotEstablished
	}
	if err := c.checkLevel(m.Level); err != nil {
		return err
	}
	if len(m.Signature) != SignatureSize {
		return fmt.Errorf("%w: signature of %d bytes", rpc.ErrAuthFailed, len(m.Signature))
	}
	if m.Level == rpc.AuthLevelPrivacy {
		c.recv.XORKeyStream(m.Body, m.Body)
	}
	want := c.mac(c.recvSign, c.recv, c.recvSeq, m.PDU)
	if subtle.ConstantTimeCompare(want, m.Signature) != 1 {
		return fmt.Errorf("%w: bad signature or sequence number (expected seq %d)", rpc.ErrAuthFailed, c.recvSeq)
	}
	c.recvSeq++
	return nil
}

func (c *Context) checkLevel(level uint8) error {
	switch {
	case level == rpc.AuthLevelPrivacy && c.flags&flagSeal == 0:
		return errors.New("ntlm: privacy level without negotiated sealing")
	case level == rpc.AuthLevelIntegrity && c.flags&(flagSign|flagSeal) == 0:
		return errors.New("ntlm: integrity level without negotiated signing")
	case level != rpc.AuthLevelPrivacy && level != rpc.AuthLevelIntegrity:
		return fmt.Errorf("ntlm: no protection at level %d", level)
	}
	return nil
}

// VerifyMIC implements spnego.MICContext (GSS_VerifyMIC with the NTLM
// signature). As MS-SPNG §3.3.5.1 requires, the RC4 state is the same
// before and after; the sequence number advances.
func (c *Context) VerifyMIC(msg, mic []byte) error {
	if c.state != 2 {
		return errNotEstablished
	}
	want := c.mac(c.recvSign, c.recv, c.recvSeq, msg)
	c.recv, _ = rc4.NewCipher(c.recvSeal)
	if subtle.ConstantTimeCompare(want, mic) != 1 {
		return fmt.Errorf("%w: mechListMIC mismatch", rpc.ErrAuthFailed)
	}
	c.recvSeq++
	return nil
}

// MakeMIC implements spnego.MICContext; see VerifyMIC.
func (c *Context) MakeMIC(msg []byte) ([]byte, error) {
	if c.state != 2 {
		return nil, errNotEstablished
	}
	sig := c.mac(c.sendSign, c.send, c.sendSeq, msg)
	c.send, _ = rc4.NewCipher(c.sendSeal)
	c.sendSeq++
	return sig, nil
}

// equalFoldDomain compares NetBIOS names case-insensitively.
func equalFoldDomain(a, b string) bool { return strings.EqualFold(a, b) }
