package conformance

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	msmb2 "github.com/oiweiwei/go-msrpc/smb2"
	"github.com/oiweiwei/go-msrpc/ssp"
	"github.com/oiweiwei/go-msrpc/ssp/credential"
	"github.com/oiweiwei/go-msrpc/ssp/gssapi"

	"github.com/fsrvpd/fsrvpd/client"
)

// DefaultPipe is the named pipe of FSRVP (MS-FSRVP §2.1).
const DefaultPipe = "FssagentRpc"

// NPConfig configures NPDialer.
type NPConfig struct {
	// Pipe is the pipe name; "" means DefaultPipe.
	Pipe string
	// Timeout limits the dial and each call; 0 means client.DefaultTimeout.
	Timeout time.Duration
	// Client options (e.g. client.WithShareHost) for every connection;
	// client.WithTimeout(Timeout) comes first.
	Client []client.Option
	// LocalAddr, optional, is the local IP address the SMB connection
	// comes from: another address makes another client for SetContext
	// (§3.1.4.2 compares the SMB client's address).
	LocalAddr string
}

// NPDialer dials FSRVP over ncacn_np: an SMB2 session to host:port
// authenticated with NTLM as user/password ("DOMAIN\user" works), then
// \PIPE\<Pipe> (e.g. smbd handing the pipe to fsrvpd). The RPC bind itself
// is unauthenticated: the SMB session carries the identity.
func NPDialer(host string, port int, user, password string, cfg NPConfig) Dialer {
	pipe := cfg.Pipe
	if pipe == "" {
		pipe = DefaultPipe
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = client.DefaultTimeout
	}
	binding := NPBinding(host, pipe)
	copts := append([]client.Option{client.WithTimeout(timeout)}, cfg.Client...)
	return func(ctx context.Context) (*client.Client, func() error, error) {
		dctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		cred := credential.NewFromPassword(user, password)
		smb := msmb2.NewDialer(msmb2.WithSecurity(gssapi.WithCredential(cred), gssapi.WithMechanismFactory(ssp.NTLM)))
		opts := []dcerpc.Option{dcerpc.WithSMBPort(port), dcerpc.WithSMBDialer(smb), dcerpc.WithTimeout(timeout)}
		if cfg.LocalAddr != "" {
			ip := net.ParseIP(cfg.LocalAddr)
			if ip == nil {
				return nil, nil, fmt.Errorf("local address %q is not an IP address", cfg.LocalAddr)
			}
			opts = append(opts, dcerpc.WithDialer(&net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: ip}}))
		}
		cc, err := dcerpc.Dial(dctx, binding, opts...)
		if err != nil {
			return nil, nil, fmt.Errorf("dial %s (SMB port %d): %w", binding, port, err)
		}
		c, closeFn, err := bindFSRVP(ctx, cc, copts...)
		if err != nil {
			return nil, nil, fmt.Errorf("bind %s: %w", binding, err)
		}
		return c, closeFn, nil
	}
}

// NPBinding is the string binding "ncacn_np:HOST[PIPE]".
func NPBinding(host, pipe string) string {
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	}
	return "ncacn_np:" + host + "[" + pipe + "]"
}

// ParseNPTarget parses "ncacn_np:HOST[PIPE]" or "ncacn_np:HOST" (pipe
// DefaultPipe). ok is false when s is not an ncacn_np binding.
func ParseNPTarget(s string) (host, pipe string, ok bool, err error) {
	rest, found := strings.CutPrefix(strings.TrimSpace(s), "ncacn_np:")
	if !found {
		return "", "", false, nil
	}
	host, pipe = rest, DefaultPipe
	if i := strings.LastIndexByte(rest, '['); i > 0 && strings.HasSuffix(rest, "]") && !strings.HasSuffix(rest, "]]") {
		host, pipe = rest[:i], rest[i+1:len(rest)-1]
		pipe = strings.TrimPrefix(strings.TrimPrefix(pipe, `\pipe\`), `\PIPE\`)
	}
	if strings.HasPrefix(host, "[") {
		if !strings.HasSuffix(host, "]") || net.ParseIP(host[1:len(host)-1]) == nil {
			return "", "", true, fmt.Errorf("target %q: %q is not an [IPv6] address", s, host)
		}
		host = host[1 : len(host)-1]
	}
	switch {
	case host == "":
		return "", "", true, fmt.Errorf("target %q: missing host", s)
	case strings.ContainsAny(host, `\/@ ,[]`):
		return "", "", true, fmt.Errorf("target %q: invalid host %q", s, host)
	case pipe == "" || strings.ContainsAny(pipe, `,= `):
		return "", "", true, fmt.Errorf("target %q: invalid pipe %q (options are not supported)", s, pipe)
	}
	if ip := net.ParseIP(host); ip != nil {
		host = ip.String()
	}
	return host, pipe, true, nil
}
