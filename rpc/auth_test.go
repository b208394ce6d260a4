package rpc_test

// Tests of authenticated connections with go-msrpc's client-side NTLM and
// SPNEGO, an implementation independent of ours.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	fsrvp "github.com/oiweiwei/go-msrpc/msrpc/fsrvp/fileservervssagent/v1"
	"github.com/oiweiwei/go-msrpc/ssp"
	"github.com/oiweiwei/go-msrpc/ssp/credential"
	"github.com/oiweiwei/go-msrpc/ssp/gssapi"

	"github.com/fsrvpd/fsrvpd/rpc"
	"github.com/fsrvpd/fsrvpd/rpc/auth/ntlm"
	"github.com/fsrvpd/fsrvpd/rpc/auth/spnego"
)

const (
	testUser     = "alice"
	testPassword = "S3cret-pass"
)

// authServer returns a server with the NTLM provider and one account that
// is a Backup Operator.
func authServer(fake *fakeFSRVP) *rpc.Server {
	s := newServer(fake)
	n := ntlm.NewProvider(ntlm.Config{
		Verifier: ntlm.NewAccounts([]ntlm.Account{{User: testUser, NTHash: ntlm.NTHash(testPassword), SIDs: []string{"S-1-5-21-1-2-3-1001", rpc.SIDBackupOperators}}}),
	})
	s.Auth = []rpc.AuthProvider{n, spnego.NewProvider(n)}
	return s
}

// dialAuth binds go-msrpc's client with credentials at a level.
func dialAuth(t testing.TB, addr, user, password string, level dcerpc.SecurityOption, spnego bool) (fsrvp.FileServerVSSAgentClient, error) {
	t.Helper()
	ctx := gssapi.NewSecurityContext(context.Background())
	cc, err := dcerpc.Dial(ctx, binding(t, addr))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { cc.Close(context.Background()) })
	opts := []dcerpc.Option{level, dcerpc.WithCredentials(credential.NewFromPassword(user, password, credential.Domain("WORKGROUP")))}
	if spnego {
		opts = append(opts, dcerpc.WithMechanism(ssp.SPNEGO), dcerpc.WithMechanism(ssp.NTLM))
	} else {
		opts = append(opts, dcerpc.WithMechanism(ssp.NTLM))
	}
	return fsrvp.NewFileServerVSSAgentClient(ctx, cc, opts...)
}

func TestAuthNTLMClient(t *testing.T) {
	for _, tc := range []struct {
		name     string
		level    dcerpc.SecurityOption
		want     uint8
		spnego   bool
		authType uint8
	}{
		{"Connect", dcerpc.WithConnect(), rpc.AuthLevelConnect, false, rpc.AuthTypeNTLM},
		{"Sign", dcerpc.WithSign(), rpc.AuthLevelIntegrity, false, rpc.AuthTypeNTLM},
		{"Seal", dcerpc.WithSeal(), rpc.AuthLevelPrivacy, false, rpc.AuthTypeNTLM},
		{"SPNEGOConnect", dcerpc.WithConnect(), rpc.AuthLevelConnect, true, rpc.AuthTypeSPNEGO},
		{"SPNEGOSign", dcerpc.WithSign(), rpc.AuthLevelIntegrity, true, rpc.AuthTypeSPNEGO},
		{"SPNEGOSeal", dcerpc.WithSeal(), rpc.AuthLevelPrivacy, true, rpc.AuthTypeSPNEGO},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := startTCP(t, authServer(&fakeFSRVP{}))
			cli, err := dialAuth(t, addr, testUser, testPassword, tc.level, tc.spnego)
			if err != nil {
				t.Fatalf("bind: %v", err)
			}
			ctx := context.Background()
			for i := 0; i < 3; i++ {
				p, err := cli.IsPathSupported(ctx, &fsrvp.IsPathSupportedRequest{ShareName: "whoami"})
				if err != nil {
					t.Fatalf("IsPathSupported: %v", err)
				}
				want := fmt.Sprintf("|%d|%d|WORKGROUP\\%s|", tc.authType, tc.want, testUser)
				if !strings.Contains(p.OwnerMachineName, want) {
					t.Errorf("caller %q, want …%s…", p.OwnerMachineName, want)
				}
			}
			// 60 KB each way: every fragment carries its own verifier
			// and sequence number.
			name := strings.Repeat("0123456789abcdef", 30<<10/16)
			p, err := cli.IsPathSupported(ctx, &fsrvp.IsPathSupportedRequest{ShareName: name})
			if err != nil {
				t.Fatalf("fragmented call: %v", err)
			}
			if p.OwnerMachineName != name {
				t.Fatalf("fragmented call: echo of %d chars, want %d", len(p.OwnerMachineName), len(name))
			}
		})
	}
}

