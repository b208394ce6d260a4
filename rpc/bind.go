package rpc

// bind.go: bind and alter_context: presentation context negotiation,
// transfer syntax choice, bind-time feature negotiation, fragment sizes and
// association groups (C706 §12.6.4.3-4, §12.6.4.1-2; MS-RPCE §3.3.1.5.3).

import (
	"context"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	"github.com/oiweiwei/go-msrpc/midl/uuid"
	"github.com/oiweiwei/go-msrpc/ndr"
)

// bind_nak reject reasons (C706 §12.6.3.1 p_reject_reason_t; MS-RPCE
// §2.2.2.5 adds 8 and 9). go-msrpc's ProviderReason constants mix these with
// the per-context result reasons, hence our own names.
const (
	nakReasonNotSpecified          dcerpc.ProviderReason = 0
	nakProtocolVersionNotSupported dcerpc.ProviderReason = 4
	// nakAuthTypeNotRecognized answers a bind whose auth_type has no
	// configured AuthProvider.
	nakAuthTypeNotRecognized dcerpc.ProviderReason = 8
)

// presContext is an accepted presentation context (C706 §12.6.3.4).
type presContext struct {
	id       uint16
	iface    *iface
	abstract dcerpc.SyntaxID // as proposed; may name a lower minor version
	ndr64    bool            // transfer syntax NDR64 1.0, else NDR 2.0
}

// handleBind answers a bind with bind_ack or bind_nak. After a bind_nak the
// connection is closed, as Samba does.
func (c *conn) handleBind(h dcerpc.Header, body []byte) error {
	if c.bound {
		// A second bind on an association is a protocol error; only
		// alter_context may add contexts.
		c.log.Info("rpc: second bind on a connection")
		c.bindNak(h.CallID, nakReasonNotSpecified)
		return errClose
	}
	end, tr, token := len(body), secTrailer{}, []byte(nil)
	if h.AuthLength != 0 {
		var err error
		if tr, end, token, err = splitAuth(body, h.AuthLength); err != nil {
			c.log.WithError(err).Info("rpc: malformed bind")
			c.bindNak(h.CallID, nakReasonNotSpecified)
			return errClose
		}
	}
	var b dcerpc.Bind
	if err := b.ReadFrom(context.Background(), ndr.NDR20(body[:end], drepNDR)); err != nil {
		c.log.WithError(err).Info("rpc: malformed bind")
		c.bindNak(h.CallID, nakReasonNotSpecified)
		return errClose
	}
	results, err := c.negotiate(b.ContextList, true)
	if err != nil {
		c.log.WithError(err).Info("rpc: bind refused")
		c.bindNak(h.CallID, nakReasonNotSpecified)
		return errClose
	}

	c.maxFrag = negotiateFrag(b.MaxXmitFrag, b.MaxRecvFrag, c.srv.maxRecvFrag())
	group := b.AssocGroupID
	if group == 0 {
		group = c.srv.newAssocGroup()
	}
	c.caller.AssocGroupID = group
	c.mpx = h.PacketFlags.IsSet(dcerpc.PacketFlagConcMPX)
	if c.mpx {
		c.sem = make(chan struct{}, maxConcurrentCalls)
	} else {
		c.sem = make(chan struct{}, 1)
	}
	var reply []byte
	if h.AuthLength != 0 {
		var nak dcerpc.ProviderReason
		if reply, nak, err = c.authExchange(dcerpc.PacketTypeBind, tr, token); err != nil {
			c.bindNak(h.CallID, nak)
			return errClose
		}
		c.defaultAuth = c.auth[tr.contextID]
		// MS-RPCE §3.3.1.5.2.2: header signing is echoed when the client
		// offers it with an authenticated bind.
		c.headerSign = h.PacketFlags.IsSet(dcerpc.PacketFlagSupportHeaderSign)
	}
	c.bound = true

	ack := &dcerpc.BindAck{
		MaxXmitFrag:  uint16(c.maxFrag),
		MaxRecvFrag:  uint16(c.maxFrag),
		AssocGroupID: group,
		PortSpec:     c.info.SecondaryAddress,
		ResultList:   results,
	}
	pdu, err := encodePDU(dcerpc.PacketTypeBindAck, c.ackFlags(), h.CallID, ack)
	if err != nil {
		return err
	}
	if h.AuthLength != 0 {
		pdu = bindAuthReply(pdu, tr, reply)
	}
	return c.write(pdu)
}

