package krb5

import (
	"testing"
	"time"

	"github.com/oiweiwei/gokrb5.fork/v9/iana/etypeID"
	"github.com/oiweiwei/gokrb5.fork/v9/keytab"
)

// NewTestKeytab makes a keytab with a random password's AES keys.
func NewTestKeytab(t testing.TB, principal, realm string) *keytab.Keytab {
	kt := keytab.New()
	for _, et := range []int32{etypeID.AES256_CTS_HMAC_SHA1_96, etypeID.AES128_CTS_HMAC_SHA1_96} {
		if err := kt.AddEntry(principal, realm, "not-the-password", time.Now(), 2, et); err != nil {
			t.Fatal(err)
		}
	}
	return kt
}
