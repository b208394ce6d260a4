package conformance

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/fsrvpd/fsrvpd/client"
)

// setCall is one per-set method called with set id, shadow copy id and
// share (those that do not take them ignore them).
type setCall struct {
	name string
	call func(t *T, set, sc uuid.UUID, share string) error
}

var (
	callAdd = setCall{"AddToShadowCopySet", func(t *T, set, _ uuid.UUID, _ string) error {
		_, err := t.c.AddToShadowCopySet(t.ctx, uuid.New(), set, t.Share(1))
		return err
	}}
	callPrepare = setCall{"PrepareShadowCopySet", func(t *T, set, _ uuid.UUID, _ string) error {
		return t.c.PrepareShadowCopySet(t.ctx, set, prepareTimeout)
	}}
	callCommit = setCall{"CommitShadowCopySet", func(t *T, set, _ uuid.UUID, _ string) error {
		return t.c.CommitShadowCopySet(t.ctx, set, commitTimeout)
	}}
	callExpose = setCall{"ExposeShadowCopySet", func(t *T, set, _ uuid.UUID, _ string) error {
		return t.c.ExposeShadowCopySet(t.ctx, set, exposeTimeout)
	}}
	callRecovery = setCall{"RecoveryCompleteShadowCopySet", func(t *T, set, _ uuid.UUID, _ string) error {
		return t.c.RecoveryCompleteShadowCopySet(t.ctx, set)
	}}
	callAbort = setCall{"AbortShadowCopySet", func(t *T, set, _ uuid.UUID, _ string) error {
		return t.c.AbortShadowCopySet(t.ctx, set)
	}}
	callGetMapping = setCall{"GetShareMapping", func(t *T, set, sc uuid.UUID, share string) error {
		_, err := t.c.GetShareMapping(t.ctx, sc, set, share, client.ShareMappingLevel1)
		return err
	}}
	callDelete = setCall{"DeleteShareMapping", func(t *T, set, sc uuid.UUID, share string) error {
		return t.c.DeleteShareMapping(t.ctx, set, sc, share)
	}}
)

// unknownSet: call with a set id the server never issued, while a set of
// its own exists, answers want (§3.1.4.x step "look up the set").
func unknownSet(c setCall, want uint32) func(*T) {
	return func(t *T) {
		s := t.NewSet(Added, client.CtxBackup)
		err := c.call(t, uuid.New(), s.Copies[0], s.Shares[0])
		t.Want(c.name+" with an unknown ShadowCopySetId", err, want)
		t.Advance(s, Committed) // the set is untouched
	}
}

// checkNullSetID: GUID_NULL as ShadowCopySetId is E_INVALIDARG for every
// per-set method (§3.1.4: NULL arguments; §3.1.4.8 step 1 for Abort).
func checkNullSetID(t *T) {
	s := t.NewSet(Exposed, client.CtxBackup)
	for _, c := range []setCall{callAdd, callPrepare, callCommit, callExpose, callRecovery, callAbort, callGetMapping, callDelete} {
		t.Want(c.name+" with ShadowCopySetId GUID_NULL", c.call(t, uuid.Nil, s.Copies[0], s.Shares[0]), client.EInvalidArg)
	}
	t.Mapping(s, 0) // still Exposed
}

// refused lists the methods each state refuses with BAD_STATE (digest §10,
// from §3.1.4.4-§3.1.4.13).
var refused = map[State][]setCall{
	Started:   {callPrepare, callCommit, callExpose, callGetMapping, callRecovery, callDelete},
	Added:     {callExpose, callGetMapping, callRecovery, callDelete},
	Committed: {callAdd, callPrepare, callCommit, callGetMapping, callRecovery, callDelete},
	Exposed:   {callAdd, callPrepare, callCommit, callExpose},
	Recovered: {callAdd, callPrepare, callCommit, callExpose, callGetMapping, callRecovery},
}

// refusedIn drives a set to st, expects BAD_STATE from every method that
// st refuses, then checks that the set is still in st: the refusals
// changed nothing.
func refusedIn(st State) func(*T) {
	return func(t *T) {
		s := t.NewSet(st, client.CtxBackup)
		sc, share := uuid.New(), t.Share(0)
		if len(s.Copies) > 0 {
			sc, share = s.Copies[0], s.Shares[0]
		}
		for _, c := range refused[st] {
			t.Want(fmt.Sprintf("%s on a set %s", c.name, st), c.call(t, s.ID, sc, share), client.EBadState)
		}
		switch st {
		case Started:
			t.Add(s.ID, t.Share(0))
		case Added:
			t.OK("CommitShadowCopySet after the refusals", t.c.CommitShadowCopySet(t.ctx, s.ID, commitTimeout))
		case Committed:
			t.OK("ExposeShadowCopySet after the refusals", t.c.ExposeShadowCopySet(t.ctx, s.ID, exposeTimeout))
		case Exposed:
			t.Mapping(s, 0)
			t.OK("RecoveryCompleteShadowCopySet after the refusals", t.c.RecoveryCompleteShadowCopySet(t.ctx, s.ID))
		case Recovered:
			t.DeleteAll(s)
		}
	}
}

