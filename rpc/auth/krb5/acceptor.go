package krb5

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"strings"
	"sync"
	"time"

	"github.com/oiweiwei/gokrb5.fork/v9/crypto"
	"github.com/oiweiwei/gokrb5.fork/v9/iana/etypeID"
	"github.com/oiweiwei/gokrb5.fork/v9/iana/flags"
	"github.com/oiweiwei/gokrb5.fork/v9/keytab"
	"github.com/oiweiwei/gokrb5.fork/v9/messages"
	"github.com/oiweiwei/gokrb5.fork/v9/service"
	"github.com/oiweiwei/gokrb5.fork/v9/types"
)

// GSS context flags carried in the authenticator checksum (RFC 4121
// 4.1.1.1) and the DCE-style flag of MS-KILE 3.2.5.1.
const (
	gssMutual = 0x0002
	gssInteg  = 0x0020
	gssConf   = 0x0010
	gssDCE    = 0x1000
)

// cksumGSS is the authenticator checksum type of the GSS mechanism (0x8003).
const cksumGSS = 0x8003

// DefaultMaxClockSkew is the accepted difference between the client's
// clock and ours (RFC 4120 1.6 suggests five minutes).
const DefaultMaxClockSkew = 5 * time.Minute

// Config configures an Acceptor.
type Config struct {
	// Keytab is the path of the keytab holding the service's keys.
	Keytab string
	// Principal restricts the acceptor to one service principal of the
	// keytab, as "cifs/host.example.com" or "host/host.example.com@REALM".
	// Empty accepts a ticket for any principal the keytab has keys for.
	Principal string
	// MaxClockSkew defaults to DefaultMaxClockSkew.
	MaxClockSkew time.Duration
}

// Acceptor verifies Kerberos AP-REQs for one keytab. It is safe for
// concurrent use; each authentication gets its own Context.
type Acceptor struct {
	mu        sync.RWMutex
	path      string
	kt        *keytab.Keytab
	principal string
	skew      time.Duration
}

// New loads the keytab and checks that it has keys for the principal.
func New(cfg Config) (*Acceptor, error) {
	if cfg.Keytab == "" {
		return nil, errors.New("krb5: no keytab configured")
	}
	kt, err := keytab.Load(cfg.Keytab)
	if err != nil {
		return nil, fmt.Errorf("krb5: load keytab %s: %w", cfg.Keytab, err)
	}
	a, err := NewFromKeytab(kt, cfg.Principal, cfg.MaxClockSkew)
	if err != nil {
		return nil, fmt.Errorf("krb5: keytab %s: %w", cfg.Keytab, err)
	}
	a.path = cfg.Keytab
	return a, nil
}