// handleAlterContext adds presentation contexts to a bound connection.
func (c *conn) handleAlterContext(h dcerpc.Header, body []byte) error {
	if !c.bound {
		return c.protocolError(h.CallID, protoErrorf("alter_context before bind"))
	}
	end, tr, token := len(body), secTrailer{}, []byte(nil)
	if h.AuthLength != 0 {
		var err error
		if tr, end, token, err = splitAuth(body, h.AuthLength); err != nil {
			return c.protocolError(h.CallID, err)
		}
	}
	var a dcerpc.AlterContext
	if err := a.ReadFrom(context.Background(), ndr.NDR20(body[:end], drepNDR)); err != nil {
		return c.protocolError(h.CallID, protoErrorf("alter_context: %v", err))
	}
	results, err := c.negotiate(a.ContextList, false)
	if err != nil {
		return c.protocolError(h.CallID, err)
	}
	var reply []byte
	if h.AuthLength != 0 {
		if reply, _, err = c.authExchange(dcerpc.PacketTypeAlterContext, tr, token); err != nil {
			// Samba answers a failed alter_context exchange the same way.
			c.write(faultPDU(h.CallID, 0, StatusAccessDenied, true))
			return errClose
		}
		if c.defaultAuth == nil {
			c.defaultAuth = c.auth[tr.contextID]
		}
	}
	// Sizes and the secondary address are ignored in alter_context_resp
	// (C706 §12.6.4.2); Samba sends them as below.
	resp := &dcerpc.AlterContextResponse{
		MaxXmitFrag:  uint16(c.maxFrag),
		MaxRecvFrag:  uint16(c.maxFrag),
		AssocGroupID: c.caller.AssocGroupID,
		ResultList:   results,
	}
	pdu, err := encodePDU(dcerpc.PacketTypeAlterContextResponse, c.ackFlags(), h.CallID, resp)
	if err != nil {
		return err
	}
	if h.AuthLength != 0 {
		pdu = bindAuthReply(pdu, tr, reply)
	}
	return c.write(pdu)
}

func (c *conn) ackFlags() dcerpc.PacketFlag {
	flags := dcerpc.PacketFlagFirstFrag | dcerpc.PacketFlagLastFrag
	if c.mpx {
		flags |= dcerpc.PacketFlagConcMPX
	}
	if c.headerSign {
		flags |= dcerpc.PacketFlagSupportHeaderSign
	}
	return flags
}

// negotiate returns one result per proposed context. Each context is
// judged on its own, so a bind may accept several (also several for one
// interface). Unknown interfaces are reported per context with a provider
// rejection rather than a bind_nak, as Windows and Samba do; the
// connection stays usable for alter_context. An error means the list is
// malformed.
func (c *conn) negotiate(list []*dcerpc.Context, bind bool) ([]*dcerpc.Result, error) {
	if len(list) == 0 {
		return nil, protoErrorf("no presentation context")
	}
	results := make([]*dcerpc.Result, len(list))
	feature := false
	for i, el := range list {
		if len(el.TransferSyntaxes) == 0 {
			return nil, protoErrorf("context %d without transfer syntax", el.ContextID)
		}
		if flags, ok := bindTimeFeatures(el.TransferSyntaxes[0]); ok && bind {
			if feature {
				return nil, protoErrorf("two bind-time feature contexts")
			}
			feature = true
			// MS-RPCE §3.3.1.5.3: ack only what we support. A connection is
			// always kept open after an orphaned PDU; security context
			// multiplexing needs authentication.
			results[i] = &dcerpc.Result{
				DefResult:      dcerpc.NegotiateAck,
				ProviderReason: flags & dcerpc.KeepConnOpenOnOrphaned,
				TransferSyntax: zeroSyntax(),
			}
			continue
		}
		r, err := c.negotiateContext(el)
		if err != nil {
			return nil, err
		}
		results[i] = r
	}
	return results, nil
}

