package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// ClientVersion is the FSRVP version this client speaks (the only one defined).
const ClientVersion uint32 = 1

// Windows' client-side wait timeouts (MS-FSRVP notes <11>, <12>, <13>), the
// defaults of CreateRequest.
const (
	DefaultPrepareTimeout = 1800 * time.Second
	DefaultCommitTimeout  = 60 * time.Second
	DefaultExposeTimeout  = 1800 * time.Second
)

// CreateRequest describes a shadow copy set to create.
type CreateRequest struct {
	// Context is the SetContext value (Ctx* | Attr*; see ParseContext).
	Context uint32
	// Shares are UNC names or bare share names; bare names are expanded
	// with the client's share host (see Client.ResolveShare).
	Shares []string
	// Wait limits sent to the server; zero means the Windows default.
	PrepareTimeout, CommitTimeout, ExposeTimeout time.Duration
	// RecoveryComplete makes Create finish with RecoveryCompleteShadowCopySet.
	// Without it the set stays Exposed, and the server's message sequence
	// timer deletes it 180 s after the last call unless the caller calls
	// RecoveryCompleteShadowCopySet in time (MS-FSRVP §3.1.2): leave it off
	// only to write to an ATTR_AUTO_RECOVERY shadow copy first.
	RecoveryComplete bool
}

// CreateResult is a created shadow copy set.
type CreateResult struct {
	ShadowCopySetID   uuid.UUID `json:"shadow_copy_set_id"`
	Context           uint32    `json:"context"`
	RecoveryCompleted bool      `json:"recovery_complete"`
	Mappings          []Mapping `json:"mappings"` // one per share, in request order
}

// Create runs the client side of MS-FSRVP §4 for req.Shares:
// IsPathSupported for each share, GetSupportedVersion (version 1 must be in
// range), SetContext, StartShadowCopySet (random client id),
// AddToShadowCopySet for each share, PrepareShadowCopySet,
// CommitShadowCopySet, ExposeShadowCopySet, GetShareMapping for each share
// and, if req.RecoveryComplete, RecoveryCompleteShadowCopySet.
//
// If a step after StartShadowCopySet fails, Create calls AbortShadowCopySet
// (best effort, logged; even when ctx is done) so that nothing is left on the
// server, and returns the error of the failed step.
func (c *Client) Create(ctx context.Context, req CreateRequest) (*CreateResult, error) {
	if len(req.Shares) == 0 {
		return nil, errors.New("create: no shares")
	}
	shares := make([]string, len(req.Shares))
	for i, s := range req.Shares {
		shares[i] = c.ResolveShare(s)
	}
	for _, s := range shares {
		ok, owner, err := c.IsPathSupported(ctx, s)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("IsPathSupported: %s is not supported by the server's shadow copy provider", s)
		}
		// Windows reconnects to owner here; we keep one connection (fsrvpd
		// is not clustered) and only note it.
		c.log.WithField("share", s).WithField("owner", owner).Debug("share supported")
	}
	if err := c.negotiateVersion(ctx); err != nil {
		return nil, err
	}
	if err := c.SetContext(ctx, req.Context); err != nil {
		return nil, err
	}
	setID, err := c.StartShadowCopySet(ctx, uuid.New())
	if err != nil {
		return nil, err
	}
	res, err := c.fillSet(ctx, setID, shares, req)
	if err != nil {
		c.abort(ctx, setID, err)
		return nil, err
	}
	return res, nil
}

func (c *Client) fillSet(ctx context.Context, setID uuid.UUID, shares []string, req CreateRequest) (*CreateResult, error) {
	scIDs := make([]uuid.UUID, len(shares))
	for i, s := range shares {
		id, err := c.AddToShadowCopySet(ctx, uuid.New(), setID, s)
		if err != nil {
			return nil, err
		}
		scIDs[i] = id
	}
	if err := c.PrepareShadowCopySet(ctx, setID, orDefault(req.PrepareTimeout, DefaultPrepareTimeout)); err != nil {
		return nil, err
	}
	if err := c.CommitShadowCopySet(ctx, setID, orDefault(req.CommitTimeout, DefaultCommitTimeout)); err != nil {
		return nil, err
	}
	if err := c.ExposeShadowCopySet(ctx, setID, orDefault(req.ExposeTimeout, DefaultExposeTimeout)); err != nil {
		return nil, err
	}
	res := &CreateResult{ShadowCopySetID: setID, Context: req.Context}
	for i, s := range shares {
		m, err := c.GetShareMapping(ctx, scIDs[i], setID, s, ShareMappingLevel1)
		if err != nil {
			return nil, err
		}
		res.Mappings = append(res.Mappings, m)
	}
	if req.RecoveryComplete {
		if err := c.RecoveryCompleteShadowCopySet(ctx, setID); err != nil {
			return nil, err
		}
		res.RecoveryCompleted = true
	}
	return res, nil
}

// abort deletes a half-created set, best effort.
func (c *Client) abort(ctx context.Context, setID uuid.UUID, cause error) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	log := c.log.WithField("set", setID).WithField("cause", cause.Error())
	if err := c.AbortShadowCopySet(actx, setID); err != nil {
		log.WithError(err).Warn("create failed; aborting the shadow copy set failed too")
		return
	}
	log.Info("create failed; shadow copy set aborted")
}

// negotiateVersion implements MS-FSRVP §3.2.4.2.1 for ClientVersion.
func (c *Client) negotiateVersion(ctx context.Context) error {
	min, max, err := c.GetSupportedVersion(ctx)
	if err != nil {
		return err
	}
	if min > ClientVersion || max < ClientVersion {
		return fmt.Errorf("GetSupportedVersion: server supports versions %d to %d: %w", min, max, ErrUnsupportedVersion)
	}
	return nil
}

// Delete removes a shadow copy set the way a backup application cleans up
// (MS-FSRVP §3.2.4.11): GetSupportedVersion, then DeleteShareMapping for
// every mapping (only ShadowCopyID and ShareUNC of each are used). The
// server deletes a shadow copy with its last mapping and the set with its
// last shadow copy. Delete tries every mapping and returns all failures
// joined (Code reports the first FSRVP code among them).
func (c *Client) Delete(ctx context.Context, setID uuid.UUID, mappings []Mapping) error {
	if len(mappings) == 0 {
		return errors.New("delete: no mappings")
	}
	if err := c.negotiateVersion(ctx); err != nil {
		return err
	}
	var errs []error
	for _, m := range mappings {
		if err := c.DeleteShareMapping(ctx, setID, m.ShadowCopyID, m.ShareUNC); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m.ShareUNC, err))
		}
	}
	return errors.Join(errs...)
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
