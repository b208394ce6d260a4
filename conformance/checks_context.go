package conformance

import (
	"fmt"

	"github.com/google/uuid"

	"github.com/fsrvpd/fsrvpd/client"
)

// validContexts are the 12 valid SetContext values (§2.2.2.2): the four
// base contexts, alone or with ATTR_AUTO_RECOVERY or ATTR_NO_AUTO_RECOVERY.
var validContexts = func() []uint32 {
	var out []uint32
	for _, base := range []uint32{client.CtxBackup, client.CtxFileShareBackup, client.CtxNASRollback, client.CtxAppRollback} {
		out = append(out, base, base|client.AttrAutoRecovery, base|client.AttrNoAutoRecovery)
	}
	return out
}()

// invalidContexts are values that are none of the 12.
var invalidContexts = []uint32{
	0x00000001, // ATTR_PERSISTENT alone
	0x00000003, // PERSISTENT|NO_AUTO_RECOVERY
	0x00000008, // NO_AUTO_RELEASE alone
	0x00000011, // NO_WRITERS|PERSISTENT
	0x00000018, // NO_WRITERS|NO_AUTO_RELEASE
	0x00400002, // AUTO_RECOVERY and NO_AUTO_RECOVERY together
	0x0040001B, // NAS_ROLLBACK with both recovery attributes
	0x00400001, // AUTO_RECOVERY with ATTR_PERSISTENT alone
	0x04000010, // FILE_SHARE_BACKUP | Samba's ATTR_FILE_SHARE
	0x00000020,
	0x80000000,
	0xFFFFFFFF,
}

// version/supported: §3.1.4.1, only version 1 exists.
func checkVersion(t *T) {
	min, max, err := t.c.GetSupportedVersion(t.ctx)
	t.OK("GetSupportedVersion", err)
	Equal(t, "MinVersion", min, uint32(1))
	Equal(t, "MaxVersion", max, uint32(1))
}

// context/valid-values: every valid context is accepted and usable.
func checkContextValid(t *T) {
	for _, v := range validContexts {
		t.SetContext(v)
		id := t.Start()
		t.OK(fmt.Sprintf("AbortShadowCopySet (context 0x%08X)", v), t.c.AbortShadowCopySet(t.ctx, id))
	}
}

// context/invalid-values: anything else is FSRVP_E_UNSUPPORTED_CONTEXT and
// sets no context.
func checkContextInvalid(t *T) {
	for _, v := range invalidContexts {
		t.Want(fmt.Sprintf("SetContext(0x%08X)", v), t.c.SetContext(t.ctx, v), client.EUnsupportedContext)
	}
	t.WantNoContext("after invalid SetContext calls only")
}

// context/invalid-keeps-running-set: the context is validated (step 1)
// before the same-client purge (step 3), so an invalid value deletes
// nothing.
func checkContextInvalidKeepsSet(t *T) {
	s := t.NewSet(Added, client.CtxBackup)
	t.Want("SetContext(0xFFFFFFFF) during a sequence", t.c.SetContext(t.ctx, 0xFFFFFFFF), client.EUnsupportedContext)
	t.Add(s.ID, t.Share(1))
	t.Advance(s, Committed)
}

// context/retry-purges-set: SetContext again from the same client deletes
// the sets not Recovered (§3.1.4.2 step 3b) and starts a fresh context.
func checkContextRetryPurges(t *T) {
	s := t.NewSet(Exposed, client.CtxBackup)
	t.WantShadowCopied("before the retry", s.Shares[0], true)
	t.SetContext(client.CtxBackup)
	t.WantGone("after a SetContext retry", s)
	t.WantShadowCopied("after the retry", s.Shares[0], false)
	id := t.Start() // no set in creation is left to block it
	t.Add(id, t.Share(0))
}

// context/retry-keeps-recovered-set: the purge spares Recovered sets.
func checkContextRetryKeepsRecovered(t *T) {
	done := t.NewSet(Recovered, client.CtxBackup)
	t.SetContext(client.CtxBackup)
	t.Start()
	t.SetContext(client.CtxBackup) // retry: deletes the Started set only
	t.DeleteAll(done)
	t.WantGone("after deleting the mappings", done)
}

