package np

// listener.go: the external-pipe socket, the per-connection handshake and
// the hand-over to rpc.Server.ServeConn.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/rpc"
)

// Defaults for the zero values of Options.
const (
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultPipeName         = `\PIPE\FssagentRpc`
	DefaultMaxConns         = 256
)

// Options configure a Listener. The zero value is usable.
type Options struct {
	// Logger receives the transport's logs; nil means logrus' standard
	// logger.
	Logger *logrus.Entry
	// HandshakeTimeout bounds reading the request and writing the reply;
	// 0 means DefaultHandshakeTimeout. smbd's client is blocked meanwhile.
	HandshakeTimeout time.Duration
	// PipeName is the bind_ack secondary address; "" means
	// DefaultPipeName.
	PipeName string
	// PeerUIDs are the uids allowed to connect (SO_PEERCRED); nil means
	// root only, as smbd connects as root.
	PeerUIDs []uint32
	// MaxConns bounds the connections served at once; 0 means
	// DefaultMaxConns. At the cap, Serve stops accepting and further
	// connects wait in the backlog.
	MaxConns int
}

// Listener is the named-pipe socket smbd connects to.
type Listener struct {
	path string
	opts Options
	ul   *net.UnixListener
	log  *logrus.Entry
	dev  uint64 // identity of our socket file
	ino  uint64

	closed  atomic.Bool
	done    chan struct{} // closed by Close
	healthy atomic.Bool
	wmu     sync.Mutex // serializes Check's state changes and logs
	lastErr string     // the last unhealthy state logged
}

// Listen creates the socket at path, normally <socket dir>/np/fssagentrpc.
// The directory of path is created with mode 0700 if missing; an existing
// one is never chmod'ed or chown'ed (samba-dcerpcd insists on exactly
// euid-owned 0700 and its own pipes break otherwise), only warned about. A
// socket file left at path is removed only if nothing answers on it; a
// non-socket file is an error.
func Listen(path string, opts Options) (*Listener, error) {
	log := opts.Logger
	if log == nil {
		log = logrus.NewEntry(logrus.StandardLogger())
	}
	log = log.WithField("socket", path)
	dir := filepath.Dir(path)
	switch fi, err := os.Stat(dir); {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("np: %w", err)
		}
		if err := os.Chmod(dir, 0o700); err != nil { // umask
			return nil, fmt.Errorf("np: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("np: %w", err)
	case !fi.IsDir():
		return nil, fmt.Errorf("np: %s is not a directory", dir)
	default:
		st, _ := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm() != 0o700 || (st != nil && int(st.Uid) != os.Geteuid()) {
			log.WithField("mode", fi.Mode().Perm().String()).
				Warn("np: socket directory is not 0700 and owned by us; samba-dcerpcd will refuse it (left unchanged)")
		}
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("np: %w", err)
	}
	// Close must not unlink a path that someone else may have taken over.
	ul.SetUnlinkOnClose(false)
	l := &Listener{path: path, opts: opts, ul: ul, log: log, done: make(chan struct{})}
	fail := func(err error) (*Listener, error) {
		ul.Close()
		l.removeIfOurs()
		return nil, fmt.Errorf("np: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return fail(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fail(errors.New("no inode information"))
	}
	l.dev, l.ino = uint64(st.Dev), st.Ino
	l.healthy.Store(true)
	log.WithField("inode", l.ino).Info("np: listening")
	return l, nil
}

// removeStale removes a socket file nobody listens on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("np: %w", err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("np: %s exists and is not a socket", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("np: %s is in use by another process (samba-dcerpcd?)", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("np: probing %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("np: %w", err)
	}
	return nil
}

// Path returns the socket's path.
func (l *Listener) Path() string { return l.path }

// Addr returns the listener's address.
func (l *Listener) Addr() net.Addr { return l.ul.Addr() }

// Close stops accepting. It removes the socket file only if it is still
// ours. Connections already handed to the rpc.Server are not affected.
func (l *Listener) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	l.removeIfOurs() // before Close, so that Serve returns only after it
	close(l.done)
	return l.ul.Close()
}

func (l *Listener) removeIfOurs() {
	if dev, ino, err := statPath(l.path); err == nil && dev == l.dev && ino == l.ino {
		os.Remove(l.path)
	}
}

// Serve accepts connections until the listener is closed or srv is shut
// down, does the handshake of each in its own goroutine and serves it with
// srv.ServeConn. It returns nil after Close and rpc.ErrServerClosed once
// srv was shut down (noticed at the next connection; call Close alongside
// srv.Shutdown). It always closes the listener.
func (l *Listener) Serve(srv *rpc.Server) error {
	defer l.Close()
	maxConns := l.opts.MaxConns
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	slots := make(chan struct{}, maxConns)
	var stopped atomic.Bool // srv was shut down
	var backoff time.Duration
	for {
		select {
		case slots <- struct{}{}:
		case <-l.done:
			if stopped.Load() {
				return rpc.ErrServerClosed
			}
			return nil
		}
		nc, err := l.ul.AcceptUnix()
		if err != nil {
			<-slots
			if stopped.Load() {
				return rpc.ErrServerClosed
			}
			if l.closed.Load() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				l.log.WithError(err).Warn("np: accept failed; retrying")
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("np: accept: %w", err)
		}
		backoff = 0
		go func() {
			defer func() { <-slots }()
			if err := l.serveConn(srv, nc); errors.Is(err, rpc.ErrServerClosed) {
				stopped.Store(true)
				l.Close()
			}
		}()
	}
}

