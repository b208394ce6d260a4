package rpc

// server.go: the Server, its interface registry, listeners and lifecycle.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	"github.com/sirupsen/logrus"
)

// ErrServerClosed is returned by Serve and ServeConn after Shutdown.
var ErrServerClosed = errors.New("rpc: server closed")

// Defaults for the zero values of Server's fields.
const (
	DefaultMaxRecvFrag    = 5840 // Windows' and Samba's value for ncacn_ip_tcp
	DefaultMaxRequestSize = 4 << 20
	DefaultMaxConns       = 1024
	DefaultIdleTimeout    = 10 * time.Minute

	// minFrag is the smallest fragment size negotiated. Samba measured
	// Windows Server 2012R2 answering 2048 for anything smaller; it is above
	// C706's must_recv_frag_size of 1432.
	minFrag = 2048
	// maxConcurrentCalls bounds the calls that run at once on a connection
	// that negotiated PFC_CONC_MPX; a connection without it runs one call
	// at a time.
	maxConcurrentCalls = 16
	// maxContexts bounds the presentation contexts of a connection.
	maxContexts = 256
)

// Server is a connection-oriented DCE/RPC server (C706 chapter 12, MS-RPCE).
// The zero value is ready to use; fields must not change once Serve is
// called. Handlers are registered per interface with Register.
type Server struct {
	// Logger receives the runtime's logs; nil means logrus' standard logger.
	// Fields: see the LogField constants.
	Logger *logrus.Entry
	// MaxRecvFrag is the largest fragment offered in bind_ack; 0 means
	// DefaultMaxRecvFrag. The value negotiated is the smallest of this, the
	// client's max_xmit_frag and max_recv_frag, but at least 2048, rounded
	// down to a multiple of 8 (as Samba and Windows do). Both directions use
	// it.
	MaxRecvFrag uint16
	// MaxRequestSize caps the reassembled stub of one request, and the sum
	// of the partially received requests of a connection; 0 means
	// DefaultMaxRequestSize. A request beyond it is answered with a fault
	// StatusAccessDenied and the connection is closed (Samba does the same).
	MaxRequestSize int
	// MaxConns caps the open connections over all listeners; 0 means
	// DefaultMaxConns. At the cap, Serve stops accepting until a
	// connection closes.
	MaxConns int
	// IdleTimeout closes a connection that sends no PDU for this long while
	// no call of it runs; 0 means DefaultIdleTimeout. It also bounds how long
	// one PDU, or one response, may take on the wire.
	IdleTimeout time.Duration
	// Auth lists the security providers, one per auth_type (see
	// AuthProvider). A bind or alter_context whose sec_trailer names
	// another type is refused (bind_nak reason 8). Empty: every
	// authenticated bind is refused.
	Auth []AuthProvider

	initOnce  sync.Once
	slotsOnce sync.Once
	slots     chan struct{} // one token per open connection; sized by Serve
	done      chan struct{} // closed by Shutdown
	ctx       context.Context
	cancel    context.CancelFunc // cancels every call when Shutdown gives up
	connSeq   atomic.Uint64
	groupSeq  atomic.Uint32

	mu        sync.Mutex
	ifaces    map[[16]byte][]*iface // by interface UUID
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closed    bool
}

// iface is a registered interface.
type iface struct {
	syntax  dcerpc.SyntaxID
	handler dcerpc.ServerHandle
	name    string
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.done = make(chan struct{})
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.listeners = make(map[net.Listener]struct{})
		s.conns = make(map[*conn]struct{})
		if s.ifaces == nil {
			s.ifaces = make(map[[16]byte][]*iface)
		}
	})
}

// Register routes the interface syntax (UUID and version) to h. A bind for
// the same UUID and major version with a minor version up to syntax's is
// accepted too (C706 §12.6.3.4 compatibility rule); the highest compatible
// registration wins. Register may be called before and during Serve;
// registering the same syntax twice replaces the handler. It panics on nil
// arguments.
func (s *Server) Register(syntax *dcerpc.SyntaxID, h dcerpc.ServerHandle) {
	if syntax == nil || syntax.IfUUID == nil || h == nil {
		panic("rpc: Register with a nil syntax or handler")
	}
	s.init()
	key := [16]byte(syntax.IfUUID.EncodeBinary())
	in := &iface{syntax: *syntax, handler: h, name: syntaxString(syntax)}
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.ifaces[key]
	for i, old := range list {
		if old.syntax.IfVersionMajor == syntax.IfVersionMajor && old.syntax.IfVersionMinor == syntax.IfVersionMinor {
			list[i] = in
			return
		}
	}
	s.ifaces[key] = append(list, in)
}

// lookup returns the registered interface compatible with the abstract
// syntax a client proposes, or nil.
func (s *Server) lookup(syntax *dcerpc.SyntaxID) *iface {
	if syntax == nil || syntax.IfUUID == nil {
		return nil
	}
	key := [16]byte(syntax.IfUUID.EncodeBinary())
	s.mu.Lock()
	defer s.mu.Unlock()
	var best *iface
	for _, in := range s.ifaces[key] {
		if in.syntax.IfVersionMajor != syntax.IfVersionMajor || in.syntax.IfVersionMinor < syntax.IfVersionMinor {
			continue
		}
		if best == nil || in.syntax.IfVersionMinor > best.syntax.IfVersionMinor {
			best = in
		}
	}
	return best
}

