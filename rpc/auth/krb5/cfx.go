package krb5

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/oiweiwei/gokrb5.fork/v9/crypto"
	"github.com/oiweiwei/gokrb5.fork/v9/crypto/common"
	"github.com/oiweiwei/gokrb5.fork/v9/crypto/etype"
	"github.com/oiweiwei/gokrb5.fork/v9/iana/etypeID"
	"github.com/oiweiwei/gokrb5.fork/v9/iana/keyusage"
	"github.com/oiweiwei/gokrb5.fork/v9/types"
)

// CFX token flags (RFC 4121 4.2.2).
const (
	flagSentByAcceptor = 0x01
	flagSealed         = 0x02
	flagAcceptorSubkey = 0x04
)

const (
	cfxHeaderLen = 16
	// dceEC is the extra count of the wrap tokens fsrvpd sends in DCE style
	// (MS-KILE 3.4.5.4.1: Windows pads with 16 bytes), rotated together
	// with RRC; dceRRC is the E(header) and checksum that RRC rotates.
	dceEC = 16
)

// ErrBadSignature is returned when a MIC or wrap token does not verify: a
// wrong key, a modified PDU, a replayed or reordered sequence number.
var ErrBadSignature = errors.New("krb5: message signature does not verify")

// Part is one piece of a DCE/RPC PDU handed to the per-message functions:
// the header, the stub and the sec_trailer, in the order they are on the
// wire. Sealed parts are encrypted (and decrypted) in place; all parts are
// covered by the checksum (header signing, MS-RPCE 2.2.2.11).
type Part struct {
	B    []byte
	Seal bool
}

// cfx holds the keys and sequence numbers of one security context, seen
// from the acceptor (RFC 4121 4.2).
type cfx struct {
	et        etype.EType
	subkey    bool // flagAcceptorSubkey in every token
	dce       bool
	hashLen   int
	sendKe    []byte
	sendKi    []byte
	sendKc    []byte
	recvKe    []byte
	recvKi    []byte
	recvKc    []byte
	sendSeq   uint64
	recvSeq   uint64
	confLen   int
	blockSize int
	initiator bool // tests only: this end sends as the initiator
}

func newCFX(key types.EncryptionKey, acceptorSubkey, dce bool, seq uint64) (*cfx, error) {
	switch key.KeyType {
	case etypeID.AES128_CTS_HMAC_SHA1_96, etypeID.AES256_CTS_HMAC_SHA1_96:
	default:
		return nil, fmt.Errorf("krb5: per-message protection with enctype %d is not supported (only AES, 17 and 18)", key.KeyType)
	}
	et, err := crypto.GetEtype(key.KeyType)
	if err != nil {
		return nil, fmt.Errorf("krb5: enctype %d: %w", key.KeyType, err)
	}
	c := &cfx{et: et, subkey: acceptorSubkey, dce: dce, sendSeq: seq, recvSeq: seq,
		hashLen: et.GetHMACBitLength() / 8, confLen: et.GetConfounderByteSize(), blockSize: et.GetMessageBlockByteSize()}
	derive := func(usage []byte) ([]byte, error) { return et.DeriveKey(key.KeyValue, usage) }
	for _, d := range []struct {
		dst   *[]byte
		usage []byte
	}{
		{&c.sendKe, common.GetUsageKe(keyusage.GSSAPI_ACCEPTOR_SEAL)},
		{&c.sendKi, common.GetUsageKi(keyusage.GSSAPI_ACCEPTOR_SEAL)},
		{&c.sendKc, common.GetUsageKc(keyusage.GSSAPI_ACCEPTOR_SIGN)},
		{&c.recvKe, common.GetUsageKe(keyusage.GSSAPI_INITIATOR_SEAL)},
		{&c.recvKi, common.GetUsageKi(keyusage.GSSAPI_INITIATOR_SEAL)},
		{&c.recvKc, common.GetUsageKc(keyusage.GSSAPI_INITIATOR_SIGN)},
	} {
		if *d.dst, err = derive(d.usage); err != nil {
			return nil, fmt.Errorf("krb5: derive keys: %w", err)
		}
	}
	return c, nil
}

func (c *cfx) mac(key []byte, pieces ...[]byte) []byte {
	h := hmac.New(c.et.GetHashFunc(), key)
	for _, p := range pieces {
		h.Write(p)
	}
	return h.Sum(nil)[:c.hashLen]
}

