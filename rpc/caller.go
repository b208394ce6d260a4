package rpc

// caller.go: what a handler learns about its caller through the context, and
// the logger the runtime hands down.

import (
	"context"
	"net"

	"github.com/sirupsen/logrus"
)

// Log field names used by the runtime. Handlers add their own fields to the
// entry returned by Logger.
const (
	LogFieldConn   = "conn"    // connection id, unique per Server
	LogFieldRemote = "remote"  // remote address
	LogFieldCallID = "call_id" // DCE/RPC call id
	LogFieldOpnum  = "opnum"   // operation number
	LogFieldIface  = "iface"   // interface UUID and version, "uuid vMAJ.MIN"
)

// Transport names, as DCE/RPC protocol sequences.
const (
	TransportTCP  = "ncacn_ip_tcp"
	TransportLRPC = "ncalrpc" // a unix socket
	TransportNP   = "ncacn_np"
)

// Caller describes the client of one call. Handlers get a private copy and
// may keep it.
type Caller struct {
	// Transport is the protocol sequence: TransportTCP, TransportLRPC or
	// TransportNP.
	Transport string
	// RemoteAddr and LocalAddr are the connection's addresses.
	RemoteAddr net.Addr
	LocalAddr  net.Addr
	// ClientAddress is the client's IP address without a port, or "local"
	// for a unix socket. For ncacn_np it is the SMB client's address.
	ClientAddress string
	// AuthType and AuthLevel are the negotiated security provider and level
	// (MS-RPCE §2.2.1.1.7-8); 0 means none. The runtime does not accept
	// authenticated binds yet, so both are always 0.
	AuthType, AuthLevel uint8
	// ConnID identifies the connection within the Server.
	ConnID uint64
	// AssocGroupID is the association group of the connection.
	AssocGroupID uint32
}

type ctxKey int

const (
	callerKey ctxKey = iota
	loggerKey
)

// NewContext returns a copy of ctx that carries c. The runtime calls it for
// every call; tests of handlers may call it to fake a caller.
func NewContext(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey, c)
}

// CallerFromContext returns the caller stored in ctx by the runtime.
func CallerFromContext(ctx context.Context) (*Caller, bool) {
	c, ok := ctx.Value(callerKey).(*Caller)
	return c, ok && c != nil
}

// WithLogger returns a copy of ctx that carries l.
func WithLogger(ctx context.Context, l *logrus.Entry) context.Context {
	return context.WithValue(ctx, loggerKey, l)
}

// Logger returns the logger stored in ctx. Inside a handler it carries the
// conn, remote, call_id, opnum and iface fields. It is never nil: without
// one it returns an entry of logrus' standard logger.
func Logger(ctx context.Context) *logrus.Entry {
	if l, ok := ctx.Value(loggerKey).(*logrus.Entry); ok && l != nil {
		return l
	}
	return logrus.NewEntry(logrus.StandardLogger())
}
