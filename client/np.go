package client

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/oiweiwei/go-msrpc/dcerpc"
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
	if t.Pipe == "" {
		t.Pipe = DefaultPipe
	}
	if t.Port == 0 {
		t.Port = 445
	}
	if cfg.shareHost == "" {
		cfg.shareHost = t.Host
	}
	raw, err := DialRawNP(ctx, t, opts...)
	if err != nil {
		return nil, err
	}
	cc := raw.Conn
	log := cfg.log.WithField("server", net.JoinHostPort(t.Host, fmt.Sprint(t.Port))).WithField("pipe", t.Pipe)
	dctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	rpc, stop, err := bindFSRVP(ctx, dctx, cc, cfg.auth != nil, raw.BindOptions)
	if err != nil {
		return nil, &TransportError{Op: "dial", Err: fmt.Errorf("\\PIPE\\%s on %s: %w", t.Pipe, t.Host, err)}
	}
	log.Debug("bound FileServerVssAgent v1.0 over ncacn_np")
	return &Client{rpc: rpc, conn: cc, stop: stop, timeout: cfg.timeout, log: log, shareHost: cfg.shareHost}, nil
}

// RawConn is a DCE/RPC connection to an FSRVP server that is not bound
// yet, with the bind options Dial and DialNP would use (authentication,
// NDR64): for binding another interface the server offers on the same
// endpoint, such as fsrvpd's writer control (client/writerctl). Close the
// connection with Conn.Close.
type RawConn struct {
	Conn        dcerpc.Conn
	BindOptions []dcerpc.Option
}

// DialRaw connects to an ncacn_ip_tcp target with an explicit port
// ("host:port" or "ncacn_ip_tcp:host[port]"), like Dial, without binding.
func DialRaw(ctx context.Context, target string, opts ...Option) (*RawConn, error) {
	cfg := newConfig(opts)
	t, err := ParseTarget(target)
	if err != nil {
		return nil, err
	}
	if t.Port == "" {
		return nil, fmt.Errorf("%s: a port is needed here (the endpoint mapper is not asked)", target)
	}
	bindOpts, err := cfg.bindOptions()
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	cc, err := dcerpc.Dial(dctx, t.Binding(), dcerpc.WithTimeout(cfg.timeout), dcerpc.WithDialer(&net.Dialer{Timeout: cfg.timeout}), dcerpc.WithNewTransport())
	if err != nil {
		return nil, &TransportError{Op: "dial", Err: err}
	}
	return &RawConn{Conn: cc, BindOptions: bindOpts}, nil
}

// DialRawNP opens \PIPE\<t.Pipe> like DialNP, without binding.
func DialRawNP(ctx context.Context, t NPTarget, opts ...Option) (*RawConn, error) {
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
	bindOpts, err := cfg.bindOptions()
	if err != nil {
		return nil, err
	}
	host := t.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	binding := "ncacn_np:" + host + "[" + t.Pipe + "]"
	dctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	cred := credential.NewFromPassword(t.User, t.Password)
	smb := msmb2.NewDialer(msmb2.WithSecurity(gssapi.WithCredential(cred), gssapi.WithMechanismFactory(ssp.NTLM)))
	cc, err := dcerpc.Dial(dctx, binding, dcerpc.WithSMBPort(t.Port), dcerpc.WithSMBDialer(smb), dcerpc.WithTimeout(cfg.timeout))
	if err != nil {
		return nil, &TransportError{Op: "dial", Err: fmt.Errorf("%s (SMB port %d): %w", binding, t.Port, err)}
	}
	return &RawConn{Conn: cc, BindOptions: bindOpts}, nil
}
