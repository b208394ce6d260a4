package krb5_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/oiweiwei/go-msrpc/ssp/credential"
	"github.com/oiweiwei/go-msrpc/ssp/gssapi"
	msrpckrb5 "github.com/oiweiwei/go-msrpc/ssp/krb5"

	"github.com/fsrvpd/fsrvpd/rpc/auth/krb5"
	"github.com/fsrvpd/fsrvpd/rpc/auth/krb5/kdctest"
)

func TestMain(m *testing.M) { kdctest.Main(m) }

// client is go-msrpc's Kerberos initiator, driven token by token.
func client(t *testing.T, dc *kdctest.DC, user, password string, dce bool) *msrpckrb5.Authentifier {
	t.Helper()
	cfg := msrpckrb5.NewConfig()
	cfg.KRB5ConfigPath = dc.Krb5Conf
	cfg.KRB5Config = nil
	cfg.Credential = credential.NewFromPassword(user, password, credential.Domain(kdctest.Realm))
	cfg.SName = kdctest.ServicePrincipal
	cfg.DCEStyle = dce
	cfg.Flags = []int{int(gssapi.MutualAuthn), int(gssapi.Integrity), int(gssapi.Confidentiality)}
	if dce {
		cfg.Flags = append(cfg.Flags, int(gssapi.DCEStyle))
	}
	return &msrpckrb5.Authentifier{Config: cfg}
}

