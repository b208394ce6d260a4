package krb5

import (
	"bytes"
	"testing"

	"github.com/oiweiwei/gokrb5.fork/v9/iana/etypeID"
	"github.com/oiweiwei/gokrb5.fork/v9/types"
)

func testKey() types.EncryptionKey {
	return types.EncryptionKey{KeyType: etypeID.AES256_CTS_HMAC_SHA1_96, KeyValue: bytes.Repeat([]byte{7}, 32)}
}

func pair(t *testing.T, dce bool) (acc, ini *cfx) {
	a, err := newCFX(testKey(), true, dce, 1)
	if err != nil {
		t.Fatal(err)
	}
	i, _ := newCFX(testKey(), true, dce, 1)
	return a, initiator(i)
}

// TestWrapTamper: every single-bit change of the token, the sealed data or
// the signed header is refused, and the data is left as it was.
func TestWrapTamper(t *testing.T) {
	for _, dce := range []bool{true, false} {
		_, ini := pair(t, dce)
		hdr, stub, trl := []byte("0123456789abcdef01234567"), bytes.Repeat([]byte{0x44}, 48), []byte("trailer!")
		tok, err := ini.wrap([]Part{{B: hdr}, {B: stub, Seal: true}, {B: trl}})
		if err != nil {
			t.Fatal(err)
		}
		for which := 0; which < 3; which++ {
			var target []byte
			switch which {
			case 0:
				target = tok
			case 1:
				target = stub
			case 2:
				target = hdr
			}
			for i := 0; i < len(target)*8; i += 7 {
				acc, _ := pair(t, dce)
				target[i/8] ^= 1 << (i % 8)
				d := append([]byte(nil), stub...)
				if err := acc.unwrap([]Part{{B: hdr}, {B: d, Seal: true}, {B: trl}}, tok); err == nil {
					t.Fatalf("dce %v: bit %d of part %d flipped, token verified", dce, i, which)
				}
				if !bytes.Equal(d, stub) {
					t.Fatal("refused token changed the data")
				}
				target[i/8] ^= 1 << (i % 8)
			}
		}
		acc, _ := pair(t, dce)
		if err := acc.unwrap([]Part{{B: hdr}, {B: stub, Seal: true}, {B: trl}}, tok); err != nil || !bytes.Equal(stub, bytes.Repeat([]byte{0x44}, 48)) {
			t.Fatalf("dce %v: genuine token: %v", dce, err)
		}
	}
}