// negotiateContext accepts or rejects one context. When a context offers
// both NDR64 and NDR 2.0, NDR64 is chosen, as Windows does.
func (c *conn) negotiateContext(el *dcerpc.Context) (*dcerpc.Result, error) {
	in := c.srv.lookup(el.AbstractSyntax)
	if in == nil {
		c.log.WithField(LogFieldIface, syntaxString(el.AbstractSyntax)).Info("rpc: bind to unknown interface")
		return reject(dcerpc.AbstractSyntaxNotSupported), nil
	}
	ndr64, ok := pickTransfer(el.TransferSyntaxes)
	if !ok {
		return reject(dcerpc.ProposedTransferSyntaxesNotSupported), nil
	}
	if old := c.contexts[el.ContextID]; old != nil {
		// Re-proposing a bound context is harmless; changing it is not
		// (Samba answers the same with a protocol error).
		if !old.abstract.Is(el.AbstractSyntax) || old.ndr64 != ndr64 {
			return nil, protoErrorf("context %d rebound to another syntax", el.ContextID)
		}
	} else {
		if len(c.contexts) >= maxContexts {
			return reject(dcerpc.LocalLimitExceeded), nil
		}
		c.contexts[el.ContextID] = &presContext{id: el.ContextID, iface: in, abstract: *el.AbstractSyntax, ndr64: ndr64}
	}
	ts := dcerpc.TransferNDRSyntaxV2_0
	if ndr64 {
		ts = dcerpc.TransferNDR64SyntaxV1_0
	}
	return &dcerpc.Result{DefResult: dcerpc.Acceptance, TransferSyntax: ts}, nil
}

// pickTransfer chooses NDR64 over NDR 2.0 among the proposed syntaxes.
func pickTransfer(list []*dcerpc.SyntaxID) (ndr64, ok bool) {
	for _, ts := range list {
		switch {
		case ts.Is(dcerpc.TransferNDR64SyntaxV1_0):
			return true, true
		case ts.Is(dcerpc.TransferNDRSyntaxV2_0):
			ok = true
		}
	}
	return false, ok
}

// bindTimeFeatures decodes a bind-time feature negotiation transfer syntax
// 6cb71c2c-9812-4540-XXXX-XXXXXXXXXXXX v1.0, whose last 8 octets are a
// little-endian bitmask (MS-RPCE §2.2.2.14).
func bindTimeFeatures(ts *dcerpc.SyntaxID) (dcerpc.ProviderReason, bool) {
	if ts == nil || ts.IfUUID == nil || ts.IfVersionMajor != 1 || ts.IfVersionMinor != 0 {
		return 0, false
	}
	u := ts.IfUUID
	if u.TimeLow != 0x6cb71c2c || u.TimeMid != 0x9812 || u.TimeHiAndVersion != 0x4540 {
		return 0, false
	}
	return dcerpc.ProviderReason(uint16(u.ClockSeqHiAndReserved) | uint16(u.ClockSeqLow)<<8), true
}

// negotiateFrag mirrors Samba (tested by it against Windows): the smaller of
// the client's sizes, raised to at least 2048, capped by ours, rounded down
// to a multiple of 8, used for both directions. Incoming fragments are not
// held to it: go-msrpc clients send up to the larger of the two sizes.
func negotiateFrag(clientXmit, clientRecv uint16, ours int) int {
	f := max(int(min(clientXmit, clientRecv)), minFrag)
	return min(f, ours) &^ 7
}

// reject returns a provider rejection. go-msrpc's Result.WriteTo
// dereferences TransferSyntax, so a zero syntax is always set.
func reject(reason dcerpc.ProviderReason) *dcerpc.Result {
	return &dcerpc.Result{DefResult: dcerpc.ProviderRejection, ProviderReason: reason, TransferSyntax: zeroSyntax()}
}

func zeroSyntax() *dcerpc.SyntaxID {
	return &dcerpc.SyntaxID{IfUUID: &uuid.UUID{}}
}

// bindNak sends a bind_nak; the caller closes the connection.
func (c *conn) bindNak(callID uint32, reason dcerpc.ProviderReason) {
	nak := &dcerpc.BindNak{ProviderRejectReason: reason}
	if reason == nakProtocolVersionNotSupported {
		nak.VersionList = []*dcerpc.Version{{Major: rpcVersion, Minor: 0}}
	}
	pdu, err := encodePDU(dcerpc.PacketTypeBindNak, dcerpc.PacketFlagFirstFrag|dcerpc.PacketFlagLastFrag, callID, nak)
	if err == nil {
		c.write(pdu)
	}
}
