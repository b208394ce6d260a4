package conformance

import (
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/fsrvpd/fsrvpd/client"
)

// State is a shadow copy set status (§3.1.1.2).
type State int

const (
	Started State = iota + 1
	Added
	Committed
	Exposed
	Recovered
)

func (s State) String() string {
	switch s {
	case Started:
		return "Started"
	case Added:
		return "Added"
	case Committed:
		return "Committed"
	case Exposed:
		return "Exposed"
	case Recovered:
		return "Recovered"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Wait limits sent by the checks: the Windows client's values (notes
// <11>-<13>).
var (
	prepareTimeout = client.DefaultPrepareTimeout
	commitTimeout  = client.DefaultCommitTimeout
	exposeTimeout  = client.DefaultExposeTimeout
)

// Set is a shadow copy set a check created.
type Set struct {
	ID      uuid.UUID
	Context uint32
	Shares  []string    // UNC names, as sent to Add
	Copies  []uuid.UUID // the shadow copy id Add returned for Shares[i]
	State   State
}

// UNC is the UNC name of share the way diskshadow sends it:
// `\\<ShareHost>\share\`.
func (t *T) UNC(share string) string { return client.ShareUNC(t.target.shareHost(), share) }

// Share is the UNC name of Target.Shares[i].
func (t *T) Share(i int) string { return t.UNC(t.target.Shares[i]) }

// ShareName is the bare name of Target.Shares[i].
func (t *T) ShareName(i int) string { return t.target.Shares[i] }

// MissingShare is the UNC name of a share that does not exist.
func (t *T) MissingShare() string { return t.UNC("fsrvp-conformance-no-such-share") }

// SetContext sets context v, expecting success.
func (t *T) SetContext(v uint32) {
	t.Helper()
	t.OK(fmt.Sprintf("SetContext(0x%08X)", v), t.c.SetContext(t.ctx, v))
}

// Start starts a set (SetContext must have been called), expecting
// success; the set is aborted at cleanup.
func (t *T) Start() uuid.UUID {
	t.Helper()
	return t.StartWith(t.c)
}

// StartWith is Start on connection c.
func (t *T) StartWith(c *client.Client) uuid.UUID {
	t.Helper()
	id, err := c.StartShadowCopySet(t.ctx, uuid.New())
	t.OK("StartShadowCopySet", err)
	t.Track(id)
	t.Truef(id != uuid.Nil, "a ShadowCopySetId", "GUID_NULL", "StartShadowCopySet returned success")
	return id
}

// Track makes cleanup abort set id.
func (t *T) Track(id uuid.UUID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sets = append(t.sets, id)
}

// Add adds share (UNC) to set, expecting success.
func (t *T) Add(set uuid.UUID, share string) uuid.UUID {
	t.Helper()
	id, err := t.c.AddToShadowCopySet(t.ctx, uuid.New(), set, share)
	t.OK(fmt.Sprintf("AddToShadowCopySet(%s)", share), err)
	t.Truef(id != uuid.Nil, "a ShadowCopyId", "GUID_NULL", "AddToShadowCopySet(%s) returned success", share)
	return id
}

// NewSet runs SetContext(ctxValue), Start and Add(shares...) and advances
// the set to state (Prepare is called on the way to Committed), expecting
// success at every step. With no shares, Target.Shares[0] is used.
func (t *T) NewSet(state State, ctxValue uint32, shares ...string) *Set {
	t.Helper()
	if len(shares) == 0 {
		shares = []string{t.Share(0)}
	}
	t.SetContext(ctxValue)
	s := &Set{ID: t.Start(), Context: ctxValue, State: Started}
	if state >= Added {
		for _, sh := range shares {
			s.Shares = append(s.Shares, sh)
			s.Copies = append(s.Copies, t.Add(s.ID, sh))
		}
		s.State = Added
	}
	t.Advance(s, state)
	return s
}

// Advance moves s forward to state, expecting success at every step.
func (t *T) Advance(s *Set, state State) {
	t.Helper()
	for s.State < state {
		switch s.State {
		case Started:
			t.Fatalf("Advance: add shares to a Started set first")
		case Added:
			t.OK("PrepareShadowCopySet", t.c.PrepareShadowCopySet(t.ctx, s.ID, prepareTimeout))
			t.OK("CommitShadowCopySet", t.c.CommitShadowCopySet(t.ctx, s.ID, commitTimeout))
		case Committed:
			t.OK("ExposeShadowCopySet", t.c.ExposeShadowCopySet(t.ctx, s.ID, exposeTimeout))
		case Exposed:
			t.OK("RecoveryCompleteShadowCopySet", t.c.RecoveryCompleteShadowCopySet(t.ctx, s.ID))
		}
		s.State++
	}
}

// Mapping returns the share mapping of s.Shares[i], expecting success.
func (t *T) Mapping(s *Set, i int) client.Mapping {
	t.Helper()
	m, err := t.c.GetShareMapping(t.ctx, s.Copies[i], s.ID, s.Shares[i], client.ShareMappingLevel1)
	t.OK(fmt.Sprintf("GetShareMapping(%s)", s.Shares[i]), err)
	return m
}

// DeleteAll deletes every mapping of s, expecting success; the set is gone
// afterwards.
func (t *T) DeleteAll(s *Set) {
	t.Helper()
	for i, sh := range s.Shares {
		t.OK(fmt.Sprintf("DeleteShareMapping(%s)", sh), t.c.DeleteShareMapping(t.ctx, s.ID, s.Copies[i], sh))
	}
}

// WantGone checks that set id no longer exists: GetShareMapping answers
// SHADOWCOPYSET_ID_MISMATCH, DeleteShareMapping OBJECT_NOT_FOUND and
// Abort SHADOWCOPYSET_ID_MISMATCH.
func (t *T) WantGone(what string, s *Set) {
	t.Helper()
	sc, share := uuid.New(), t.Share(0)
	if len(s.Copies) > 0 {
		sc, share = s.Copies[0], s.Shares[0]
	}
	_, err := t.c.GetShareMapping(t.ctx, sc, s.ID, share, client.ShareMappingLevel1)
	t.Want(what+": GetShareMapping of the deleted set", err, client.EShadowCopySetIDMismatch)
	t.Want(what+": DeleteShareMapping of the deleted set", t.c.DeleteShareMapping(t.ctx, s.ID, sc, share), client.EObjectNotFound)
	t.Want(what+": AbortShadowCopySet of the deleted set", t.c.AbortShadowCopySet(t.ctx, s.ID), client.EShadowCopySetIDMismatch)
}

// WantShadowCopied checks IsPathShadowCopied(share).
func (t *T) WantShadowCopied(what, share string, want bool) {
	t.Helper()
	present, _, err := t.c.IsPathShadowCopied(t.ctx, share)
	t.OK(what+": IsPathShadowCopied("+share+")", err)
	Equal(t, what+": IsPathShadowCopied("+share+").ShadowCopyPresent", present, want)
}

// WantNoContext checks that no creation sequence runs: Start answers
// FSRVP_E_BAD_STATE (ContextSet is FALSE, §3.1.4.3).
func (t *T) WantNoContext(what string) {
	t.Helper()
	id, err := t.c.StartShadowCopySet(t.ctx, uuid.New())
	if err == nil {
		t.Track(id)
	}
	t.Want(what+": StartShadowCopySet (ContextSet must be FALSE)", err, client.EBadState)
}

// sameGUID compares a GUID printed by the server with id, ignoring case.
func sameGUID(text string, id uuid.UUID) bool { return strings.EqualFold(text, id.String()) }