func acceptor(t *testing.T, dc *kdctest.DC) *krb5.Acceptor {
	t.Helper()
	a, err := krb5.New(krb5.Config{Keytab: dc.Keytab, Principal: kdctest.ServicePrincipal})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// handshake runs the DCE-style three legs and returns both ends.
func handshake(t *testing.T, dc *kdctest.DC, user, password string) (*msrpckrb5.Authentifier, *krb5.Context) {
	t.Helper()
	ctx := context.Background()
	cli := client(t, dc, user, password, true)
	apreq, err := cli.APRequest(ctx)
	if err != nil {
		t.Fatalf("client AP-REQ: %v", err)
	}
	sc := acceptor(t, dc).NewContext()
	aprep, done, err := sc.Accept(apreq)
	if err != nil || done {
		t.Fatalf("accept AP-REQ: done %v, %v", done, err)
	}
	third, err := cli.APReply(ctx, aprep)
	if err != nil {
		t.Fatalf("client on AP-REP: %v", err)
	}
	if _, done, err = sc.Accept(third); err != nil || !done {
		t.Fatalf("accept third leg: done %v, %v", done, err)
	}
	return cli, sc
}

func TestAcceptDCEStyleAgainstSambaKDC(t *testing.T) {
	dc := kdctest.Shared(t)
	cli, sc := handshake(t, dc, kdctest.AdminUser, kdctest.AdminPassword)
	id := sc.Identity()
	if !strings.EqualFold(id.Principal, kdctest.AdminUser+"@"+kdctest.Realm) || !sc.DCEStyle() {
		t.Fatalf("identity %+v, dce %v", id, sc.DCEStyle())
	}
	if !id.HasPAC || id.UserSID != dc.DomainSID+"-500" {
		t.Fatalf("PAC: %+v (domain %s)", id, dc.DomainSID)
	}
	if !contains(id.SIDs, dc.DomainSID+"-512") {
		t.Fatalf("Administrator's SIDs lack Domain Admins: %v", id.SIDs)
	}
	if !bytes.Equal(sc.SessionKey(), cli.ExportedSessionKey) {
		t.Fatal("session keys differ")
	}
	ctx := context.Background()

	// Privacy, client to server: header and trailer signed, stub sealed.
	for i := 0; i < 3; i++ {
		hdr, stub, trl := []byte("0123456789abcdef"), bytes.Repeat([]byte{byte(i + 1)}, 48), []byte("trailer!")
		want := append([]byte(nil), stub...)
		sig, err := cli.WrapExOutboundPayload(ctx, [][]byte{hdr, stub, trl}, [][]byte{stub})
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(stub, want) {
			t.Fatal("client did not encrypt")
		}
		sealed := append([]byte(nil), stub...)
		// A flipped header bit is refused and leaves the stub as it was.
		badHdr := append([]byte(nil), hdr...)
		badHdr[2] ^= 1
		if err := sc.Unseal(sig, krb5.Part{B: badHdr}, krb5.Part{B: stub, Seal: true}, krb5.Part{B: trl}); !errors.Is(err, krb5.ErrBadSignature) {
			t.Fatalf("modified header: %v", err)
		}
		if !bytes.Equal(stub, sealed) {
			t.Fatal("a refused token changed the stub")
		}
		if err := sc.Unseal(sig, krb5.Part{B: hdr}, krb5.Part{B: stub, Seal: true}, krb5.Part{B: trl}); err != nil {
			t.Fatalf("unseal %d: %v", i, err)
		}
		if !bytes.Equal(stub, want) {
			t.Fatalf("unsealed %x, want %x", stub, want)
		}
		// A replay of the same token is refused (sequence number).
		copy(stub, sealed)
		if err := sc.Unseal(sig, krb5.Part{B: hdr}, krb5.Part{B: stub, Seal: true}, krb5.Part{B: trl}); !errors.Is(err, krb5.ErrBadSignature) {
			t.Fatalf("replayed token: %v", err)
		}
	}
	// Privacy, server to client.
	hdr, stub, trl := []byte("response-header!"), bytes.Repeat([]byte{0x42}, 32), []byte("trailer2")
	want := append([]byte(nil), stub...)
	sig, err := sc.Seal(krb5.Part{B: hdr}, krb5.Part{B: stub, Seal: true}, krb5.Part{B: trl})
	if err != nil {
		t.Fatal(err)
	}
	if len(sig) != sc.SealSize() {
		t.Fatalf("seal token %d bytes, SealSize %d", len(sig), sc.SealSize())
	}
	ok, err := cli.UnwrapExInboundPayload(ctx, [][]byte{hdr, stub, trl}, [][]byte{stub}, sig)
	if err != nil || !ok || !bytes.Equal(stub, want) {
		t.Fatalf("client unwrap: ok %v, %v, %x", ok, err, stub)
	}
	// Integrity both ways.
	mic, err := cli.MakeOutboundSignature(ctx, [][]byte{hdr, want, trl})
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Verify(mic, krb5.Part{B: hdr}, krb5.Part{B: want}, krb5.Part{B: trl}); err != nil {
		t.Fatalf("verify MIC: %v", err)
	}
	smic, err := sc.Sign(krb5.Part{B: hdr}, krb5.Part{B: want})
	if err != nil {
		t.Fatal(err)
	}
	exp, err := cli.MakeInboundSignature(ctx, [][]byte{hdr, want})
	if err != nil || !bytes.Equal(exp, smic) {
		t.Fatalf("server MIC %x, client expects %x (%v)", smic, exp, err)
	}
}

func TestAcceptPlainUserHasNoAdminGroup(t *testing.T) {
	dc := kdctest.Shared(t)
	if err := dc.AddUser(context.Background(), "plainuser", "Plain.Passw0rd.1"); err != nil {
		t.Fatal(err)
	}
	_, sc := handshake(t, dc, "plainuser", "Plain.Passw0rd.1")
	id := sc.Identity()
	if !id.HasPAC || contains(id.SIDs, dc.DomainSID+"-512") || !contains(id.SIDs, dc.DomainSID+"-513") {
		t.Fatalf("plainuser: %+v", id)
	}
}

func TestRefusals(t *testing.T) {
	dc := kdctest.Shared(t)
	ctx := context.Background()
	cli := client(t, dc, kdctest.AdminUser, kdctest.AdminPassword, true)
	apreq, err := cli.APRequest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A keytab with the wrong key for the principal.
	wrong := krb5.NewTestKeytab(t, kdctest.ServicePrincipal, kdctest.Realm)
	a, err := krb5.NewFromKeytab(wrong, kdctest.ServicePrincipal, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.NewContext().Accept(apreq); err == nil {
		t.Fatal("AP-REQ accepted with the wrong key")
	}
	// A mangled ticket: flip a byte inside the encrypted part.
	bad := append([]byte(nil), apreq...)
	bad[len(bad)/2] ^= 0x55
	if _, _, err := acceptor(t, dc).NewContext().Accept(bad); err == nil {
		t.Fatal("mangled AP-REQ accepted")
	}
	// Garbage and truncations.
	for _, b := range [][]byte{nil, {0x60}, {0x6e, 0x01}, apreq[:len(apreq)-7], []byte("NTLMSSP\x00")} {
		if _, _, err := acceptor(t, dc).NewContext().Accept(b); err == nil {
			t.Fatalf("accepted %x", b)
		}
	}
	// The real one still works; a replay of it does not.
	sc := acceptor(t, dc).NewContext()
	if _, _, err := sc.Accept(apreq); err != nil {
		t.Fatalf("genuine AP-REQ: %v", err)
	}
	if _, _, err := acceptor(t, dc).NewContext().Accept(apreq); err == nil {
		t.Fatal("replayed AP-REQ accepted")
	}
	// A third leg that is not the client's AP-REP.
	if _, _, err := sc.Accept([]byte{0x6f, 0x03, 0x02, 0x01, 0x05}); err == nil {
		t.Fatal("bogus third leg accepted")
	}
	// A ticket for another principal of the same keytab is refused when the
	// acceptor is restricted.
	if _, err := krb5.New(krb5.Config{Keytab: dc.Keytab, Principal: "host/other.fsrvp.test"}); err == nil {
		t.Fatal("principal missing from the keytab accepted")
	}
}

func TestGSSFramedMutual(t *testing.T) {
	dc := kdctest.Shared(t)
	ctx := context.Background()
	cli := client(t, dc, kdctest.AdminUser, kdctest.AdminPassword, false)
	tok, err := cli.APRequest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tok[0] != 0x60 {
		t.Fatalf("client sent %#x, want a GSS token", tok[0])
	}
	sc := acceptor(t, dc).NewContext()
	out, done, err := sc.Accept(tok)
	if err != nil || !done || sc.DCEStyle() {
		t.Fatalf("accept: done %v dce %v: %v", done, sc.DCEStyle(), err)
	}
	if _, err := cli.APReply(ctx, out); err != nil {
		t.Fatalf("client on framed AP-REP: %v", err)
	}
	mic, err := cli.MakeOutboundSignature(ctx, [][]byte{[]byte("mechListMIC")})
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Verify(mic, krb5.Part{B: []byte("mechListMIC")}); err != nil {
		t.Fatal(err)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
