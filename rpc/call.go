package rpc

// call.go: requests: reassembly by call id, dispatch to the interface's
// dcerpc.ServerHandle, and the fragmented response (C706 §12.6.4.9-10,
// §12.4 for fragmentation).

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	"github.com/oiweiwei/go-msrpc/midl/uuid"
	"github.com/oiweiwei/go-msrpc/ndr"
	"github.com/sirupsen/logrus"
)

// partialCall is a request whose last fragment has not arrived.
type partialCall struct {
	callID uint32
	ctxID  uint16
	opnum  uint16
	object *uuid.UUID
	stub   []byte
	auth   *secContext // the security context of the first fragment, or nil
}

// activeCall is a running call.
type activeCall struct {
	cancel   context.CancelFunc
	orphaned bool // the client abandoned it: send nothing
}

// maxPrealloc bounds what alloc_hint may make us allocate up front: the
// hint is only a hint (C706 §12.6.4.9).
const maxPrealloc = 256 << 10

// handleRequest checks a request fragment's verifier, adds the fragment to
// its call and starts the call on the last fragment. frame is the whole
// fragment.
func (c *conn) handleRequest(h dcerpc.Header, frame []byte) error {
	if !c.bound {
		return c.protocolError(h.CallID, protoErrorf("request before bind"))
	}
	body := frame[headerSize:]
	req := dcerpc.Request{}
	off := requestHeaderSize
	if h.PacketFlags.IsSet(dcerpc.PacketFlagObjectUUID) {
		// go-msrpc reads the object field only into a non-nil ObjectUUID.
		req.ObjectUUID = new(uuid.UUID)
		off += objectUUIDSize
	}
	if len(body) < off {
		return c.protocolError(h.CallID, protoErrorf("request of %d bytes", len(body)))
	}
	if err := req.ReadFrom(context.Background(), ndr.NDR20(body[:off], drepNDR)); err != nil {
		return c.protocolError(h.CallID, protoErrorf("request: %v", err))
	}
	stub, sc, err := c.requestAuth(h, frame, headerSize+off)
	if err != nil {
		return err
	}

	p := c.pending[h.CallID]
	if h.PacketFlags.IsSet(dcerpc.PacketFlagFirstFrag) {
		switch {
		case p != nil:
			return c.protocolError(h.CallID, protoErrorf("first fragment of call %d twice", h.CallID))
		case c.isActive(h.CallID):
			return c.protocolError(h.CallID, protoErrorf("call id %d already running", h.CallID))
		case len(c.pending) > 0 && !c.mpx:
			return c.protocolError(h.CallID, protoErrorf("interleaved calls without PFC_CONC_MPX"))
		case len(c.pending) >= maxConcurrentCalls:
			return c.protocolError(h.CallID, protoErrorf("too many partial calls"))
		}
		p = &partialCall{callID: h.CallID, ctxID: req.ContextID, opnum: req.OpNum, object: req.ObjectUUID, auth: sc}
		if !h.PacketFlags.IsSet(dcerpc.PacketFlagLastFrag) {
			p.stub = make([]byte, 0, min(int(req.AllocHint), c.srv.maxRequestSize(), maxPrealloc))
		}
	} else if p == nil || p.ctxID != req.ContextID || p.opnum != req.OpNum {
		return c.protocolError(h.CallID, protoErrorf("stray fragment of call %d", h.CallID))
	} else if p.auth != sc {
		return c.protocolError(h.CallID, protoErrorf("fragment of call %d under another security context", h.CallID))
	}

	if c.pendingBytes+len(stub) > c.srv.maxRequestSize() {
		c.log.WithField(LogFieldCallID, h.CallID).Warn("rpc: request exceeds MaxRequestSize")
		c.write(faultPDU(h.CallID, req.ContextID, StatusAccessDenied, true))
		return errClose
	}
	if !h.PacketFlags.IsSet(dcerpc.PacketFlagLastFrag) {
		p.stub = append(p.stub, stub...)
		c.pendingBytes += len(stub)
		c.setPending(p)
		return nil
	}
	if c.pending[h.CallID] != nil {
		p.stub = append(p.stub, stub...)
		c.pendingBytes -= len(p.stub) - len(stub)
		c.unsetPending(h.CallID)
	} else {
		p.stub = stub // single fragment: body is ours
	}
	return c.startCall(p)
}

func (c *conn) setPending(p *partialCall) {
	c.pending[p.callID] = p
	c.mu.Lock()
	c.partial = len(c.pending)
	c.mu.Unlock()
}

func (c *conn) unsetPending(callID uint32) {
	delete(c.pending, callID)
	c.mu.Lock()
	c.partial = len(c.pending)
	c.mu.Unlock()
}

// orphan handles an orphaned PDU (C706 §12.6.4.8): the client abandons a
// call. A partial request is dropped; a running call's context is cancelled
// and its response suppressed. The connection stays open.
func (c *conn) orphan(callID uint32) {
	if p := c.pending[callID]; p != nil {
		c.pendingBytes -= len(p.stub)
		c.unsetPending(callID)
	}
	c.mu.Lock()
	if a := c.active[callID]; a != nil {
		a.orphaned = true
		a.cancel()
	}
	c.mu.Unlock()
	c.log.WithField(LogFieldCallID, callID).Debug("rpc: call orphaned")
}

