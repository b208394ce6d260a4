package main

import (
	"bytes"
	"context"
	"encoding/hex"
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
	"github.com/fsrvpd/fsrvpd/rpc/auth/ntlm"
	"github.com/fsrvpd/fsrvpd/rpc/auth/spnego"
)

// whoFake records the caller of GetSupportedVersion.
type whoFake struct {
	*clienttest.Fake
	last chan rpc.Caller
}

func (f whoFake) GetSupportedVersion(ctx context.Context, req *fsrvp.GetSupportedVersionRequest) (*fsrvp.GetSupportedVersionResponse, error) {
	c, _ := rpc.CallerFromContext(ctx)
	f.last <- *c
	return f.Fake.GetSupportedVersion(ctx, req)
}

// TestE2EAuth runs the CLI with -U against an rpc.Server with our NTLM and
// SPNEGO acceptors.
func TestE2EAuth(t *testing.T) {
	const password = "Pa55-word"
	f := whoFake{clienttest.NewFake("share1"), make(chan rpc.Caller, 1)}
	l := logrus.New()
	l.SetOutput(io.Discard)
	n := ntlm.NewProvider(ntlm.Config{Verifier: ntlm.NewAccounts([]ntlm.Account{{User: "backup", NTHash: ntlm.NTHash(password)}})})
	s := &rpc.Server{Logger: logrus.NewEntry(l), Auth: []rpc.AuthProvider{n, spnego.NewProvider(n)}}
	s.Register(fsrvp.FileServerVSSAgentSyntaxV1_0, fsrvp.NewFileServerVSSAgentServerHandle(f))
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
	h := ntlm.NTHash(password)
	hash := hex.EncodeToString(h[:])
	cli := func(env map[string]string, args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"-server", server, "-timeout", "10s"}, args...), func(k string) string { return env[k] }, strings.NewReader(""), &out, &errb, client.Dial)
		all := out.String() + errb.String()
		if strings.Contains(all, password) || strings.Contains(all, hash) {
			t.Errorf("secret printed: %s", all)
		}
		return code, all
	}
	for _, tc := range []struct {
		env             map[string]string
		args            []string
		authType, level uint8
	}{
		{map[string]string{"FSRVP_PASSWORD": password}, []string{"-v", "-U", `WORKGROUP\backup`, "version"}, rpc.AuthTypeSPNEGO, rpc.AuthLevelIntegrity},
		{map[string]string{"FSRVP_USER": "backup", "FSRVP_PASSWORD": password}, []string{"-auth-level", "seal", "-auth-mech", "ntlm", "version"}, rpc.AuthTypeNTLM, rpc.AuthLevelPrivacy},
		{map[string]string{"FSRVP_PASSWORD": hash}, []string{"-U", "backup", "-pw-nt-hash", "-auth-level", "seal", "version"}, rpc.AuthTypeSPNEGO, rpc.AuthLevelPrivacy},
	} {
		code, out := cli(tc.env, tc.args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.args, code, out)
		}
		c := <-f.last
		if c.AuthType != tc.authType || c.AuthLevel != tc.level || c.Identity == nil || c.Identity.User != "backup" {
			t.Errorf("%v: caller %d/%d %v", tc.args, c.AuthType, c.AuthLevel, c.Identity)
		}
	}
	if code, out := cli(map[string]string{"FSRVP_PASSWORD": "wrong"}, "-U", "backup", "version"); code != 3 {
		t.Errorf("wrong password: exit %d: %s", code, out)
	}
	if code, _ := cli(nil, "-U", "backup", "-auth-level", "loud", "version"); code != 2 {
		t.Errorf("bad -auth-level: exit %d, want 2", code)
	}
}

func TestNTHashCommand(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"nthash"}, func(string) string { return "" }, strings.NewReader("password\n"), &out, &errb, client.Dial)
	// MS-NLMP §4.2.2.1.2: NTOWFv1("Password") = a4f49c406510bdcab6824ee7c30fd852; "password" is smbpasswd's classic example.
	if code != 0 || out.String() != "8846f7eaee8fb117ad06bdd830b7586c\n" {
		t.Errorf("nthash: %d %q %s", code, out.String(), errb.String())
	}
}
