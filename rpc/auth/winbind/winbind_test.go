package winbind_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	fsrvp "github.com/oiweiwei/go-msrpc/msrpc/fsrvp/fileservervssagent/v1"
	"github.com/oiweiwei/go-msrpc/ssp"
	"github.com/oiweiwei/go-msrpc/ssp/credential"
	"github.com/oiweiwei/go-msrpc/ssp/gssapi"
	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/rpc"
	"github.com/fsrvpd/fsrvpd/rpc/auth/krb5/kdctest"
	"github.com/fsrvpd/fsrvpd/rpc/auth/ntlm"
	"github.com/fsrvpd/fsrvpd/rpc/auth/spnego"
	"github.com/fsrvpd/fsrvpd/rpc/auth/winbind"
	"github.com/fsrvpd/fsrvpd/storage/storagetest"
)

func TestMain(m *testing.M) { kdctest.Main(m) }

type whoami struct {
	fsrvp.UnimplementedFileServerVSSAgentServer
}

func (whoami) IsPathSupported(ctx context.Context, req *fsrvp.IsPathSupportedRequest) (*fsrvp.IsPathSupportedResponse, error) {
	c, ok := rpc.CallerFromContext(ctx)
	if !ok || c.Identity == nil {
		return nil, errors.New("no identity")
	}
	s := fmt.Sprintf("%d|%d|%s|%v", c.AuthType, c.AuthLevel, c.Identity, c.Identity.IsBackupCapable())
	return &fsrvp.IsPathSupportedResponse{SupportedByThisProvider: true, OwnerMachineName: s}, nil
}

func verifier(t *testing.T) (*kdctest.DC, *winbind.Verifier) {
	t.Helper()
	storagetest.RequireCommand(t, "ntlm_auth")
	storagetest.RequireCommand(t, "wbinfo")
	dc := kdctest.SharedWinbind(t)
	v, err := winbind.New(winbind.Config{SMBConf: dc.SMBConf})
	if err != nil {
		t.Fatal(err)
	}
	if err := dc.WaitWinbind(context.Background()); err != nil {
		t.Fatal(err)
	}
	return dc, v
}

func TestSIDs(t *testing.T) {
	dc, v := verifier(t)
	sids, err := v.SIDs(context.Background(), kdctest.Domain+`\`+kdctest.AdminUser)
	if err != nil {
		t.Fatal(err)
	}
	id := &rpc.Identity{SIDs: sids}
	if sids[0] != dc.DomainSID+"-500" || !id.HasSID(dc.DomainSID+"-512") || !id.HasSID(rpc.SIDAdministrators) {
		t.Fatalf("Administrator's SIDs: %v", sids)
	}
}

func TestNTLMThroughWinbind(t *testing.T) {
	dc, v := verifier(t)
	ctx := context.Background()
	if err := dc.AddUser(ctx, "wbuser", "Wb.Passw0rd.12"); err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	s := &rpc.Server{Logger: logrus.NewEntry(log)}
	s.Register(fsrvp.FileServerVSSAgentSyntaxV1_0, fsrvp.NewFileServerVSSAgentServerHandle(whoami{}))
	n := ntlm.NewProvider(ntlm.Config{Verifier: v, DomainName: kdctest.Domain})
	s.Auth = []rpc.AuthProvider{n, spnego.NewProvider(n)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	host, port, _ := net.SplitHostPort(l.Addr().String())

	dial := func(user, password string, level dcerpc.SecurityOption, useSPNEGO bool) (fsrvp.FileServerVSSAgentClient, error) {
		gctx := gssapi.NewSecurityContext(ctx)
		cc, err := dcerpc.Dial(gctx, "ncacn_ip_tcp:"+host+"["+port+"]")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close(ctx) })
		opts := []dcerpc.Option{level, dcerpc.WithCredentials(credential.NewFromPassword(user, password, credential.Domain(kdctest.Domain)))}
		if useSPNEGO {
			opts = append(opts, dcerpc.WithMechanism(ssp.SPNEGO), dcerpc.WithMechanism(ssp.NTLM))
		} else {
			opts = append(opts, dcerpc.WithMechanism(ssp.NTLM))
		}
		return fsrvp.NewFileServerVSSAgentClient(gctx, cc, opts...)
	}
	for _, tc := range []struct {
		user, password string
		level          dcerpc.SecurityOption
		spnego         bool
		want           string
	}{
		{kdctest.AdminUser, kdctest.AdminPassword, dcerpc.WithSeal(), false, "10|6|FSRVPTEST\\Administrator|true"},
		{kdctest.AdminUser, kdctest.AdminPassword, dcerpc.WithSign(), true, "9|5|FSRVPTEST\\Administrator|true"},
		{"wbuser", "Wb.Passw0rd.12", dcerpc.WithSeal(), true, "9|6|FSRVPTEST\\wbuser|false"},
	} {
		cli, err := dial(tc.user, tc.password, tc.level, tc.spnego)
		if err != nil {
			t.Fatalf("%s: bind: %v", tc.user, err)
		}
		for i := 0; i < 2; i++ {
			r, err := cli.IsPathSupported(ctx, &fsrvp.IsPathSupportedRequest{ShareName: "x"})
			if err != nil {
				t.Fatalf("%s: call: %v", tc.user, err)
			}
			if r.OwnerMachineName != tc.want {
				t.Fatalf("server saw %q, want %q", r.OwnerMachineName, tc.want)
			}
		}
	}
	// NTLM's AUTHENTICATE travels in auth3, which has no answer: a refused
	// client learns it from its first call.
	for _, bad := range []struct {
		user, password string
		spnego         bool
	}{{"wbuser", "wrong", false}, {"nosuchuser", "x", true}} {
		cli, err := dial(bad.user, bad.password, dcerpc.WithSeal(), bad.spnego)
		if err == nil {
			_, err = cli.IsPathSupported(ctx, &fsrvp.IsPathSupportedRequest{ShareName: "x"})
		}
		if err == nil {
			t.Fatalf("%s with password %q was served", bad.user, bad.password)
		}
	}
}
