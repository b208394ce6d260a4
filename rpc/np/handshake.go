package np

// handshake.go: named_pipe_auth_req decoding (levels 4, 5, 7, 8 and their
// sub-variants), the reply, and the conversion to an rpc.Session.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strconv"
	"strings"

	"github.com/fsrvpd/fsrvpd/rpc"
)

// Magic starts every named_pipe_auth_req and _rep after the length word.
const Magic = "NPAM"

// MaxRequestSize bounds a request's body (after the length word). smbd's
// requests are below 1 KiB for a local user; a Kerberos token with many
// groups and delegated credentials stays far below this.
const MaxRequestSize = 1 << 20

// Reply values Samba sends (named_pipe_auth_rep, libcli/smb/smb_constants.h).
const (
	FileTypeByteMode    = 1
	FileTypeMessageMode = 2
	DeviceState         = 0x05ff // 0xff | PIPE_READMODE_MESSAGE<<8 | PIPE_TYPE_MESSAGE<<8
	AllocationSize      = 4096
)

// Levels known to be sent by smbd (see samba-np-proxy.md §5). Level 6 never
// shipped and is refused like any other unknown level.
var knownLevels = map[uint32]bool{4: true, 5: true, 7: true, 8: true}

// Samba-internal SIDs smbd appends to the token (S-1-22-<rid>-...).
const (
	sidNPAFlagsPrefix = "S-1-22-2041152804-" // NPA flags
	sidSMB3Prefix     = "S-1-22-1397571891-" // SMB3 encryption: dialect-flags-cipher
	npaFlagProbeOnly  = 4                    // master: handshake only (FSCTL_PIPE_WAIT)
)

// Request is a decoded named_pipe_auth_req. Strings are "" when their
// pointer was NULL; Has* tell which optional parts were present.
type Request struct {
	Level     uint32
	Transport uint8 // enum dcerpc_transport_t, 1 = NCACN_NP; 0 at level 4
	// RemoteClientName and LocalServerName are the file server's own
	// host name (smbd passes NULL and Samba substitutes get_myname()).
	RemoteClientName, RemoteClientAddr string
	RemoteClientPort                   uint16
	LocalServerName, LocalServerAddr   string
	LocalServerPort                    uint16
	NeedIdleServer                     bool // level 5 only

	HasSessionInfo     bool
	ExportedCredsLen   int    // exported_gssapi_credentials length
	SessionKey         []byte // the SMB session key; never log it
	UniqueSessionToken string
	TicketType         uint16 // absent (0) before Samba 4.15.9/4.16.4

	HasToken       bool
	SIDs           []string // as sent, Samba-internal SIDs included
	PrivilegeMask  uint64
	RightsMask     uint32
	DeviceSIDs     []string // level 8
	EvaluateClaims uint16   // level 8

	HasUnixToken bool
	UID, GID     uint64
	Groups       []uint64

	HasInfo                                 bool
	AccountName, UserPrincipalName          string
	DomainName, DNSDomainName, FullName     string
	LogonScript, ProfilePath, HomeDirectory string
	HomeDrive, LogonServer                  string
	AcctFlags                               uint32
	// AuthOrUserFlags is u8 authenticated (≤ 4.18, 1 = authenticated) or
	// u32 user_flags (≥ 4.19, 0x1 = guest) in the same 4 bytes: never
	// authorize on it.
	AuthOrUserFlags uint32

	HasUnixInfo                 bool
	UnixName, SanitizedUsername string
}

// layout selects the wire variants of one level.
type layout struct {
	transport  bool // info5+: leading uint8 transport
	needIdle   bool // info5: trailing boolean8 need_idle_server
	ticketType bool // auth_session_info.ticket_type (4.15.9+, 4.16.4+)
	claims     bool // info8: security_token claims and device SIDs
}

func layouts(level uint32) []layout {
	switch level {
	case 4:
		return []layout{{ticketType: true}, {}}
	case 5:
		return []layout{{transport: true, needIdle: true, ticketType: true}, {transport: true, needIdle: true}}
	case 7:
		return []layout{{transport: true, ticketType: true}}
	case 8:
		return []layout{{transport: true, ticketType: true, claims: true}}
	}
	return nil
}

