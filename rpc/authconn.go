package rpc

// authconn.go: the runtime side of authentication: sec_trailer parsing, the
// verifier exchange on bind / alter_context / auth3 and the per-PDU
// protection of requests and responses (MS-RPCE §2.2.2.11, §3.3.1.5.2).

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	"github.com/sirupsen/logrus"
)

const (
	// authPadAlign is the alignment of the stub plus auth padding of a
	// protected request or response (MS-RPCE §2.2.2.11: 16 bytes, as
	// Windows and Samba pad).
	authPadAlign = 16
	// maxAuthContexts bounds the security contexts of a connection.
	maxAuthContexts = 8
	// acceptTimeout bounds one Accept call (a credential source may ask
	// winbind or a KDC).
	acceptTimeout = 30 * time.Second
)

// secTrailer is sec_trailer (auth_verifier_co_t without auth_value).
type secTrailer struct {
	authType, level, padLen uint8
	contextID               uint32
}

// splitAuth locates the sec_trailer of a PDU body whose header announced
// authLen bytes of auth_value. It returns the trailer, the offset of the
// trailer in body and the auth_value. checkHeader has made sure that
// authLen+8 fits the body.
func splitAuth(body []byte, authLen uint16) (secTrailer, int, []byte, error) {
	at := len(body) - int(authLen) - secTrailerSize
	if at < 0 {
		return secTrailer{}, 0, nil, protoErrorf("auth_length %d exceeds the body", authLen)
	}
	t := body[at:]
	tr := secTrailer{authType: t[0], level: t[1], padLen: t[2], contextID: binary.LittleEndian.Uint32(t[4:8])}
	if int(tr.padLen) > at {
		return tr, 0, nil, protoErrorf("auth_pad_length %d exceeds the body", tr.padLen)
	}
	return tr, at, body[at+secTrailerSize:], nil
}