func (c *cfx) macParts(key []byte, pre []byte, parts []Part, post ...[]byte) []byte {
	h := hmac.New(c.et.GetHashFunc(), key)
	h.Write(pre)
	for _, p := range parts {
		h.Write(p.B)
	}
	for _, p := range post {
		h.Write(p)
	}
	return h.Sum(nil)[:c.hashLen]
}

func (c *cfx) sendFlags() byte {
	f := byte(flagSentByAcceptor)
	if c.initiator {
		f = 0
	}
	if c.subkey {
		f |= flagAcceptorSubkey
	}
	return f
}

// MICSize is the length of a MIC token.
func (c *cfx) micSize() int { return cfxHeaderLen + c.hashLen }

// sealSize is the length of the wrap token fsrvpd sends.
func (c *cfx) sealSize() int {
	return cfxHeaderLen + c.ec() + cfxHeaderLen + c.hashLen + c.confLen
}

func (c *cfx) ec() int {
	if c.dce {
		return dceEC
	}
	return 0
}

// getMIC makes the MIC token (RFC 4121 4.2.6.1) over the parts in order.
func (c *cfx) getMIC(parts []Part) []byte {
	hdr := make([]byte, cfxHeaderLen, cfxHeaderLen+c.hashLen)
	hdr[0], hdr[1], hdr[2] = 0x04, 0x04, c.sendFlags()
	for i := 3; i < 8; i++ {
		hdr[i] = 0xff
	}
	binary.BigEndian.PutUint64(hdr[8:], c.sendSeq)
	c.sendSeq++
	return append(hdr, c.macParts(c.sendKc, nil, parts, hdr)...)
}

// verifyMIC checks a MIC token from the initiator.
func (c *cfx) verifyMIC(parts []Part, tok []byte) error {
	if len(tok) != c.micSize() || tok[0] != 0x04 || tok[1] != 0x04 {
		return fmt.Errorf("%w: not a MIC token", ErrBadSignature)
	}
	if err := c.checkFlags(tok[2], false); err != nil {
		return err
	}
	for _, b := range tok[3:8] {
		if b != 0xff {
			return fmt.Errorf("%w: MIC filler", ErrBadSignature)
		}
	}
	if seq := binary.BigEndian.Uint64(tok[8:16]); seq != c.recvSeq {
		return fmt.Errorf("%w: sequence number %d, want %d", ErrBadSignature, seq, c.recvSeq)
	}
	if !hmac.Equal(c.macParts(c.recvKc, nil, parts, tok[:cfxHeaderLen]), tok[cfxHeaderLen:]) {
		return ErrBadSignature
	}
	c.recvSeq++
	return nil
}

func (c *cfx) checkFlags(f byte, sealed bool) error {
	if f&flagSentByAcceptor != 0 {
		return fmt.Errorf("%w: token sent by the acceptor (reflected)", ErrBadSignature)
	}
	if (f&flagAcceptorSubkey != 0) != c.subkey {
		return fmt.Errorf("%w: AcceptorSubkey flag %v, want %v", ErrBadSignature, f&flagAcceptorSubkey != 0, c.subkey)
	}
	if (f&flagSealed != 0) != sealed {
		return fmt.Errorf("%w: Sealed flag %v, want %v", ErrBadSignature, f&flagSealed != 0, sealed)
	}
	if f&^(flagSentByAcceptor|flagSealed|flagAcceptorSubkey) != 0 {
		return fmt.Errorf("%w: unknown flags %#x", ErrBadSignature, f)
	}
	return nil
}

// rotation is how far the token's cipher text is rotated: RRC, plus EC in
// DCE style (MS-KILE 3.4.5.4.1; Heimdal and Windows agree).
func (c *cfx) rotation(ec, rrc int) int {
	if c.dce {
		return rrc + ec
	}
	return rrc
}

