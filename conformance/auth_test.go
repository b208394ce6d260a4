package conformance_test

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fsrvpd/fsrvpd/client"
	"github.com/fsrvpd/fsrvpd/conformance/testbed"
	"github.com/fsrvpd/fsrvpd/conformance/testbed/bedtest"
)

// TestSambaPipeRPCAuth: with pipe_auth = "rpc", callers on smbd's named
// pipe need an authenticated bind (MS-FSRVP §3.1.4: packet integrity or
// higher) checked by fsrvpd itself, rpcclient's and go-msrpc's, signed or
// sealed, NTLM or SPNEGO; an unauthenticated bind and an authenticated
// user who is no administrator get E_ACCESSDENIED.
func TestSambaPipeRPCAuth(t *testing.T) {
	skipUnlessSambaTestbed(t, "useradd", "userdel")
	t.Parallel()
	bed := bedtest.Up(t, testbed.Options{PipeAuth: "rpc", NonAdmin: true})
	rpcclient := func(user, pw, binding string) string {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, _ := exec.CommandContext(ctx, "rpcclient", "-s", bed.ClientConf, "-p", strconv.Itoa(bed.Port),
			"-U", user+"%"+pw, binding, "-c", "fss_get_sup_version; fss_is_path_sup share1").CombinedOutput()
		return string(out)
	}
	for _, opts := range []string{"sign", "seal", "ntlm,sign", "spnego,sign", "spnego,seal"} {
		out := rpcclient(testbed.User, testbed.Password, "ncacn_np:127.0.0.1["+opts+"]")
		if !strings.Contains(out, "supports FSRVP versions from 1 to 1") || !strings.Contains(out, `share1\ supports shadow copy requests`) {
			t.Errorf("rpcclient [%s]:\n%s", opts, out)
		}
	}
	if out := rpcclient(testbed.User, testbed.Password, "127.0.0.1"); !strings.Contains(out, "0x80070005") && !strings.Contains(out, "ACCESS_DENIED") {
		t.Errorf("unauthenticated bind not refused:\n%s", out)
	}
	if out := rpcclient(bed.NonAdminUser, bed.NonAdminPassword, "ncacn_np:127.0.0.1[sign]"); !strings.Contains(out, "0x80070005") && !strings.Contains(out, "ACCESS_DENIED") {
		t.Errorf("signed bind of a non-administrator not refused:\n%s", out)
	}

	ctx := t.Context()
	target := client.NPTarget{Host: "127.0.0.1", Port: bed.Port, User: testbed.User, Password: testbed.Password}
	for _, a := range []client.Auth{
		{User: testbed.User, Password: testbed.Password},
		{User: testbed.User, Password: testbed.Password, Level: client.LevelPrivacy, Mechanism: client.MechanismNTLM},
	} {
		c, err := client.DialNP(ctx, target, client.WithAuth(a), client.WithTimeout(time.Minute))
		if err != nil {
			t.Fatalf("DialNP %s/%s: %v", a.Level, a.Mechanism, err)
		}
		res, err := c.Create(ctx, client.CreateRequest{Shares: []string{"share1"}, RecoveryComplete: true})
		if err != nil {
			t.Fatalf("create over the pipe (%s/%s): %v", a.Level, a.Mechanism, err)
		}
		if err := c.Delete(ctx, res.ShadowCopySetID, res.Mappings); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	c, err := client.DialNP(ctx, target, client.WithTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, _, err := c.GetSupportedVersion(ctx); func() bool { code, _ := client.Code(err); return code != client.EAccessDenied }() {
		t.Errorf("go-msrpc unauthenticated bind over the pipe: %v, want E_ACCESSDENIED", err)
	}
}
