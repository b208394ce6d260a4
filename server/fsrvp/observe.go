package fsrvp

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/rpc"
)

// CallEvent describes one finished FSRVP call.
type CallEvent struct {
	// Op is the method name, e.g. "CommitShadowCopySet"; Opnum its number.
	Op    string
	Opnum uint16
	// Changing is true for the methods that change state (every method but
	// GetSupportedVersion, IsPathSupported, IsPathShadowCopied and
	// GetShareMapping).
	Changing bool
	Caller   Caller
	// SIDs are the SMB session's SIDs (named pipe only).
	SIDs []string
	// SetID and Shares are the set and base shares the call concerned, as
	// far as known.
	SetID    uuid.UUID
	Shares   []string
	Result   HResult
	Duration time.Duration
}

// Observer is told what the service does, for metrics. Its methods must
// be quick and must not call back into the Service.
type Observer interface {
	// FSRVPCall follows every call the Handler served.
	FSRVPCall(CallEvent)
	// SnapshotsTaken follows every snapshot job of a Commit: volumes
	// snapshotted, how long the snapshots took (the freeze window) and
	// the job's error.
	SnapshotsTaken(setID uuid.UUID, volumes int, d time.Duration, err error)
	// TimerExpired follows every expiry of the message sequence timer
	// (§3.1.5), with the number of sets it deleted.
	TimerExpired(setsDeleted int)
}

// Name is the code's name without its value ("S_OK",
// "FSRVP_E_BAD_STATE"), or its value in hex when it has no name.
func (h HResult) Name() string {
	if n, ok := codeNames[h]; ok {
		return n
	}
	return fmt.Sprintf("0x%08X", uint32(h))
}

type nopObserver struct{}

func (nopObserver) FSRVPCall(CallEvent)                                 {}
func (nopObserver) SnapshotsTaken(uuid.UUID, int, time.Duration, error) {}
func (nopObserver) TimerExpired(int)                                    {}

func (s *Service) observer() Observer {
	if s.cfg.Observer == nil {
		return nopObserver{}
	}
	return s.cfg.Observer
}

// AuditRecord is one line of the audit log. Every state-changing FSRVP
// call, administrative command and retention decision that deletes
// something writes one, at info level, with exactly these fields:
//
//	audit=true  op  set_id  shares  caller  sids  client  result
//
// op is the FSRVP method name (e.g. "CommitShadowCopySet") or "admin
// <command>" or "retention"; set_id is empty when no set is concerned;
// shares are base share names; caller is the account (DOMAIN\user over
// smbd's pipe, "uid=N" on the admin socket, "fsrvpd" for the daemon
// itself, "" when unauthenticated); sids the SMB session's SIDs; client
// the client's address ("local" on Unix sockets); result the FSRVP return
// code by name, "ok" or an error message.
type AuditRecord struct {
	Op     string
	SetID  uuid.UUID
	Shares []string
	Caller string
	SIDs   []string
	Client string
	Result string
}

// Audit writes r to the audit log.
func (s *Service) Audit(r AuditRecord) {
	set := ""
	if r.SetID != uuid.Nil {
		set = r.SetID.String()
	}
	if r.Shares == nil {
		r.Shares = []string{}
	}
	if r.SIDs == nil {
		r.SIDs = []string{}
	}
	s.log.WithFields(logrus.Fields{
		"audit": true, "op": r.Op, "set_id": set, "shares": r.Shares,
		"caller": r.Caller, "sids": r.SIDs, "client": r.Client, "result": r.Result,
	}).Info("audit")
}

// setShares returns the base shares of set id, nil if there is none.
func (s *Service) setShares(id uuid.UUID) []string {
	if id == uuid.Nil {
		return nil
	}
	info, ok := s.SetInfo(id)
	if !ok {
		return nil
	}
	return info.Shares()
}

// observe reports a finished call to the observer and, for the
// state-changing methods, to the audit log.
func (h Handler) observe(ctx context.Context, op string, opnum uint16, changing bool, start time.Time, setID uuid.UUID, shares []string, rc HResult) {
	ev := CallEvent{Op: op, Opnum: opnum, Changing: changing, Caller: h.callerOf(ctx), SetID: setID, Shares: shares, Result: rc, Duration: time.Since(start)}
	if c, ok := rpc.CallerFromContext(ctx); ok && c.Session != nil {
		ev.SIDs = c.Session.SIDs
	}
	h.S.observer().FSRVPCall(ev)
	if changing {
		h.S.Audit(AuditRecord{Op: op, SetID: setID, Shares: shares, Caller: ev.Caller.Name, SIDs: ev.SIDs, Client: ev.Caller.Address, Result: rc.Name()})
	}
}
