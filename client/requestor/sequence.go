package requestor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/client"
)

// Dialer opens an FSRVP connection: client.Dial (ncacn_ip_tcp) or
// client.DialNP (ncacn_np through the SMB server), with the caller's
// client options (timeouts, authentication).
type Dialer func(ctx context.Context, target string) (*client.Client, error)

// SnapshotRequest says which shares to snapshot.
type SnapshotRequest struct {
	// Target is the FSRVP server, as the Dialer understands it.
	Target string
	// Shares are bare share names or UNC names (see client.ResolveShare).
	Shares []string
	// Context is the SetContext value; CtxBackup (0) involves the
	// server's writers.
	Context uint32
	// Owners maps an OwnerMachineName returned by IsPathSupported to the
	// target to dial for it. MS-FSRVP §3.2.4.1: the client should talk to
	// the owner of the share (a cluster node). An owner that is not in the
	// map and is not the target's own host is logged and the current
	// connection kept: the requestor never dials a name it was not given.
	Owners map[string]string
	// Wait limits sent with Prepare, Commit and Expose; zero means the
	// Windows defaults (client.Default*Timeout).
	PrepareTimeout, CommitTimeout, ExposeTimeout time.Duration
}

// Snapshot is an exposed, recovered shadow copy set: the sequence of
// MS-FSRVP §4 ran up to RecoveryCompleteShadowCopySet. Release deletes it.
type Snapshot struct {
	Target   string           // the FSRVP server that owns the set
	SetID    uuid.UUID        // the server's shadow copy set id
	Context  uint32           // the SetContext value
	Mappings []client.Mapping // one per share, in request order

	dial     Dialer
	log      *logrus.Entry
	released bool
}

// TakeSnapshot runs IsPathSupported (following OwnerMachineName, see
// SnapshotRequest.Owners), GetSupportedVersion, SetContext,
// StartShadowCopySet, AddToShadowCopySet for every share,
// PrepareShadowCopySet, CommitShadowCopySet, ExposeShadowCopySet,
// GetShareMapping for every share and RecoveryCompleteShadowCopySet.
//
// RecoveryComplete comes right after the mappings, before any data is
// read, as in the spec's examples (MS-FSRVP §4): the server's message
// sequence timer deletes a set that is still Exposed 180 s after the last
// call (§3.1.2, §3.1.5), which a long copy would otherwise hit; and
// GetShareMapping is refused once the set is Recovered.
//
// If any step fails, or ctx is cancelled, the set is aborted on the server
// (AbortShadowCopySet, with a context of its own) before TakeSnapshot
// returns: nothing is left exposed.
func TakeSnapshot(ctx context.Context, dial Dialer, req SnapshotRequest, log *logrus.Entry) (*Snapshot, error) {
	if len(req.Shares) == 0 {
		return nil, errors.New("no shares to snapshot")
	}
	if log == nil {
		log = discardLog()
	}
	target := req.Target
	c, err := dial(ctx, target)
	if err != nil {
		return nil, err
	}
	defer func() { c.Close() }()
	shares := make([]string, len(req.Shares))
	for i, s := range req.Shares {
		shares[i] = c.ResolveShare(s)
	}
	for i, s := range shares {
		ok, owner, err := c.IsPathSupported(ctx, s)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("IsPathSupported: the server cannot shadow copy %s", s)
		}
		if i > 0 || owner == "" || strings.EqualFold(owner, c.ShareHost()) {
			continue
		}
		if to, ok := lookupOwner(req.Owners, owner); ok && to != target {
			log.WithField("owner", owner).WithField("target", to).Info("following OwnerMachineName")
			nc, err := dial(ctx, to)
			if err != nil {
				return nil, fmt.Errorf("dialing %s, the owner of %s: %w", owner, s, err)
			}
			c.Close()
			c, target = nc, to
			// Shares keep the names they were given: UNC names name the
			// file server, not the node.
			continue
		}
		log.WithField("owner", owner).WithField("share", s).Debug("OwnerMachineName not mapped; keeping the connection")
	}
	if err := negotiate(ctx, c); err != nil {
		return nil, err
	}
	if err := c.SetContext(ctx, req.Context); err != nil {
		return nil, err
	}
	setID, err := c.StartShadowCopySet(ctx, uuid.New())
	if err != nil {
		return nil, err
	}
	snap := &Snapshot{Target: target, SetID: setID, Context: req.Context, dial: dial, log: log.WithField("set", setID)}
	if err := snap.fill(ctx, c, shares, req); err != nil {
		snap.abort(c, err)
		return nil, err
	}
	return snap, nil
}

func lookupOwner(m map[string]string, owner string) (string, bool) {
	for k, v := range m {
		if strings.EqualFold(k, owner) {
			return v, true
		}
	}
	return "", false
}

