package fsrvp

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/server/state"
	"github.com/fsrvpd/fsrvpd/shares"
	"github.com/fsrvpd/fsrvpd/storage"
)

// Spec values, MS-FSRVP §3.1.2 and §3.1.4.2.
const (
	DefaultShortTimeout = 180 * time.Second
	DefaultLongTimeout  = 1800 * time.Second
	DefaultRetryLimit   = 5 // note <5>, Windows Server 2012 R2 and later
	Version1            = 1
)

// SameVolume says what AddToShadowCopySet does with a second share whose
// volume is already in the set.
type SameVolume int

const (
	// SameVolumeShare adds the share as another mapping of the volume's
	// existing shadow copy and returns that shadow copy's id, as Windows
	// does. The data model of §3.1.1.2 (a ShareMappingList per shadow copy)
	// allows it.
	SameVolumeShare SameVolume = iota
	// SameVolumeReject returns FSRVP_E_OBJECT_ALREADY_EXISTS, the literal
	// reading of §3.1.4.4 step 6.
	SameVolumeReject
)

// Compat selects deviations from MS-FSRVP for clients written against
// Samba's agent.
type Compat int

const (
	// CompatSpec follows the specification exactly (the default).
	CompatSpec Compat = iota
	// CompatSamba reproduces exactly the deviations of Samba's rpcd_fsrvp
	// that Samba's own tools (smbtorture rpc.fsrvp, rpcclient scripts)
	// encode, and nothing else:
	//   - GetShareMapping returns ShadowCopyShareName as the bare share name
	//     share@{GUID}, not a UNC name (spec §2.2.1.1);
	//   - an unknown ShadowCopySetId gives E_INVALIDARG where §3.1.4 says
	//     FSRVP_E_SHADOWCOPYSET_ID_MISMATCH (Add, Prepare, Commit, Expose,
	//     RecoveryComplete, Abort, GetShareMapping);
	//   - DeleteShareMapping with an unknown ShadowCopyId gives E_INVALIDARG
	//     where §3.1.4.12 says FSRVP_E_OBJECT_NOT_FOUND;
	//   - an Exposed set counts as finished, like a Recovered one: it does
	//     not block StartShadowCopySet (§3.1.4.3), the message sequence timer
	//     and a SetContext retry do not delete it (§3.1.5, §3.1.4.2), and a
	//     successful Expose ends the sequence (ContextSet becomes FALSE).
	//     smbtorture's enum_created keeps two Exposed sets from one client.
	CompatSamba
)

// Config wires a Service to its collaborators. Zero durations and limits
// take the spec defaults.
type Config struct {
	Backend storage.Backend
	Shares  shares.Resolver
	Exposer shares.Exposer
	DB      *state.DB
	Logger  *logrus.Entry
	Prepare Preparer
	Access  AccessPolicy
	// Writers, if set, runs application writers around the snapshots of
	// sets whose context has writers (writers.go).
	Writers Writers
	// Observer, if set, is told about calls, snapshot jobs and timer
	// expiries (metrics).
	Observer Observer

	// ServerName is OwnerMachineName (§3.1.4.8) and the host part of the
	// exposed shares' UNC names.
	ServerName string
	// ShortTimeout and LongTimeout replace 180 s and 1800 s (tests only).
	ShortTimeout, LongTimeout time.Duration
	// RetryLimit bounds consecutive SetContext retries (§3.1.4.2); negative
	// means no limit, as on Windows Server 2012.
	RetryLimit int
	SameVolume SameVolume
	Compat     Compat
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Committed, if set, is called in its own goroutine after a set is
	// committed, with the volume ids of its new snapshots (SCMP prunes
	// the oldest shadow copies of those volumes then).
	Committed func(volumeIDs []string)
}

// Preparer runs the preparation step of PrepareShadowCopySet (§3.1.4.12)
// for the given volume roots: flushing file systems and, later, running
// writers. The default flushes each file system with syncfs(2).
type Preparer func(ctx context.Context, volumeRoots []string) error

// Caller is who is calling, as far as the Service cares.
type Caller struct {
	// Address identifies the client machine for SetContext (§3.1.4.2): its
	// IP address on TCP, the SMB client's address on named pipes.
	Address string
	// AuthLevel is the RPC authentication level of the call (0: none).
	AuthLevel uint8
	// Name is the authenticated account, if any, for logs.
	Name string
	// SMBSession is true when the call came through smbd's named pipe: the
	// SMB session authenticated the user, and BackupCapable says whether
	// that user may use FSRVP (uid 0, Administrators, Backup Operators,
	// SeBackupPrivilege or a configured group).
	SMBSession, BackupCapable bool
	// RPCAuth is true when the call came under an RPC security context
	// (an authenticated bind, at AuthLevel); RPCBackupCapable says whether
	// its identity is in Administrators, Backup Operators or a configured
	// group.
	RPCAuth, RPCBackupCapable bool
	// Log, if set, carries the transport's fields for this call (conn,
	// call_id, opnum...); the service adds them to its own log lines.
	Log *logrus.Entry
}