func (c *conn) isActive(callID uint32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.active[callID] != nil
}

// startCall resolves the presentation context and runs the call in its own
// goroutine once a call slot is free: one at a time without PFC_CONC_MPX.
func (c *conn) startCall(p *partialCall) error {
	pc := c.contexts[p.ctxID]
	if pc == nil {
		c.log.WithField(LogFieldCallID, p.callID).Infof("rpc: request on unknown context %d", p.ctxID)
		return c.write(faultPDU(p.callID, p.ctxID, StatusUnknownInterface, true))
	}
	select {
	case c.sem <- struct{}{}:
	case <-c.ctx.Done():
		return errClose
	}
	caller := c.caller
	callerAuth(&caller, p.auth)
	log := c.log.WithFields(logrus.Fields{
		LogFieldCallID: p.callID,
		LogFieldOpnum:  p.opnum,
		LogFieldIface:  pc.iface.name,
	})
	ctx, cancel := context.WithCancel(c.ctx)
	ctx = WithLogger(NewContext(ctx, &caller), log)
	ctx = WithRequest(ctx, &Request{Object: p.object, Opnum: p.opnum, NDR64: pc.ndr64, Stub: p.stub})
	a := &activeCall{cancel: cancel}
	c.mu.Lock()
	c.active[p.callID] = a
	c.running++
	c.mu.Unlock()
	c.calls.Add(1)
	go c.runCall(ctx, a, pc, p, log)
	return nil
}

// runCall invokes the handler and writes the response or a fault. The call
// id is released before the reply is written, since a client may reuse it
// as soon as the reply arrives; the call still counts as running until the
// reply is out, so that Shutdown does not cut it off.
func (c *conn) runCall(ctx context.Context, a *activeCall, pc *presContext, p *partialCall, log *logrus.Entry) {
	defer func() {
		a.cancel()
		c.mu.Lock()
		if c.active[p.callID] == a {
			delete(c.active, p.callID) // unwinding from a panic
		}
		c.running--
		if c.draining && c.idleLocked() {
			c.nc.Close()
		}
		c.mu.Unlock()
		<-c.sem
		c.calls.Done()
	}()

	stub, f := invoke(ctx, pc, p, log)

	c.mu.Lock()
	orphaned := a.orphaned
	delete(c.active, p.callID)
	c.mu.Unlock()
	if orphaned {
		return
	}
	if f != nil {
		if f.err != nil {
			log.WithError(f.err).Infof("rpc: call failed: fault 0x%08x", f.status)
		}
		c.write(faultPDU(p.callID, p.ctxID, f.status, f.didNotExecute))
		return
	}
	if p.auth != nil && p.auth.level >= AuthLevelIntegrity {
		c.protectedResponse(p.callID, p.ctxID, stub, p.auth)
		return
	}
	c.writeResponse(p.callID, p.ctxID, stub)
}

// invoke runs the handler and marshals its response stub in the context's
// transfer syntax. A panic in the handler or in the NDR codec becomes a
// nca_s_fault_unspec fault; the connection survives.
func invoke(ctx context.Context, pc *presContext, p *partialCall, log *logrus.Entry) (stub []byte, f *callFault) {
	defer func() {
		if r := recover(); r != nil {
			log.WithField("panic", r).WithField("stack", string(debug.Stack())).Error("rpc: handler panicked")
			stub, f = nil, &callFault{status: StatusFaultUnspec}
		}
	}()
	codec := ndr.NDR20
	if pc.ndr64 {
		codec = ndr.NDR64
	}
	op, err := pc.iface.handler(ctx, int(p.opnum), newBoundedReader(p.stub, pc.ndr64))
	if f := faultForHandler(op, err); f != nil {
		return nil, f
	}
	w := codec(nil, drepNDR)
	if err := op.MarshalNDRResponse(ctx, w); err != nil {
		return nil, &callFault{status: StatusFaultUnspec, err: fmt.Errorf("marshal response: %w", err)}
	}
	return w.Bytes(), nil
}

// writeResponse sends stub in fragments of at most the negotiated size. The
// fragments of one response are written back to back, even when calls are
// multiplexed.
func (c *conn) writeResponse(callID uint32, ctxID uint16, stub []byte) {
	chunk := c.maxFrag - headerSize - responseHeaderSize // a multiple of 8
	n := (len(stub) + chunk - 1) / chunk
	buf := make([]byte, 0, len(stub)+max(n, 1)*(headerSize+responseHeaderSize))
	flags := dcerpc.PacketFlagFirstFrag
	for off := 0; ; off += chunk {
		end := min(off+chunk, len(stub))
		if end == len(stub) {
			flags |= dcerpc.PacketFlagLastFrag
		}
		buf = appendResponseFragment(buf, flags, callID, ctxID, len(stub)-off, stub[off:end])
		if end == len(stub) {
			break
		}
		flags = 0
	}
	c.write(buf)
}