// wrap seals the Seal parts in place and returns the wrap token (RFC 4121
// 4.2.6.2) whose checksum also covers the parts left in clear.
func (c *cfx) wrap(parts []Part) ([]byte, error) {
	ec := c.ec()
	rrc := cfxHeaderLen + c.hashLen
	hdr := make([]byte, cfxHeaderLen)
	hdr[0], hdr[1], hdr[2], hdr[3] = 0x05, 0x04, c.sendFlags()|flagSealed, 0xff
	binary.BigEndian.PutUint16(hdr[4:], uint16(ec))
	binary.BigEndian.PutUint64(hdr[8:], c.sendSeq)

	conf := make([]byte, c.confLen)
	if _, err := rand.Read(conf); err != nil {
		return nil, err
	}
	filler := make([]byte, ec)
	for i := range filler {
		filler[i] = 0xff
	}
	plain := append([]byte(nil), conf...)
	dataLen := 0
	for _, p := range parts {
		if p.Seal {
			plain = append(plain, p.B...)
			dataLen += len(p.B)
		}
	}
	plain = append(append(plain, filler...), hdr...)
	cksum := c.macParts(c.sendKi, conf, parts, filler, hdr)
	_, ct, err := c.et.EncryptData(c.sendKe, plain)
	if err != nil {
		return nil, fmt.Errorf("krb5: wrap: %w", err)
	}
	full := append(ct, cksum...)
	k := c.rotation(ec, rrc)
	rot := append(append(make([]byte, 0, len(full)), full[len(full)-k:]...), full[:len(full)-k]...)
	// rot = [rotated tail | E(confounder) | E(data)]: the data goes back in
	// place, the rest follows the token header.
	sig := rot[:len(rot)-dataLen]
	data := rot[len(rot)-dataLen:]
	for _, p := range parts {
		if p.Seal {
			data = data[copy(p.B, data):]
		}
	}
	binary.BigEndian.PutUint16(hdr[6:], uint16(rrc))
	c.sendSeq++
	return append(hdr, sig...), nil
}

// unwrap checks a wrap token from the initiator and decrypts the Seal parts
// in place. Nothing is changed when the token does not verify.
func (c *cfx) unwrap(parts []Part, tok []byte) error {
	if len(tok) < cfxHeaderLen || tok[0] != 0x05 || tok[1] != 0x04 || tok[3] != 0xff {
		return fmt.Errorf("%w: not a wrap token", ErrBadSignature)
	}
	if err := c.checkFlags(tok[2], true); err != nil {
		return err
	}
	ec, rrc := int(binary.BigEndian.Uint16(tok[4:])), int(binary.BigEndian.Uint16(tok[6:]))
	if seq := binary.BigEndian.Uint64(tok[8:16]); seq != c.recvSeq {
		return fmt.Errorf("%w: sequence number %d, want %d", ErrBadSignature, seq, c.recvSeq)
	}
	k := c.rotation(ec, rrc)
	dataLen := 0
	for _, p := range parts {
		if p.Seal {
			dataLen += len(p.B)
		}
	}
	rest := tok[cfxHeaderLen:]
	total := len(rest) + dataLen
	// The cipher text holds confounder, data, filler and header copy; then
	// the checksum. The rotated part must fit in what precedes the data.
	if total != c.confLen+dataLen+ec+cfxHeaderLen+c.hashLen || k > len(rest) {
		return fmt.Errorf("%w: wrap token of %d bytes (EC %d, RRC %d) for %d bytes of data", ErrBadSignature, len(tok), ec, rrc, dataLen)
	}
	rot := make([]byte, 0, total)
	rot = append(rot, rest...)
	for _, p := range parts {
		if p.Seal {
			rot = append(rot, p.B...)
		}
	}
	full := append(append(make([]byte, 0, total), rot[k:]...), rot[:k]...)
	ct, cksum := full[:total-c.hashLen], full[total-c.hashLen:]
	plain, err := c.et.DecryptData(c.recvKe, ct)
	if err != nil || len(plain) != len(ct) {
		return fmt.Errorf("%w: decrypt", ErrBadSignature)
	}
	conf := plain[:c.confLen]
	data := plain[c.confLen : c.confLen+dataLen]
	filler := plain[c.confLen+dataLen : c.confLen+dataLen+ec]
	hdrCopy := plain[c.confLen+dataLen+ec:]
	// The encrypted copy of the header equals the clear one, RRC zero
	// (RFC 4121 4.2.4).
	want := append([]byte(nil), tok[:cfxHeaderLen]...)
	want[6], want[7] = 0, 0
	if !hmac.Equal(hdrCopy, want) {
		return fmt.Errorf("%w: header copy differs", ErrBadSignature)
	}
	clear := make([]Part, len(parts))
	off := 0
	for i, p := range parts {
		clear[i] = p
		if p.Seal {
			clear[i].B = data[off : off+len(p.B)]
			off += len(p.B)
		}
	}
	if !hmac.Equal(c.macParts(c.recvKi, conf, clear, filler, hdrCopy), cksum) {
		return ErrBadSignature
	}
	for i, p := range parts {
		if p.Seal {
			copy(p.B, clear[i].B)
		}
	}
	c.recvSeq++
	return nil
}