// AccessPolicy decides who may call (MS-FSRVP §3.1.4: "the server MUST
// ... verify that the caller's authentication level is packet integrity or
// higher", and that the caller is an administrator or backup operator).
//
//   - Named pipe, PipeRequiresRPCAuth false (default): the SMB session's
//     identity decides (BackupCapable); the bind may be unauthenticated,
//     smbd authenticated and protects the transport.
//   - Named pipe, PipeRequiresRPCAuth true: an authenticated bind at
//     MinLevel or higher whose identity is backup capable.
//   - TCP and ncalrpc: an authenticated bind at MinLevel or higher whose
//     identity is backup capable; with AllowUnauthenticated every caller.
//
// A refused caller gets E_ACCESSDENIED from every method.
type AccessPolicy struct {
	// AllowUnauthenticated lets every caller on TCP and ncalrpc through,
	// authenticated or not. Only sensible on loopback or behind a trusted
	// transport. It never applies to the named pipe.
	AllowUnauthenticated bool
	// MinLevel is the lowest RPC authentication level accepted; 0 means
	// packet integrity (5).
	MinLevel uint8
	// PipeRequiresRPCAuth applies the RPC rule to named-pipe callers
	// instead of the SMB session's identity.
	PipeRequiresRPCAuth bool
}

// pktIntegrity is RPC_C_AUTHN_LEVEL_PKT_INTEGRITY (MS-RPCE §2.2.1.1.8).
const pktIntegrity = 5

func (p AccessPolicy) allows(c Caller) bool {
	minLevel := p.MinLevel
	if minLevel == 0 {
		minLevel = pktIntegrity
	}
	rpcOK := c.RPCAuth && c.AuthLevel >= minLevel && c.RPCBackupCapable
	switch {
	case c.SMBSession && !p.PipeRequiresRPCAuth:
		return c.BackupCapable
	case c.SMBSession:
		return rpcOK
	default:
		return rpcOK || p.AllowUnauthenticated
	}
}

// global is the part of §3.1.1 that is not per set.
type global struct {
	ContextSet     bool   `json:"context_set"`
	CurrentContext uint32 `json:"current_context"`
	ClientAddress  string `json:"client_address,omitempty"`
	RetryCount     int    `json:"retry_count"`
	// TimerDeadline is when the message sequence timer fires; zero when it
	// is stopped. Stored as wall time so a restart re-arms it.
	TimerDeadline time.Time `json:"timer_deadline,omitempty"`
}

const (
	bucketGlobal = "global"
	keyGlobal    = "fsrvp"
	bucketSets   = "sets"
)

// Service is the FSRVP server state machine. Its methods are safe for
// concurrent use; calls are serialized on one mutex, except for the slow
// parts of Prepare and Commit, which run outside it.
type Service struct {
	cfg Config
	log *logrus.Entry

	mu       sync.Mutex
	g        global
	sets     map[uuid.UUID]*Set
	jobs     map[uuid.UUID]*commitJob
	timer    *time.Timer
	timerGen uint64
	closed   bool
}

