package krb5_test

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	fsrvp "github.com/oiweiwei/go-msrpc/msrpc/fsrvp/fileservervssagent/v1"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/fsrvpd/fsrvpd/rpc"
	"github.com/fsrvpd/fsrvpd/rpc/auth/krb5"
	"github.com/fsrvpd/fsrvpd/rpc/auth/krb5/kdctest"
	"github.com/fsrvpd/fsrvpd/rpc/auth/spnego"
	"github.com/fsrvpd/fsrvpd/rpc/epm"
	"github.com/fsrvpd/fsrvpd/storage/storagetest"
)

// versionCaller answers GetSupportedVersion and reports the caller.
type versionCaller struct {
	whoami
	callers chan rpc.Caller
}

func (v *versionCaller) GetSupportedVersion(ctx context.Context, _ *fsrvp.GetSupportedVersionRequest) (*fsrvp.GetSupportedVersionResponse, error) {
	c, _ := rpc.CallerFromContext(ctx)
	select {
	case v.callers <- *c:
	default:
	}
	return &fsrvp.GetSupportedVersionResponse{MinVersion: 1, MaxVersion: 2}, nil
}

// TestRPCClientKerberos: Samba's rpcclient (MIT Kerberos GSS-API, an
// implementation independent of go-msrpc's) authenticates to fsrvpd with a
// ticket from the Samba KDC, plain Kerberos and SPNEGO, sign and seal.
// rpcclient asks the endpoint mapper on port 135 and wants a host name for
// the ticket, so the test runs the DC, the server and rpcclient in a
// network namespace of its own, where localhost:135 is free.
func TestRPCClientKerberos(t *testing.T) {
	kdctest.Requirements(t)
	storagetest.RequireCommand(t, "rpcclient")
	storagetest.RequireCommand(t, "kinit")
	storagetest.RequireCommand(t, "ip")
	storagetest.RequireCommand(t, "unshare")

	done := make(chan struct{})
	go func() {
		defer close(done)
		// This goroutine's thread moves to a new network namespace; it is
		// never unlocked, so the thread ends with the goroutine. Children
		// forked from it and sockets opened on it stay in the namespace.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			t.Errorf("unshare: %v", err)
			return
		}
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			t.Errorf("ip link set lo up: %v %s", err, out)
			return
		}
		rpcclientInNetns(t)
	}()
	<-done
}

func rpcclientInNetns(t *testing.T) {
	ctx := context.Background()
	dc, err := kdctest.Start(kdctest.Options{})
	if err != nil {
		t.Errorf("kdctest: %v", err)
		return
	}
	defer dc.Stop()
	// Samba's Kerberos client refuses "localhost" and IP addresses: it
	// gets a name of its own, in a hosts file of its own (below).
	if err := dc.AddServicePrincipal(ctx, "host/"+kdctest.ServiceHost); err != nil {
		t.Error(err)
		return
	}
	a, err := krb5.New(krb5.Config{Keytab: dc.Keytab})
	if err != nil {
		t.Error(err)
		return
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	s := &rpc.Server{Logger: logrus.NewEntry(log)}
	fake := &versionCaller{callers: make(chan rpc.Caller, 1)}
	s.Register(fsrvp.FileServerVSSAgentSyntaxV1_0, fsrvp.NewFileServerVSSAgentServerHandle(fake))
	k := krb5.NewProvider(a)
	s.Auth = []rpc.AuthProvider{k, spnego.NewProvider(k)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Error(err)
		return
	}
	le, err := net.Listen("tcp", "127.0.0.1:135")
	if err != nil {
		t.Error(err)
		return
	}
	m := epm.New(epm.Entry{Syntax: fsrvp.FileServerVSSAgentSyntaxV1_0, Port: l.Addr().(*net.TCPAddr).Port, Annotation: "FSRVP"})
	s.Register(epm.Syntax, m.Handle())
	go s.Serve(l)
	go s.Serve(le)
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		s.Shutdown(sctx)
	}()

	dir := t.TempDir()
	ccache, err := dc.Kinit(ctx, dir, kdctest.AdminUser, kdctest.AdminPassword)
	if err != nil {
		t.Error(err)
		return
	}
	conf := filepath.Join(dir, "smb.conf")
	body := "[global]\n  workgroup = " + kdctest.Domain + "\n  realm = " + kdctest.Realm + "\n  lock directory = " + dir + "\n  state directory = " + dir +
		"\n  cache directory = " + dir + "\n  private dir = " + dir + "\n  ncalrpc dir = " + dir + "\n  log level = 0\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Error(err)
		return
	}
	hosts := filepath.Join(dir, "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 "+kdctest.ServiceHost+" localhost\n"), 0o644); err != nil {
		t.Error(err)
		return
	}
	for _, tc := range []struct {
		opts      string
		authType  uint8
		authLevel uint8
	}{
		{"krb5,sign", rpc.AuthTypeKerberos, rpc.AuthLevelIntegrity},
		{"krb5,seal", rpc.AuthTypeKerberos, rpc.AuthLevelPrivacy},
		{"spnego,sign", rpc.AuthTypeSPNEGO, rpc.AuthLevelIntegrity},
		{"spnego,seal", rpc.AuthTypeSPNEGO, rpc.AuthLevelPrivacy},
	} {
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		// unshare -m: rpcclient sees the hosts file above as /etc/hosts.
		cmd := exec.CommandContext(cctx, "unshare", "-m", "--propagation", "private", "sh", "-c", `mount --bind "$0" /etc/hosts && exec "$@"`, hosts,
			"rpcclient", "-d", debugLevel(), "-s", conf, "--use-kerberos=required", "--use-krb5-ccache=FILE:"+ccache,
			"ncacn_ip_tcp:"+kdctest.ServiceHost+"["+tc.opts+"]", "-c", "fss_get_sup_version; fss_get_sup_version")
		cmd.Env = append(os.Environ(), "LC_ALL=C", "KRB5_CONFIG="+dc.Krb5Conf, "KRB5CCNAME=FILE:"+ccache)
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil || !strings.Contains(string(out), "supports FSRVP versions from 1 to 2") {
			t.Errorf("%s: rpcclient: %v\n%s", tc.opts, err, out)
			continue
		}
		select {
		case c := <-fake.callers:
			if c.AuthType != tc.authType || c.AuthLevel != tc.authLevel || c.Identity == nil || !strings.EqualFold(c.Identity.User, kdctest.AdminUser) || !c.Identity.HasSID(dc.DomainSID+"-512") {
				t.Errorf("%s: caller %d/%d %v %v", tc.opts, c.AuthType, c.AuthLevel, c.Identity, c.Identity.SIDs)
			}
		default:
			t.Errorf("%s: no call reached the server", tc.opts)
		}
	}
}

func debugLevel() string {
	if d := os.Getenv("RPCCLIENT_DEBUG"); d != "" {
		return d
	}
	return "0"
}