// appendTrailer pads pdu (a complete PDU without auth) to align, appends a
// sec_trailer and auth_value and fixes frag_length and auth_length.
func appendTrailer(pdu []byte, align int, tr secTrailer, value []byte) []byte {
	pad := (align - (len(pdu)-headerSize)%align) % align
	pdu = append(pdu, make([]byte, pad)...)
	pdu = append(pdu, tr.authType, tr.level, uint8(pad), 0, 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(pdu[len(pdu)-4:], tr.contextID)
	pdu = append(pdu, value...)
	binary.LittleEndian.PutUint16(pdu[8:10], uint16(len(pdu)))
	binary.LittleEndian.PutUint16(pdu[10:12], uint16(len(value)))
	return pdu
}

// secContext is one security context of a connection, by auth_context_id.
type secContext struct {
	id       uint32
	authType uint8
	level    uint8
	sc       SecurityContext
	done     bool
	identity *Identity
}

// authProvider returns the configured provider for authType, or nil.
func (s *Server) authProvider(authType uint8) AuthProvider {
	for _, p := range s.Auth {
		if p != nil && p.AuthType() == authType {
			return p
		}
	}
	return nil
}

// errAuthRefused ends an exchange whose reason was already logged.
var errAuthRefused = errors.New("rpc: authentication refused")

// authExchange runs one leg of the verifier exchange for a bind, an
// alter_context or an auth3 and returns the token to send back. An error
// refuses the client; the caller answers (bind_nak or fault) and closes.
// nak is the bind_nak reason to use for a bind.
func (c *conn) authExchange(ptype dcerpc.PacketType, tr secTrailer, token []byte) (reply []byte, nak dcerpc.ProviderReason, err error) {
	log := c.log.WithFields(logrus.Fields{"auth_type": tr.authType, "auth_level": AuthLevelName(tr.level), "auth_context_id": tr.contextID})
	sc := c.auth[tr.contextID]
	switch {
	case sc == nil && ptype == dcerpc.PacketTypeAuth3:
		log.Info("rpc: auth3 for an unknown security context")
		return nil, 0, errAuthRefused
	case sc == nil:
		p := c.srv.authProvider(tr.authType)
		if p == nil {
			log.Info("rpc: authentication type not supported")
			return nil, nakAuthTypeNotRecognized, errAuthRefused
		}
		switch tr.level {
		case AuthLevelConnect, AuthLevelIntegrity, AuthLevelPrivacy:
		default:
			log.Info("rpc: authentication level not supported")
			return nil, nakReasonNotSpecified, errAuthRefused
		}
		if len(c.auth) >= maxAuthContexts {
			log.Info("rpc: too many security contexts")
			return nil, nakReasonNotSpecified, errAuthRefused
		}
		ctx, err := p.NewContext(c.info)
		if err != nil {
			log.WithError(err).Warn("rpc: security context not created")
			return nil, nakReasonNotSpecified, errAuthRefused
		}
		sc = &secContext{id: tr.contextID, authType: tr.authType, level: tr.level, sc: ctx}
		c.auth[tr.contextID] = sc
	case sc.authType != tr.authType || sc.level != tr.level:
		log.Info("rpc: security context changes type or level")
		return nil, nakReasonNotSpecified, errAuthRefused
	case sc.done:
		// MS-RPCE §3.3.1.5.2: no re-authentication of an established context.
		log.Info("rpc: token for an established security context")
		return nil, nakReasonNotSpecified, errAuthRefused
	}

	ctx, cancel := context.WithTimeout(c.ctx, acceptTimeout)
	defer cancel()
	reply, done, err := sc.sc.Accept(ctx, token)
	if err != nil {
		delete(c.auth, tr.contextID)
		if errors.Is(err, ErrAuthFailed) {
			log.WithError(err).Info("rpc: authentication failed")
		} else {
			log.WithError(err).Info("rpc: authentication token refused")
		}
		return nil, nakReasonNotSpecified, errAuthRefused
	}
	if ptype == dcerpc.PacketTypeAuth3 && !done {
		delete(c.auth, tr.contextID)
		log.Info("rpc: auth3 did not complete the security context")
		return nil, 0, errAuthRefused
	}
	if done {
		sc.done = true
		sc.identity = sc.sc.Identity()
		if sc.identity == nil {
			sc.identity = &Identity{}
		}
		log.WithFields(logrus.Fields{"user": sc.identity.String(), "mechanism": sc.identity.Mechanism}).Info("rpc: client authenticated")
	}
	return reply, 0, nil
}

// handleAuth3 completes a three-leg exchange (NTLM). No reply is ever
// sent; a failure closes the connection, which is what Windows' clients see
// as access denied on their first call.
func (c *conn) handleAuth3(h dcerpc.Header, body []byte) error {
	if !c.bound || h.AuthLength == 0 {
		return c.protocolError(h.CallID, protoErrorf("auth3 without a bound security context"))
	}
	tr, _, token, err := splitAuth(body, h.AuthLength)
	if err != nil {
		return c.protocolError(h.CallID, err)
	}
	if _, _, err := c.authExchange(dcerpc.PacketTypeAuth3, tr, token); err != nil {
		return errClose
	}
	return nil
}

// requestAuth checks the verifier of a request fragment and returns its
// stub (decrypted at privacy level) and the security context it runs
// under (nil for an unauthenticated connection). frame is the whole
// fragment; stubAt is the offset of the stub in it. A failure has been
// answered (fault) when the error is errClose.
func (c *conn) requestAuth(h dcerpc.Header, frame []byte, stubAt int) ([]byte, *secContext, error) {
	if h.AuthLength == 0 {
		sc := c.defaultAuth
		switch {
		case sc == nil:
			return frame[stubAt:], nil, nil
		case sc.done && sc.level == AuthLevelConnect:
			// At connect level clients send no verifier on requests.
			return frame[stubAt:], sc, nil
		}
		c.log.WithField(LogFieldCallID, h.CallID).Info("rpc: request without verifier on an authenticated connection")
		c.write(faultPDU(h.CallID, 0, StatusAccessDenied, true))
		return nil, nil, errClose
	}
	tr, at, sig, err := splitAuth(frame[headerSize:], h.AuthLength)
	if err != nil {
		return nil, nil, c.protocolError(h.CallID, err)
	}
	at += headerSize
	if at-int(tr.padLen) < stubAt {
		return nil, nil, c.protocolError(h.CallID, protoErrorf("auth padding overlaps the request header"))
	}
	sc := c.auth[tr.contextID]
	if sc == nil || !sc.done || sc.authType != tr.authType || sc.level != tr.level {
		c.log.WithFields(logrus.Fields{LogFieldCallID: h.CallID, "auth_context_id": tr.contextID}).Info("rpc: request verifier names no established security context")
		c.write(faultPDU(h.CallID, 0, StatusAccessDenied, true))
		return nil, nil, errClose
	}
	if sc.level >= AuthLevelIntegrity {
		m := &Message{
			Level:      sc.level,
			HeaderSign: c.headerSign,
			PDU:        frame[:at+secTrailerSize],
			Body:       frame[stubAt:at],
			Signature:  sig,
		}
		if err := sc.sc.Unwrap(m); err != nil {
			c.log.WithError(err).WithField(LogFieldCallID, h.CallID).Warn("rpc: request verifier check failed")
			c.write(faultPDU(h.CallID, 0, StatusAccessDenied, true))
			return nil, nil, errClose
		}
	}
	return frame[stubAt : at-int(tr.padLen)], sc, nil
}

// protectedResponse encodes a response's fragments with verifiers and
// writes them; sc is at integrity or privacy level. Signing happens under
// the write lock so that sequence numbers follow the wire order.
func (c *conn) protectedResponse(callID uint32, ctxID uint16, stub []byte, sc *secContext) {
	sigSize := sc.sc.SignatureSize(sc.level)
	// The auth padding aligns the stub's end to 16 bytes from the end of
	// the 16-byte header; a chunk that ends aligned needs none, so the
	// fragment stays within maxFrag.
	chunk := (c.maxFrag-headerSize-secTrailerSize-sigSize)&^(authPadAlign-1) - responseHeaderSize
	if chunk <= 0 {
		c.log.Error("rpc: fragment too small for a verifier")
		c.write(faultPDU(callID, ctxID, StatusFaultUnspec, false))
		return
	}
	var frags [][]byte
	flags := dcerpc.PacketFlagFirstFrag
	for off := 0; ; off += chunk {
		end := min(off+chunk, len(stub))
		if end == len(stub) {
			flags |= dcerpc.PacketFlagLastFrag
		}
		f := appendResponseFragment(make([]byte, 0, headerSize+responseHeaderSize+chunk+authPadAlign+secTrailerSize+sigSize),
			flags, callID, ctxID, len(stub)-off, stub[off:end])
		f = appendTrailer(f, authPadAlign, secTrailer{authType: sc.authType, level: sc.level, contextID: sc.id}, make([]byte, sigSize))
		frags = append(frags, f)
		if end == len(stub) {
			break
		}
		flags = 0
	}

	c.wmu.Lock()
	defer c.wmu.Unlock()
	for _, f := range frags {
		at := len(f) - sigSize - secTrailerSize
		m := &Message{
			Level:      sc.level,
			HeaderSign: c.headerSign,
			PDU:        f[:at+secTrailerSize],
			Body:       f[headerSize+responseHeaderSize : at],
			Signature:  f[at+secTrailerSize:],
		}
		if err := sc.sc.Wrap(m); err != nil {
			c.log.WithError(err).Error("rpc: response not protected; closing")
			c.nc.Close()
			return
		}
	}
	var buf []byte
	for _, f := range frags {
		buf = append(buf, f...)
	}
	if err := c.writeLocked(buf); err != nil {
		c.log.WithError(err).Debug("rpc: write failed")
	}
}

// callerAuth fills the authentication fields of a call's caller.
func callerAuth(caller *Caller, sc *secContext) {
	if sc == nil {
		return
	}
	caller.AuthType = sc.authType
	caller.AuthLevel = sc.level
	caller.AuthContextID = sc.id
	caller.Identity = sc.identity
}

// bindAuthReply appends the sec_trailer and the reply token to a bind_ack
// or alter_context_resp.
func bindAuthReply(pdu []byte, tr secTrailer, reply []byte) []byte {
	if len(reply) == 0 {
		return pdu
	}
	return appendTrailer(pdu, 4, secTrailer{authType: tr.authType, level: tr.level, contextID: tr.contextID}, reply)
}

func (tr secTrailer) String() string {
	return fmt.Sprintf("type %d level %d context %d", tr.authType, tr.level, tr.contextID)
}
