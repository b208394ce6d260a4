package conformance

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/fsrvpd/fsrvpd/client"
)

// mapping/level-checked-first: Level≠1 is E_INVALIDARG before anything
// else (§3.1.4.11 step 1): with an unknown set, a set in the wrong state
// and a valid mapping alike.
func checkMappingLevel(t *T) {
	s := t.NewSet(Exposed, client.CtxBackup)
	for _, level := range []uint32{0, 2, 0xFFFFFFFF} {
		_, err := t.c.GetShareMapping(t.ctx, uuid.New(), uuid.New(), s.Shares[0], level)
		t.Want(fmt.Sprintf("GetShareMapping(Level %d) of an unknown set", level), err, client.EInvalidArg)
		_, err = t.c.GetShareMapping(t.ctx, s.Copies[0], s.ID, s.Shares[0], level)
		t.Want(fmt.Sprintf("GetShareMapping(Level %d) of a valid mapping", level), err, client.EInvalidArg)
	}
	t.Advance(s, Recovered)
	_, err := t.c.GetShareMapping(t.ctx, s.Copies[0], s.ID, s.Shares[0], 2)
	t.Want("GetShareMapping(Level 2) of a Recovered set (BAD_STATE comes later)", err, client.EInvalidArg)
}

// mapping/unknown-shadow-copy: an unknown ShadowCopyId in an Exposed set
// is E_INVALIDARG (step 5), and so is a shadow copy of another volume.
func checkMappingUnknownSC(t *T) {
	s := t.NewSet(Exposed, client.CtxBackup, t.Share(0), t.Share(1))
	_, err := t.c.GetShareMapping(t.ctx, uuid.New(), s.ID, s.Shares[0], client.ShareMappingLevel1)
	t.Want("GetShareMapping with an unknown ShadowCopyId", err, client.EInvalidArg)
	_, err = t.c.GetShareMapping(t.ctx, s.Copies[1], s.ID, s.Shares[0], client.ShareMappingLevel1)
	t.Want("GetShareMapping of the first share with the second share's ShadowCopyId", err, client.EInvalidArg)
}

// mapping/share-not-in-set: a share that exists but is not mapped in the
// shadow copy, or does not exist, is E_INVALIDARG (step 6).
func checkMappingShareNotInSet(t *T) {
	s := t.NewSet(Exposed, client.CtxBackup)
	for _, share := range []string{t.Share(1), t.MissingShare()} {
		_, err := t.c.GetShareMapping(t.ctx, s.Copies[0], s.ID, share, client.ShareMappingLevel1)
		t.Want(fmt.Sprintf("GetShareMapping(%s), not in the set", share), err, client.EInvalidArg)
	}
}

// mapping/null-arguments: GUID_NULL ShadowCopyId or an empty ShareName is
// E_INVALIDARG.
func checkMappingNullArgs(t *T) {
	s := t.NewSet(Exposed, client.CtxBackup)
	_, err := t.c.GetShareMapping(t.ctx, uuid.Nil, s.ID, s.Shares[0], client.ShareMappingLevel1)
	t.Want("GetShareMapping with ShadowCopyId GUID_NULL", err, client.EInvalidArg)
	_, err = t.c.GetShareMapping(t.ctx, s.Copies[0], s.ID, "", client.ShareMappingLevel1)
	t.Want(`GetShareMapping with ShareName ""`, err, client.EInvalidArg)
}

// mapping/fields: FSSAGENT_SHARE_MAPPING_1 of each share of a two-volume
// set (§2.2.1.1, §3.1.4.11 step 7).
func checkMappingFields(t *T) {
	before := time.Now()
	s := t.NewSet(Exposed, client.CtxBackup, t.Share(0), t.Share(1))
	for i := range s.Shares {
		m := t.Mapping(s, i)
		Equal(t, "ShadowCopySetId", m.ShadowCopySetID, s.ID)
		Equal(t, "ShadowCopyId", m.ShadowCopyID, s.Copies[i])
		Equal(t, "ShareNameUNC", m.ShareUNC, s.Shares[i])
		wantExposedName(t, m.ExposedName, t.ShareName(i), s.Copies[i])
		low, high := before.Add(-time.Minute), time.Now().Add(time.Minute)
		t.Truef(!m.CreationTime.Before(low) && !m.CreationTime.After(high),
			fmt.Sprintf("between %s and %s", low.UTC().Format(time.RFC3339), high.UTC().Format(time.RFC3339)),
			m.CreationTime.UTC().Format(time.RFC3339Nano), "CreationTimestamp of %s (the time of the Add call)", s.Shares[i])
	}
	t.Truef(s.Copies[0] != s.Copies[1], "two ShadowCopyIds", "one", "shares on different volumes got the same shadow copy")
	first, again := t.Mapping(s, 0), t.Mapping(s, 0) // GetShareMapping may be repeated
	Equal(t, "a repeated GetShareMapping", again, first)
}

