package np

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// pdu builds a fake little-endian DCE/RPC PDU of n bytes.
func pdu(n int, fill byte) []byte {
	b := bytes.Repeat([]byte{fill}, n)
	b[0], b[4] = 5, 0x10
	binary.LittleEndian.PutUint16(b[8:], uint16(n))
	return b
}

func TestMessageWriteOnePDUPerMessage(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	mc := newMessageConn(a, nil, nil)
	p1, p2, p3 := pdu(5840, 1), pdu(24, 2), pdu(MaxMessage, 3)
	in := append(append(append([]byte(nil), p1...), p2...), p3...)
	go func() {
		if n, err := mc.Write(in); n != len(in) || err != nil {
			t.Errorf("Write = %d, %v", n, err)
		}
		mc.Write(nil) // nothing on the wire
		mc.Write([]byte{9, 9, 9})
		a.Close()
	}()
	b.SetDeadline(time.Now().Add(wait))
	for i, want := range [][]byte{p1, p2, p3, {9, 9, 9}} {
		if got := readMessage(t, b); !bytes.Equal(got, want) {
			t.Fatalf("message %d: %d bytes, want %d", i, len(got), len(want))
		}
	}
	if _, err := b.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after the messages: %v", err)
	}
}

func TestMessageWriteNonPDU(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	mc := newMessageConn(a, nil, nil)
	junk := bytes.Repeat([]byte{0xee}, 2*MaxMessage+10) // not a PDU: cut at MaxMessage
	go func() { mc.Write(junk); a.Close() }()
	b.SetDeadline(time.Now().Add(wait))
	var got []byte
	for _, n := range []int{MaxMessage, MaxMessage, 10} {
		m := readMessage(t, b)
		if len(m) != n {
			t.Fatalf("message of %d bytes, want %d", len(m), n)
		}
		got = append(got, m...)
	}
	if !bytes.Equal(got, junk) {
		t.Fatal("content")
	}
}

func TestMessageReadStream(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	mc := newMessageConn(a, nil, nil)
	var wire []byte
	wire = append(wire, frame([]byte("hel"))...)
	wire = append(wire, 0, 0) // a zero-length message is skipped
	wire = append(wire, frame([]byte("lo, "))...)
	wire = append(wire, frame([]byte("world"))...)
	go func() {
		// One byte at a time: headers split across reads.
		for i := range wire {
			b.Write(wire[i : i+1])
		}
		b.Close()
	}()
	got, err := io.ReadAll(mc)
	if err != nil || string(got) != "hello, world" {
		t.Fatalf("%q, %v", got, err)
	}
}

func TestMessageReadTruncated(t *testing.T) {
	for name, wire := range map[string][]byte{
		"header": {5},
		"body":   {5, 0, 'a', 'b'},
	} {
		a, b := net.Pipe()
		mc := newMessageConn(a, nil, nil)
		go func() { b.Write(wire); b.Close() }()
		_, err := io.ReadAll(mc)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: %v, want unexpected EOF", name, err)
		}
		a.Close()
	}
}

// A read deadline in the middle of a header keeps the framing in sync.
func TestMessageReadDeadlineMidHeader(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	mc := newMessageConn(a, nil, nil)
	go b.Write([]byte{3})
	mc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	var ne net.Error
	if _, err := mc.Read(make([]byte, 8)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("want a timeout, got %v", err)
	}
	mc.SetReadDeadline(time.Now().Add(wait))
	go b.Write([]byte{0, 'x', 'y', 'z'})
	got := make([]byte, 3)
	if _, err := io.ReadFull(mc, got); err != nil || string(got) != "xyz" {
		t.Fatalf("%q, %v", got, err)
	}
}
