package conformance

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/fsrvpd/fsrvpd/client"
)

// happy/one-share: the client sequence of §4 (and §3.2.4.2) for one share,
// then the backup cleanup: DeleteShareMapping removes everything.
func checkHappyOneShare(t *T) {
	share := t.Share(0)
	ok, owner, err := t.c.IsPathSupported(t.ctx, share)
	t.OK("IsPathSupported", err)
	t.Truef(ok && owner != "", "TRUE and an owner", fmt.Sprintf("%v, %q", ok, owner), "IsPathSupported(%s)", share)
	_, _, err = t.c.GetSupportedVersion(t.ctx)
	t.OK("GetSupportedVersion", err)
	s := t.NewSet(Exposed, client.CtxBackup, share)
	m := t.Mapping(s, 0)
	wantExposedName(t, m.ExposedName, t.ShareName(0), s.Copies[0])
	t.Advance(s, Recovered)
	t.WantNoContext("after RecoveryCompleteShadowCopySet (the sequence ends)")
	_, _, err = t.c.GetSupportedVersion(t.ctx)
	t.OK("GetSupportedVersion before DeleteShareMapping", err)
	t.DeleteAll(s)
	t.WantGone("after the cleanup", s)
}

// happy/two-volumes: one set with shares on two volumes: two shadow
// copies, both exposed.
func checkHappyTwoVolumes(t *T) {
	s := t.NewSet(Exposed, client.CtxBackup, t.Share(0), t.Share(1))
	t.Truef(s.Copies[0] != s.Copies[1], "two ShadowCopyIds", "one", "AddToShadowCopySet for shares on different volumes")
	for i := range s.Shares {
		wantExposedName(t, t.Mapping(s, i).ExposedName, t.ShareName(i), s.Copies[i])
	}
	t.Advance(s, Recovered)
	t.DeleteAll(s)
	t.WantGone("after the cleanup", s)
}

// happy/same-volume-shares: two shares of one volume in a set share one
// shadow copy with two mappings; each mapping is exposed and deleted on
// its own. Skipped when the server rejects the second share.
func checkHappySameVolume(t *T) {
	s := t.NewSet(Added, client.CtxBackup, t.Share(0))
	other := t.UNC(t.target.SameVolumeShare)
	id, err := t.c.AddToShadowCopySet(t.ctx, uuid.New(), s.ID, other)
	if code, ok := codeOf(err); ok && code == client.EObjectAlreadyExists {
		t.Skipf("the server allows one share per volume in a set")
	}
	t.OK("Add("+other+"), same volume", err)
	s.Shares, s.Copies = append(s.Shares, other), append(s.Copies, id)
	t.Advance(s, Exposed)
	m0, m1 := t.Mapping(s, 0), t.Mapping(s, 1)
	wantExposedName(t, m0.ExposedName, t.ShareName(0), s.Copies[0])
	wantExposedName(t, m1.ExposedName, t.target.SameVolumeShare, s.Copies[0])
	t.OK("DeleteShareMapping of the first share", t.c.DeleteShareMapping(t.ctx, s.ID, s.Copies[0], s.Shares[0]))
	t.WantShadowCopied("after deleting one of two mappings of the shadow copy", other, true)
	Equal(t, "ShadowCopyShareName of the remaining mapping", t.Mapping(s, 1).ExposedName, m1.ExposedName)
	t.Advance(s, Recovered)
	t.OK("DeleteShareMapping of the second share", t.c.DeleteShareMapping(t.ctx, s.ID, s.Copies[1], s.Shares[1]))
	t.WantGone("after deleting both mappings", s)
	t.WantShadowCopied("after deleting both mappings", other, false)
}

// happyContext runs the whole sequence with context v on two volumes.
func happyContext(v uint32) func(*T) {
	return func(t *T) {
		s := t.NewSet(Exposed, v, t.Share(0), t.Share(1))
		for i := range s.Shares {
			wantExposedName(t, t.Mapping(s, i).ExposedName, t.ShareName(i), s.Copies[i])
		}
		t.Advance(s, Recovered)
		t.DeleteAll(s)
		t.WantGone("after the cleanup", s)
	}
}

// timerWait sleeps past the server's timer.
func (t *T) timerWait() {
	d := t.target.ServerTimer
	d += max(d/2, 500*time.Millisecond)
	t.Logf("waiting %s for the message sequence timer", d)
	select {
	case <-time.After(d):
	case <-t.ctx.Done():
		t.Fatalf("check timed out while waiting for the timer")
	}
}

// timer/context-expires: §3.1.5, expiry sets ContextSet to FALSE.
func checkTimerContext(t *T) {
	t.SetContext(client.CtxBackup)
	t.timerWait()
	t.WantNoContext("after the timer expired")
}

// timerDeletes: a set left in st is deleted at expiry (§3.1.5: every set
// not Recovered, Exposed included), with its shadow copies.
func timerDeletes(st State) func(*T) {
	return func(t *T) {
		s := t.NewSet(st, client.CtxBackup)
		t.timerWait()
		switch st {
		case Started:
			_, err := t.c.AddToShadowCopySet(t.ctx, uuid.New(), s.ID, t.Share(0))
			t.Want("Add to a set deleted by the timer", err, client.EShadowCopySetIDMismatch)
		case Added:
			t.Want("Commit of a set deleted by the timer", t.c.CommitShadowCopySet(t.ctx, s.ID, commitTimeout), client.EShadowCopySetIDMismatch)
		case Committed:
			t.Want("Expose of a set deleted by the timer", t.c.ExposeShadowCopySet(t.ctx, s.ID, exposeTimeout), client.EShadowCopySetIDMismatch)
		}
		t.WantGone("after the timer expired", s)
		t.WantShadowCopied("after the timer expired", t.Share(0), false)
		t.WantNoContext("after the timer expired")
	}
}

// timer/recovered-survives: expiry keeps Recovered sets.
func checkTimerRecovered(t *T) {
	s := t.NewSet(Recovered, client.CtxBackup)
	t.SetContext(client.CtxBackup) // a new sequence, left to expire
	t.timerWait()
	t.WantNoContext("after the timer expired")
	t.WantShadowCopied("Recovered set after the timer expired", s.Shares[0], true)
	t.DeleteAll(s)
	t.WantGone("after the cleanup", s)
}

// timer/restarted-by-calls: each successful call restarts the timer
// (§3.1.2): a sequence whose calls are less than a timer apart lives
// longer than one timer.
func checkTimerRestarted(t *T) {
	half := t.target.ServerTimer / 2
	pause := func() {
		select {
		case <-time.After(half):
		case <-t.ctx.Done():
			t.Fatalf("check timed out")
		}
	}
	t.SetContext(client.CtxBackup)
	pause()
	s := &Set{ID: t.Start(), State: Started}
	pause()
	s.Shares, s.Copies = []string{t.Share(0)}, []uuid.UUID{t.Add(s.ID, t.Share(0))}
	s.State = Added
	pause()
	t.OK("PrepareShadowCopySet", t.c.PrepareShadowCopySet(t.ctx, s.ID, prepareTimeout))
	pause()
	t.OK("CommitShadowCopySet", t.c.CommitShadowCopySet(t.ctx, s.ID, commitTimeout))
	s.State = Committed
	pause()
	t.Advance(s, Recovered)
}