// serveConn does the handshake, then serves the pipe. Any handshake
// failure closes the connection without a reply.
func (l *Listener) serveConn(srv *rpc.Server, nc *net.UnixConn) error {
	log := l.log
	if uid, pid, err := peerCred(nc); err == nil {
		log = log.WithFields(logrus.Fields{"peer_uid": uid, "peer_pid": pid})
		if !l.peerAllowed(uid) {
			log.Warn("np: connection from a disallowed uid refused")
			nc.Close()
			return nil
		}
	} else {
		log.WithError(err).Warn("np: SO_PEERCRED failed; connection refused")
		nc.Close()
		return nil
	}
	conn, info, err := l.handshake(nc)
	if err != nil {
		log.WithError(err).Warn("np: handshake failed; connection closed without a reply")
		nc.Close()
		return nil
	}
	return srv.ServeConn(conn, info)
}

func (l *Listener) peerAllowed(uid uint32) bool {
	if l.opts.PeerUIDs == nil {
		return uid == 0
	}
	for _, u := range l.opts.PeerUIDs {
		if u == uid {
			return true
		}
	}
	return false
}

// handshake reads and answers named_pipe_auth_req within the handshake
// timeout and returns the framed connection.
func (l *Listener) handshake(nc net.Conn) (net.Conn, rpc.ConnInfo, error) {
	timeout := l.opts.HandshakeTimeout
	if timeout <= 0 {
		timeout = DefaultHandshakeTimeout
	}
	nc.SetDeadline(time.Now().Add(timeout))
	q, err := ReadRequest(nc)
	if err != nil {
		return nil, rpc.ConnInfo{}, err
	}
	sess, err := q.Session()
	if err != nil {
		return nil, rpc.ConnInfo{}, err
	}
	if _, err := nc.Write(EncodeReply(q.Level, FileTypeMessageMode)); err != nil {
		return nil, rpc.ConnInfo{}, fmt.Errorf("np: write reply: %w", err)
	}
	nc.SetDeadline(time.Time{})
	l.log.WithFields(logrus.Fields{
		"npa_level": q.Level, "user": sess.Domain + `\` + sess.User, "uid": sess.UID,
		"client":    net.JoinHostPort(sess.ClientAddr, strconv.Itoa(int(sess.ClientPort))),
		"encrypted": sess.Encrypted, "probe_only": q.ProbeOnly(),
	}).Debug("np: handshake done")
	pipe := l.opts.PipeName
	if pipe == "" {
		pipe = DefaultPipeName
	}
	remote := pipeAddr{net.JoinHostPort(sess.ClientAddr, strconv.Itoa(int(sess.ClientPort)))}
	local := pipeAddr{net.JoinHostPort(sess.ServerAddr, strconv.Itoa(int(sess.ServerPort)))}
	return newMessageConn(nc, remote, local), rpc.ConnInfo{
		Transport:        rpc.TransportNP,
		ClientAddress:    sess.ClientAddr,
		SecondaryAddress: pipe,
		Session:          sess,
	}, nil
}

// Healthy reports whether the socket path still leads to our socket, as
// of the last Check.
func (l *Listener) Healthy() bool { return l.healthy.Load() }

// Check compares the inode at the socket path with ours. When it differs
// (samba-dcerpcd unlinks and re-binds the path when it starts with
// rpcd_fsrvp), smbd no longer reaches us: Check logs an error once per
// change and an info line on recovery, and returns the problem.
func (l *Listener) Check() error {
	var problem error
	switch dev, ino, err := statPath(l.path); {
	case err != nil:
		problem = fmt.Errorf("np: socket path %s: %w", l.path, err)
	case dev != l.dev || ino != l.ino:
		problem = fmt.Errorf("np: socket path %s was replaced (inode %d, ours %d): smbd no longer reaches this daemon; is samba-dcerpcd serving rpcd_fsrvp?", l.path, ino, l.ino)
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if problem == nil {
		if !l.healthy.Swap(true) {
			l.log.WithField("inode", l.ino).Info("np: socket path is ours again")
		}
		l.lastErr = ""
		return nil
	}
	l.healthy.Store(false)
	if msg := problem.Error(); msg != l.lastErr {
		l.lastErr = msg
		l.log.WithError(problem).Error("np: socket path lost")
	}
	return problem
}

// Watch runs Check every interval (≤ 0 means 10 s) until ctx ends or the
// listener is closed.
func (l *Listener) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 10 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if l.closed.Load() {
			return
		}
		l.Check()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func statPath(path string) (dev, ino uint64, err error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return 0, 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, errors.New("no inode information")
	}
	return uint64(st.Dev), st.Ino, nil
}
