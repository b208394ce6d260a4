package rpc

// caller.go: what a handler learns about its caller through the context, and
// the logger the runtime hands down.

import (
	"context"
	"net"
	"strings"

	"github.com/oiweiwei/go-msrpc/midl/uuid"
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
	// AuthType and AuthLevel are the security provider and level of the
	// security context the request came under (MS-RPCE §2.2.1.1.7-8,
	// AuthType* and AuthLevel* constants); 0 means an unauthenticated
	// call. AuthContextID is that context's auth_context_id.
	AuthType, AuthLevel uint8
	AuthContextID       uint32
	// Identity is the client authenticated by that security context, or
	// nil for an unauthenticated call. It is shared: do not modify it.
	Identity *Identity
	// ConnID identifies the connection within the Server.
	ConnID uint64
	// AssocGroupID is the association group of the connection.
	AssocGroupID uint32
	// Session is the client's identity established by the transport
	// (ConnInfo.Session), or nil. It is shared: do not modify it.
	Session *Session
}

type ctxKey int

const (
	callerKey ctxKey = iota
	loggerKey
	requestKey
)

// Request describes the request of one call, for handlers that route by
// more than the interface: DCOM dispatches an ORPC call by the IPID in the
// object UUID (MS-DCOM §2.2.1.4; C706 §12.6.4.9 PFC_OBJECT_UUID) and checks
// the ORPCTHIS at the start of the stub before the generated stub decodes
// it.
type Request struct {
	// Object is the request's object UUID, or nil when PFC_OBJECT_UUID is
	// not set.
	Object *uuid.UUID
	// Opnum is the operation number.
	Opnum uint16
	// NDR64 tells whether the stub is in NDR64 (else NDR 2.0).
	NDR64 bool
	// Stub is the reassembled request stub. It is shared with the decoder:
	// do not modify it.
	Stub []byte
}

// RequestFromContext returns the request of the call ctx belongs to.
func RequestFromContext(ctx context.Context) (*Request, bool) {
	r, ok := ctx.Value(requestKey).(*Request)
	return r, ok && r != nil
}

// WithRequest returns a copy of ctx that carries r. The runtime calls it for
// every call; tests of handlers may call it to fake a request.
func WithRequest(ctx context.Context, r *Request) context.Context {
	return context.WithValue(ctx, requestKey, r)
}

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

// Session is the identity of the client as established by the transport
// before any DCE/RPC traffic, e.g. the SMB session that smbd hands over
// with a named pipe (see package rpc/np). It is nil for transports that
// carry no identity (ncacn_ip_tcp, ncalrpc). The runtime shares one Session
// among all calls of a connection: handlers must not modify it.
type Session struct {
	// User and Domain are the account and domain names of the SMB session
	// (auth_user_info.account_name and domain_name); UnixName is the unix
	// user name smbd mapped the account to.
	User, Domain, UnixName string
	// SIDs is the security token's SID list in the order sent: the user,
	// the primary group, then the other groups. Transport-internal SIDs
	// (Samba's S-1-22-2041152804-* and S-1-22-1397571891-*) are removed.
	SIDs []string
	// Privileges is the token's privilege mask (Samba's SEC_PRIV_* bits,
	// e.g. PrivBackup).
	Privileges uint64
	// HasUnixToken tells whether UID, GID and GIDs are valid. Without a
	// unix token they are zero and must not be taken as root.
	HasUnixToken bool
	UID, GID     uint32
	GIDs         []uint32
	// ClientAddr and ClientPort are the SMB client's address and TCP port;
	// ServerAddr and ServerPort the file server's end of that connection.
	ClientAddr string
	ClientPort uint16
	ServerAddr string
	ServerPort uint16
	// Encrypted tells whether the SMB traffic that carried the pipe open
	// was encrypted; SMBDialect and SMBCipher are then the SMB dialect
	// (e.g. 0x311) and cipher id (1 AES-128-CCM, 2 AES-128-GCM, ...).
	Encrypted  bool
	SMBDialect uint16
	SMBCipher  uint16
}

// Well-known SIDs and privileges used by IsBackupCapable.
const (
	SIDAdministrators  = "S-1-5-32-544" // BUILTIN\Administrators
	SIDBackupOperators = "S-1-5-32-551" // BUILTIN\Backup Operators
	// PrivBackup is SeBackupPrivilege in Samba's privilege mask
	// (SEC_PRIV_BACKUP, libcli/security/privileges.h).
	PrivBackup uint64 = 0x200
)

// HasSID reports whether sid is in the session's SID list. SIDs compare
// case-insensitively ("s-1-5-32-544" matches).
func (s *Session) HasSID(sid string) bool {
	if s == nil {
		return false
	}
	for _, x := range s.SIDs {
		if strings.EqualFold(x, sid) {
			return true
		}
	}
	return false
}

// IsBackupCapable implements the FSRVP authorization rule of Samba's
// fss_permitted(), extended by configured SIDs: the caller is unix uid 0,
// or a member of Administrators or Backup Operators, or holds
// SeBackupPrivilege, or has one of extraSIDs in its token. A nil Session
// is never capable.
func (s *Session) IsBackupCapable(extraSIDs ...string) bool {
	if s == nil {
		return false
	}
	if s.HasUnixToken && s.UID == 0 {
		return true
	}
	if s.Privileges&PrivBackup != 0 || s.HasSID(SIDAdministrators) || s.HasSID(SIDBackupOperators) {
		return true
	}
	for _, x := range extraSIDs {
		if x != "" && s.HasSID(x) {
			return true
		}
	}
	return false
}
