package conformance_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/oiweiwei/go-msrpc/dcerpc"
	"github.com/oiweiwei/go-msrpc/msrpc/dtyp"
	fssagent "github.com/oiweiwei/go-msrpc/msrpc/fsrvp/fileservervssagent/v1"
	msmb2 "github.com/oiweiwei/go-msrpc/smb2"
	"github.com/oiweiwei/go-msrpc/ssp"
	"github.com/oiweiwei/go-msrpc/ssp/credential"
	"github.com/oiweiwei/go-msrpc/ssp/gssapi"

	"github.com/fsrvpd/fsrvpd/conformance/testbed"
	"github.com/fsrvpd/fsrvpd/conformance/testbed/bedtest"
)

// skipUnlessSambaTestbed skips (FSRVPD_TEST_STRICT=1: fails) unless the
// host can run a testbed with the tools these tests drive besides.
func skipUnlessSambaTestbed(tb testing.TB, tools ...string) {
	tb.Helper()
	bedtest.Require(tb, append([]string{"rpcclient", "smbclient", "tdbtool"}, tools...)...)
}

// rpcc runs rpcclient as root and fails on a non-zero exit.
func rpcc(t testing.TB, bed *testbed.Testbed, cmds string) string {
	t.Helper()
	out, err := bed.Rpcclient(context.Background(), testbed.User, testbed.Password, cmds)
	if err != nil {
		t.Fatalf("rpcclient -c %q: %v\n%s", cmds, err, out)
	}
	return out
}

var (
	reSetCreated = regexp.MustCompile(`(?m)^([0-9a-f-]{36}): shadow-copy set created`)
	reSCAdded    = regexp.MustCompile(`(?m)^[0-9a-f-]{36}\(([0-9a-f-]{36})\): .* added to`)
	reExposed    = regexp.MustCompile(`[A-Za-z0-9_]+@\{[0-9a-fA-F-]{36}\}`)
)

// createExposeRpcclient runs fss_create_expose for one share and returns
// the set id, the shadow copy id and the exposed share's name.
func createExposeRpcclient(t testing.TB, bed *testbed.Testbed, ctxName, mode, share string) (set, sc, exposed string) {
	t.Helper()
	out := rpcc(t, bed, fmt.Sprintf("fss_create_expose %s %s %s", ctxName, mode, share))
	m1, m2 := reSetCreated.FindStringSubmatch(out), reSCAdded.FindStringSubmatch(out)
	m3 := reExposed.FindString(out)
	if m1 == nil || m2 == nil || m3 == "" || !strings.Contains(out, "exposed as a snapshot of") {
		t.Fatalf("fss_create_expose %s %s %s:\n%s", ctxName, mode, share, out)
	}
	return m1[1], m2[1], m3
}

// npSession is a go-msrpc FSRVP client over ncacn_np through the testbed's
// smbd: smbd → \PIPE\FssagentRpc → fsrvpd.
type npSession struct {
	conn dcerpc.Conn
	rpc  fssagent.FileServerVSSAgentClient
}

func dialNP(t testing.TB, bed *testbed.Testbed, user, pw string) *npSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cred := credential.NewFromPassword(user, pw)
	dialer := msmb2.NewDialer(msmb2.WithSecurity(gssapi.WithCredential(cred), gssapi.WithMechanismFactory(ssp.NTLM)))
	cc, err := dcerpc.Dial(ctx, "ncacn_np:127.0.0.1[FssagentRpc]", dcerpc.WithSMBPort(bed.Port), dcerpc.WithSMBDialer(dialer),
		dcerpc.WithTimeout(30*time.Second))
	if err != nil {
		t.Fatalf("dcerpc.Dial ncacn_np: %v", err)
	}
	// The pipe's reader lives as long as the context given to the bind.
	life, stop := context.WithCancel(context.Background())
	rpc, err := fssagent.NewFileServerVSSAgentClient(life, cc, dcerpc.WithInsecure())
	if err != nil {
		stop()
		cc.Close(context.Background())
		t.Fatalf("bind FileServerVssAgent over ncacn_np: %v", err)
	}
	s := &npSession{conn: cc, rpc: rpc}
	t.Cleanup(func() {
		cc.Close(context.Background())
		stop()
	})
	return s
}

// readShareFile reads name from share with go-smb2.
func readShareFile(t testing.TB, bed *testbed.Testbed, share, name string) (string, error) {
	t.Helper()
	fs, err := bedtest.Session(t, bed).Mount(share)
	if err != nil {
		return "", fmt.Errorf("mount %s: %w", share, err)
	}
	defer fs.Umount()
	data, err := fs.ReadFile(name)
	return string(data), err
}

// bareShare strips a UNC host part: \\HOST\share@{..} → share@{..}.
func bareShare(name string) string {
	if i := strings.LastIndexByte(name, '\\'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// guid converts a GUID string to go-msrpc's form.
func guid(s string) *dtyp.GUID {
	u := uuid.MustParse(s)
	return &dtyp.GUID{
		Data1: binary.BigEndian.Uint32(u[0:4]),
		Data2: binary.BigEndian.Uint16(u[4:6]),
		Data3: binary.BigEndian.Uint16(u[6:8]),
		Data4: append([]byte(nil), u[8:16]...),
	}
}

func hexCode(c uint32) string { return "0x" + strconv.FormatUint(uint64(c), 16) }

// Short names of the go-msrpc FSRVP requests.
type (
	fssGetSupportedVersion = fssagent.GetSupportedVersionRequest
	fssSetContext          = fssagent.SetContextRequest
	fssStart               = fssagent.StartShadowCopySetRequest
	fssAdd                 = fssagent.AddToShadowCopySetRequest
	fssCommit              = fssagent.CommitShadowCopySetRequest
	fssExpose              = fssagent.ExposeShadowCopySetRequest
	fssRecovery            = fssagent.RecoveryCompleteShadowCopySetRequest
	fssAbort               = fssagent.AbortShadowCopySetRequest
	fssIsPathSupported     = fssagent.IsPathSupportedRequest
	fssIsPathShadowCopied  = fssagent.IsPathShadowCopiedRequest
	fssGetMapping          = fssagent.GetShareMappingRequest
	fssDelete              = fssagent.DeleteShareMappingRequest
	fssPrepare             = fssagent.PrepareShadowCopySetRequest
)

var reCode = regexp.MustCompile(`code: 0x([0-9a-fA-F]{8})\b`)

// ret is the Return value of a go-msrpc call. go-msrpc turns a non-zero
// Return into an error ("...: error: code: 0x80070005"), and may or may
// not hand back the response with it.
func ret(resp any, err error) (uint32, error) {
	if v := reflect.ValueOf(resp); v.IsValid() && !v.IsNil() {
		if code := uint32(v.Elem().FieldByName("Return").Uint()); code != 0 || err == nil {
			return code, nil
		}
	}
	if err != nil {
		if m := reCode.FindStringSubmatch(err.Error()); m != nil {
			c, _ := strconv.ParseUint(m[1], 16, 32)
			return uint32(c), nil
		}
		return 0, err
	}
	return 0, nil
}
