package krb5_test

import (
	"strings"
	"testing"
	"time"

	krbclient "github.com/oiweiwei/gokrb5.fork/v9/client"
	"github.com/oiweiwei/gokrb5.fork/v9/config"
	"github.com/oiweiwei/gokrb5.fork/v9/keytab"
	"github.com/oiweiwei/gokrb5.fork/v9/messages"
	"github.com/oiweiwei/gokrb5.fork/v9/types"

	"github.com/fsrvpd/fsrvpd/rpc/auth/krb5"
	"github.com/fsrvpd/fsrvpd/rpc/auth/krb5/kdctest"
)

// TestExpiredTicket: a genuine service ticket from the KDC, presented with
// a fresh authenticator after its end time, is refused.
func TestExpiredTicket(t *testing.T) {
	dc := kdctest.Shared(t)
	cfg, err := config.Load(dc.Krb5Conf)
	if err != nil {
		t.Fatal(err)
	}
	cl := krbclient.NewWithPassword(kdctest.AdminUser, kdctest.Realm, kdctest.AdminPassword, cfg, krbclient.DisablePAFXFAST(true))
	if err := cl.Login(); err != nil {
		t.Fatal(err)
	}
	// A service ticket that lives 15 s (the TGS request's till).
	cl.Config.LibDefaults.TicketLifetime = 15 * time.Second
	tkt, key, err := cl.GetServiceTicket(kdctest.ServicePrincipal)
	if err != nil {
		t.Fatal(err)
	}
	apreq := func() []byte {
		auth, err := types.NewAuthenticator(kdctest.Realm, types.NewPrincipalName(1, kdctest.AdminUser))
		if err != nil {
			t.Fatal(err)
		}
		req, err := messages.NewAPReq(tkt, key, auth)
		if err != nil {
			t.Fatal(err)
		}
		b, err := req.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, err := krb5.New(krb5.Config{Keytab: dc.Keytab, Principal: kdctest.ServicePrincipal, MaxClockSkew: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sc := a.NewContext()
	if out, _, err := sc.Accept(apreq()); err != nil || len(out) == 0 {
		t.Fatalf("valid ticket: %v", err)
	}
	if err := tkt.DecryptEncPart(dcKeytab(t, dc), nil); err != nil {
		t.Fatal(err)
	}
	end := tkt.DecryptedEncPart.EndTime
	if life := time.Until(end); life > time.Minute {
		t.Fatalf("the KDC issued a ticket for %v; the test needs a short one", life)
	}
	time.Sleep(time.Until(end) + 3*time.Second)
	_, _, err = a.NewContext().Accept(apreq())
	if err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired ticket: %v, want a refusal for expiry", err)
	}
}

func dcKeytab(t *testing.T, dc *kdctest.DC) *keytab.Keytab {
	kt, err := keytab.Load(dc.Keytab)
	if err != nil {
		t.Fatal(err)
	}
	return kt
}
