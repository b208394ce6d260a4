package server

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fsrvpd/fsrvpd/client"
	"github.com/fsrvpd/fsrvpd/rpc/auth/ntlm"
	"github.com/fsrvpd/fsrvpd/server/config"
)

// startAuthDaemon runs the demo configuration with RPC authentication
// required: a backup operator "backup" (hash inline), a plain user "alice"
// (hash in a file).
func startAuthDaemon(t *testing.T, minLevel string) string {
	t.Helper()
	dir := t.TempDir()
	c := config.Demo(dir)
	c.Server.Listen = []string{"127.0.0.1:0"}
	c.Server.EndpointMapper = ""
	c.FSRVP.AllowUnauthenticated = false
	c.FSRVP.MinAuthLevel = minLevel
	hash := hashHex
	hf := filepath.Join(dir, "alice.nthash")
	if err := os.WriteFile(hf, []byte(hash("alice-pw")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Auth.Accounts = []config.Account{
		{User: "backup", NTHash: config.Secret(hash("backup-pw")), BackupOperator: true},
		{User: "alice", NTHashFile: hf},
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	makeShares(t, c, false)
	d := runDaemon(t, c, nil)
	return d.Addrs()[0].String()
}

func TestDaemonRequiresAuthentication(t *testing.T) {
	addr := startAuthDaemon(t, "integrity")
	ctx := t.Context()
	dial := func(opts ...client.Option) (*client.Client, error) {
		return client.Dial(ctx, addr, append(opts, client.WithTimeout(20*time.Second))...)
	}
	// The backup operator, signed (SPNEGO) and sealed (NTLM): the whole
	// create/delete sequence.
	for _, a := range []client.Auth{
		{User: `WORKGROUP\backup`, Password: "backup-pw"},
		{User: "backup", NTHash: hashHex("backup-pw"), Level: client.LevelPrivacy, Mechanism: client.MechanismNTLM},
	} {
		c, err := dial(client.WithAuth(a))
		if err != nil {
			t.Fatalf("dial %s/%s: %v", a.Level, a.Mechanism, err)
		}
		res, err := c.Create(ctx, client.CreateRequest{Shares: []string{"share1"}, RecoveryComplete: true})
		if err != nil {
			t.Fatalf("create as backup (%s/%s): %v", a.Level, a.Mechanism, err)
		}
		if err := c.Delete(ctx, res.ShadowCopySetID, res.Mappings); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	// Refused with E_ACCESSDENIED: no authentication, a user who is no
	// backup operator, the connect level.
	for name, opts := range map[string][]client.Option{
		"unauthenticated": nil,
		"plain user":      {client.WithAuth(client.Auth{User: "alice", Password: "alice-pw"})},
		"connect level":   {client.WithAuth(client.Auth{User: "backup", Password: "backup-pw", Level: client.LevelConnect})},
	} {
		c, err := dial(opts...)
		if err != nil {
			t.Fatalf("%s: dial: %v", name, err)
		}
		_, _, err = c.GetSupportedVersion(ctx)
		if code, _ := client.Code(err); code != client.EAccessDenied {
			t.Errorf("%s: GetSupportedVersion = %v, want E_ACCESSDENIED", name, err)
		}
		c.Close()
	}
	// A wrong password never gets a return code.
	c, err := dial(client.WithAuth(client.Auth{User: "backup", Password: "nope"}))
	if err == nil {
		_, _, err = c.GetSupportedVersion(ctx)
		c.Close()
	}
	if err == nil || !client.IsTransport(err) {
		t.Errorf("wrong password: %v, want a transport error", err)
	}
}

func TestDaemonRequiresPrivacy(t *testing.T) {
	addr := startAuthDaemon(t, "privacy")
	ctx := t.Context()
	for level, want := range map[string]uint32{client.LevelIntegrity: client.EAccessDenied, client.LevelPrivacy: 0} {
		c, err := client.Dial(ctx, addr, client.WithAuth(client.Auth{User: "backup", Password: "backup-pw", Level: level}))
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = c.GetSupportedVersion(ctx)
		if code, _ := client.Code(err); code != want {
			t.Errorf("%s: %v, want %#x", level, err, want)
		}
		c.Close()
	}
}

func hashHex(pw string) string {
	h := ntlm.NTHash(pw)
	return hex.EncodeToString(h[:])
}
