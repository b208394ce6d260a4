package client

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	fsrvp "github.com/oiweiwei/go-msrpc/msrpc/fsrvp/fileservervssagent/v1"
	msmb2 "github.com/oiweiwei/go-msrpc/smb2"
	"github.com/oiweiwei/go-msrpc/ssp"
	"github.com/oiweiwei/go-msrpc/ssp/credential"
	"github.com/oiweiwei/go-msrpc/ssp/gssapi"
)

// DefaultPipe is FSRVP's named pipe (MS-FSRVP §2.1): \PIPE\FssagentRpc.
const DefaultPipe = "FssagentRpc"

// NPTarget is an FSRVP server reached over ncacn_np: an SMB2 session to
// Host:Port authenticated with NTLM as User/Password ("DOMAIN\user" works),
// then \PIPE\<Pipe>. This is how Windows talks FSRVP; behind Samba the SMB
// session carries the caller's identity.
type NPTarget struct {
	Host     string
	Port     int    // SMB port; 0 means 445
	Pipe     string // "" means DefaultPipe
	User     string
	Password string
}

// DialNP connects to t over ncacn_np and binds FileServerVssAgent v1.0 with
// the same options as Dial (timeout, NDR64, logger, share host,
// WithRPCOptions: the RPC bind on top of the pipe uses bindOptions, so
// RPC-level authentication, when given, applies here too). The share host
// defaults to t.Host. Close closes the pipe and the SMB session.
func DialNP(ctx context.Context, t NPTarget, opts ...Option) (*Client, error) {
	cfg := newConfig(opts)
	if t.Host == "" {
		return nil, fmt.Errorf("ncacn_np: missing host")
	}
	if t.Pipe == "" {
		t.Pipe = DefaultPipe
	}
	if t.Port == 0 {
		t.Port = 445
	}
	if cfg.shareHost == "" {
		cfg.shareHost = t.Host
	}
	host := t.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	binding := "ncacn_np:" + host + "[" + t.Pipe + "]"
	log := cfg.log.WithField("server", net.JoinHostPort(t.Host, fmt.Sprint(t.Port))).WithField("pipe", t.Pipe)

	bindOpts, err := cfg.bindOptions()
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	cred := credential.NewFromPassword(t.User, t.Password)
	smb := msmb2.NewDialer(msmb2.WithSecurity(gssapi.WithCredential(cred), gssapi.WithMechanismFactory(ssp.NTLM)))
	cc, err := dcerpc.Dial(dctx, binding, dcerpc.WithSMBPort(t.Port), dcerpc.WithSMBDialer(smb), dcerpc.WithTimeout(cfg.timeout))
	if err != nil {
		return nil, &TransportError{Op: "dial", Err: fmt.Errorf("%s (SMB port %d): %w", binding, t.Port, err)}
	}
	life, stop := context.WithCancel(context.WithoutCancel(ctx))
	if cfg.auth != nil {
		life = gssapi.NewSecurityContext(life)
	}
	type bound struct {
		rpc fsrvp.FileServerVSSAgentClient
		err error
	}
	ch := make(chan bound, 1)
	go func() {
		rpc, err := fsrvp.NewFileServerVSSAgentClient(life, cc, bindOpts...)
		ch <- bound{rpc, err}
	}()
	var b bound
	select {
	case b = <-ch:
	case <-dctx.Done():
		b.err = dctx.Err()
	}
	if b.err != nil {
		stop()
		_ = cc.Close(context.Background())
		return nil, &TransportError{Op: "dial", Err: fmt.Errorf("%s: %w", binding, b.err)}
	}
	log.Debug("bound FileServerVssAgent v1.0 over ncacn_np")
	return &Client{rpc: b.rpc, conn: cc, stop: stop, timeout: cfg.timeout, log: log, shareHost: cfg.shareHost}, nil
}
