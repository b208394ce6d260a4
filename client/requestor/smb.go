package requestor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hirochachacha/go-smb2"
)

// SMB says where and as whom the requestor reads and writes shares: the
// exposed share@{GUID} snapshot shares, the documents share and, for a
// restore, the target share.
type SMB struct {
	// Addr is the SMB server's host:port (port 445 if omitted).
	Addr string
	// User, Password and Domain authenticate the session (NTLM).
	User, Password, Domain string
	// DialTimeout limits connecting; 0 means 30 s.
	DialTimeout time.Duration
}

func (s SMB) addr() string {
	if _, _, err := net.SplitHostPort(s.Addr); err == nil {
		return s.Addr
	}
	return net.JoinHostPort(strings.Trim(s.Addr, "[]"), "445")
}

// host is the host part of Addr, used in the UNC names given to Mount.
func (s SMB) host() string {
	h, _, err := net.SplitHostPort(s.addr())
	if err != nil {
		return s.Addr
	}
	return h
}

// session is one SMB2 connection with one authenticated session.
type session struct {
	conn net.Conn
	s    *smb2.Session
}

func (s SMB) dial(ctx context.Context) (*session, error) {
	to := s.DialTimeout
	if to <= 0 {
		to = 30 * time.Second
	}
	d := net.Dialer{Timeout: to}
	conn, err := d.DialContext(ctx, "tcp", s.addr())
	if err != nil {
		return nil, fmt.Errorf("smb: %w", err)
	}
	sd := &smb2.Dialer{Initiator: &smb2.NTLMInitiator{User: s.User, Password: s.Password, Domain: s.Domain}}
	dctx, cancel := context.WithTimeout(ctx, to)
	defer cancel()
	ss, err := sd.DialContext(dctx, conn)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("smb session to %s as %q: %w", s.addr(), s.User, err)
	}
	return &session{conn: conn, s: ss}, nil
}

func (ss *session) mount(host, share string) (*smb2.Share, error) {
	fs, err := ss.s.Mount(`\\` + host + `\` + share)
	if err != nil {
		return nil, fmt.Errorf("smb: mount %s: %w", share, err)
	}
	return fs, nil
}

func (ss *session) close() {
	ss.s.Logoff()
	ss.conn.Close()
}

// pool hands out mounted shares, one SMB connection per worker: parallel
// transfers then do not queue behind one TCP stream.
type pool struct {
	cfg    SMB
	share  string
	mu     sync.Mutex
	idle   []*mounted
	all    []*mounted
	closed bool
}

type mounted struct {
	ss *session
	fs *smb2.Share
}

func newPool(cfg SMB, share string) *pool { return &pool{cfg: cfg, share: share} }

func (p *pool) get(ctx context.Context) (*mounted, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		m := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return m, nil
	}
	p.mu.Unlock()
	ss, err := p.cfg.dial(ctx)
	if err != nil {
		return nil, err
	}
	fs, err := ss.mount(p.cfg.host(), p.share)
	if err != nil {
		ss.close()
		return nil, err
	}
	m := &mounted{ss: ss, fs: fs}
	p.mu.Lock()
	p.all = append(p.all, m)
	p.mu.Unlock()
	return m, nil
}

func (p *pool) put(m *mounted) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.idle = append(p.idle, m)
}

func (p *pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.all {
		m.fs.Umount()
		m.ss.close()
	}
	p.all, p.idle, p.closed = nil, nil, true
}

// NT status codes the requestor acts on ([MS-ERREF] 2.3.1).
const (
	statusSharingViolation   = 0xC0000043 // STATUS_SHARING_VIOLATION
	statusObjectNameNotFound = 0xC0000034
	statusObjectPathNotFound = 0xC000003A
	statusBadNetworkName     = 0xC00000CC // STATUS_BAD_NETWORK_NAME: no such share
)

func ntStatus(err error) (uint32, bool) {
	var re *smb2.ResponseError
	if errors.As(err, &re) {
		return re.Code, true
	}
	return 0, false
}

// IsSharingViolation reports whether err is an SMB STATUS_SHARING_VIOLATION:
// the file is open elsewhere with a share mode that excludes our access.
func IsSharingViolation(err error) bool {
	c, ok := ntStatus(err)
	return ok && c == statusSharingViolation
}

func isNotExist(err error) bool {
	if os.IsNotExist(err) {
		return true
	}
	c, ok := ntStatus(err)
	return ok && (c == statusObjectNameNotFound || c == statusObjectPathNotFound)
}

func isNoShare(err error) bool {
	c, ok := ntStatus(err)
	return ok && c == statusBadNetworkName
}

// shareName is the share part of a UNC name: `\\host\share@{id}\` gives
// "share@{id}".
func shareName(unc string) string {
	s := strings.Trim(strings.ReplaceAll(unc, "/", `\`), `\`)
	if i := strings.IndexByte(s, '\\'); i >= 0 {
		s = s[i+1:]
	}
	if i := strings.IndexByte(s, '\\'); i >= 0 {
		s = s[:i]
	}
	return s
}

// baseName strips the snapshot suffix: "share1@{id}" gives "share1".
func baseName(exposed string) string {
	if i := strings.LastIndex(exposed, "@{"); i > 0 {
		return exposed[:i]
	}
	return exposed
}
