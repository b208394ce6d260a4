package krb5

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/oiweiwei/gokrb5.fork/v9/iana/etypeID"
	"github.com/oiweiwei/gokrb5.fork/v9/types"
)

// FuzzToken feeds arbitrary bytes to everything that parses client input:
// the GSS framing, the AP-REQ and the client's AP-REP, and the MIC and wrap
// tokens of an established context. Nothing may panic, and nothing forged
// may verify.
func FuzzToken(f *testing.F) {
	// A new key per run: genuine tokens of earlier runs, kept in the fuzz
	// cache, must not verify.
	key := types.EncryptionKey{KeyType: etypeID.AES256_CTS_HMAC_SHA1_96, KeyValue: make([]byte, 32)}
	rand.Read(key.KeyValue)
	seedCtx, _ := newCFX(key, true, true, 1)
	// Seeds: tokens our own sender makes (an initiator would make the same
	// shapes), framings, and truncations.
	init := func() *cfx {
		c, _ := newCFX(key, true, true, 1)
		return c
	}
	stub := bytes.Repeat([]byte{0x33}, 32)
	w, _ := seedCtx.wrap([]Part{{B: []byte("hdr")}, {B: stub, Seal: true}})
	f.Add(w, stub)
	f.Add(seedCtx.getMIC([]Part{{B: []byte("abc")}}), []byte("abc"))
	// Tokens as the initiator sends them; they verify unless changed.
	peer := initiator(init())
	stub = bytes.Repeat([]byte{0x44}, 48)
	w, _ = peer.wrap([]Part{{B: []byte("hdr")}, {B: stub, Seal: true}})
	genuine, genuineTok := append([]byte(nil), stub...), w
	if err := init().unwrap([]Part{{B: []byte("hdr")}, {B: append([]byte(nil), stub...), Seal: true}}, w); err != nil {
		f.Fatalf("initiator's wrap token: %v", err)
	}
	f.Add(w, stub)
	peer = initiator(init())
	f.Add(peer.getMIC([]Part{{B: []byte("abc")}}), []byte("abd"))
	f.Add(WrapInitialToken(tokAPReq, []byte{0x6e, 0x03, 0x30, 0x01, 0x00}), []byte(nil))
	f.Add([]byte{0x6f, 0x81, 0x80, 0x30}, []byte(nil))
	f.Add([]byte{0x60, 0x84, 0xff, 0xff, 0xff, 0xff}, []byte(nil))
	kt := NewTestKeytab(f, "cifs/fuzz.example", "EXAMPLE")
	a, err := NewFromKeytab(kt, "cifs/fuzz.example", 0)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, tok, data []byte) {
		UnwrapInitialToken(tok)
		splitAPRep(tok)
		if _, _, err := a.NewContext().Accept(tok); err == nil {
			t.Fatal("a fuzzed AP-REQ was accepted")
		}
		// The third leg of a context waiting for the client's AP-REP.
		c := &Context{a: a, state: 1, session: key}
		if _, _, err := c.Accept(tok); err == nil {
			t.Fatal("a fuzzed AP-REP was accepted")
		}
		// Per-message tokens from the initiator, over other data than the
		// genuine seeds sign (so none may verify).
		if bytes.Equal(tok, genuineTok) && bytes.Equal(data, genuine) {
			return
		}
		d := append([]byte(nil), data...)
		if err := init().unwrap([]Part{{B: []byte("hdr")}, {B: d, Seal: true}}, tok); err == nil {
			t.Fatalf("a fuzzed wrap token verified: %x over %x", tok, data)
		}
		if !bytes.Equal(d, data) {
			t.Fatal("a refused wrap token changed the data")
		}
		if err := init().verifyMIC([]Part{{B: data}}, tok); err == nil {
			t.Fatal("a fuzzed MIC verified")
		}
	})
}

// initiator turns an acceptor's keys around, to make tokens as the client.
func initiator(c *cfx) *cfx {
	c.sendKe, c.recvKe = c.recvKe, c.sendKe
	c.sendKi, c.recvKi = c.recvKi, c.sendKi
	c.sendKc, c.recvKc = c.recvKc, c.sendKc
	c.initiator = true
	return c
}