// Serve accepts connections on l and serves each in its own goroutine. It
// blocks until l fails or Shutdown is called, and then returns
// ErrServerClosed. It always closes l. Several listeners may be served at
// once. A "unix" listener serves ncalrpc, anything else ncacn_ip_tcp.
func (s *Server) Serve(l net.Listener) error {
	s.init()
	defer l.Close()
	if !s.trackListener(l, true) {
		return ErrServerClosed
	}
	defer s.trackListener(l, false)
	s.slotsOnce.Do(func() { s.slots = make(chan struct{}, s.maxConns()) })
	s.log().WithField("addr", l.Addr().String()).Info("rpc: serving")

	var backoff time.Duration
	for {
		select {
		case s.slots <- struct{}{}:
		case <-s.done:
			return ErrServerClosed
		}
		nc, err := l.Accept()
		if err != nil {
			<-s.slots
			if s.isClosed() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Transient, e.g. EMFILE wrapped as a timeout: back off.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log().WithError(err).Warn("rpc: accept failed; retrying")
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("rpc: accept: %w", err)
		}
		backoff = 0
		go func() {
			defer func() { <-s.slots }()
			_ = s.serveConn(nc, ConnInfo{})
		}()
	}
}

// ConnInfo describes a connection handed to ServeConn. Zero fields are
// derived from the connection's addresses as Serve does.
type ConnInfo struct {
	// Transport is the protocol sequence (TransportTCP, ...).
	Transport string
	// ClientAddress is Caller.ClientAddress.
	ClientAddress string
	// SecondaryAddress is the sec_addr sent in bind_ack: the TCP port for
	// ncacn_ip_tcp, "\PIPE\name" for ncacn_np, empty for ncalrpc.
	SecondaryAddress string
	// Session is the client identity the transport established, handed to
	// every call as Caller.Session; nil for none.
	Session *Session
}

// ServeConn serves one already-accepted connection, for transports that are
// not a net.Listener (e.g. a named pipe proxied by Samba). It blocks until
// the connection closes and does not count against MaxConns. It returns
// ErrServerClosed if Shutdown was called before.
func (s *Server) ServeConn(nc net.Conn, info ConnInfo) error {
	s.init()
	return s.serveConn(nc, info)
}

func (s *Server) serveConn(nc net.Conn, info ConnInfo) error {
	c := newConn(s, nc, info)
	if !s.trackConn(c, true) {
		nc.Close()
		return ErrServerClosed
	}
	defer s.trackConn(c, false)
	c.serve()
	return nil
}

// Shutdown stops the listeners, closes idle connections and waits for
// running calls to finish and their connections to close. If ctx ends
// first, it closes every connection, cancels the contexts of running calls
// and returns ctx's error. Serve and ServeConn return ErrServerClosed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
	for l := range s.listeners {
		l.Close()
	}
	s.mu.Unlock()

	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		n := len(s.conns)
		for c := range s.conns {
			c.drain()
		}
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			s.cancel()
			s.mu.Lock()
			for c := range s.conns {
				c.nc.Close()
			}
			s.mu.Unlock()
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func (s *Server) trackListener(l net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.closed {
			return false
		}
		s.listeners[l] = struct{}{}
	} else {
		delete(s.listeners, l)
	}
	return true
}

func (s *Server) trackConn(c *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.closed {
			return false
		}
		s.conns[c] = struct{}{}
	} else {
		delete(s.conns, c)
	}
	return true
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// newAssocGroup allocates an association group id; never 0.
func (s *Server) newAssocGroup() uint32 {
	for {
		if id := s.groupSeq.Add(1); id != 0 {
			return id
		}
	}
}

func (s *Server) log() *logrus.Entry {
	if s.Logger != nil {
		return s.Logger
	}
	return logrus.NewEntry(logrus.StandardLogger())
}

func (s *Server) maxRecvFrag() int {
	if s.MaxRecvFrag == 0 {
		return DefaultMaxRecvFrag
	}
	return max(int(s.MaxRecvFrag), minFrag)
}

func (s *Server) maxRequestSize() int {
	if s.MaxRequestSize <= 0 {
		return DefaultMaxRequestSize
	}
	return s.MaxRequestSize
}

func (s *Server) maxConns() int {
	if s.MaxConns <= 0 {
		return DefaultMaxConns
	}
	return s.MaxConns
}

func (s *Server) idleTimeout() time.Duration {
	if s.IdleTimeout <= 0 {
		return DefaultIdleTimeout
	}
	return s.IdleTimeout
}

// syntaxString formats a syntax as "uuid vMAJ.MIN" for logs.
func syntaxString(s *dcerpc.SyntaxID) string {
	return s.IfUUID.String() + " v" + strconv.Itoa(int(s.IfVersionMajor)) + "." + strconv.Itoa(int(s.IfVersionMinor))
}
