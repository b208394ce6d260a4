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

// RPC-authenticated callers are authorized on their identity's groups at
// the configured minimum level; on the named pipe only when PipeRequiresRPCAuth.
func TestHandlerAuthorizesRPCIdentities(t *testing.T) {
	backup := &rpc.Identity{User: "backup", SIDs: []string{"S-1-5-21-9-9-9-1001", rpc.SIDBackupOperators}}
	plain := &rpc.Identity{User: "alice", SIDs: []string{"S-1-5-21-9-9-9-1002"}}
	custom := &rpc.Identity{User: "erin", SIDs: []string{"S-1-5-21-1-2-3-1111"}}
	admin := &rpc.Session{User: "root", HasUnixToken: true, UID: 0}
	for _, tc := range []struct {
		name   string
		policy AccessPolicy
		c      rpc.Caller
		ok     bool
	}{
		{"tcp backup integrity", AccessPolicy{}, rpc.Caller{Transport: rpc.TransportTCP, AuthLevel: rpc.AuthLevelIntegrity, Identity: backup}, true},
		{"tcp backup privacy", AccessPolicy{}, rpc.Caller{Transport: rpc.TransportTCP, AuthLevel: rpc.AuthLevelPrivacy, Identity: backup}, true},
		{"tcp configured sid", AccessPolicy{}, rpc.Caller{Transport: rpc.TransportTCP, AuthLevel: rpc.AuthLevelIntegrity, Identity: custom}, true},
		{"tcp backup connect", AccessPolicy{}, rpc.Caller{Transport: rpc.TransportTCP, AuthLevel: rpc.AuthLevelConnect, Identity: backup}, false},
		{"tcp backup integrity, privacy required", AccessPolicy{MinLevel: rpc.AuthLevelPrivacy}, rpc.Caller{Transport: rpc.TransportTCP, AuthLevel: rpc.AuthLevelIntegrity, Identity: backup}, false},
		{"tcp plain user", AccessPolicy{}, rpc.Caller{Transport: rpc.TransportTCP, AuthLevel: rpc.AuthLevelPrivacy, Identity: plain}, false},
		{"tcp unauthenticated", AccessPolicy{}, rpc.Caller{Transport: rpc.TransportTCP}, false},
		{"tcp unauthenticated allowed", AccessPolicy{AllowUnauthenticated: true}, rpc.Caller{Transport: rpc.TransportTCP}, true},
		{"pipe session, unauthenticated bind", AccessPolicy{}, rpc.Caller{Transport: rpc.TransportNP, Session: admin}, true},
		{"pipe rpc, unauthenticated bind", AccessPolicy{PipeRequiresRPCAuth: true, AllowUnauthenticated: true}, rpc.Caller{Transport: rpc.TransportNP, Session: admin}, false},
		{"pipe rpc, backup signed", AccessPolicy{PipeRequiresRPCAuth: true}, rpc.Caller{Transport: rpc.TransportNP, Session: admin, AuthLevel: rpc.AuthLevelIntegrity, Identity: backup}, true},
		{"pipe rpc, plain signed", AccessPolicy{PipeRequiresRPCAuth: true}, rpc.Caller{Transport: rpc.TransportNP, Session: admin, AuthLevel: rpc.AuthLevelIntegrity, Identity: plain}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.Access = tc.policy })
			hd := Handler{S: h.s, BackupSIDs: []string{"S-1-5-21-1-2-3-1111"}}
			c := tc.c
			c.ClientAddress = "192.0.2.9"
			resp, err := hd.GetSupportedVersion(rpc.NewContext(context.Background(), &c), &fssagent.GetSupportedVersionRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if ok := resp.Return == 0; ok != tc.ok {
				t.Errorf("allowed = %v (%#x), want %v", ok, resp.Return, tc.ok)
			}
		})
	}
}