// New builds a Service and loads the stored state. Call Reconcile before
// serving, then Close at the end.
func New(cfg Config) (*Service, error) {
	if cfg.Backend == nil || cfg.Shares == nil || cfg.Exposer == nil || cfg.DB == nil {
		return nil, fmt.Errorf("fsrvp: Backend, Shares, Exposer and DB are required")
	}
	if cfg.ShortTimeout <= 0 {
		cfg.ShortTimeout = DefaultShortTimeout
	}
	if cfg.LongTimeout <= 0 {
		cfg.LongTimeout = DefaultLongTimeout
	}
	if cfg.RetryLimit == 0 {
		cfg.RetryLimit = DefaultRetryLimit
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = logrus.NewEntry(logrus.StandardLogger())
	}
	if cfg.Prepare == nil {
		cfg.Prepare = SyncFS
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "localhost"
	}
	s := &Service{
		cfg:  cfg,
		log:  cfg.Logger,
		sets: map[uuid.UUID]*Set{},
		jobs: map[uuid.UUID]*commitJob{},
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Service) load() error {
	return s.cfg.DB.View(func(tx *state.Tx) error {
		if err := tx.Get(bucketGlobal, keyGlobal, &s.g); err != nil && !isNotFound(err) {
			return err
		}
		return tx.ForEach(bucketSets, func(key string, raw json.RawMessage) error {
			var set Set
			if err := json.Unmarshal(raw, &set); err != nil {
				return fmt.Errorf("set %s: %w", key, err)
			}
			s.sets[set.ID] = &set
			return nil
		})
	})
}

// Close stops the timer and waits for running commits to settle. It does
// not delete anything: what is stored is reconciled at the next start.
func (s *Service) Close() {
	s.mu.Lock()
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
	jobs := make([]*commitJob, 0, len(s.jobs))
	for _, j := range s.jobs {
		j.cancel()
		jobs = append(jobs, j)
	}
	s.mu.Unlock()
	for _, j := range jobs {
		<-j.done
	}
}

// persist writes the global record and the given sets (deleting those in
// del) in one transaction. Callers hold s.mu.
func (s *Service) persist(g global, put []*Set, del []uuid.UUID) error {
	err := s.cfg.DB.Update(func(tx *state.Tx) error {
		if err := tx.Put(bucketGlobal, keyGlobal, g); err != nil {
			return err
		}
		for _, set := range put {
			if err := tx.Put(bucketSets, set.ID.String(), set); err != nil {
				return err
			}
		}
		for _, id := range del {
			if err := tx.Delete(bucketSets, id.String()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.log.WithError(err).Error("state store write failed")
	}
	return err
}

// ---- message sequence timer (§3.1.2, §3.1.5) ----

// stopTimer stops the global timer. Callers hold s.mu.
func (s *Service) stopTimer() {
	s.timerGen++
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.g.TimerDeadline = time.Time{}
}

// startTimer (re)arms the global timer to fire after d. Callers hold s.mu.
func (s *Service) startTimer(d time.Duration) {
	s.stopTimer()
	s.g.TimerDeadline = s.cfg.Now().Add(d)
	s.armTimer(d)
}

func (s *Service) armTimer(d time.Duration) {
	if s.closed {
		return
	}
	gen := s.timerGen
	s.timer = time.AfterFunc(d, func() { s.expire(gen) })
}

// expire runs when the message sequence timer fires: every set that is not
// Recovered is deleted, Exposed ones included, along with its shares and
// snapshots; then the context is reset (§3.1.5).
func (s *Service) expire(gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.timerGen || s.closed {
		return // stopped or re-armed since
	}
	s.timer = nil
	s.g.TimerDeadline = time.Time{}
	n := s.purgeLocked("timer expired")
	s.observer().TimerExpired(n)
	s.g.ContextSet, s.g.ClientAddress = false, ""
	if err := s.persist(s.g, nil, nil); err == nil {
		s.log.WithField("sets_deleted", n).Info("message sequence timer expired")
	}
}

// purgeLocked deletes every set that is not finished and returns how many
// it deleted. A set whose snapshots cannot be deleted is kept (and
// logged) so that nothing is leaked silently; it is retried at the next
// purge or start-up. Callers hold s.mu.
func (s *Service) purgeLocked(why string) int {
	n := 0
	for id, set := range s.sets {
		if s.finished(set) {
			continue
		}
		if err := s.destroyLocked(set); err != nil {
			s.log.WithError(err).WithField("set_id", id).WithField("reason", why).Error("cannot delete shadow copy set")
			continue
		}
		if err := s.persist(s.g, nil, []uuid.UUID{id}); err != nil {
			continue
		}
		delete(s.sets, id)
		n++
		s.log.WithField("set_id", id).WithField("reason", why).Info("shadow copy set deleted")
	}
	return n
}

// destroyLocked removes every share and snapshot of set, waiting for a
// running commit first. It does not touch the records. Callers hold s.mu;
// the commit job never takes s.mu, so waiting for it here cannot deadlock.
func (s *Service) destroyLocked(set *Set) error {
	if j := s.jobs[set.ID]; j != nil {
		j.cancel()
		<-j.done
		delete(s.jobs, set.ID)
	}
	ctx := context.Background()
	var firstErr error
	for _, sc := range set.Copies {
		for _, m := range sc.Mappings {
			if !m.isExposed() {
				continue
			}
			if err := s.cfg.Exposer.Remove(ctx, m.Exposed); err != nil && !isNotFound(err) && firstErr == nil {
				firstErr = err
			}
		}
		if err := s.cfg.Backend.Delete(ctx, sc.snapshotID()); err != nil && !isNotFound(err) && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = s.releaseWritersLocked(ctx, set, s.finished(set) && !set.abortWriters)
	}
	return firstErr
}

// activeSetLocked reports whether a set other than those in except is not
// finished (still in creation).
func (s *Service) activeSetLocked(except ...uuid.UUID) bool {
	for id, set := range s.sets {
		if !s.finished(set) && !slices.Contains(except, id) {
			return true
		}
	}
	return false
}

// finished reports whether set's creation sequence is over: Recovered, or
// also Exposed in compat = "samba".
func (s *Service) finished(set *Set) bool {
	return set.Status == Recovered || (s.cfg.Compat == CompatSamba && set.Status == Exposed)
}

// endSequenceIfIdleLocked clears the context and stops the timer once no
// set is left in creation (the digest's §9, DeleteShareMapping pitfall).
// It runs only when the set just removed was itself in creation (or for
// AbortShadowCopySet, whose §3.1.4.8 step 4 always ends the sequence):
// deleting a finished set, by a client's DeleteShareMapping, an
// administrator or the retention policy, must not end a sequence another
// client has begun with SetContext but not yet started a set in.
func (s *Service) endSequenceIfIdleLocked(removedActive bool) {
	if removedActive && !s.activeSetLocked() {
		s.g.ContextSet, s.g.ClientAddress = false, ""
		s.stopTimer()
	}
}
