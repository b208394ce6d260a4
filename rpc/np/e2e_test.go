package np

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	fsrvp "github.com/oiweiwei/go-msrpc/msrpc/fsrvp/fileservervssagent/v1"
	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/rpc"
)

const wait = 10 * time.Second

func testLogger() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	if testing.Verbose() {
		l.SetOutput(os.Stderr)
		l.SetLevel(logrus.DebugLevel)
	}
	return logrus.NewEntry(l)
}

// fakeFSRVP answers GetSupportedVersion with 1..2 and reports its caller.
type fakeFSRVP struct {
	fsrvp.UnimplementedFileServerVSSAgentServer
	callers chan rpc.Caller
}

func (f *fakeFSRVP) GetSupportedVersion(ctx context.Context, _ *fsrvp.GetSupportedVersionRequest) (*fsrvp.GetSupportedVersionResponse, error) {
	c, ok := rpc.CallerFromContext(ctx)
	if !ok {
		return nil, errors.New("no caller")
	}
	f.callers <- *c
	return &fsrvp.GetSupportedVersionResponse{MinVersion: 1, MaxVersion: 2}, nil
}

type fixture struct {
	l       *Listener
	srv     *rpc.Server
	fake    *fakeFSRVP
	served  chan error
	sockDir string
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	// Unix socket paths are limited to 108 bytes: keep it short.
	base, err := os.MkdirTemp("", "np")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	f := &fixture{fake: &fakeFSRVP{callers: make(chan rpc.Caller, 4)}, served: make(chan error, 1), sockDir: base}
	f.srv = &rpc.Server{Logger: testLogger()}
	f.srv.Register(fsrvp.FileServerVSSAgentSyntaxV1_0, fsrvp.NewFileServerVSSAgentServerHandle(f.fake))
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	if opts.PeerUIDs == nil {
		opts.PeerUIDs = []uint32{uint32(os.Getuid())}
	}
	f.l, err = Listen(filepath.Join(base, "np", "fssagentrpc"), opts)
	if err != nil {
		t.Fatal(err)
	}
	go func() { f.served <- f.l.Serve(f.srv) }()
	t.Cleanup(func() {
		f.l.Close()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		f.srv.Shutdown(ctx)
	})
	return f
}

func (f *fixture) dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", f.l.Path())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(wait))
	t.Cleanup(func() { c.Close() })
	return c
}

func capture(t *testing.T, exp, file string) []byte {
	t.Helper()
	p := filepath.Join(captureDir, exp, file)
	if _, err := os.Stat(p); err != nil {
		p = filepath.Join("testdata", exp, file)
	}
	return readHex(t, p)
}

// readMessage reads one u16-LE-framed message.
func readMessage(t *testing.T, c net.Conn) []byte {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		t.Fatalf("read message header: %v", err)
	}
	b := make([]byte, binary.LittleEndian.Uint16(h[:]))
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read message: %v", err)
	}
	return b
}

func frame(pdu []byte) []byte {
	return append(binary.LittleEndian.AppendUint16(nil, uint16(len(pdu))), pdu...)
}

// A fake smbd replays captured traffic: the handshake, then the captured
// rpcclient bind and GetSupportedVersion request, framed as smbd frames
// them; the handler sees the SMB client's identity.
func TestEndToEnd(t *testing.T) {
	for _, exp := range []string{"exp2_full_root", "exp16_samba422_level8"} {
		t.Run(exp, func(t *testing.T) {
			f := newFixture(t, Options{})
			c := f.dial(t)
			req := capture(t, exp, "conn1_npa_req.hex")
			q, err := DecodeRequest(req)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write(req); err != nil {
				t.Fatal(err)
			}
			rep := make([]byte, 36)
			if _, err := io.ReadFull(c, rep); err != nil {
				t.Fatal(err)
			}
			if want := capture(t, exp, "conn1_npa_rep.hex"); !bytes.Equal(rep, want) {
				t.Fatalf("rep %x, want %x", rep, want)
			}

			// The captured bind, as smbd framed it.
			if _, err := c.Write(capture(t, exp, "conn1_msg01_in.hex")); err != nil {
				t.Fatal(err)
			}
			ack := readMessage(t, c)
			if ack[2] != 12 || !bytes.Contains(ack, []byte(`\PIPE\FssagentRpc`+"\x00")) {
				t.Fatalf("bind_ack %x", ack)
			}
			// The captured request, split over two messages: messages are
			// not PDUs.
			msg := capture(t, exp, "conn1_msg02_in.hex")
			pdu := msg[2:]
			if _, err := c.Write(append(frame(pdu[:5]), frame(pdu[5:])...)); err != nil {
				t.Fatal(err)
			}
			resp := readMessage(t, c)
			if resp[2] != 2 || int(binary.LittleEndian.Uint16(resp[8:])) != len(resp) {
				t.Fatalf("response %x", resp)
			}
			if stub := resp[24:]; !bytes.Equal(stub, []byte{1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0}) {
				t.Fatalf("stub %x", stub)
			}
			var caller rpc.Caller
			select {
			case caller = <-f.fake.callers:
			case <-time.After(wait):
				t.Fatal("handler not called")
			}
			s := caller.Session
			if caller.Transport != rpc.TransportNP || caller.ClientAddress != "127.0.0.1" || s == nil {
				t.Fatalf("caller %+v", caller)
			}
			if s.User != q.AccountName || s.Domain != "NPATEST" || uint64(s.UID) != q.UID ||
				s.ClientPort != q.RemoteClientPort || s.ServerPort != 4460 || len(s.SIDs) != 7 {
				t.Errorf("session %+v", s)
			}
			if caller.RemoteAddr.String() != "127.0.0.1:"+strconv.Itoa(int(q.RemoteClientPort)) {
				t.Errorf("remote addr %v", caller.RemoteAddr)
			}
			if got, want := s.IsBackupCapable(), q.UID == 0; got != want {
				t.Errorf("IsBackupCapable %v", got)
			}
		})
	}
}

