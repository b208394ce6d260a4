package conformance

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	fsrvp "github.com/oiweiwei/go-msrpc/msrpc/fsrvp/fileservervssagent/v1"

	"github.com/fsrvpd/fsrvpd/client"
)

// TCPDialer dials the FSRVP server at target ("host:port" or any form
// client.Dial accepts) with client.Dial.
func TCPDialer(target string, opts ...client.Option) Dialer {
	return func(ctx context.Context) (*client.Client, func() error, error) {
		c, err := client.Dial(ctx, target, opts...)
		if err != nil {
			return nil, nil, err
		}
		return c, c.Close, nil
	}
}

// TCPDialerFrom dials "host:port" over ncacn_ip_tcp from the local IP
// address localIP, so that the server sees another client address: on
// Linux every 127.0.0.0/8 address is local, so a server on 127.0.0.1 can be
// reached from 127.0.0.2. It binds unauthenticated (dcerpc.WithInsecure);
// timeout limits the dial and each call (0: client.DefaultTimeout).
func TCPDialerFrom(hostPort, localIP string, timeout time.Duration) (Dialer, error) {
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return nil, fmt.Errorf("second client target %q: %w", hostPort, err)
	}
	local := net.ParseIP(localIP)
	if local == nil {
		return nil, fmt.Errorf("second client address %q is not an IP address", localIP)
	}
	if timeout <= 0 {
		timeout = client.DefaultTimeout
	}
	binding := fmt.Sprintf("ncacn_ip_tcp:%s[%s]", host, port)
	return func(ctx context.Context) (*client.Client, func() error, error) {
		dctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		nd := &net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: local}}
		cc, err := dcerpc.Dial(dctx, binding, dcerpc.WithTimeout(timeout), dcerpc.WithDialer(nd), dcerpc.WithNewTransport())
		if err != nil {
			return nil, nil, fmt.Errorf("dial %s from %s: %w", binding, localIP, err)
		}
		c, closeFn, err := bindFSRVP(ctx, cc, client.WithTimeout(timeout))
		if err != nil {
			return nil, nil, fmt.Errorf("bind %s from %s: %w", binding, localIP, err)
		}
		return c, closeFn, nil
	}, nil
}

// bindFSRVP binds the FSRVP interface on cc and wraps it in a client. The
// returned function closes the connection. go-msrpc ties the connection's
// goroutines to the bind context, so that context lives until the close.
func bindFSRVP(ctx context.Context, cc dcerpc.Conn, opts ...client.Option) (*client.Client, func() error, error) {
	life, stop := context.WithCancel(context.WithoutCancel(ctx))
	rpc, err := fsrvp.NewFileServerVSSAgentClient(life, cc, dcerpc.WithInsecure())
	closeFn := func() error {
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ccancel()
		err := cc.Close(cctx)
		stop()
		return err
	}
	if err != nil {
		closeFn()
		return nil, nil, err
	}
	return client.New(rpc, opts...), closeFn, nil
}