// pduProxy forwards TCP connections to a server; mutate sees every PDU the
// client sends (n counts request PDUs from 1, 0 for others) and returns
// what to forward instead.
type pduProxy struct {
	target string
	mutate func(n int, pdu []byte, sent [][]byte) [][]byte
}

func startProxy(t testing.TB, target string, mutate func(n int, pdu []byte, sent [][]byte) [][]byte) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	p := &pduProxy{target: target, mutate: mutate}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return l.Addr().String()
}

func (p *pduProxy) serve(c net.Conn) {
	defer c.Close()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer s.Close()
	go func() {
		io.Copy(c, s)
		c.Close()
	}()
	var sent [][]byte
	n := 0
	for {
		var hdr [16]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		pdu := make([]byte, binary.LittleEndian.Uint16(hdr[8:10]))
		copy(pdu, hdr[:])
		if _, err := io.ReadFull(c, pdu[16:]); err != nil {
			return
		}
		i := 0
		if pdu[2] == 0 { // request
			n++
			i = n
		}
		out := [][]byte{pdu}
		if p.mutate != nil {
			out = p.mutate(i, pdu, sent)
		}
		sent = append(sent, bytes.Clone(pdu))
		for _, b := range out {
			if _, err := s.Write(b); err != nil {
				return
			}
		}
	}
}

// TestAuthRefused checks that what must be refused is: a wrong password,
// a tampered request, a replayed request, a request stripped of its
// verifier, and that the connection is closed afterwards.
func TestAuthRefused(t *testing.T) {
	ctx := context.Background()
	t.Run("WrongPassword", func(t *testing.T) {
		addr, _ := startTCP(t, authServer(&fakeFSRVP{}))
		for _, spnego := range []bool{false, true} {
			cli, err := dialAuth(t, addr, testUser, "not-"+testPassword, dcerpc.WithSign(), spnego)
			if err == nil {
				// NTLM's third leg (auth3) has no reply: the refusal
				// shows on the first call.
				_, err = cli.GetSupportedVersion(ctx, &fsrvp.GetSupportedVersionRequest{})
			}
			if err == nil {
				t.Errorf("spnego=%v: wrong password accepted", spnego)
			}
		}
		if _, err := dialAuth(t, addr, "mallory", testPassword, dcerpc.WithSign(), true); err == nil {
			t.Errorf("unknown user accepted")
		}
	})

	flip := func(n int, pdu []byte, _ [][]byte) [][]byte {
		if n == 2 {
			pdu = bytes.Clone(pdu)
			pdu[24+20] ^= 0x01 // in the share name of the stub
		}
		return [][]byte{pdu}
	}
	flipHeader := func(n int, pdu []byte, _ [][]byte) [][]byte {
		if n == 2 {
			pdu = bytes.Clone(pdu)
			pdu[22] ^= 0x01 // opnum: in the signed header, not in the stub
		}
		return [][]byte{pdu}
	}
	replay := func(n int, pdu []byte, sent [][]byte) [][]byte {
		if n == 2 {
			for _, old := range sent {
				if old[2] == 0 { // the first request, verbatim
					return [][]byte{old, pdu}
				}
			}
		}
		return [][]byte{pdu}
	}
	strip := func(n int, pdu []byte, _ [][]byte) [][]byte {
		if n == 2 {
			authLen := int(binary.LittleEndian.Uint16(pdu[10:12]))
			pdu = bytes.Clone(pdu[:len(pdu)-authLen-8])
			binary.LittleEndian.PutUint16(pdu[8:10], uint16(len(pdu)))
			binary.LittleEndian.PutUint16(pdu[10:12], 0)
		}
		return [][]byte{pdu}
	}
	for _, tc := range []struct {
		name   string
		mutate func(int, []byte, [][]byte) [][]byte
		ok     bool
	}{
		{"Untouched", nil, true},
		{"Tampered", flip, false},
		{"TamperedHeader", flipHeader, false},
		{"Replayed", replay, false},
		{"VerifierStripped", strip, false},
	} {
		for _, lv := range []struct {
			name   string
			level  dcerpc.SecurityOption
			spnego bool
		}{{"Sign", dcerpc.WithSign(), false}, {"Seal", dcerpc.WithSeal(), false}, {"SPNEGOSign", dcerpc.WithSign(), true}} {
			t.Run(tc.name+"/"+lv.name, func(t *testing.T) {
				fake := &fakeFSRVP{}
				addr, _ := startTCP(t, authServer(fake))
				cli, err := dialAuth(t, startProxy(t, addr, tc.mutate), testUser, testPassword, lv.level, lv.spnego)
				if err != nil {
					t.Fatalf("bind: %v", err)
				}
				call := func() error {
					_, err := cli.IsPathSupported(ctx, &fsrvp.IsPathSupportedRequest{ShareName: `\\server\share1`})
					return err
				}
				if err := call(); err != nil {
					t.Fatalf("first call: %v", err)
				}
				err2, err3 := call(), call()
				switch {
				case tc.ok && (err2 != nil || err3 != nil):
					t.Fatalf("calls failed: %v, %v", err2, err3)
				case !tc.ok && (err2 == nil || err3 == nil):
					t.Fatalf("call after the mutated PDU: %v, %v; want both refused (connection closed)", err2, err3)
				}
				want := int64(3)
				if !tc.ok {
					want = 1
				}
				if got := fake.calls.Load(); got != want {
					t.Errorf("handler ran %d times, want %d", got, want)
				}
			})
		}
	}
}

