package rpc

// conn.go: one connection: the read loop, PDU dispatch by type, writes,
// idle timeout and graceful draining.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	"github.com/sirupsen/logrus"
)

// errClose ends the read loop after the reply (if any) was written.
var errClose = errors.New("rpc: closing connection")

// conn serves one connection. The read loop (serve) owns the association
// state: presentation contexts, reassembly and negotiated sizes. Calls run in
// their own goroutines (see call.go); mu guards what they share with the
// read loop and with Shutdown.
type conn struct {
	srv    *Server
	nc     net.Conn
	info   ConnInfo
	caller Caller // template; each call gets a copy
	log    *logrus.Entry
	ctx    context.Context    // parent of every call's context
	cancel context.CancelFunc // called when the connection ends

	wmu sync.Mutex // serializes writes; one response's fragments stay together

	// Read loop only.
	bound        bool
	maxFrag      int // negotiated max_xmit_frag = max_recv_frag
	mpx          bool
	contexts     map[uint16]*presContext
	pending      map[uint32]*partialCall // requests being reassembled
	pendingBytes int
	sem          chan struct{}          // running-call tokens, sized at bind
	auth         map[uint32]*secContext // security contexts by auth_context_id
	defaultAuth  *secContext            // the bind's; used by requests without verifier
	headerSign   bool                   // PFC_SUPPORT_HEADER_SIGN negotiated

	mu       sync.Mutex
	active   map[uint32]*activeCall // running calls by call id
	running  int                    // calls started and not yet replied to
	reading  bool                   // the read loop waits for the next PDU
	partial  int                    // len(pending), for idleLocked
	draining bool                   // Shutdown asked to close when idle
	calls    sync.WaitGroup
}

func newConn(s *Server, nc net.Conn, info ConnInfo) *conn {
	id := s.connSeq.Add(1)
	deriveConnInfo(&info, nc)
	c := &conn{
		srv:  s,
		nc:   nc,
		info: info,
		caller: Caller{
			Transport:     info.Transport,
			RemoteAddr:    nc.RemoteAddr(),
			LocalAddr:     nc.LocalAddr(),
			ClientAddress: info.ClientAddress,
			ConnID:        id,
			Session:       info.Session,
		},
		log: s.log().WithFields(logrus.Fields{
			LogFieldConn:   id,
			LogFieldRemote: addrString(nc.RemoteAddr()),
		}),
		contexts: make(map[uint16]*presContext),
		pending:  make(map[uint32]*partialCall),
		auth:     make(map[uint32]*secContext),
		active:   make(map[uint32]*activeCall),
	}
	c.ctx, c.cancel = context.WithCancel(s.ctx)
	return c
}

// deriveConnInfo fills the zero fields of info from the addresses of nc.
func deriveConnInfo(info *ConnInfo, nc net.Conn) {
	local, _ := nc.LocalAddr().(*net.TCPAddr)
	if info.Transport == "" {
		switch {
		case nc.LocalAddr() != nil && nc.LocalAddr().Network() == "unix":
			info.Transport = TransportLRPC
		default:
			info.Transport = TransportTCP
		}
	}
	if info.ClientAddress == "" {
		switch ra := nc.RemoteAddr().(type) {
		case *net.TCPAddr:
			info.ClientAddress = ra.IP.String()
		default:
			info.ClientAddress = "local"
		}
	}
	if info.SecondaryAddress == "" && info.Transport == TransportTCP && local != nil {
		// Windows and Samba send the port the client connected to.
		info.SecondaryAddress = strconv.Itoa(local.Port)
	}
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// serve runs the read loop until the peer goes away, a protocol error, the
// idle timeout or Shutdown. It then cancels running calls and waits for them.
func (c *conn) serve() {
	defer func() {
		c.cancel()
		c.nc.Close()
		c.calls.Wait()
		c.log.Debug("rpc: connection closed")
	}()
	defer func() {
		// Last resort: a bug must cost one connection, not the daemon.
		if r := recover(); r != nil {
			c.log.WithField("panic", r).WithField("stack", string(debug.Stack())).Error("rpc: panic serving connection")
		}
	}()
	c.log.Debug("rpc: connection accepted")
	for {
		if !c.waitNext() {
			return
		}
		h, frame, err := c.readPDU()
		if err != nil {
			c.logReadError(h, err)
			return
		}
		if err := c.handle(h, frame); err != nil {
			if !errors.Is(err, errClose) {
				c.log.WithError(err).Debug("rpc: closing connection")
			}
			return
		}
	}
}

// readPDU reads one fragment and returns it whole (header included).
// While calls run, an idle timeout before the
// first byte of a PDU is not an error.
func (c *conn) readPDU() (dcerpc.Header, []byte, error) {
	var hb [headerSize]byte
	for {
		c.nc.SetReadDeadline(time.Now().Add(c.srv.idleTimeout()))
		n, err := io.ReadFull(c.nc, hb[:])
		if err == nil {
			break
		}
		var ne net.Error
		if n == 0 && errors.As(err, &ne) && ne.Timeout() && c.busy() {
			continue
		}
		return dcerpc.Header{}, nil, err
	}
	c.setReading(false)
	h := decodeHeader(hb[:])
	if err := checkHeader(h); err != nil {
		return h, nil, err
	}
	frame := make([]byte, int(h.FragLength))
	copy(frame, hb[:])
	if _, err := io.ReadFull(c.nc, frame[headerSize:]); err != nil {
		return h, nil, fmt.Errorf("read %s body: %w", h.PacketType, err)
	}
	return h, frame, nil
}

func (c *conn) logReadError(h dcerpc.Header, err error) {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return
	case errors.Is(err, errProtocol):
		badVersion := h.RPCVersion != rpcVersion || h.RPCVersionMinor > rpcVersionMinorMax
		if h.PacketType == dcerpc.PacketTypeBind && badVersion {
			c.bindNak(h.CallID, nakProtocolVersionNotSupported)
		}
		c.log.WithError(err).Info("rpc: malformed PDU")
	default:
		c.log.WithError(err).Debug("rpc: read failed")
	}
}

