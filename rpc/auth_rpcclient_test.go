package rpc_test

// Samba's rpcclient as an independent client of the authenticated
// runtime. rpcclient 4.17 ignores the port of an ncacn_ip_tcp binding and
// asks the endpoint mapper on port 135, so the test serves both on a
// random 127.x.y.z address (port 135 there is not shared with other
// tests) and needs root.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	fsrvp "github.com/oiweiwei/go-msrpc/msrpc/fsrvp/fileservervssagent/v1"

	"github.com/fsrvpd/fsrvpd/rpc"
	"github.com/fsrvpd/fsrvpd/rpc/epm"
	"github.com/fsrvpd/fsrvpd/storage/storagetest"
)

// callerFake records the caller of GetSupportedVersion.
type callerFake struct {
	fakeFSRVP
	callers chan rpc.Caller
}

func (f *callerFake) GetSupportedVersion(ctx context.Context, _ *fsrvp.GetSupportedVersionRequest) (*fsrvp.GetSupportedVersionResponse, error) {
	c, _ := rpc.CallerFromContext(ctx)
	select {
	case f.callers <- *c:
	default:
	}
	return &fsrvp.GetSupportedVersionResponse{MinVersion: 1, MaxVersion: 1}, nil
}

// startRPCClientTarget serves an authenticating server and an endpoint
// mapper on a random loopback address and returns that address and a
// private smb.conf for rpcclient.
func startRPCClientTarget(t *testing.T, fake *callerFake) (host, conf string) {
	t.Helper()
	storagetest.RequireRoot(t)
	storagetest.RequireCommand(t, "rpcclient")
	s := authServer(&fake.fakeFSRVP)
	s.Register(fsrvp.FileServerVSSAgentSyntaxV1_0, fsrvp.NewFileServerVSSAgentServerHandle(fake))
	var l, le net.Listener
	var err error
	for range 20 {
		host = fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(250), rand.IntN(250), 1+rand.IntN(250))
		if le, err = net.Listen("tcp", host+":135"); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("no free loopback address for port 135: %v", err)
	}
	if l, err = net.Listen("tcp", host+":0"); err != nil {
		t.Fatal(err)
	}
	m := epm.New(epm.Entry{Syntax: fsrvp.FileServerVSSAgentSyntaxV1_0, Port: l.Addr().(*net.TCPAddr).Port, Annotation: "FSRVP"})
	s.Register(epm.Syntax, m.Handle())
	serve(t, s, l)
	go s.Serve(le)

	dir := t.TempDir()
	conf = filepath.Join(dir, "smb.conf")
	body := fmt.Sprintf("[global]\n  workgroup = WORKGROUP\n  client signing = required\n  lock directory = %[1]s\n  state directory = %[1]s\n  cache directory = %[1]s\n  private dir = %[1]s\n  ncalrpc dir = %[1]s\n  log level = 0\n", dir)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return host, conf
}

// rpcclient runs rpcclient with a private smb.conf; the secret goes in
// through the environment, not the command line.
func rpcclient(t *testing.T, conf, user, password, binding, cmds string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, "rpcclient", "-s", conf, "-U", user, binding, "-c", cmds)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PASSWD="+password)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestAuthRPCClient(t *testing.T) {
	fake := &callerFake{callers: make(chan rpc.Caller, 1)}
	host, conf := startRPCClientTarget(t, fake)
	for _, tc := range []struct {
		opts      string
		authType  uint8
		authLevel uint8
	}{
		{"connect", rpc.AuthTypeNTLM, rpc.AuthLevelConnect},
		{"sign", rpc.AuthTypeNTLM, rpc.AuthLevelIntegrity},
		{"seal", rpc.AuthTypeNTLM, rpc.AuthLevelPrivacy},
		{"ntlm,sign", rpc.AuthTypeNTLM, rpc.AuthLevelIntegrity},
		{"spnego,sign", rpc.AuthTypeSPNEGO, rpc.AuthLevelIntegrity},
		{"spnego,seal", rpc.AuthTypeSPNEGO, rpc.AuthLevelPrivacy},
		{"spnego,connect", rpc.AuthTypeSPNEGO, rpc.AuthLevelConnect},
	} {
		t.Run(tc.opts, func(t *testing.T) {
			out, err := rpcclient(t, conf, testUser, testPassword, "ncacn_ip_tcp:"+host+"["+tc.opts+"]", "fss_get_sup_version; fss_get_sup_version")
			if err != nil || !strings.Contains(out, "supports FSRVP versions from 1 to 1") {
				t.Fatalf("rpcclient: %v\n%s", err, out)
			}
			c := <-fake.callers
			if c.AuthType != tc.authType || c.AuthLevel != tc.authLevel || c.Identity == nil || !strings.EqualFold(c.Identity.User, testUser) {
				t.Errorf("caller %d/%d %v", c.AuthType, c.AuthLevel, c.Identity)
			}
		})
	}
	t.Run("WrongPassword", func(t *testing.T) {
		out, err := rpcclient(t, conf, testUser, "wrong", "ncacn_ip_tcp:"+host+"[sign]", "fss_get_sup_version")
		if err == nil || strings.Contains(out, "supports FSRVP") {
			t.Fatalf("wrong password accepted: %v\n%s", err, out)
		}
	})
}