// delete/unknown-shadow-copy: §3.1.4.12 step 4, OBJECT_NOT_FOUND, in an
// Exposed and in a Recovered set.
func checkDeleteUnknownSC(t *T) {
	s := t.NewSet(Exposed, client.CtxBackup)
	t.Want("DeleteShareMapping with an unknown ShadowCopyId (Exposed set)",
		t.c.DeleteShareMapping(t.ctx, s.ID, uuid.New(), s.Shares[0]), client.EObjectNotFound)
	t.Advance(s, Recovered)
	t.Want("DeleteShareMapping with an unknown ShadowCopyId (Recovered set)",
		t.c.DeleteShareMapping(t.ctx, s.ID, uuid.New(), s.Shares[0]), client.EObjectNotFound)
	t.DeleteAll(s)
}

// delete/unmapped-share: §3.1.4.12 step 5, a share not mapped in the
// shadow copy (existing or not) is OBJECT_NOT_FOUND.
func checkDeleteUnmapped(t *T) {
	s := t.NewSet(Recovered, client.CtxBackup)
	for _, share := range []string{t.Share(1), t.MissingShare()} {
		t.Want(fmt.Sprintf("DeleteShareMapping(%s), not mapped", share),
			t.c.DeleteShareMapping(t.ctx, s.ID, s.Copies[0], share), client.EObjectNotFound)
	}
	t.DeleteAll(s)
}

// delete/null-arguments: GUID_NULL ShadowCopyId or an empty ShareName is
// E_INVALIDARG (§3.1.4.12 step 1).
func checkDeleteNullArgs(t *T) {
	s := t.NewSet(Recovered, client.CtxBackup)
	t.Want("DeleteShareMapping with ShadowCopyId GUID_NULL", t.c.DeleteShareMapping(t.ctx, s.ID, uuid.Nil, s.Shares[0]), client.EInvalidArg)
	t.Want(`DeleteShareMapping with ShareName ""`, t.c.DeleteShareMapping(t.ctx, s.ID, s.Copies[0], ""), client.EInvalidArg)
	t.DeleteAll(s)
}

// delete/last-mapping-removes-set: deleting the last mapping removes the
// shadow copy and the set (steps 7-8); a second delete is OBJECT_NOT_FOUND.
func checkDeleteLast(t *T) {
	s := t.NewSet(Recovered, client.CtxBackup)
	t.DeleteAll(s)
	t.Want("second DeleteShareMapping of the same mapping",
		t.c.DeleteShareMapping(t.ctx, s.ID, s.Copies[0], s.Shares[0]), client.EObjectNotFound)
	t.WantGone("after deleting the last mapping", s)
	t.WantShadowCopied("after deleting the last mapping", s.Shares[0], false)
}

// delete/one-of-two: deleting one shadow copy's only mapping removes that
// shadow copy; the set lives on until the other goes.
func checkDeleteOneOfTwo(t *T) {
	s := t.NewSet(Recovered, client.CtxBackup, t.Share(0), t.Share(1))
	t.OK("DeleteShareMapping of the first share", t.c.DeleteShareMapping(t.ctx, s.ID, s.Copies[0], s.Shares[0]))
	t.Want("DeleteShareMapping of the first share again (its shadow copy is gone)",
		t.c.DeleteShareMapping(t.ctx, s.ID, s.Copies[0], s.Shares[0]), client.EObjectNotFound)
	t.WantShadowCopied("the deleted share", s.Shares[0], false)
	t.WantShadowCopied("the remaining share", s.Shares[1], true)
	t.OK("DeleteShareMapping of the second share", t.c.DeleteShareMapping(t.ctx, s.ID, s.Copies[1], s.Shares[1]))
	t.WantGone("after deleting both mappings", s)
}

