// Package admin serves fsrvpd's administrative commands on a local Unix
// socket: list and show the shadow copy sets (the FSRVP protocol has no
// enumerate call), abort or delete one, find and collect orphans, and run
// the retention policies.
//
// The protocol is one JSON request and one JSON response per connection,
// each a single line:
//
//	→ {"cmd": "sets"}
//	← {"ok": true, "overview": {...}}
//	→ {"cmd": "delete", "id": "6f1c..."}
//	← {"ok": false, "error": "6f1c... is Exposed: shadow copy set is in a creation sequence; abort it instead"}
//
// Commands: sets, show (id), abort (id), delete (id), orphans, gc
// (dry_run), prune (dry_run, at). Who may connect is checked with SO_PEERCRED:
// root, the daemon's own user, and members of the configured group; the
// socket file's mode (0600, or 0660 with a group) is the first gate.
package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/fsrvpd/fsrvpd/server/fsrvp"
	"github.com/fsrvpd/fsrvpd/server/retention"
	"github.com/fsrvpd/fsrvpd/shares"
)

// Request is one administrative command.
type Request struct {
	Cmd    string `json:"cmd"`
	ID     string `json:"id,omitempty"`
	DryRun bool   `json:"dry_run,omitempty"`
	// At, for a dry-run prune, is the date to plan for instead of now.
	At time.Time `json:"at,omitzero"`
	// Force, for delete, deletes a set even while SMB clients have its
	// shares connected (they are disconnected).
	Force bool `json:"force,omitempty"`
}

// Response answers a Request. Exactly one result field is set when OK
// (show adds the connections to its Set).
type Response struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Code classifies errors: "not_found", "in_use", "connected",
	// "finished", "denied", "bad_request", "unavailable" or "failed".
	Code      string            `json:"code,omitempty"`
	Overview  *fsrvp.Overview   `json:"overview,omitempty"`
	Set       *fsrvp.SetInfo    `json:"set,omitempty"`
	Orphans   *fsrvp.Orphans    `json:"orphans,omitempty"`
	Retention *retention.Result `json:"retention,omitempty"`
	// Connections, for show, are the SMB clients connected to the set's
	// shares; ConnectionsError says why they could not be listed.
	Connections      []shares.Connection `json:"connections,omitempty"`
	ConnectionsError string              `json:"connections_error,omitempty"`
}

// Commands are the command names the server knows.
var Commands = []string{"sets", "show", "abort", "delete", "orphans", "gc", "prune"}

// Server answers administrative requests for one service.
type Server struct {
	Service *fsrvp.Service
	// Retention, if set, runs the retention policies for "prune".
	Retention *retention.Runner
	// GID is a group whose members may connect besides root and the
	// daemon's user; negative means none.
	GID int
	Log *logrus.Entry
	// Requests, if set, is called after every request (metrics).
	Requests func(cmd string, ok bool)

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
	done  bool
}

// Listen creates the socket at path (replacing a stale one) with mode 0600,
// or 0660 and group gid when gid >= 0.
func Listen(path string, gid int) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("admin socket %s: exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("admin socket %s: another process is listening on it", path)
		}
		os.Remove(path)
	}
	// The mode is set right after bind, without touching the process-wide
	// umask; until then SO_PEERCRED still refuses whoever connects.
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	mode := os.FileMode(0o600)
	if gid >= 0 {
		mode = 0o660
		err = os.Chown(path, -1, gid)
	}
	if err == nil {
		err = os.Chmod(path, mode)
	}
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	return l, nil
}

// Serve answers connections on l until l is closed.
func (s *Server) Serve(l net.Listener) error {
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		s.mu.Lock()
		if s.done {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		if s.conns == nil {
			s.conns = map[net.Conn]struct{}{}
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.handle(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

// Close waits for the requests in progress; call it after closing the
// listener.
func (s *Server) Close() {
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
	s.wg.Wait()
}

// Peer is the credentials of a connected client.
type Peer struct {
	PID, UID, GID int
	// Groups are its supplementary groups (from /proc/<pid>/status).
	Groups []int
}

func (p Peer) String() string { return "uid=" + strconv.Itoa(p.UID) }

// peerOf reads SO_PEERCRED of a Unix connection.
func peerOf(c net.Conn) (Peer, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Peer{}, errors.New("not a unix socket")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Peer{}, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Peer{}, err
	}
	if cerr != nil {
		return Peer{}, cerr
	}
	p := Peer{PID: int(cred.Pid), UID: int(cred.Uid), GID: int(cred.Gid)}
	p.Groups = procGroups(p.PID)
	return p, nil
}

// procGroups reads the supplementary groups of pid; nil if unknown.
func procGroups(pid int) []int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "Groups:"); ok {
			var out []int
			for _, f := range strings.Fields(rest) {
				if g, err := strconv.Atoi(f); err == nil {
					out = append(out, g)
				}
			}
			return out
		}
	}
	return nil
}

// Allowed reports whether p may use the admin socket: root, the daemon's
// own user (selfUID), or a member (primary or supplementary) of gid.
func Allowed(p Peer, selfUID, gid int) bool {
	if p.UID == 0 || p.UID == selfUID {
		return true
	}
	if gid < 0 {
		return false
	}
	if p.GID == gid {
		return true
	}
	for _, g := range p.Groups {
		if g == gid {
			return true
		}
	}
	return false
}

