package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	fsrvp "github.com/oiweiwei/go-msrpc/msrpc/fsrvp/fileservervssagent/v1"
	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/client"
	"github.com/fsrvpd/fsrvpd/client/clienttest"
	"github.com/fsrvpd/fsrvpd/rpc"
	"github.com/fsrvpd/fsrvpd/rpc/auth/krb5"
	"github.com/fsrvpd/fsrvpd/rpc/auth/krb5/kdctest"
	"github.com/fsrvpd/fsrvpd/rpc/auth/spnego"
	"github.com/fsrvpd/fsrvpd/storage/storagetest"
)

// TestKerberosFlags: -k with a ccache from kinit (SPNEGO, seal) and with
// a password (-auth-mech kerberos), against a server that accepts only
// Kerberos, the tickets from a Samba AD DC.
func TestKerberosFlags(t *testing.T) {
	storagetest.RequireCommand(t, "kinit")
	dc := kdctest.New(t, kdctest.Options{})
	a, err := krb5.New(krb5.Config{Keytab: dc.Keytab, Principal: kdctest.ServicePrincipal})
	if err != nil {
		t.Fatal(err)
	}
	l := logrus.New()
	l.SetOutput(io.Discard)
	s := &rpc.Server{Logger: logrus.NewEntry(l)}
	s.Register(fsrvp.FileServerVSSAgentSyntaxV1_0, fsrvp.NewFileServerVSSAgentServerHandle(clienttest.NewFake("share1")))
	k := krb5.NewProvider(a)
	s.Auth = []rpc.AuthProvider{k, spnego.NewProvider(k)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	}()
	server := "127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ccache, err := dc.Kinit(context.Background(), t.TempDir(), kdctest.AdminUser, kdctest.AdminPassword)
	if err != nil {
		t.Fatal(err)
	}
	cli := func(env map[string]string, args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, func(k string) string { return env[k] }, strings.NewReader(""), &out, &errb, client.Dial)
		return code, out.String() + errb.String()
	}
	base := []string{"-server", server, "-k", "-krb5-target", kdctest.ServicePrincipal, "-auth-level", "seal"}
	for name, tc := range map[string]struct {
		env  map[string]string
		args []string
	}{
		"ccache/spnego":     {map[string]string{"KRB5CCNAME": "FILE:" + ccache, "KRB5_CONFIG": dc.Krb5Conf}, nil},
		"password/kerberos": {map[string]string{"FSRVP_PASSWORD": kdctest.AdminPassword}, []string{"-krb5-conf", dc.Krb5Conf, "-auth-mech", "kerberos", "-U", kdctest.AdminUser + "@" + kdctest.Realm}},
	} {
		code, out := cli(tc.env, append(append(append([]string(nil), base...), tc.args...), "version")...)
		if code != 0 {
			t.Errorf("%s: exit %d: %s", name, code, out)
		}
	}
	// A ticket for a principal the server has no key for is refused.
	code, out := cli(map[string]string{"KRB5CCNAME": ccache, "KRB5_CONFIG": dc.Krb5Conf},
		"-server", server, "-k", "-krb5-target", "host/dc1."+kdctest.DNSDomain, "-auth-level", "seal", "version")
	if code == 0 {
		t.Errorf("ticket for another service accepted: %s", out)
	}
	// Usage errors.
	for _, args := range [][]string{
		{"-server", server, "-k", "-auth-mech", "ntlm", "version"},
		{"-server", server, "-auth-mech", "kerberos", "-U", "x", "version"},
		{"-server", server, "-k", "version"}, // no ccache, keytab or password
	} {
		if code, out := cli(nil, args...); code != 2 {
			t.Errorf("%q: exit %d, want 2: %s", args, code, out)
		}
	}
}