// ReadRequest reads one length-prefixed request from r and decodes it. The
// length word is checked against MaxRequestSize before the body is
// allocated.
func ReadRequest(r io.Reader) (*Request, error) {
	var lb [4]byte
	if _, err := io.ReadFull(r, lb[:]); err != nil {
		return nil, fmt.Errorf("np: read request length: %w", err)
	}
	n := binary.BigEndian.Uint32(lb[:])
	if n < 8 || n > MaxRequestSize {
		return nil, fmt.Errorf("%w: length %d", ErrMalformed, n)
	}
	blob := make([]byte, 4+int(n))
	copy(blob, lb[:])
	if _, err := io.ReadFull(r, blob[4:]); err != nil {
		return nil, fmt.Errorf("np: read request body: %w", err)
	}
	return DecodeRequest(blob)
}

// DecodeRequest decodes a complete request blob, length word included. It
// tries the layouts of the request's level in turn and accepts the first
// that consumes the blob exactly; an unknown level, a discriminant that
// differs from the level, trailing or missing bytes and inconsistent counts
// are errors. It never panics and allocates at most in proportion to
// len(blob).
func DecodeRequest(blob []byte) (*Request, error) {
	if len(blob) < 16 {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(blob))
	}
	if n := binary.BigEndian.Uint32(blob); uint64(n)+4 != uint64(len(blob)) {
		return nil, fmt.Errorf("%w: length word %d for %d bytes", ErrMalformed, n, len(blob))
	}
	if string(blob[4:8]) != Magic {
		return nil, fmt.Errorf("%w: bad magic %q", ErrMalformed, blob[4:8])
	}
	level := binary.LittleEndian.Uint32(blob[8:])
	if disc := binary.LittleEndian.Uint32(blob[12:]); disc != level {
		return nil, fmt.Errorf("%w: level %d, union discriminant %d", ErrMalformed, level, disc)
	}
	if !knownLevels[level] {
		return nil, fmt.Errorf("%w: unknown level %d", ErrMalformed, level)
	}
	var errs []error
	for _, lay := range layouts(level) {
		req, err := decode(blob, level, lay)
		if err == nil {
			return req, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("level %d: %w", level, errors.Join(errs...))
}

func decode(blob []byte, level uint32, lay layout) (*Request, error) {
	r := &reader{b: blob, off: 16}
	q := &Request{Level: level}
	if lay.transport {
		q.Transport = r.u8("transport")
	}
	pRCN := r.ptr("remote_client_name")
	pRCA := r.ptr("remote_client_addr")
	q.RemoteClientPort = r.u16("remote_client_port")
	pLSN := r.ptr("local_server_name")
	pLSA := r.ptr("local_server_addr")
	q.LocalServerPort = r.u16("local_server_port")
	pSI := r.ptr("session_info")
	if lay.needIdle {
		q.NeedIdleServer = r.u8("need_idle_server") != 0
	}
	q.RemoteClientName = optStr(r, pRCN, "remote_client_name")
	q.RemoteClientAddr = optStr(r, pRCA, "remote_client_addr")
	q.LocalServerName = optStr(r, pLSN, "local_server_name")
	q.LocalServerAddr = optStr(r, pLSA, "local_server_addr")
	if pSI {
		// auth_session_info_transport
		pS := r.ptr("session_info_transport.session_info")
		q.ExportedCredsLen = len(r.blob("exported_gssapi_credentials"))
		if pS {
			q.HasSessionInfo = true
			decodeSessionInfo(r, q, lay)
		}
	}
	if r.err == nil && r.remaining() != 0 {
		r.fail("%d trailing bytes", r.remaining())
	}
	if r.err != nil {
		return nil, r.err
	}
	return q, nil
}

func optStr(r *reader, present bool, what string) string {
	if !present {
		return ""
	}
	return r.str(what)
}

// decodeSessionInfo reads auth_session_info: its scalars, then the targets
// of its four pointers in field order.
func decodeSessionInfo(r *reader, q *Request, lay layout) {
	pTok := r.ptr("security_token")
	pUT := r.ptr("unix_token")
	pInfo := r.ptr("info")
	pUI := r.ptr("unix_info")
	r.ptr("torture") // [value(NULL),ignore]: always a NULL referent
	if key := r.blob("session_key"); key != nil {
		q.SessionKey = append([]byte(nil), key...)
	}
	r.ptr("credentials") // [value(NULL),ignore]
	q.UniqueSessionToken = r.guid("unique_session_token")
	if lay.ticketType {
		q.TicketType = r.u16("ticket_type")
	}
	if pTok {
		q.HasToken = true
		decodeToken(r, q, lay)
	}
	if pUT {
		q.HasUnixToken = true
		decodeUnixToken(r, q)
	}
	if pInfo {
		q.HasInfo = true
		decodeUserInfo(r, q)
	}
	if pUI {
		q.HasUnixInfo = true
		pName := r.ptr("unix_info.unix_name")
		pSan := r.ptr("unix_info.sanitized_username")
		q.UnixName = optStr(r, pName, "unix_name")
		q.SanitizedUsername = optStr(r, pSan, "sanitized_username")
	}
}

// decodeToken reads security_token. Its conformant arrays are not the last
// member, so pidl puts each max_count right before the elements; NDR32
// has no trailing padding.
func decodeToken(r *reader, q *Request, lay layout) {
	r.align(8)
	n := r.count(8, "num_sids") // a dom_sid is at least 8 bytes
	r.conformance(n, "sids")
	q.SIDs = sidList(r, n, "sids")
	q.PrivilegeMask = r.u64(8, "privilege_mask")
	q.RightsMask = r.u32("rights_mask")
	if !lay.claims {
		return
	}
	nLocal := r.u32("num_local_claims")
	nUser := r.u32("num_user_claims")
	nDevice := r.u32("num_device_claims")
	nDevSIDs := r.count(8, "num_device_sids")
	if r.err == nil && (nLocal != 0 || nUser != 0 || nDevice != 0) {
		// CLAIM_SECURITY_ATTRIBUTE_RELATIVE_V1 is not decoded: fail closed.
		r.fail("claims present (local %d, user %d, device %d): not supported", nLocal, nUser, nDevice)
		return
	}
	r.conformance(0, "local_claims")
	r.conformance(0, "user_claims")
	r.conformance(0, "device_claims")
	r.conformance(nDevSIDs, "device_sids")
	q.DeviceSIDs = sidList(r, nDevSIDs, "device_sids")
	q.EvaluateClaims = r.u16("evaluate_claims")
}

func sidList(r *reader, n int, what string) []string {
	if r.err != nil || n == 0 {
		return nil
	}
	out := make([]string, 0, n)
	for i := range n {
		out = append(out, r.sid(what+"["+strconv.Itoa(i)+"]"))
		if r.err != nil {
			return nil
		}
	}
	return out
}

// decodeUnixToken reads security_unix_token. groups[] is its last member:
// the max_count comes before the struct's 8-alignment; uid_t and gid_t are
// hyper.
func decodeUnixToken(r *reader, q *Request) {
	mc := r.u32("unix_token groups max_count")
	q.UID = r.u64(8, "uid")
	q.GID = r.u64(8, "gid")
	n := r.count(8, "ngroups")
	if r.err == nil && uint32(n) != mc {
		r.fail("ngroups %d != max_count %d", n, mc)
		return
	}
	if r.err != nil || n == 0 {
		return
	}
	q.Groups = make([]uint64, 0, n)
	for range n {
		q.Groups = append(q.Groups, r.u64(8, "groups[]"))
	}
}

// decodeUserInfo reads auth_user_info.
func decodeUserInfo(r *reader, q *Request) {
	pAcct := r.ptr("account_name")
	pUPN := r.ptr("user_principal_name")
	r.u8("user_principal_constructed")
	var p [8]bool
	for i, what := range []string{"domain_name", "dns_domain_name", "full_name", "logon_script",
		"profile_path", "home_directory", "home_drive", "logon_server"} {
		p[i] = r.ptr(what)
	}
	for _, what := range []string{"last_logon", "last_logoff", "acct_expiry", "last_password_change",
		"allow_password_change", "force_password_change"} {
		r.u64(4, what) // NTTIME: 4-aligned
	}
	r.u16("logon_count")
	r.u16("bad_password_count")
	q.AcctFlags = r.u32("acct_flags")
	q.AuthOrUserFlags = r.u32("authenticated/user_flags")
	q.AccountName = optStr(r, pAcct, "account_name")
	q.UserPrincipalName = optStr(r, pUPN, "user_principal_name")
	dst := []*string{&q.DomainName, &q.DNSDomainName, &q.FullName, &q.LogonScript,
		&q.ProfilePath, &q.HomeDirectory, &q.HomeDrive, &q.LogonServer}
	for i, d := range dst {
		*d = optStr(r, p[i], "user info string")
	}
}

// EncodeReply returns the named_pipe_auth_rep smbd expects for a request
// of the given level: 36 bytes, big-endian length word, "NPAM", level,
// discriminant, file_type, device_state 0x05ff, allocation_size 4096 and
// status 0. smbd checks only the level and file_type.
func EncodeReply(level uint32, fileType uint16) []byte {
	b := make([]byte, 36)
	binary.BigEndian.PutUint32(b[0:], 32)
	copy(b[4:], Magic)
	binary.LittleEndian.PutUint32(b[8:], level)
	binary.LittleEndian.PutUint32(b[12:], level)
	binary.LittleEndian.PutUint16(b[16:], fileType)
	binary.LittleEndian.PutUint16(b[18:], DeviceState)
	// b[20:24]: padding to the 8-aligned hyper allocation_size
	binary.LittleEndian.PutUint64(b[24:], AllocationSize)
	// b[32:36]: status NT_STATUS_OK
	return b
}

// NPAFlags returns the flags of Samba's NPA-flags SID
// (S-1-22-2041152804-<flags>) and whether the token carried one.
func (q *Request) NPAFlags() (uint32, bool) {
	for _, s := range q.SIDs {
		if rest, ok := cutPrefixFold(s, sidNPAFlagsPrefix); ok {
			v, err := strconv.ParseUint(rest, 10, 32)
			return uint32(v), err == nil
		}
	}
	return 0, false
}

// ProbeOnly tells whether smbd only probes the pipe (FSCTL_PIPE_WAIT,
// Samba master) and will close right after the reply.
func (q *Request) ProbeOnly() bool {
	f, ok := q.NPAFlags()
	return ok && f&npaFlagProbeOnly != 0
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return "", false
	}
	return s[len(prefix):], true
}

