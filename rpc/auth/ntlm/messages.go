package ntlm

// messages.go: the NTLMSSP messages (MS-NLMP §2.2.1) and AV pairs
// (§2.2.2.1). Parsing never trusts a length or offset: every field is
// bounds-checked against the message.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf16"
)

// Negotiate flags (MS-NLMP §2.2.2.5).
const (
	flagUnicode          uint32 = 0x00000001
	flagOEM              uint32 = 0x00000002
	flagRequestTarget    uint32 = 0x00000004
	flagSign             uint32 = 0x00000010
	flagSeal             uint32 = 0x00000020
	flagLMKey            uint32 = 0x00000080
	flagNTLM             uint32 = 0x00000200
	flagAnonymous        uint32 = 0x00000800
	flagAlwaysSign       uint32 = 0x00008000
	flagTargetTypeDomain uint32 = 0x00010000
	flagTargetTypeServer uint32 = 0x00020000
	flagESS              uint32 = 0x00080000 // NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY
	flagTargetInfo       uint32 = 0x00800000
	flagVersion          uint32 = 0x02000000
	flag128              uint32 = 0x20000000
	flagKeyExch          uint32 = 0x40000000
	flag56               uint32 = 0x80000000
)

// AV pair ids (MS-NLMP §2.2.2.1).
const (
	avEOL             uint16 = 0
	avNbComputerName  uint16 = 1
	avNbDomainName    uint16 = 2
	avDNSComputerName uint16 = 3
	avDNSDomainName   uint16 = 4
	avFlags           uint16 = 6
	avTimestamp       uint16 = 7
)

// avFlagMIC in MsvAvFlags: the AUTHENTICATE message carries a MIC.
const avFlagMIC uint32 = 0x2

var signature = []byte("NTLMSSP\x00")

const (
	typeNegotiate    = 1
	typeChallenge    = 2
	typeAuthenticate = 3
)

var errMalformed = errors.New("ntlm: malformed message")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errMalformed}, args...)...)
}

// checkType checks the signature and message type.
func checkType(msg []byte, want uint32) error {
	if len(msg) < 12 || !bytes.Equal(msg[:8], signature) {
		return malformed("no NTLMSSP signature")
	}
	if t := binary.LittleEndian.Uint32(msg[8:12]); t != want {
		return malformed("message type %d, want %d", t, want)
	}
	return nil
}

// field returns the payload a (len, maxlen, offset) field at off points to.
func field(msg []byte, off int) ([]byte, error) {
	if off+8 > len(msg) {
		return nil, malformed("truncated field at %d", off)
	}
	n := int(binary.LittleEndian.Uint16(msg[off:]))
	at := int(binary.LittleEndian.Uint32(msg[off+4:]))
	if n == 0 {
		return nil, nil
	}
	if at < 0 || at > len(msg) || n > len(msg)-at {
		return nil, malformed("field at %d points outside the message", off)
	}
	return msg[at : at+n], nil
}

// negotiateMsg is the client's NEGOTIATE_MESSAGE (§2.2.1.1).
type negotiateMsg struct {
	flags uint32
}

func parseNegotiate(msg []byte) (*negotiateMsg, error) {
	if err := checkType(msg, typeNegotiate); err != nil {
		return nil, err
	}
	if len(msg) < 16 {
		return nil, malformed("NEGOTIATE of %d bytes", len(msg))
	}
	return &negotiateMsg{flags: binary.LittleEndian.Uint32(msg[12:16])}, nil
}

// authenticateMsg is the client's AUTHENTICATE_MESSAGE (§2.2.1.3).
type authenticateMsg struct {
	lm, nt                    []byte
	domain, user, workstation string
	encryptedKey              []byte
	flags                     uint32
	micAt                     int // offset of the MIC field, or -1 if the message has none
}

// authenticateHeader is the fixed part before Version and MIC.
const authenticateHeader = 64

