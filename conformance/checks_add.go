package conformance

import (
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/fsrvpd/fsrvpd/client"
)

// add/share-missing-before-set-id: §3.1.4.4 checks the share (step 1)
// before the set id (step 3): a missing share in an unknown set is
// OBJECT_NOT_FOUND, not SHADOWCOPYSET_ID_MISMATCH.
func checkAddMissingBeforeSetID(t *T) {
	_, err := t.c.AddToShadowCopySet(t.ctx, uuid.New(), uuid.New(), t.MissingShare())
	t.Want("Add(missing share) to an unknown set", err, client.EObjectNotFound)
}

// add/share-missing: a missing share in a valid set is OBJECT_NOT_FOUND,
// and the set stays Started.
func checkAddMissing(t *T) {
	s := t.NewSet(Started, client.CtxBackup)
	_, err := t.c.AddToShadowCopySet(t.ctx, uuid.New(), s.ID, t.MissingShare())
	t.Want("Add(missing share)", err, client.EObjectNotFound)
	t.Want("Prepare after the failed Add (set still Started)", t.c.PrepareShadowCopySet(t.ctx, s.ID, prepareTimeout), client.EBadState)
}

// add/unknown-set: an existing share in an unknown set is
// SHADOWCOPYSET_ID_MISMATCH.
func checkAddUnknownSet(t *T) {
	t.SetContext(client.CtxBackup)
	_, err := t.c.AddToShadowCopySet(t.ctx, uuid.New(), uuid.New(), t.Share(0))
	t.Want("Add(existing share) to an unknown set", err, client.EShadowCopySetIDMismatch)
}

// add/null-arguments: GUID_NULL set id or an empty ShareName is
// E_INVALIDARG (§3.1.4: NULL arguments), before the share and set checks.
func checkAddNullArgs(t *T) {
	s := t.NewSet(Started, client.CtxBackup)
	_, err := t.c.AddToShadowCopySet(t.ctx, uuid.New(), uuid.Nil, t.Share(0))
	t.Want("Add(share) with ShadowCopySetId GUID_NULL", err, client.EInvalidArg)
	_, err = t.c.AddToShadowCopySet(t.ctx, uuid.New(), uuid.Nil, t.MissingShare())
	t.Want("Add(missing share) with ShadowCopySetId GUID_NULL", err, client.EInvalidArg)
	_, err = t.c.AddToShadowCopySet(t.ctx, uuid.New(), s.ID, "")
	t.Want(`Add("") to a valid set`, err, client.EInvalidArg)
}