// state/creation-in-progress-refuses: a Commit that times out leaves the
// set CreationInProgress (§3.1.4.5: FSSAGENT_E_TIMEOUT); that state
// refuses everything but Commit, and a repeated Commit finishes the job.
// Skipped when the server commits within 1 ms.
func checkCreationInProgress(t *T) {
	s := t.NewSet(Added, client.CtxBackup, t.Share(0), t.Share(1))
	err := t.c.CommitShadowCopySet(t.ctx, s.ID, time.Millisecond)
	if err == nil {
		t.Skipf("the server committed within 1 ms: CreationInProgress cannot be observed")
	}
	t.Want("CommitShadowCopySet with a 1 ms timeout (S_OK or FSSAGENT_E_TIMEOUT)", err, client.ETimeout)
	for _, c := range []setCall{callAdd, callPrepare, callExpose, callGetMapping, callRecovery, callDelete} {
		t.Want(c.name+" on a set CreationInProgress", c.call(t, s.ID, s.Copies[0], s.Shares[0]), client.EBadState)
	}
	t.OK("CommitShadowCopySet repeated after FSSAGENT_E_TIMEOUT", t.c.CommitShadowCopySet(t.ctx, s.ID, commitTimeout))
	s.State = Committed
	t.Advance(s, Exposed)
	t.Mapping(s, 1)
}

// commit/repeat: Commit of a Committed set is BAD_STATE; the set stays
// Committed.
func checkCommitRepeat(t *T) {
	s := t.NewSet(Committed, client.CtxBackup)
	t.Want("second CommitShadowCopySet", t.c.CommitShadowCopySet(t.ctx, s.ID, commitTimeout), client.EBadState)
	t.Advance(s, Exposed)
}

// commit/without-prepare: Prepare is not required before Commit (clients
// before Windows 8 never call it).
func checkCommitWithoutPrepare(t *T) {
	s := t.NewSet(Added, client.CtxBackup)
	t.OK("CommitShadowCopySet without PrepareShadowCopySet", t.c.CommitShadowCopySet(t.ctx, s.ID, commitTimeout))
	s.State = Committed
	t.Advance(s, Exposed)
	t.WantShadowCopied("after Commit", s.Shares[0], true)
}

// prepare/repeat: Prepare leaves the set Added (§3.1.4.13), so it may be
// repeated.
func checkPrepareRepeat(t *T) {
	s := t.NewSet(Added, client.CtxBackup)
	for i := 1; i <= 2; i++ {
		t.OK(fmt.Sprintf("PrepareShadowCopySet #%d", i), t.c.PrepareShadowCopySet(t.ctx, s.ID, prepareTimeout))
	}
	t.Add(s.ID, t.Share(1)) // still Added: more shares may come
	t.Advance(s, Committed)
}

// abortIn: Abort works in every state (§3.1.4.8 has no state check),
// returns 0, deletes the set, its snapshots and shares, and ends the
// sequence.
func abortIn(st State) func(*T) {
	return func(t *T) {
		s := t.NewSet(st, client.CtxBackup)
		t.OK(fmt.Sprintf("AbortShadowCopySet of a set %s", st), t.c.AbortShadowCopySet(t.ctx, s.ID))
		t.WantGone("after Abort", s)
		t.WantShadowCopied("after Abort", t.Share(0), false)
		t.WantNoContext("after Abort")
	}
}

// abort/creation-in-progress: Abort of a set whose Commit timed out
// (CreationInProgress) deletes it and whatever the commit took (§3.1.4.8
// has no state check). Skipped when the server commits within 1 ms.
func checkAbortCreationInProgress(t *T) {
	s := t.NewSet(Added, client.CtxBackup, t.Share(0), t.Share(1))
	err := t.c.CommitShadowCopySet(t.ctx, s.ID, time.Millisecond)
	if err == nil {
		t.Skipf("the server committed within 1 ms: CreationInProgress cannot be observed")
	}
	t.Want("CommitShadowCopySet with a 1 ms timeout (S_OK or FSSAGENT_E_TIMEOUT)", err, client.ETimeout)
	t.OK("AbortShadowCopySet of a set CreationInProgress", t.c.AbortShadowCopySet(t.ctx, s.ID))
	t.WantGone("after Abort", s)
	t.WantShadowCopied("after Abort", t.Share(0), false)
	t.WantShadowCopied("after Abort", t.Share(1), false)
	t.WantNoContext("after Abort")
}