func negotiate(ctx context.Context, c *client.Client) error {
	min, max, err := c.GetSupportedVersion(ctx)
	if err != nil {
		return err
	}
	if min > client.ClientVersion || max < client.ClientVersion {
		return fmt.Errorf("GetSupportedVersion: server supports versions %d to %d: %w", min, max, client.ErrUnsupportedVersion)
	}
	return nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func (s *Snapshot) fill(ctx context.Context, c *client.Client, shares []string, req SnapshotRequest) error {
	ids := make([]uuid.UUID, len(shares))
	for i, sh := range shares {
		id, err := c.AddToShadowCopySet(ctx, uuid.New(), s.SetID, sh)
		if err != nil {
			return err
		}
		ids[i] = id
	}
	steps := []struct {
		call func(context.Context, uuid.UUID, time.Duration) error
		wait time.Duration
	}{
		{c.PrepareShadowCopySet, orDefault(req.PrepareTimeout, client.DefaultPrepareTimeout)},
		{c.CommitShadowCopySet, orDefault(req.CommitTimeout, client.DefaultCommitTimeout)},
		{c.ExposeShadowCopySet, orDefault(req.ExposeTimeout, client.DefaultExposeTimeout)},
	}
	for _, st := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := st.call(ctx, s.SetID, st.wait); err != nil {
			return err
		}
	}
	for i, sh := range shares {
		m, err := c.GetShareMapping(ctx, ids[i], s.SetID, sh, client.ShareMappingLevel1)
		if err != nil {
			return err
		}
		if m.ExposedName == "" {
			return fmt.Errorf("GetShareMapping: %s has no exposed share", sh)
		}
		s.Mappings = append(s.Mappings, m)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.RecoveryCompleteShadowCopySet(ctx, s.SetID)
}

// cleanupTimeout bounds the cleanup calls made after a failure or an
// interrupt, whose own context is no longer usable.
const cleanupTimeout = 60 * time.Second

// abort deletes a set that is not Recovered, on the connection c.
func (s *Snapshot) abort(c *client.Client, cause error) {
	actx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	log := s.log.WithField("cause", cause.Error())
	if err := c.AbortShadowCopySet(actx, s.SetID); err != nil {
		log.WithError(err).Error("aborting the shadow copy set failed; the server's timer will delete it")
		return
	}
	s.released = true
	log.Info("shadow copy set aborted")
}

// ExposedShares returns the exposed share names (e.g. "share1@{...}"), one
// per mapping.
func (s *Snapshot) ExposedShares() []string {
	out := make([]string, len(s.Mappings))
	for i, m := range s.Mappings {
		out[i] = shareName(m.ExposedName)
	}
	return out
}

// Release deletes the set the way a backup application cleans up
// (MS-FSRVP §3.2.4.11, §4): GetSupportedVersion and DeleteShareMapping for
// every mapping on a new connection; if a mapping cannot be deleted it
// tries AbortShadowCopySet. It uses its own bounded context, so it also
// works after ctx was cancelled (Ctrl-C). Release is idempotent.
func (s *Snapshot) Release(ctx context.Context) error {
	if s == nil || s.released {
		return nil
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	c, err := s.dial(rctx, s.Target)
	if err != nil {
		return fmt.Errorf("releasing shadow copy set %s: %w", s.SetID, err)
	}
	defer c.Close()
	var errs []error
	if err := negotiate(rctx, c); err != nil {
		errs = append(errs, err)
	}
	for _, m := range s.Mappings {
		if err := c.DeleteShareMapping(rctx, s.SetID, m.ShadowCopyID, m.ShareUNC); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m.ShareUNC, err))
		}
	}
	if len(errs) > 0 {
		if err := c.AbortShadowCopySet(rctx, s.SetID); err == nil {
			s.log.WithError(errors.Join(errs...)).Warn("DeleteShareMapping failed; the set was aborted instead")
			errs = nil
		} else if code, ok := client.Code(err); ok && code == client.EShadowCopySetIDMismatch {
			// Already gone (the mappings that did go took it along).
			errs = nil
		} else {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("releasing shadow copy set %s: %w", s.SetID, err)
	}
	s.released = true
	s.log.Debug("shadow copy set released")
	return nil
}

// Abort deletes the set after a failed or interrupted backup:
// AbortShadowCopySet (allowed in every state, MS-FSRVP §3.1.4.8), so the
// server's writers see an abort rather than a completed backup, then
// DeleteShareMapping for every mapping still there (servers that ignore
// Abort once a set is Recovered, as Samba does, delete it that way). Like
// Release it uses its own bounded context and is idempotent.
func (s *Snapshot) Abort(ctx context.Context, cause error) error {
	if s == nil || s.released {
		return nil
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	c, err := s.dial(rctx, s.Target)
	if err != nil {
		return fmt.Errorf("aborting shadow copy set %s: %w", s.SetID, err)
	}
	defer c.Close()
	log := s.log.WithField("cause", cause.Error())
	gone := func(err error) bool {
		code, ok := client.Code(err)
		return ok && (code == client.EShadowCopySetIDMismatch || code == client.EObjectNotFound || code == client.EInvalidArg)
	}
	var errs []error
	if err := c.AbortShadowCopySet(rctx, s.SetID); err != nil && !gone(err) {
		errs = append(errs, err)
	}
	for _, m := range s.Mappings {
		if err := c.DeleteShareMapping(rctx, s.SetID, m.ShadowCopyID, m.ShareUNC); err != nil && !gone(err) {
			errs = append(errs, fmt.Errorf("%s: %w", m.ShareUNC, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		log.WithError(err).Error("aborting the shadow copy set failed")
		return fmt.Errorf("aborting shadow copy set %s: %w", s.SetID, err)
	}
	s.released = true
	log.Info("shadow copy set aborted")
	return nil
}

func discardLog() *logrus.Entry {
	l := logrus.New()
	l.Out = nopWriter{}
	return logrus.NewEntry(l)
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }
