package krb5_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	fsrvp "github.com/oiweiwei/go-msrpc/msrpc/fsrvp/fileservervssagent/v1"
	"github.com/oiweiwei/go-msrpc/ssp"
	"github.com/oiweiwei/go-msrpc/ssp/credential"
	"github.com/oiweiwei/go-msrpc/ssp/gssapi"
	msrpckrb5 "github.com/oiweiwei/go-msrpc/ssp/krb5"
	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/rpc"
	"github.com/fsrvpd/fsrvpd/rpc/auth/krb5"
	"github.com/fsrvpd/fsrvpd/rpc/auth/krb5/kdctest"
	"github.com/fsrvpd/fsrvpd/rpc/auth/spnego"
)

// whoami answers IsPathSupported with the caller's identity.
type whoami struct {
	fsrvp.UnimplementedFileServerVSSAgentServer
}

func (whoami) IsPathSupported(ctx context.Context, req *fsrvp.IsPathSupportedRequest) (*fsrvp.IsPathSupportedResponse, error) {
	c, ok := rpc.CallerFromContext(ctx)
	if !ok || c.Identity == nil {
		return nil, errors.New("no identity")
	}
	s := fmt.Sprintf("%d|%d|%s|%s|%v|%s", c.AuthType, c.AuthLevel, c.Identity, c.Identity.Mechanism, c.Identity.IsBackupCapable(strings.TrimLeft(req.ShareName, "x")), req.ShareName)
	return &fsrvp.IsPathSupportedResponse{SupportedByThisProvider: true, OwnerMachineName: s}, nil
}

func startServer(t *testing.T, dc *kdctest.DC) string {
	t.Helper()
	log := logrus.New()
	log.SetOutput(io.Discard)
	s := &rpc.Server{Logger: logrus.NewEntry(log)}
	s.Register(fsrvp.FileServerVSSAgentSyntaxV1_0, fsrvp.NewFileServerVSSAgentServerHandle(whoami{}))
	k := krb5.NewProvider(acceptor(t, dc))
	s.Auth = []rpc.AuthProvider{k, spnego.NewProvider(k)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return l.Addr().String()
}

func dialKerberos(t *testing.T, dc *kdctest.DC, addr, user, password string, level dcerpc.SecurityOption, useSPNEGO bool) (fsrvp.FileServerVSSAgentClient, error) {
	t.Helper()
	ctx := gssapi.NewSecurityContext(context.Background())
	host, port, _ := net.SplitHostPort(addr)
	cc, err := dcerpc.Dial(ctx, "ncacn_ip_tcp:"+host+"["+port+"]")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close(context.Background()) })
	cfg := msrpckrb5.NewConfig()
	cfg.KRB5ConfigPath, cfg.KRB5Config = dc.Krb5Conf, nil
	opts := []dcerpc.Option{level, dcerpc.WithTargetName(kdctest.ServicePrincipal),
		dcerpc.WithCredentials(credential.NewFromPassword(user, password, credential.Domain(kdctest.Realm)))}
	if useSPNEGO {
		opts = append(opts, dcerpc.WithMechanism(ssp.SPNEGO), dcerpc.WithMechanism(ssp.KRB5, cfg))
	} else {
		opts = append(opts, dcerpc.WithMechanism(ssp.KRB5, cfg))
	}
	return fsrvp.NewFileServerVSSAgentClient(ctx, cc, opts...)
}

// TestFSRVPOverKerberos: go-msrpc's client gets a ticket from the Samba
// KDC and calls an FSRVP method at every level, plain Kerberos and SPNEGO.
func TestFSRVPOverKerberos(t *testing.T) {
	dc := kdctest.Shared(t)
	addr := startServer(t, dc)
	adminSID := dc.DomainSID + "-512"
	for _, tc := range []struct {
		name   string
		level  dcerpc.SecurityOption
		want   uint8
		spnego bool
	}{
		{"Connect", dcerpc.WithConnect(), rpc.AuthLevelConnect, false},
		{"Sign", dcerpc.WithSign(), rpc.AuthLevelIntegrity, false},
		{"Seal", dcerpc.WithSeal(), rpc.AuthLevelPrivacy, false},
		{"SPNEGOSign", dcerpc.WithSign(), rpc.AuthLevelIntegrity, true},
		{"SPNEGOSeal", dcerpc.WithSeal(), rpc.AuthLevelPrivacy, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cli, err := dialKerberos(t, dc, addr, kdctest.AdminUser, kdctest.AdminPassword, tc.level, tc.spnego)
			if err != nil {
				t.Fatalf("bind: %v", err)
			}
			typ, mech := rpc.AuthTypeKerberos, "Kerberos"
			if tc.spnego {
				typ, mech = rpc.AuthTypeSPNEGO, "SPNEGO/Kerberos"
			}
			// Several calls (sequence numbers), one big enough to need
			// several fragments both ways.
			for _, share := range []string{adminSID, adminSID, strings.Repeat("x", 9000) + adminSID} {
				r, err := cli.IsPathSupported(context.Background(), &fsrvp.IsPathSupportedRequest{ShareName: share})
				if err != nil {
					t.Fatalf("IsPathSupported: %v", err)
				}
				want := fmt.Sprintf("%d|%d|FSRVPTEST\\Administrator|%s|true|%s", typ, tc.want, mech, share)
				if r.OwnerMachineName != want {
					t.Fatalf("server saw %.200q, want %.200q", r.OwnerMachineName, want)
				}
			}
		})
	}
}

func TestFSRVPOverKerberosRefused(t *testing.T) {
	dc := kdctest.Shared(t)
	addr := startServer(t, dc)
	if _, err := dialKerberos(t, dc, addr, kdctest.AdminUser, "wrong-password", dcerpc.WithSeal(), false); err == nil {
		t.Fatal("bound with a wrong password")
	}
	// A server whose keytab has other keys for the principal refuses the
	// genuine ticket.
	log := logrus.New()
	log.SetOutput(io.Discard)
	s := &rpc.Server{Logger: logrus.NewEntry(log)}
	s.Register(fsrvp.FileServerVSSAgentSyntaxV1_0, fsrvp.NewFileServerVSSAgentServerHandle(whoami{}))
	a, err := krb5.NewFromKeytab(krb5.NewTestKeytab(t, kdctest.ServicePrincipal, kdctest.Realm), kdctest.ServicePrincipal, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.Auth = []rpc.AuthProvider{krb5.NewProvider(a)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	defer s.Shutdown(context.Background())
	cli, err := dialKerberos(t, dc, l.Addr().String(), kdctest.AdminUser, kdctest.AdminPassword, dcerpc.WithSeal(), false)
	if err == nil {
		_, err = cli.IsPathSupported(context.Background(), &fsrvp.IsPathSupportedRequest{ShareName: "x"})
	}
	if err == nil {
		t.Fatal("a server with the wrong key served the call")
	}
}