// NewFromKeytab is New with a keytab already in memory.
func NewFromKeytab(kt *keytab.Keytab, principal string, skew time.Duration) (*Acceptor, error) {
	if skew <= 0 {
		skew = DefaultMaxClockSkew
	}
	if len(kt.Entries) == 0 {
		return nil, errors.New("krb5: keytab has no keys")
	}
	if principal != "" {
		name, realm, _ := strings.Cut(principal, "@")
		found := false
		for _, e := range kt.Entries {
			if strings.Join(e.Principal.Components, "/") == name && (realm == "" || realm == e.Principal.Realm) {
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("krb5: keytab has no key for %s", principal)
		}
		principal = name
	}
	return &Acceptor{kt: kt, principal: principal, skew: skew}, nil
}

// Reload rereads the keytab from its path (after a key rotation). The
// contexts already established keep their keys.
func (a *Acceptor) Reload() error {
	if a.path == "" {
		return errors.New("krb5: acceptor has no keytab path")
	}
	kt, err := keytab.Load(a.path)
	if err != nil {
		return fmt.Errorf("krb5: load keytab %s: %w", a.path, err)
	}
	a.mu.Lock()
	a.kt = kt
	a.mu.Unlock()
	return nil
}

// Identity is the authenticated client.
type Identity struct {
	// Principal is the client's name, as "alice@EXAMPLE.COM".
	Principal string
	// Realm is the client's realm; User the principal without it.
	Realm, User string
	// HasPAC is set when the ticket carried a PAC whose server signature
	// verified; the fields below come from it (MS-PAC 2.5).
	HasPAC bool
	// Domain is the NetBIOS name of the logon domain.
	Domain string
	// UserSID is the user's SID; SIDs holds it followed by the primary
	// group and every group SID of the PAC (domain groups, ExtraSids,
	// resource groups).
	UserSID string
	SIDs    []string
}

// Context is the acceptor's side of one Kerberos security context.
type Context struct {
	a        *Acceptor
	state    int // 0: want AP-REQ, 1: want the client's AP-REP (DCE), 2: done
	dce      bool
	gss      uint32
	session  types.EncryptionKey
	protKey  types.EncryptionKey
	subkey   bool
	seq      int64
	id       Identity
	cfx      *cfx
	protErr  error
	complete bool
}

// NewContext starts a security context.
func (a *Acceptor) NewContext() *Context { return &Context{a: a} }

// Accept consumes the client's next token and returns the reply to send
// and whether the context is established. An error means the client is
// refused; the context is then unusable.
func (c *Context) Accept(in []byte) (out []byte, done bool, err error) {
	defer func() {
		// The ASN.1 decoding is gokrb5's; a token that trips it up is a
		// refused client, never a crashed server.
		if r := recover(); r != nil {
			c.state = 3
			out, done, err = nil, false, fmt.Errorf("%w: decoder panic: %v", errToken, r)
		}
	}()
	switch c.state {
	case 0:
		out, done, err = c.acceptAPReq(in)
	case 1:
		err = c.acceptDCEReply(in)
		done = err == nil
	default:
		err = errors.New("krb5: context already established")
	}
	if err != nil {
		c.state = 3
		return nil, false, err
	}
	if done {
		c.finish()
	}
	return out, done, nil
}

func (c *Context) acceptAPReq(in []byte) ([]byte, bool, error) {
	raw, framed, err := splitAPReq(in)
	if err != nil {
		return nil, false, err
	}
	var req messages.APReq
	if err := req.Unmarshal(raw); err != nil {
		return nil, false, fmt.Errorf("krb5: AP-REQ: %w", err)
	}
	c.a.mu.RLock()
	kt := c.a.kt
	c.a.mu.RUnlock()
	opts := []func(*service.Settings){
		service.MaxClockSkew(c.a.skew),
		service.Logger(log.New(io.Discard, "", 0)),
	}
	if c.a.principal != "" {
		sname := strings.Join(req.Ticket.SName.NameString, "/")
		if !strings.EqualFold(sname, c.a.principal) {
			return nil, false, fmt.Errorf("krb5: ticket is for %s, this service is %s", sname, c.a.principal)
		}
		opts = append(opts, service.KeytabPrincipal(c.a.principal))
	}
	ok, creds, err := service.VerifyAPREQ(&req, service.NewSettings(kt, opts...))
	if err != nil {
		return nil, false, fmt.Errorf("krb5: AP-REQ refused: %w", err)
	}
	if !ok || creds == nil {
		return nil, false, errors.New("krb5: AP-REQ refused")
	}
	c.session = req.Ticket.DecryptedEncPart.Key
	c.seq = req.Authenticator.SeqNumber
	if ck := req.Authenticator.Cksum; ck.CksumType == cksumGSS {
		if len(ck.Checksum) < 24 || binary.LittleEndian.Uint32(ck.Checksum) != 16 {
			return nil, false, errors.New("krb5: malformed GSS checksum in the authenticator")
		}
		c.gss = binary.LittleEndian.Uint32(ck.Checksum[20:24])
	} else if framed {
		return nil, false, fmt.Errorf("krb5: authenticator checksum type %d, want the GSS checksum 0x8003", ck.CksumType)
	}
	c.dce = c.gss&gssDCE != 0 || !framed
	mutual := c.gss&gssMutual != 0 || types.IsFlagSet(&req.APOptions, flags.APOptionMutualRequired)

	c.id = Identity{
		User:      strings.Join(req.Authenticator.CName.NameString, "/"),
		Realm:     req.Authenticator.CRealm,
		Principal: strings.Join(req.Authenticator.CName.NameString, "/") + "@" + req.Authenticator.CRealm,
	}
	if ad := creds.GetADCredentials(); creds.Attributes() != nil && ad.LogonDomainID != "" {
		c.id.HasPAC = true
		c.id.Domain = ad.LogonDomainName
		c.id.UserSID = fmt.Sprintf("%s-%d", ad.LogonDomainID, ad.UserID)
		c.id.SIDs = append(c.id.SIDs, c.id.UserSID, fmt.Sprintf("%s-%d", ad.LogonDomainID, ad.PrimaryGroupID))
		for _, s := range ad.GroupMembershipSIDs {
			if !contains(c.id.SIDs, s) {
				c.id.SIDs = append(c.id.SIDs, s)
			}
		}
	}

	// The key of the per-message tokens: a fresh acceptor subkey when we
	// answer with an AP-REP, else the initiator's subkey or the session key
	// (RFC 4121 2).
	c.protKey = c.session
	if req.Authenticator.SubKey.KeyType != 0 && len(req.Authenticator.SubKey.KeyValue) > 0 {
		c.protKey = req.Authenticator.SubKey
	}
	if !c.dce && !mutual {
		c.state = 2
		return nil, true, nil
	}
	// RFC 4120 3.2.4: the AP-REP carries the authenticator's ctime and
	// cusec, which the client checks (MIT: "Mutual authentication
	// failed"; go-msrpc's client does not look).
	part := messages.NewEncAPRepPart(c.seq)
	part.CTime, part.Cusec = req.Authenticator.CTime, req.Authenticator.Cusec
	if sub, err := newSubkey(c.protKey.KeyType); err == nil {
		part.Subkey, c.protKey, c.subkey = sub, sub, true
	}
	rep, err := messages.NewAPRep(c.session, part)
	if err != nil {
		return nil, false, fmt.Errorf("krb5: AP-REP: %w", err)
	}
	b, err := rep.Marshal()
	if err != nil {
		return nil, false, fmt.Errorf("krb5: AP-REP: %w", err)
	}
	if c.dce {
		// MS-KILE 3.4.5.1: the client answers with an AP-REP of its own.
		c.state = 1
		return b, false, nil
	}
	c.state = 2
	return WrapInitialToken(tokAPRep, b), true, nil
}

// acceptDCEReply checks the client's AP-REP of a DCE-style exchange: it is
// encrypted in the session key and names our sequence number.
func (c *Context) acceptDCEReply(in []byte) error {
	raw, err := splitAPRep(in)
	if err != nil {
		return err
	}
	var rep messages.APRep
	if err := rep.Unmarshal(raw); err != nil {
		return fmt.Errorf("krb5: client AP-REP: %w", err)
	}
	if err := rep.DecryptEncPart(c.session); err != nil {
		return fmt.Errorf("krb5: client AP-REP does not decrypt: %w", err)
	}
	if rep.DecryptedEncPart.SequenceNumber != c.seq {
		return fmt.Errorf("krb5: client AP-REP names sequence number %d, want %d", rep.DecryptedEncPart.SequenceNumber, c.seq)
	}
	c.state = 2
	return nil
}

func (c *Context) finish() {
	c.complete = true
	c.cfx, c.protErr = newCFX(c.protKey, c.subkey, c.dce, uint64(uint32(c.seq)))
}

// newSubkey makes a random key of an AES enctype; other enctypes get none.
func newSubkey(etype int32) (types.EncryptionKey, error) {
	switch etype {
	case etypeID.AES128_CTS_HMAC_SHA1_96, etypeID.AES256_CTS_HMAC_SHA1_96:
	default:
		return types.EncryptionKey{}, fmt.Errorf("krb5: no subkey for enctype %d", etype)
	}
	et, err := crypto.GetEtype(etype)
	if err != nil {
		return types.EncryptionKey{}, err
	}
	b := make([]byte, et.GetKeyByteSize())
	if _, err := rand.Read(b); err != nil {
		return types.EncryptionKey{}, err
	}
	return types.EncryptionKey{KeyType: etype, KeyValue: b}, nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// Established reports whether Accept has completed.
func (c *Context) Established() bool { return c.complete }

// DCEStyle reports whether the exchange was DCE style.
func (c *Context) DCEStyle() bool { return c.dce }

// Identity returns the authenticated client; valid once established.
func (c *Context) Identity() Identity { return c.id }

// SessionKey is the key other layers derive from (MS-KILE 3.4.5.2: the
// acceptor subkey if there is one, else the session key).
func (c *Context) SessionKey() []byte { return append([]byte(nil), c.protKey.KeyValue...) }

func (c *Context) ready() error {
	if !c.complete {
		return errors.New("krb5: security context not established")
	}
	return c.protErr
}

// SignatureSize is the auth_value length of a signed (MIC) PDU; SealSize
// that of a sealed one.
func (c *Context) SignatureSize() int {
	if c.cfx == nil {
		return cfxHeaderLen + 12
	}
	return c.cfx.micSize()
}

// SealSize is the auth_value length of a sealed PDU sent by fsrvpd.
func (c *Context) SealSize() int {
	if c.cfx == nil {
		return cfxHeaderLen + dceEC + cfxHeaderLen + 12 + 16
	}
	return c.cfx.sealSize()
}

// Sign returns a MIC token over the parts (RPC integrity level). The
// parts' Seal flags are ignored.
func (c *Context) Sign(parts ...Part) ([]byte, error) {
	if err := c.ready(); err != nil {
		return nil, err
	}
	return c.cfx.getMIC(parts), nil
}

// Verify checks the client's MIC token over the parts.
func (c *Context) Verify(sig []byte, parts ...Part) error {
	if err := c.ready(); err != nil {
		return err
	}
	return c.cfx.verifyMIC(parts, sig)
}

// Seal encrypts the Seal parts in place and returns the wrap token that
// also signs the others (RPC privacy level with header signing).
func (c *Context) Seal(parts ...Part) ([]byte, error) {
	if err := c.ready(); err != nil {
		return nil, err
	}
	return c.cfx.wrap(parts)
}

// Unseal checks the client's wrap token and decrypts the Seal parts in
// place; on error the parts are unchanged.
func (c *Context) Unseal(sig []byte, parts ...Part) error {
	if err := c.ready(); err != nil {
		return err
	}
	return c.cfx.unwrap(parts, sig)
}