// add/non-unc: a ShareName that is not a UNC share name (§2.2.1: ShareName
// is `\\server\share`) is E_INVALIDARG.
func checkAddNonUNC(t *T) {
	s := t.NewSet(Started, client.CtxBackup)
	name := t.ShareName(0)
	for _, bad := range []string{name, `\` + name, `\\`, `\\` + t.target.shareHost(), `\\` + t.target.shareHost() + `\`, `\\\` + name} {
		_, err := t.c.AddToShadowCopySet(t.ctx, uuid.New(), s.ID, bad)
		t.Want(fmt.Sprintf("Add(%q)", bad), err, client.EInvalidArg)
	}
}

// add/after-commit: Add to a Committed set is BAD_STATE (step 4).
func checkAddAfterCommit(t *T) {
	s := t.NewSet(Committed, client.CtxBackup)
	_, err := t.c.AddToShadowCopySet(t.ctx, uuid.New(), s.ID, t.Share(1))
	t.Want("Add(second share) to a Committed set", err, client.EBadState)
}

// add/same-share-twice: the same share again, in any UNC spelling, is
// OBJECT_ALREADY_EXISTS (step 6) and leaves the set usable.
func checkAddTwice(t *T) {
	s := t.NewSet(Added, client.CtxBackup)
	name := t.ShareName(0)
	for _, again := range []string{s.Shares[0], `\\` + t.target.shareHost() + `\` + name, `\\198.51.100.7\` + strings.ToUpper(name) + `\`} {
		_, err := t.c.AddToShadowCopySet(t.ctx, uuid.New(), s.ID, again)
		t.Want(fmt.Sprintf("Add(%s) after Add(%s)", again, s.Shares[0]), err, client.EObjectAlreadyExists)
	}
	t.Advance(s, Exposed)
	Equal(t, "ShadowCopyId of the mapping", t.Mapping(s, 0).ShadowCopyID, s.Copies[0])
}

// uncVariant runs a whole sequence with the first share spelled as
// variant: Add accepts it (§3.1.4.4, the host is not checked and the rest
// of the path is ignored), GetShareMapping echoes it as ShareNameUNC and
// exposes the base share (§3.1.4.6), DeleteShareMapping finds it.
func uncVariant(variant func(t *T) string) func(*T) {
	return func(t *T) {
		share := variant(t)
		s := t.NewSet(Exposed, client.CtxBackup, share)
		m := t.Mapping(s, 0)
		Equal(t, "ShareNameUNC (echo of the ShareName sent to Add)", m.ShareUNC, share)
		wantExposedName(t, m.ExposedName, t.ShareName(0), s.Copies[0])
		t.DeleteAll(s)
		t.WantGone("after deleting the only mapping", s)
	}
}

func uncTrailing(t *T) string   { return `\\` + t.target.shareHost() + `\` + t.ShareName(0) + `\` }
func uncNoTrailing(t *T) string { return `\\` + t.target.shareHost() + `\` + t.ShareName(0) }

// uncForeignHost names a TEST-NET-2 address: a server must not contact it.
func uncForeignHost(t *T) string { return `\\198.51.100.7\` + t.ShareName(0) + `\` }
func uncUpper(t *T) string {
	return `\\` + t.target.shareHost() + `\` + strings.ToUpper(t.ShareName(0)) + `\`
}
func uncExtraPath(t *T) string {
	return `\\` + t.target.shareHost() + `\` + t.ShareName(0) + `\no\such\dir\`
}

// wantExposedName checks an exposed share name: `\\<host>\<base>@{<scid>}`
// (§3.1.4.6; host and GUID case are free, share names are
// case-insensitive).
func wantExposedName(t *T, got, base string, sc uuid.UUID) {
	t.Helper()
	want := `\\<server>\` + base + "@{" + sc.String() + "}"
	if !strings.HasPrefix(got, `\\`) {
		t.FailNow(want, got, "ShadowCopyShareName is not a UNC name")
	}
	host, name, ok := strings.Cut(got[2:], `\`)
	if !ok || host == "" || strings.Contains(name, `\`) {
		t.FailNow(want, got, "ShadowCopyShareName is not \\\\host\\share")
	}
	b, rest, ok := strings.Cut(name, "@{")
	if !ok || !strings.EqualFold(b, base) || !strings.HasSuffix(rest, "}") || !sameGUID(strings.TrimSuffix(rest, "}"), sc) {
		t.FailNow(want, got, "ShadowCopyShareName")
	}
}

// add/same-volume-share: a second share on a volume already in the set
// either joins that volume's shadow copy (its id is returned, as Windows
// does) or is OBJECT_ALREADY_EXISTS (the literal §3.1.4.4 step 6); nothing
// else.
func checkAddSameVolume(t *T) {
	s := t.NewSet(Added, client.CtxBackup)
	other := t.UNC(t.target.SameVolumeShare)
	id, err := t.c.AddToShadowCopySet(t.ctx, uuid.New(), s.ID, other)
	if code, ok := codeOf(err); ok && code == client.EObjectAlreadyExists {
		t.Logf("server rejects a second share on a volume in the set (ALREADY_EXISTS)")
		t.Advance(s, Committed)
		return
	}
	t.OK(fmt.Sprintf("Add(%s), same volume as %s (or FSRVP_E_OBJECT_ALREADY_EXISTS)", other, s.Shares[0]), err)
	Equal(t, "ShadowCopyId of a share on a volume already in the set", id, s.Copies[0])
}