func (s *Server) handle(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	enc := json.NewEncoder(c)
	peer, err := peerOf(c)
	if err != nil {
		s.Log.WithError(err).Warn("admin: cannot read peer credentials")
		enc.Encode(Response{Error: "cannot read peer credentials", Code: "denied"})
		return
	}
	log := s.Log.WithFields(logrus.Fields{"peer_uid": peer.UID, "peer_pid": peer.PID})
	// The request is read before the peer is judged, so that a refused
	// client reads the refusal instead of a broken pipe.
	line, err := bufio.NewReader(io.LimitReader(c, 1<<16)).ReadBytes('\n')
	if err != nil && len(line) == 0 {
		return
	}
	c.SetReadDeadline(time.Time{})
	if !Allowed(peer, os.Geteuid(), s.GID) {
		log.Warn("admin: connection refused: not root and not in the admin group")
		enc.Encode(Response{Error: fmt.Sprintf("permission denied: uid %d is not root and not in the admin group", peer.UID), Code: "denied"})
		return
	}
	var req Request
	dec := json.NewDecoder(strings.NewReader(string(line)))
	dec.DisallowUnknownFields()
	var resp Response
	if err := dec.Decode(&req); err != nil {
		resp = Response{Error: "bad request: " + err.Error(), Code: "bad_request"}
	} else {
		resp = s.do(context.Background(), req, peer)
		log.WithFields(logrus.Fields{"cmd": req.Cmd, "id": req.ID, "dry_run": req.DryRun, "ok": resp.OK}).Debug("admin request")
	}
	if s.Requests != nil {
		s.Requests(req.Cmd, resp.OK)
	}
	enc.Encode(resp)
}

func fail(err error) Response {
	code := "failed"
	switch {
	case errors.Is(err, fsrvp.ErrNoSuchSet):
		code = "not_found"
	case errors.Is(err, fsrvp.ErrSetInUse):
		code = "in_use"
	case errors.Is(err, fsrvp.ErrSetFinished):
		code = "finished"
	case errors.Is(err, fsrvp.ErrSetConnected):
		code = "connected"
	}
	return Response{Error: err.Error(), Code: code}
}

// do runs one request. State-changing commands write an audit line.
func (s *Server) do(ctx context.Context, req Request, peer Peer) Response {
	var id uuid.UUID
	switch req.Cmd {
	case "show", "abort", "delete":
		var err error
		if id, err = uuid.Parse(req.ID); err != nil {
			return Response{Error: fmt.Sprintf("%s: %q is not a shadow copy set id", req.Cmd, req.ID), Code: "bad_request"}
		}
	}
	if req.Force && req.Cmd != "delete" {
		return Response{Error: "force is for delete only", Code: "bad_request"}
	}
	audit := func(shares []string, err error) {
		result := "ok"
		if err != nil {
			result = err.Error()
		}
		s.Service.Audit(fsrvp.AuditRecord{Op: "admin " + req.Cmd, SetID: id, Shares: shares, Caller: peer.String(), Client: "local", Result: result})
	}
	switch req.Cmd {
	case "sets":
		o := s.Service.Overview()
		if o.Sets == nil {
			o.Sets = []fsrvp.SetInfo{}
		}
		return Response{OK: true, Overview: &o}
	case "show":
		info, ok := s.Service.SetInfo(id)
		if !ok {
			return fail(fmt.Errorf("%s: %w", id, fsrvp.ErrNoSuchSet))
		}
		resp := Response{OK: true, Set: &info}
		var err error
		if resp.Connections, err = s.Service.Connections(ctx, id); err != nil {
			resp.ConnectionsError = err.Error()
		}
		return resp
	case "abort", "delete":
		info, ok := s.Service.SetInfo(id)
		if !ok {
			return fail(fmt.Errorf("%s: %w", id, fsrvp.ErrNoSuchSet))
		}
		var err error
		if req.Cmd == "abort" {
			err = s.Service.AdminAbort(ctx, id, peer.String())
		} else {
			err = s.Service.DeleteSet(ctx, id, peer.String(), req.Force)
		}
		audit(info.Shares(), err)
		if err != nil {
			return fail(err)
		}
		return Response{OK: true, Set: &info}
	case "orphans":
		o, err := s.Service.Orphans(ctx)
		if err != nil {
			return fail(err)
		}
		return Response{OK: true, Orphans: &o}
	case "gc":
		o, err := s.Service.CollectOrphans(ctx, req.DryRun, peer.String())
		if !req.DryRun {
			audit(nil, err)
		}
		if err != nil {
			return fail(err)
		}
		return Response{OK: true, Orphans: &o}
	case "prune":
		if s.Retention == nil {
			return Response{Error: "no retention policy is configured", Code: "unavailable"}
		}
		res, err := s.Retention.Apply(ctx, req.DryRun, req.At, peer.String())
		if err != nil {
			return fail(err)
		}
		return Response{OK: true, Retention: &res}
	default:
		return Response{Error: fmt.Sprintf("unknown command %q (commands: %s)", req.Cmd, strings.Join(Commands, ", ")), Code: "bad_request"}
	}
}