// delete/exposed-set: DeleteShareMapping is allowed on an Exposed set too
// (step 3), and removes it with its last mapping.
func checkDeleteExposed(t *T) {
	s := t.NewSet(Exposed, client.CtxBackup)
	t.DeleteAll(s)
	t.WantGone("after deleting the only mapping of an Exposed set", s)
}

// path/supported: every target share is supported, with an owner name
// (§3.1.4.9 step 3).
func checkPathSupported(t *T) {
	shares := append([]string(nil), t.target.Shares...)
	if t.target.SameVolumeShare != "" {
		shares = append(shares, t.target.SameVolumeShare)
	}
	for _, name := range shares {
		ok, owner, err := t.c.IsPathSupported(t.ctx, t.UNC(name))
		t.OK("IsPathSupported("+t.UNC(name)+")", err)
		Equal(t, "SupportedByThisProvider of "+name, ok, true)
		t.Truef(owner != "", "a machine name", `""`, "OwnerMachineName of %s", name)
	}
}

// path/supported-missing: OBJECT_NOT_FOUND (§3.1.4.9 step 1).
func checkPathSupportedMissing(t *T) {
	_, _, err := t.c.IsPathSupported(t.ctx, t.MissingShare())
	t.Want("IsPathSupported(missing share)", err, client.EObjectNotFound)
}

// path/supported-foreign-host: the host in ShareName is not the server's
// business (and must never be contacted, CVE-2022-30154): the answer is
// about our share, and comes at once.
func checkPathSupportedForeignHost(t *T) {
	for _, unc := range []string{`\\198.51.100.7\` + t.ShareName(0) + `\`, `\\fsrvp-conformance.invalid\` + t.ShareName(0)} {
		start := time.Now()
		ok, _, err := t.c.IsPathSupported(t.ctx, unc)
		t.OK("IsPathSupported("+unc+")", err)
		Equal(t, "SupportedByThisProvider of "+unc, ok, true)
		took := time.Since(start)
		t.Truef(took < 5*time.Second, "an answer within 5 s", took.String(), "IsPathSupported(%s) was slow: was the host contacted?", unc)
	}
}

// path/invalid-names: empty or non-UNC ShareName is E_INVALIDARG for
// IsPathSupported and IsPathShadowCopied.
func checkPathInvalidNames(t *T) {
	for _, bad := range []string{"", t.ShareName(0), `\\` + t.target.shareHost()} {
		_, _, err := t.c.IsPathSupported(t.ctx, bad)
		t.Want(fmt.Sprintf("IsPathSupported(%q)", bad), err, client.EInvalidArg)
		_, _, err = t.c.IsPathShadowCopied(t.ctx, bad)
		t.Want(fmt.Sprintf("IsPathShadowCopied(%q)", bad), err, client.EInvalidArg)
	}
}

// path/shadow-copied-missing: OBJECT_NOT_FOUND (§3.1.4.10 step 1).
func checkShadowCopiedMissing(t *T) {
	_, _, err := t.c.IsPathShadowCopied(t.ctx, t.MissingShare())
	t.Want("IsPathShadowCopied(missing share)", err, client.EObjectNotFound)
}

// path/shadow-copied-lifecycle: ShadowCopyPresent is TRUE exactly while a
// Committed, Exposed or Recovered set holds a shadow copy of the share's
// volume (§3.1.4.10 step 3).
func checkShadowCopiedLifecycle(t *T) {
	t.WantShadowCopied("before any set", t.Share(0), false)
	t.WantShadowCopied("before any set", t.Share(1), false)
	s := t.NewSet(Added, client.CtxBackup)
	t.WantShadowCopied("set Added", t.Share(0), false)
	for _, st := range []State{Committed, Exposed, Recovered} {
		t.Advance(s, st)
		t.WantShadowCopied("set "+st.String(), t.Share(0), true)
		t.WantShadowCopied("other volume, set "+st.String(), t.Share(1), false)
		if t.target.SameVolumeShare != "" {
			t.WantShadowCopied("share on the same volume, set "+st.String(), t.UNC(t.target.SameVolumeShare), true)
		}
	}
	t.DeleteAll(s)
	t.WantShadowCopied("after DeleteShareMapping", t.Share(0), false)
}
