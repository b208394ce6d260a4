package ntlm

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rc4"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/fsrvpd/fsrvpd/rpc"
)

func newNegotiate(flags uint32) []byte {
	b := make([]byte, 32)
	copy(b, signature)
	binary.LittleEndian.PutUint32(b[8:], typeNegotiate)
	binary.LittleEndian.PutUint32(b[12:], flags)
	return b
}

const clientFlags = flagUnicode | flagNTLM | flagESS | flagSign | flagSeal | flagAlwaysSign | flag128 | flag56 | flagKeyExch | flagTargetInfo

// authenticateFor plays an NTLMv2 client (MS-NLMP §3.1.5.1.2) against a
// CHALLENGE: it returns the AUTHENTICATE message. mic adds MsvAvFlags and
// a MIC computed over negotiate, challenge and the message.
func authenticateFor(t testing.TB, negotiate, challenge []byte, user, domain, password string, mic bool) []byte {
	t.Helper()
	var serverChallenge [8]byte
	copy(serverChallenge[:], challenge[24:32])
	ti, err := field(challenge, 40)
	if err != nil {
		t.Fatal(err)
	}
	av, err := avPairs(ti)
	if err != nil {
		t.Fatal(err)
	}
	var info []byte
	for _, id := range []uint16{avNbDomainName, avNbComputerName, avTimestamp} {
		info = appendAV(info, id, av[id])
	}
	if mic {
		info = appendAV(info, avFlags, []byte{2, 0, 0, 0})
	}
	info = appendAV(info, avEOL, nil)
	blob := append([]byte{1, 1, 0, 0, 0, 0, 0, 0}, av[avTimestamp]...)
	blob = append(blob, []byte("clichal!")...)
	blob = append(blob, 0, 0, 0, 0)
	blob = append(blob, info...)
	blob = append(blob, 0, 0, 0, 0)
	h := NTHash(password)
	m := hmac.New(md5.New, h[:])
	m.Write(toUTF16(upper(user) + domain))
	key := m.Sum(nil)
	m = hmac.New(md5.New, key)
	m.Write(serverChallenge[:])
	m.Write(blob)
	proof := m.Sum(nil)
	m = hmac.New(md5.New, key)
	m.Write(proof)
	base := m.Sum(nil)
	exported := []byte("0123456789abcdef")
	enc := make([]byte, 16)
	c, _ := rc4.NewCipher(base)
	c.XORKeyStream(enc, exported)

	nt := append(proof, blob...)
	payload := [][]byte{make([]byte, 24), nt, toUTF16(domain), toUTF16(user), toUTF16("WS1"), enc}
	const hdr = 88
	msg := make([]byte, hdr)
	copy(msg, signature)
	binary.LittleEndian.PutUint32(msg[8:], typeAuthenticate)
	off := hdr
	for i, p := range payload {
		binary.LittleEndian.PutUint16(msg[12+8*i:], uint16(len(p)))
		binary.LittleEndian.PutUint16(msg[14+8*i:], uint16(len(p)))
		binary.LittleEndian.PutUint32(msg[16+8*i:], uint32(off))
		off += len(p)
	}
	binary.LittleEndian.PutUint32(msg[60:], binary.LittleEndian.Uint32(challenge[20:24]))
	for _, p := range payload {
		msg = append(msg, p...)
	}
	if mic {
		m = hmac.New(md5.New, exported)
		m.Write(negotiate)
		m.Write(challenge)
		m.Write(msg)
		copy(msg[72:88], m.Sum(nil))
	}
	return msg
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

func testProvider() *Provider {
	return NewProvider(Config{Verifier: NewAccounts([]Account{
		{User: "Backup", NTHash: NTHash("pw-1"), SIDs: []string{rpc.SIDBackupOperators}},
		{User: "other", Domain: "CORP", NTHash: NTHash("pw-2")},
	})})
}

// handshake runs NEGOTIATE and AUTHENTICATE through a fresh context.
func handshake(t *testing.T, user, domain, password string, mic bool, tamper func([]byte)) (*Context, error) {
	t.Helper()
	sc, _ := testProvider().NewContext(rpc.ConnInfo{})
	c := sc.(*Context)
	neg := newNegotiate(clientFlags)
	chal, done, err := c.Accept(context.Background(), neg)
	if err != nil || done {
		t.Fatalf("NEGOTIATE: %v %v", done, err)
	}
	auth := authenticateFor(t, neg, chal, user, domain, password, mic)
	if tamper != nil {
		tamper(auth)
	}
	_, done, err = c.Accept(context.Background(), auth)
	if err == nil && !done {
		t.Fatal("AUTHENTICATE did not complete")
	}
	return c, err
}

func TestAccept(t *testing.T) {
	for _, mic := range []bool{false, true} {
		c, err := handshake(t, "backup", "ANYDOM", "pw-1", mic, nil)
		if err != nil {
			t.Fatalf("mic=%v: %v", mic, err)
		}
		id := c.Identity()
		if id.User != "Backup" || id.Domain != "ANYDOM" || id.Workstation != "WS1" || !id.IsBackupCapable() {
			t.Errorf("identity %+v", id)
		}
	}
	if _, err := handshake(t, "other", "corp", "pw-2", true, nil); err != nil {
		t.Errorf("domain-bound account: %v", err)
	}
	for name, tc := range map[string]struct {
		user, domain, pw string
		mic              bool
		tamper           func([]byte)
	}{
		"wrong password": {"backup", "D", "pw-x", true, nil},
		"unknown user":   {"nobody", "D", "pw-1", true, nil},
		"wrong domain":   {"other", "ELSE", "pw-2", true, nil},
		"tampered MIC":   {"backup", "D", "pw-1", true, func(b []byte) { b[80] ^= 1 }},
		"tampered flags": {"backup", "D", "pw-1", true, func(b []byte) { b[60] ^= 0x10 }},
		"tampered blob":  {"backup", "D", "pw-1", false, func(b []byte) { b[len(b)-40] ^= 1 }},
	} {
		if _, err := handshake(t, tc.user, tc.domain, tc.pw, tc.mic, tc.tamper); !errors.Is(err, rpc.ErrAuthFailed) {
			t.Errorf("%s: %v, want ErrAuthFailed", name, err)
		}
	}
}

func TestNegotiateRefused(t *testing.T) {
	for name, flags := range map[string]uint32{"OEM": clientFlags&^flagUnicode | flagOEM, "NTLMv1 session security": clientFlags &^ flagESS} {
		sc, _ := testProvider().NewContext(rpc.ConnInfo{})
		if _, _, err := sc.Accept(context.Background(), newNegotiate(flags)); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

// MS-NLMP §4.2.2.1.2: NTOWFv1 of "Password".
func TestNTHash(t *testing.T) {
	h := NTHash("Password")
	if got, want := h, [16]byte{0xa4, 0xf4, 0x9c, 0x40, 0x65, 0x10, 0xbd, 0xca, 0xb6, 0x82, 0x4e, 0xe7, 0xc3, 0x0f, 0xd8, 0x52}; got != want {
		t.Errorf("NTHash = %x", got)
	}
	if _, err := ParseNTHash("a4f49c406510bdcab6824ee7c30fd852"); err != nil {
		t.Error(err)
	}
	if _, err := ParseNTHash("a4f49c"); err == nil {
		t.Error("short hash accepted")
	}
}

// FuzzMessages feeds arbitrary NEGOTIATE and AUTHENTICATE tokens to an
// acceptor and the parsers: no panic, and never an established context
// without the password.
//
//	go test ./rpc/auth/ntlm -run '^$' -fuzz FuzzMessages -fuzztime 20s
func FuzzMessages(f *testing.F) {
	neg := newNegotiate(clientFlags)
	sc, _ := testProvider().NewContext(rpc.ConnInfo{})
	chal, _, _ := sc.Accept(context.Background(), neg)
	f.Add(neg, authenticateFor(f, neg, chal, "backup", "D", "pw-1", true))
	f.Add(neg, authenticateFor(f, neg, chal, "other", "CORP", "pw-2", false))
	f.Add([]byte("NTLMSSP\x00\x01\x00\x00\x00"), []byte("NTLMSSP\x00\x03\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, n, a []byte) {
		parseAuthenticate(a)
		avPairs(a)
		sc, _ := testProvider().NewContext(rpc.ConnInfo{})
		if _, _, err := sc.Accept(context.Background(), n); err != nil {
			return
		}
		// The seeds' responses were computed for another challenge.
		if _, done, err := sc.Accept(context.Background(), a); err == nil || done {
			t.Fatalf("AUTHENTICATE accepted for a fresh challenge (done %v, err %v)", done, err)
		}
	})
}