// handle dispatches one PDU by type (C706 §12.6.4). frame is the whole
// fragment. A non-nil error closes the connection.
func (c *conn) handle(h dcerpc.Header, frame []byte) error {
	body := frame[headerSize:]
	if c.log.Logger.IsLevelEnabled(logrus.DebugLevel) {
		c.log.WithFields(logrus.Fields{
			LogFieldCallID: h.CallID, "ptype": h.PacketType.String(),
			"flags": h.PacketFlags.String(), "frag_length": h.FragLength,
		}).Debug("rpc: PDU")
	}
	if !supportedDRep(h.PacketDRep) {
		if h.PacketType == dcerpc.PacketTypeBind {
			c.bindNak(h.CallID, nakReasonNotSpecified)
			return errClose
		}
		return c.protocolError(h.CallID, protoErrorf("data representation %#08x", uint32(h.PacketDRep)))
	}
	switch h.PacketType {
	case dcerpc.PacketTypeBind:
		return c.handleBind(h, body)
	case dcerpc.PacketTypeAlterContext:
		return c.handleAlterContext(h, body)
	case dcerpc.PacketTypeRequest:
		return c.handleRequest(h, frame)
	case dcerpc.PacketTypeAuth3:
		// Third leg of a three-leg authentication (NTLM); never answered.
		return c.handleAuth3(h, body)
	case dcerpc.PacketTypeCancel:
		// co_cancel (C706 §12.6.4.1): noted only. Handlers are not
		// interrupted; the response carries cancel_count 0.
		c.log.WithField(LogFieldCallID, h.CallID).Debug("rpc: cancel ignored")
		return nil
	case dcerpc.PacketTypeOrphaned:
		c.orphan(h.CallID)
		return nil
	default:
		// Server-to-client PDUs (response, fault, bind_ack, shutdown, ...)
		// and unknown types.
		return c.protocolError(h.CallID, protoErrorf("unexpected %s PDU", h.PacketType))
	}
}

// protocolError answers with a nca_proto_error fault and closes.
func (c *conn) protocolError(callID uint32, err error) error {
	c.log.WithError(err).WithField(LogFieldCallID, callID).Info("rpc: protocol error")
	c.write(faultPDU(callID, 0, StatusProtocolError, true))
	return errClose
}

// write sends one or more complete PDUs. Errors close the connection, which
// the read loop then notices.
func (c *conn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(b)
}

// writeLocked is write with c.wmu held.
func (c *conn) writeLocked(b []byte) error {
	c.nc.SetWriteDeadline(time.Now().Add(c.srv.idleTimeout()))
	if _, err := c.nc.Write(b); err != nil {
		c.nc.Close()
		return err
	}
	return nil
}

// waitNext marks the read loop as waiting for the next PDU. It returns false
// if Shutdown asked the connection to close once idle.
func (c *conn) waitNext() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reading = true
	return !(c.draining && c.idleLocked())
}

func (c *conn) setReading(v bool) {
	c.mu.Lock()
	c.reading = v
	c.mu.Unlock()
}

// busy reports whether calls are running. A stalled reassembly is not
// busy: its client is idle.
func (c *conn) busy() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.running > 0
}

// idleLocked: no call runs, none is half received, and the read loop waits
// for a PDU. Only then may Shutdown close the connection.
func (c *conn) idleLocked() bool {
	return c.reading && c.running == 0 && c.partial == 0
}

// drain is called by Shutdown: close now if idle, else once idle.
func (c *conn) drain() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.draining = true
	if c.idleLocked() {
		c.nc.Close()
	}
}