// Fail closed: a request that does not decode gets no reply; the
// connection is closed.
func TestHandshakeFailsClosed(t *testing.T) {
	f := newFixture(t, Options{HandshakeTimeout: 300 * time.Millisecond})
	good := capture(t, "exp1_nak_npatest1", "conn1_npa_req.hex")
	wrongLevel := bytes.Clone(good)
	wrongLevel[8], wrongLevel[12] = 6, 6
	garbled := bytes.Clone(good)
	garbled[204] ^= 0xff // sids max_count
	for name, in := range map[string][]byte{
		"wrong level": wrongLevel,
		"garbled":     garbled,
		"truncated":   good[:len(good)-7], // then silence: the timeout
		"huge length": {0xff, 0xff, 0xff, 0xff, 'N', 'P', 'A', 'M'},
		"http":        []byte("GET / HTTP/1.0\r\n\r\n"),
		"nothing":     nil,
	} {
		t.Run(name, func(t *testing.T) {
			c := f.dial(t)
			if _, err := c.Write(in); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			b, err := io.ReadAll(c)
			if errors.Is(err, syscall.ECONNRESET) {
				err = nil // closed with our unread input pending
			}
			if len(b) != 0 || err != nil {
				t.Fatalf("got %x, %v; want EOF without a reply", b, err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("closed after %v", d)
			}
		})
	}
	select {
	case c := <-f.fake.callers:
		t.Fatalf("handler called by %+v", c)
	default:
	}
}

// Only the allowed peers may connect.
func TestPeerUIDRefused(t *testing.T) {
	f := newFixture(t, Options{PeerUIDs: []uint32{uint32(os.Getuid()) + 1}})
	c := f.dial(t)
	c.Write(capture(t, "exp2_full_root", "conn1_npa_req.hex"))
	if b, _ := io.ReadAll(c); len(b) != 0 {
		t.Fatalf("reply %x to a disallowed peer", b)
	}
}

func TestListenSocketFile(t *testing.T) {
	dir, err := os.MkdirTemp("", "np")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "np", "fssagentrpc")
	l, err := Listen(path, Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	for p, mode := range map[string]os.FileMode{filepath.Dir(path): 0o700 | os.ModeDir, path: 0o600 | os.ModeSocket} {
		if fi, err := os.Stat(p); err != nil || fi.Mode() != mode {
			t.Errorf("%s: %v %v, want %v", p, fi.Mode(), err, mode)
		}
	}
	// A second listener finds the path answering and refuses it.
	if _, err := Listen(path, Options{Logger: testLogger()}); err == nil {
		t.Fatal("second Listen on a live socket succeeded")
	}
	l.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("socket left after Close: %v", err)
	}
	// A stale socket file (nobody listening) is replaced.
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ul.SetUnlinkOnClose(false)
	ul.Close()
	l, err = Listen(path, Options{Logger: testLogger()})
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	l.Close()
	// A regular file is never removed.
	os.WriteFile(path, nil, 0o600)
	if _, err := Listen(path, Options{Logger: testLogger()}); err == nil {
		t.Fatal("Listen replaced a regular file")
	}
	// An existing directory keeps its mode.
	os.Remove(path)
	os.Chmod(filepath.Dir(path), 0o750)
	l, err = Listen(path, Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if fi, _ := os.Stat(filepath.Dir(path)); fi.Mode().Perm() != 0o750 {
		t.Errorf("np dir mode changed to %v", fi.Mode().Perm())
	}
}

// Serve returns nil after Close, and ErrServerClosed once the rpc.Server
// was shut down (noticed at the next connection).
func TestServeLifecycle(t *testing.T) {
	f := newFixture(t, Options{})
	f.l.Close()
	select {
	case err := <-f.served:
		if err != nil {
			t.Fatalf("Serve after Close: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Serve did not return after Close")
	}

	f = newFixture(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := f.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	c := f.dial(t)
	c.Write(capture(t, "exp2_full_root", "conn1_npa_req.hex"))
	select {
	case err := <-f.served:
		if !errors.Is(err, rpc.ErrServerClosed) {
			t.Fatalf("Serve after Shutdown: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Serve did not return after Shutdown")
	}
	if _, err := os.Lstat(f.l.Path()); !os.IsNotExist(err) {
		t.Errorf("socket file left: %v", err)
	}
}