// context/retry-limit: after the limit of consecutive retries, SetContext
// answers IN_PROGRESS with the state already cleared, and the next one
// succeeds (§3.1.4.2, note <5>).
func checkContextRetryLimit(t *T) {
	limit := t.target.retryLimit()
	t.SetContext(client.CtxBackup) // ContextSet was FALSE: the retry count is reset
	for i := 1; i <= limit; i++ {
		t.OK(fmt.Sprintf("SetContext retry %d of %d allowed", i, limit), t.c.SetContext(t.ctx, client.CtxBackup))
	}
	id := t.Start()
	t.Add(id, t.Share(0))
	t.Want(fmt.Sprintf("SetContext retry %d (over the limit)", limit+1), t.c.SetContext(t.ctx, client.CtxBackup), client.EShadowCopySetInProgress)
	_, err := t.c.AddToShadowCopySet(t.ctx, uuid.New(), id, t.Share(1))
	t.Want("Add to the set started before the refused retry (purged)", err, client.EShadowCopySetIDMismatch)
	t.WantNoContext("after the refused retry")
	t.OK("SetContext after the refused retry", t.c.SetContext(t.ctx, client.CtxBackup))
	t.OK("SetContext retry 1 after the reset", t.c.SetContext(t.ctx, client.CtxBackup))
}

// context/other-client-in-progress: while one client's sequence runs,
// another client's SetContext and Start are refused and change nothing.
func checkContextOtherClient(t *T) {
	b := t.Second()
	t.SetContext(client.CtxBackup)
	t.Want("SetContext from a second client while the first holds the context", b.SetContext(t.ctx, client.CtxBackup), client.EShadowCopySetInProgress)
	s := t.NewSet(Added, client.CtxBackup) // a retry by the first client: still its context
	id, err := b.StartShadowCopySet(t.ctx, uuid.New())
	if err == nil {
		t.Track(id)
	}
	t.Want("StartShadowCopySet from the second client while a set is in creation", err, client.EShadowCopySetInProgress)
	t.Want("SetContext from the second client with a set in creation", b.SetContext(t.ctx, client.CtxBackup), client.EShadowCopySetInProgress)
	t.Add(s.ID, t.Share(1)) // the first client's set is untouched
	t.OK("AbortShadowCopySet by the first client", t.c.AbortShadowCopySet(t.ctx, s.ID))
	t.OK("SetContext from the second client once the sequence ended", b.SetContext(t.ctx, client.CtxBackup))
	t.StartWith(b)
	t.Want("SetContext from the first client while the second holds the context", t.c.SetContext(t.ctx, client.CtxBackup), client.EShadowCopySetInProgress)
}

// start/without-context: §3.1.4.3, ContextSet FALSE → BAD_STATE.
func checkStartNoContext(t *T) { t.WantNoContext("with no SetContext") }

// start/null-client-id: GUID_NULL → E_INVALIDARG (note <7>), checked before
// the context; the refused call creates nothing.
func checkStartNullID(t *T) {
	_, err := t.c.StartShadowCopySet(t.ctx, uuid.Nil)
	t.Want("StartShadowCopySet(GUID_NULL) without a context", err, client.EInvalidArg)
	t.SetContext(client.CtxBackup)
	id, err := t.c.StartShadowCopySet(t.ctx, uuid.Nil)
	if err == nil {
		t.Track(id)
	}
	t.Want("StartShadowCopySet(GUID_NULL) with a context", err, client.EInvalidArg)
	t.Start()
}

// start/in-progress-each-state: only one set may be in creation (§3.1.4.3
// step 3): a set Started, Added, Committed or Exposed blocks Start.
func checkStartInProgress(t *T) {
	for _, st := range []State{Started, Added, Committed, Exposed} {
		s := t.NewSet(st, client.CtxBackup)
		id, err := t.c.StartShadowCopySet(t.ctx, uuid.New())
		if err == nil {
			t.Track(id)
		}
		t.Want(fmt.Sprintf("second StartShadowCopySet with a set %s", st), err, client.EShadowCopySetInProgress)
		t.OK("AbortShadowCopySet", t.c.AbortShadowCopySet(t.ctx, s.ID))
	}
}

// start/after-recovered: a Recovered set ends the sequence and blocks
// nothing.
func checkStartAfterRecovered(t *T) {
	s := t.NewSet(Recovered, client.CtxBackup)
	t.WantNoContext("after RecoveryCompleteShadowCopySet")
	t.SetContext(client.CtxBackup)
	id := t.Start()
	t.Truef(id != s.ID, "a new ShadowCopySetId", id.String(), "StartShadowCopySet after a Recovered set returned that set's id")
	t.WantShadowCopied("the Recovered set", s.Shares[0], true)
}
