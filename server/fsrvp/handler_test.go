package fsrvp

import (
	"context"
	"net"
	"testing"

	fssagent "github.com/oiweiwei/go-msrpc/msrpc/fsrvp/fileservervssagent/v1"

	"github.com/fsrvpd/fsrvpd/rpc"
)

// Over smbd's named pipe the SMB session's token decides, whatever
// AllowUnauthenticated says.
func TestHandlerAuthorizesSMBSessions(t *testing.T) {
	h := newHarness(t) // AllowUnauthenticated: true
	hd := Handler{S: h.s, BackupSIDs: []string{"S-1-5-21-1-2-3-1111"}}
	call := func(sess *rpc.Session) uint32 {
		c := &rpc.Caller{Transport: rpc.TransportNP, ClientAddress: "192.0.2.9", RemoteAddr: &net.UnixAddr{}, Session: sess}
		resp, err := hd.GetSupportedVersion(rpc.NewContext(context.Background(), c), &fssagent.GetSupportedVersionRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Return
	}
	user := &rpc.Session{User: "alice", Domain: "WG", HasUnixToken: true, UID: 1000, GID: 1000, SIDs: []string{"S-1-5-21-1-2-3-1000", "S-1-1-0"}}
	if rc := call(user); rc != uint32(E_ACCESSDENIED) {
		t.Fatalf("plain user: %#x", rc)
	}
	for name, s := range map[string]*rpc.Session{
		"root":              {User: "root", HasUnixToken: true, UID: 0},
		"backup operators":  {User: "bob", HasUnixToken: true, UID: 1001, SIDs: []string{rpc.SIDBackupOperators}},
		"administrators":    {User: "carol", HasUnixToken: true, UID: 1002, SIDs: []string{rpc.SIDAdministrators}},
		"SeBackupPrivilege": {User: "dave", HasUnixToken: true, UID: 1003, Privileges: rpc.PrivBackup},
		"configured group":  {User: "erin", HasUnixToken: true, UID: 1004, SIDs: []string{"S-1-5-21-1-2-3-1111"}},
	} {
		if rc := call(s); rc != 0 {
			t.Errorf("%s refused: %#x", name, rc)
		}
	}
}
