package np

// message.go: the message-mode framing smbd uses after the handshake
// (file_type 2): every pipe message travels as u16 little-endian length +
// bytes, in both directions (Samba's tstream_npa).

import (
	"encoding/binary"
	"io"
	"net"
)

// MaxMessage is the largest pipe message the framing can carry.
const MaxMessage = 0xffff

// messageConn turns the framed stream into the byte stream the rpc runtime
// reads PDUs from, and turns the runtime's writes into messages.
//
// Reads: message boundaries are dropped; a DCE/RPC PDU may span messages
// and a message may hold several PDUs (the runtime cuts PDUs by
// frag_length). Zero-length messages are skipped. The header state
// survives a read deadline, so an idle timeout in the middle of a header
// does not lose sync.
//
// Writes: the runtime writes whole PDUs (a response's fragments back to
// back in one Write). Each PDU becomes one message, as Samba's own server
// does, so that an SMB read returns exactly one fragment; bytes that do not
// form a PDU are sent in messages of at most MaxMessage. A zero-length
// message is never sent (smbd treats it as an error).
type messageConn struct {
	net.Conn
	remote, local net.Addr

	// Read side (one reader: the runtime's read loop).
	hdr    [2]byte
	hdrN   int // header bytes read so far
	remain int // bytes left of the current message
}

func newMessageConn(nc net.Conn, remote, local net.Addr) *messageConn {
	return &messageConn{Conn: nc, remote: remote, local: local}
}

func (c *messageConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for c.remain == 0 {
		n, err := c.Conn.Read(c.hdr[c.hdrN:])
		c.hdrN += n
		if c.hdrN == len(c.hdr) {
			c.hdrN = 0
			c.remain = int(binary.LittleEndian.Uint16(c.hdr[:]))
			continue // a 0-length message is skipped
		}
		if err != nil {
			if err == io.EOF && c.hdrN != 0 {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
	}
	n, err := c.Conn.Read(p[:min(len(p), c.remain)])
	c.remain -= n
	if err == io.EOF && c.remain != 0 {
		err = io.ErrUnexpectedEOF
	}
	if n > 0 && err == io.EOF {
		err = nil // reported by the next Read
	}
	return n, err
}

func (c *messageConn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	buf := make([]byte, 0, len(p)+2*(1+len(p)/16))
	for rest := p; len(rest) > 0; {
		n := min(len(rest), MaxMessage)
		if len(rest) >= 16 && rest[0] == 5 {
			// DCE/RPC common header: frag_length at offset 8, in the
			// sender's byte order (the runtime only sends little-endian).
			fl := int(binary.LittleEndian.Uint16(rest[8:]))
			if rest[4]&0xf0 == 0 {
				fl = int(binary.BigEndian.Uint16(rest[8:]))
			}
			if fl >= 16 && fl <= len(rest) {
				n = fl
			}
		}
		buf = binary.LittleEndian.AppendUint16(buf, uint16(n))
		buf = append(buf, rest[:n]...)
		rest = rest[n:]
	}
	if _, err := c.Conn.Write(buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *messageConn) RemoteAddr() net.Addr {
	if c.remote != nil {
		return c.remote
	}
	return c.Conn.RemoteAddr()
}

func (c *messageConn) LocalAddr() net.Addr {
	if c.local != nil {
		return c.local
	}
	return c.Conn.LocalAddr()
}

// pipeAddr is the SMB client's or server's address as smbd reported it.
type pipeAddr struct{ addr string }

func (a pipeAddr) Network() string { return "ncacn_np" }
func (a pipeAddr) String() string  { return a.addr }