// Session turns the request into the caller identity the RPC services
// authorize against. It fails, and the connection must then be closed,
// when the request lacks the session info or security token, when the
// client address is not an IP address, or when a unix id does not fit
// 32 bits.
func (q *Request) Session() (*rpc.Session, error) {
	if !q.HasSessionInfo || !q.HasToken {
		return nil, fmt.Errorf("%w: no session info or security token", ErrMalformed)
	}
	addr, err := netip.ParseAddr(q.RemoteClientAddr)
	if err != nil {
		return nil, fmt.Errorf("%w: remote_client_addr %q: %v", ErrMalformed, q.RemoteClientAddr, err)
	}
	s := &rpc.Session{
		User:       q.AccountName,
		Domain:     q.DomainName,
		UnixName:   q.UnixName,
		Privileges: q.PrivilegeMask,
		ClientAddr: addr.Unmap().String(),
		ClientPort: q.RemoteClientPort,
		ServerAddr: q.LocalServerAddr,
		ServerPort: q.LocalServerPort,
	}
	for _, sid := range q.SIDs {
		if _, ok := cutPrefixFold(sid, sidNPAFlagsPrefix); ok {
			continue
		}
		if rest, ok := cutPrefixFold(sid, sidSMB3Prefix); ok {
			// <dialect>-<flags>-<cipher>
			parts := strings.Split(rest, "-")
			s.Encrypted = true
			if len(parts) == 3 {
				d, _ := strconv.ParseUint(parts[0], 10, 16)
				c, _ := strconv.ParseUint(parts[2], 10, 16)
				s.SMBDialect, s.SMBCipher = uint16(d), uint16(c)
			}
			continue
		}
		s.SIDs = append(s.SIDs, sid)
	}
	if q.HasUnixToken {
		if q.UID > math.MaxUint32 || q.GID > math.MaxUint32 {
			return nil, fmt.Errorf("%w: uid %d / gid %d out of range", ErrMalformed, q.UID, q.GID)
		}
		s.HasUnixToken = true
		s.UID, s.GID = uint32(q.UID), uint32(q.GID)
		for _, g := range q.Groups {
			if g > math.MaxUint32 {
				return nil, fmt.Errorf("%w: group %d out of range", ErrMalformed, g)
			}
			s.GIDs = append(s.GIDs, uint32(g))
		}
	}
	return s, nil
}