func parseAuthenticate(msg []byte) (*authenticateMsg, error) {
	if err := checkType(msg, typeAuthenticate); err != nil {
		return nil, err
	}
	if len(msg) < authenticateHeader {
		return nil, malformed("AUTHENTICATE of %d bytes", len(msg))
	}
	a := &authenticateMsg{flags: binary.LittleEndian.Uint32(msg[60:64]), micAt: -1}
	var err error
	var dom, usr, ws []byte
	for _, f := range []struct {
		off int
		dst *[]byte
	}{{12, &a.lm}, {20, &a.nt}, {28, &dom}, {36, &usr}, {44, &ws}, {52, &a.encryptedKey}} {
		if *f.dst, err = field(msg, f.off); err != nil {
			return nil, err
		}
	}
	if a.flags&flagUnicode == 0 {
		return nil, malformed("OEM strings are not supported")
	}
	for _, s := range []struct {
		b   []byte
		dst *string
	}{{dom, &a.domain}, {usr, &a.user}, {ws, &a.workstation}} {
		if *s.dst, err = fromUTF16(s.b); err != nil {
			return nil, err
		}
	}
	// The MIC (16 bytes after the 8-byte Version) exists when every
	// payload starts behind it (MS-NLMP §2.2.1.3).
	lowest := len(msg)
	for _, off := range []int{12, 20, 28, 36, 44, 52} {
		if binary.LittleEndian.Uint16(msg[off:]) != 0 {
			lowest = min(lowest, int(binary.LittleEndian.Uint32(msg[off+4:])))
		}
	}
	if lowest >= authenticateHeader+8+16 && len(msg) >= authenticateHeader+8+16 {
		a.micAt = authenticateHeader + 8
	}
	return a, nil
}

// avPairs parses an AV_PAIR list up to MsvAvEOL.
func avPairs(b []byte) (map[uint16][]byte, error) {
	m := make(map[uint16][]byte)
	for {
		if len(b) < 4 {
			return nil, malformed("truncated AV pair list")
		}
		id, n := binary.LittleEndian.Uint16(b), int(binary.LittleEndian.Uint16(b[2:]))
		if id == avEOL {
			return m, nil
		}
		if 4+n > len(b) {
			return nil, malformed("AV pair %d overruns the list", id)
		}
		m[id] = b[4 : 4+n]
		b = b[4+n:]
	}
}

func appendAV(dst []byte, id uint16, v []byte) []byte {
	dst = binary.LittleEndian.AppendUint16(dst, id)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(v)))
	return append(dst, v...)
}

func toUTF16(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

func fromUTF16(b []byte) (string, error) {
	if len(b)%2 != 0 {
		return "", malformed("odd-length UTF-16 string")
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u)), nil
}

// version is the VERSION field we send (§2.2.2.10): Windows 6.1 build
// 7601, NTLMSSP_REVISION_W2K3.
var version = []byte{6, 1, 0xb1, 0x1d, 0, 0, 0, 0x0f}

// challengeMsg encodes a CHALLENGE_MESSAGE (§2.2.1.2).
func challengeMsg(flags uint32, target string, challenge [8]byte, targetInfo []byte) []byte {
	const hdr = 56
	name := toUTF16(target)
	b := make([]byte, hdr, hdr+len(name)+len(targetInfo))
	copy(b, signature)
	binary.LittleEndian.PutUint32(b[8:], typeChallenge)
	binary.LittleEndian.PutUint16(b[12:], uint16(len(name)))
	binary.LittleEndian.PutUint16(b[14:], uint16(len(name)))
	binary.LittleEndian.PutUint32(b[16:], hdr)
	binary.LittleEndian.PutUint32(b[20:], flags)
	copy(b[24:32], challenge[:])
	binary.LittleEndian.PutUint16(b[40:], uint16(len(targetInfo)))
	binary.LittleEndian.PutUint16(b[42:], uint16(len(targetInfo)))
	binary.LittleEndian.PutUint32(b[44:], uint32(hdr+len(name)))
	copy(b[48:56], version)
	b = append(b, name...)
	return append(b, targetInfo...)
}