// TestAuthMultipleContexts: two security contexts on one connection (a
// second go-msrpc client binds by alter_context with its own
// auth_context_id); each call runs under the context its verifier names.
func TestAuthMultipleContexts(t *testing.T) {
	addr, _ := startTCP(t, authServer(&fakeFSRVP{}))
	ctx := gssapi.NewSecurityContext(context.Background())
	cc, err := dcerpc.Dial(ctx, binding(t, addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close(context.Background()) })
	cred := credential.NewFromPassword(testUser, testPassword, credential.Domain("WORKGROUP"))
	c1, err := fsrvp.NewFileServerVSSAgentClient(ctx, cc, dcerpc.WithSign(), dcerpc.WithCredentials(cred), dcerpc.WithMechanism(ssp.NTLM))
	if err != nil {
		t.Fatal(err)
	}
	ctx2 := gssapi.NewSecurityContext(context.Background())
	c2, err := fsrvp.NewFileServerVSSAgentClient(ctx2, cc, dcerpc.WithSeal(), dcerpc.WithCredentials(cred), dcerpc.WithMechanism(ssp.SPNEGO), dcerpc.WithMechanism(ssp.NTLM))
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		c    fsrvp.FileServerVSSAgentClient
		want string
	}{
		{c1, `|10|5|WORKGROUP\alice|NTLM`},
		{c2, `|9|6|WORKGROUP\alice|SPNEGO/NTLM`},
		{c1, `|10|5|WORKGROUP\alice|NTLM`},
		{c2, `|9|6|WORKGROUP\alice|SPNEGO/NTLM`},
	} {
		p, err := tc.c.IsPathSupported(ctx, &fsrvp.IsPathSupportedRequest{ShareName: "whoami"})
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if !strings.HasSuffix(p.OwnerMachineName, tc.want) {
			t.Errorf("call %d ran as %q, want …%s", i, p.OwnerMachineName, tc.want)
		}
	}
}

// TestAuthHeaderSignEcho: PFC_SUPPORT_HEADER_SIGN is echoed in bind_ack
// only for an authenticated bind that offers it (MS-RPCE §3.3.1.5.2.2),
// and the bind_ack carries the CHALLENGE in a sec_trailer for the same
// auth_context_id.
func TestAuthHeaderSignEcho(t *testing.T) {
	addr, _ := startTCP(t, authServer(&fakeFSRVP{}))
	ctx0 := rawCtx{0, fsrvpSyntax, []*dcerpc.SyntaxID{ndr20}}
	neg := []byte("NTLMSSP\x00\x01\x00\x00\x00\x35\x82\x08\xe2")
	for _, tc := range []struct {
		name  string
		bind  []byte
		echo  bool
		trail bool
	}{
		{"AuthWithHeaderSign", authFrame(ptBind, pfcWhole|pfcHeaderSign, 1, bindBody(5840, 0, ctx0), rpc.AuthTypeNTLM, rpc.AuthLevelIntegrity, 0x1234, neg), true, true},
		{"AuthWithout", authFrame(ptBind, pfcWhole, 1, bindBody(5840, 0, ctx0), rpc.AuthTypeNTLM, rpc.AuthLevelIntegrity, 0x1234, neg), false, true},
		{"UnauthenticatedWithHeaderSign", frame(ptBind, pfcWhole|pfcHeaderSign, 1, bindBody(5840, 0, ctx0)), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, "tcp", addr)
			c.send(tc.bind)
			p := c.recv(ptBindAck)
			if got := p.flags&pfcHeaderSign != 0; got != tc.echo {
				t.Errorf("header sign echoed = %v, want %v", got, tc.echo)
			}
			raw, authLen := p.body, p.authLen
			if (authLen > 0) != tc.trail {
				t.Fatalf("auth_length %d", authLen)
			}
			if tc.trail {
				tr := raw[len(raw)-authLen-8:]
				if tr[0] != rpc.AuthTypeNTLM || tr[1] != rpc.AuthLevelIntegrity || binary.LittleEndian.Uint32(tr[4:]) != 0x1234 ||
					!bytes.HasPrefix(raw[len(raw)-authLen:], []byte("NTLMSSP\x00\x02\x00\x00\x00")) {
					t.Errorf("sec_trailer % x", tr)
				}
			}
		})
	}
}
