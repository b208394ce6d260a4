package server

import (
	"context"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/client"
	scmpc "github.com/fsrvpd/fsrvpd/client/scmp"
	"github.com/fsrvpd/fsrvpd/rpc/auth/krb5/kdctest"
	"github.com/fsrvpd/fsrvpd/server/config"
	"github.com/fsrvpd/fsrvpd/storage/storagetest"
)

// TestDaemonKerberosAndWinbind runs the daemon as a member of a real
// Samba AD domain: Kerberos from the service keytab ([auth.kerberos]),
// NTLM through the DC's winbindd ([auth.winbind]), Domain Admins allowed
// by [auth] backup_sids, privacy required.
func TestDaemonKerberosAndWinbind(t *testing.T) {
	storagetest.RequireCommand(t, "ntlm_auth")
	storagetest.RequireCommand(t, "kinit")
	dc := kdctest.New(t, kdctest.Options{Winbind: true})
	ctx := context.Background()
	if err := dc.WaitWinbind(ctx); err != nil {
		t.Fatal(err)
	}
	if err := dc.AddUser(ctx, "plain", "Plain.Passw0rd.2"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := config.Demo(dir)
	// SCMP too: its resolver and activation on TCP 135 of a random 127.x
	// address, where go-msrpc's DCOM client looks.
	host := freeLoopback135(t)
	c.Server.Listen = []string{net.JoinHostPort(host, "0")}
	c.Server.EndpointMapper = net.JoinHostPort(host, "135")
	c.Server.EndpointMapperOptional = false
	c.SCMP = config.SCMP{Enabled: true, MaxShadowCopies: 64, MinStorageBytes: -1, MinAuthLevel: "privacy"}
	c.FSRVP.AllowUnauthenticated = false
	c.FSRVP.MinAuthLevel = "privacy"
	c.Auth.Mechanisms = []string{"spnego", "kerberos", "ntlm"}
	c.Auth.Domain = kdctest.Domain
	c.Auth.Kerberos = &config.Kerberos{Keytab: dc.Keytab, Principal: kdctest.ServicePrincipal}
	c.Auth.Winbind = &config.Winbind{SMBConf: dc.SMBConf}
	c.Auth.BackupSIDs = []string{dc.DomainSID + "-512"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, s := range c.Shares {
		if err := os.MkdirAll(s.Path, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	l := logrus.New()
	l.SetOutput(io.Discard)
	d, err := Start(ctx, c, logrus.NewEntry(l))
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { d.Run(rctx, 5*time.Second); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	addr := d.Addrs()[0].String()

	ccache, err := dc.Kinit(ctx, dir, kdctest.AdminUser, kdctest.AdminPassword)
	if err != nil {
		t.Fatal(err)
	}
	krb := func(k client.Kerberos) *client.Kerberos {
		k.Krb5Conf, k.Target = dc.Krb5Conf, kdctest.ServicePrincipal
		return &k
	}
	admin := kdctest.AdminUser + "@" + kdctest.Realm
	// Allowed: the whole create/delete sequence, sealed.
	for name, a := range map[string]client.Auth{
		"kerberos/password": {User: admin, Password: kdctest.AdminPassword, Level: client.LevelPrivacy, Mechanism: client.MechanismKerberos, Kerberos: krb(client.Kerberos{})},
		"spnego/ccache":     {Level: client.LevelPrivacy, Kerberos: krb(client.Kerberos{CCache: ccache})},
		"ntlm/winbind":      {User: kdctest.Domain + `\` + kdctest.AdminUser, Password: kdctest.AdminPassword, Level: client.LevelPrivacy, Mechanism: client.MechanismNTLM},
	} {
		cl, err := client.Dial(ctx, addr, client.WithAuth(a), client.WithTimeout(20*time.Second))
		if err != nil {
			t.Fatalf("%s: dial: %v", name, err)
		}
		res, err := cl.Create(ctx, client.CreateRequest{Shares: []string{"share1"}, RecoveryComplete: true})
		if err != nil {
			t.Fatalf("%s: create: %v", name, err)
		}
		if err := cl.Delete(ctx, res.ShadowCopySetID, res.Mappings); err != nil {
			t.Fatalf("%s: delete: %v", name, err)
		}
		cl.Close()
	}
	// SCMP (DCOM activation, then the objects on the exporter) with
	// Kerberos, directly and through SPNEGO, at packet privacy; a domain
	// user outside the groups is refused at activation.
	fc, err := client.Dial(ctx, addr, client.WithAuth(client.Auth{Level: client.LevelPrivacy, Kerberos: krb(client.Kerberos{CCache: ccache})}))
	if err != nil {
		t.Fatal(err)
	}
	set, err := fc.Create(ctx, client.CreateRequest{Context: client.CtxNASRollback, Shares: []string{"share1"}, RecoveryComplete: true})
	fc.Close()
	if err != nil {
		t.Fatal(err)
	}
	for name, a := range map[string]client.Auth{
		"scmp kerberos/password": {User: admin, Password: kdctest.AdminPassword, Level: client.LevelPrivacy, Mechanism: client.MechanismKerberos, Kerberos: krb(client.Kerberos{})},
		"scmp spnego/ccache":     {Level: client.LevelPrivacy, Kerberos: krb(client.Kerberos{CCache: ccache})},
		"scmp plain user":        {User: "plain@" + kdctest.Realm, Password: "Plain.Passw0rd.2", Level: client.LevelPrivacy, Kerberos: krb(client.Kerberos{})},
	} {
		sec, err := a.RPCOptions()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		sc, err := scmpc.Dial(ctx, host, scmpc.Options{Security: sec})
		if name == "scmp plain user" {
			if err == nil {
				sc.Close(context.Background())
			}
			if !isHR(err, 0x80070005) {
				t.Errorf("%s: Dial = %v, want E_ACCESSDENIED", name, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: dial: %v", name, err)
		}
		got, err := sc.ShadowCopies(ctx, "share1")
		if err != nil || len(got) != 1 || got[0].SetID != set.ShadowCopySetID {
			t.Errorf("%s: shadow copies %+v, %v", name, got, err)
		}
		if err := sc.ChangeDiffAreaMaximumSize(ctx, "share1", "share1", 1<<40); err != nil && !isHR(err, 0x80042308) {
			t.Errorf("%s: ChangeDiffAreaMaximumSize: %v", name, err)
		}
		sc.Close(context.Background())
	}

	// Refused with E_ACCESSDENIED: a domain user outside the groups, and
	// the Administrator at integrity level when privacy is required.
	for name, a := range map[string]client.Auth{
		"plain user":       {User: "plain@" + kdctest.Realm, Password: "Plain.Passw0rd.2", Level: client.LevelPrivacy, Kerberos: krb(client.Kerberos{})},
		"integrity only":   {User: admin, Password: kdctest.AdminPassword, Level: client.LevelIntegrity, Mechanism: client.MechanismKerberos, Kerberos: krb(client.Kerberos{})},
		"plain user, ntlm": {User: kdctest.Domain + `\plain`, Password: "Plain.Passw0rd.2", Level: client.LevelPrivacy, Mechanism: client.MechanismNTLM},
	} {
		cl, err := client.Dial(ctx, addr, client.WithAuth(a), client.WithTimeout(20*time.Second))
		if err != nil {
			t.Fatalf("%s: dial: %v", name, err)
		}
		_, _, err = cl.GetSupportedVersion(ctx)
		if code, _ := client.Code(err); code != client.EAccessDenied {
			t.Errorf("%s: GetSupportedVersion = %v, want E_ACCESSDENIED", name, err)
		}
		cl.Close()
	}
	// A wrong password gets no ticket, hence no bind.
	_, err = client.Dial(ctx, addr, client.WithAuth(client.Auth{User: admin, Password: "wrong", Level: client.LevelPrivacy, Kerberos: krb(client.Kerberos{})}))
	if err == nil {
		t.Error("dialed with a wrong Kerberos password")
	}
}
