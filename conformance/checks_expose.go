package conformance

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/fsrvpd/fsrvpd/client"
)

// Exposure checks: what an SMB client sees of an exposed shadow copy
// (§3.1.4.6: a share <base>@{ShadowCopyId} with the base share's
// permissions, writable only with ATTR_AUTO_RECOVERY until
// RecoveryComplete, §3.1.4.7; removed with its mapping, §3.1.4.8,
// §3.1.4.12, §3.1.5).

// bareShare strips the host of a UNC share name: \\HOST\share → share.
func bareShare(unc string) string {
	if i := strings.LastIndexByte(unc, '\\'); i >= 0 {
		return unc[i+1:]
	}
	return unc
}

// uncShare is the share part of a UNC name: \\host\share\rest → share.
func uncShare(unc string) string {
	_, rest, _ := strings.Cut(strings.TrimPrefix(unc, `\\`), `\`)
	name, _, _ := strings.Cut(rest, `\`)
	return name
}

// markerName is a file name no other run uses.
func markerName(what string) string {
	return "fsrvp-conformance-" + what + "-" + uuid.NewString()[:8] + ".txt"
}

// PutFile writes name in the base share over SMB, expecting success, and
// removes it at cleanup.
func (t *T) PutFile(share, name, data string) {
	t.Helper()
	f := t.Files()
	if err := f.WriteFile(t.ctx, share, name, []byte(data)); err != nil {
		t.FailNow("the file written", err.Error(), fmt.Sprintf("writing %s on the base share %s over SMB", name, share))
	}
	t.Cleanup(func() { f.Remove(t.ctx, share, name) })
}

// WantFile checks that name in share reads as data.
func (t *T) WantFile(what, share, name, data string) {
	t.Helper()
	got, err := t.Files().ReadFile(t.ctx, share, name)
	if err != nil {
		t.FailNow(fmt.Sprintf("%q", data), "error: "+err.Error(), fmt.Sprintf("%s: reading %s on %s", what, name, share))
	}
	if string(got) != data {
		t.FailNow(fmt.Sprintf("%q", data), fmt.Sprintf("%q", got), fmt.Sprintf("%s: content of %s on %s", what, name, share))
	}
}

// Exposed is the bare name of the exposed share of s.Shares[i], from
// GetShareMapping. A bare ShadowCopyShareName (Samba's) is taken as it
// is: the exposure checks are about what SMB clients see, and
// mapping/fields checks the name's form.
func (t *T) Exposed(s *Set, i int) string {
	t.Helper()
	m := t.Mapping(s, i)
	name := m.ExposedName
	if !strings.HasPrefix(name, `\\`) {
		t.Logf("ShadowCopyShareName %q is not a UNC name (see mapping/fields); using it as the share name", name)
		name = `\\server\` + name
	}
	wantExposedName(t, name, uncShare(s.Shares[i]), s.Copies[i])
	return bareShare(name)
}

// wantWritable checks whether a new file can be created in share.
func (t *T) wantWritable(what, share string, want bool) {
	t.Helper()
	f := t.Files()
	name := markerName("write")
	err := f.WriteFile(t.ctx, share, name, []byte("written through the exposed share"))
	if err == nil {
		f.Remove(t.ctx, share, name)
	}
	switch {
	case want && err != nil:
		t.FailNow("the write succeeds", "refused: "+err.Error(), what+": creating a file on "+share)
	case !want && err == nil:
		t.FailNow("the write is refused", "the file was created", what+": creating a file on "+share)
	}
}

// wantShareGone checks that share can no longer be connected nor is
// listed.
func (t *T) wantShareGone(what, share string) {
	t.Helper()
	f := t.Files()
	if err := f.Connect(t.ctx, share); err == nil {
		t.FailNow("tree connect fails (share removed)", "connected", what+": tree connect to "+share)
	}
	names, err := f.ShareNames(t.ctx)
	if err != nil {
		t.FailNow("the share list", err.Error(), what+": NetShareEnum")
	}
	if slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, share) }) {
		t.FailNow(share+" not listed", "listed", what+": NetShareEnum")
	}
}

// wantShareThere checks that share can be connected and is listed.
func (t *T) wantShareThere(what, share string) {
	t.Helper()
	f := t.Files()
	if err := f.Connect(t.ctx, share); err != nil {
		t.FailNow("tree connect succeeds", err.Error(), what+": tree connect to "+share)
	}
	names, err := f.ShareNames(t.ctx)
	if err != nil {
		t.FailNow("the share list", err.Error(), what+": NetShareEnum")
	}
	if !slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, share) }) {
		t.FailNow(share+" listed", strings.Join(names, ", "), what+": NetShareEnum")
	}
}

// expose/point-in-time: the exposed share shows the share as it was at
// Commit (§3.1.4.5 step 4: one point in time for the whole set): a file
// changed after Commit keeps its old content, one created after Commit is
// absent, on both volumes of the set.
func checkExposePointInTime(t *T) {
	name, later := markerName("pit"), markerName("later")
	f := t.Files()
	for i := range 2 {
		t.PutFile(t.ShareName(i), name, "before commit "+t.ShareName(i))
	}
	s := t.NewSet(Committed, client.CtxBackup, t.Share(0), t.Share(1))
	for i := range 2 {
		if err := f.WriteFile(t.ctx, t.ShareName(i), name, []byte("after commit")); err != nil {
			t.Fatalf("rewriting %s on %s after Commit: %v", name, t.ShareName(i), err)
		}
		t.PutFile(t.ShareName(i), later, "created after commit")
	}
	t.Advance(s, Exposed)
	exps := []string{t.Exposed(s, 0), t.Exposed(s, 1)}
	t.Advance(s, Recovered) // no timer runs while the shares are read
	for i, exp := range exps {
		t.WantFile("a file changed after Commit", exp, name, "before commit "+t.ShareName(i))
		if data, err := f.ReadFile(t.ctx, exp, later); err == nil {
			t.FailNow("no such file", fmt.Sprintf("%q", data), fmt.Sprintf("a file created after Commit is on %s", exp))
		}
	}
}

// expose/read-only: without ATTR_AUTO_RECOVERY the exposed share is
// read-only from Expose on (§2.2.2.2, §3.1.4.6 step 4): with BACKUP and
// with BACKUP|ATTR_NO_AUTO_RECOVERY, before and after RecoveryComplete.
func checkExposeReadOnly(t *T) {
	name := markerName("ro")
	t.PutFile(t.ShareName(0), name, "base")
	for _, ctxValue := range []uint32{client.CtxBackup, client.CtxBackup | client.AttrNoAutoRecovery} {
		what := "context " + client.ContextName(ctxValue)
		s := t.NewSet(Exposed, ctxValue)
		exp := t.Exposed(s, 0)
		t.wantWritable(what+", Exposed", exp, false)
		if err := t.Files().WriteFile(t.ctx, exp, name, []byte("changed")); err == nil {
			t.FailNow("the write is refused", "the file was overwritten", what+": overwriting "+name+" on "+exp)
		}
		t.Advance(s, Recovered)
		t.WantFile(what, exp, name, "base")
		t.wantWritable(what+", Recovered", exp, false)
		t.DeleteAll(s)
	}
}

// expose/auto-recovery-writable: with ATTR_AUTO_RECOVERY the exposed share
// is writable from Expose until RecoveryComplete (§3.1.4.6 step 4), then
// read-only for good (§3.1.4.7 step 4); writes never reach the base share.
func checkExposeAutoRecovery(t *T) {
	name := markerName("rw")
	t.PutFile(t.ShareName(0), name, "base")
	f := t.Files()
	s := t.NewSet(Exposed, client.CtxBackup|client.AttrAutoRecovery)
	exp := t.Exposed(s, 0)
	if err := f.WriteFile(t.ctx, exp, name, []byte("recovered")); err != nil {
		t.FailNow("the write succeeds", "refused: "+err.Error(), "auto-recovery: overwriting "+name+" on "+exp+" before RecoveryComplete")
	}
	t.WantFile("after the write to the shadow copy", exp, name, "recovered")
	t.WantFile("the base share after a write to its shadow copy", t.ShareName(0), name, "base")
	t.Advance(s, Recovered)
	t.wantWritable("auto-recovery, after RecoveryComplete", exp, false)
	t.WantFile("after RecoveryComplete", exp, name, "recovered")
}

// expose/security-descriptor: the exposed share has the base share's
// permissions (§3.1.4.6 step 4): the same share security descriptor
// (NetrShareGetInfo level 502), for each share of a two-volume set.
func checkExposeSD(t *T) {
	f := t.Files()
	s := t.NewSet(Exposed, client.CtxBackup, t.Share(0), t.Share(1))
	exps := []string{t.Exposed(s, 0), t.Exposed(s, 1)}
	t.Advance(s, Recovered) // srvsvc queries are slow: no timer may run
	for i, exp := range exps {
		base, err := f.ShareSD(t.ctx, t.ShareName(i))
		if err != nil {
			t.Fatalf("security descriptor of the base share %s: %v", t.ShareName(i), err)
		}
		got, err := f.ShareSD(t.ctx, exp)
		if err != nil {
			t.FailNow("the base share's descriptor", err.Error(), "security descriptor of "+exp)
		}
		if !bytes.Equal(got, base) {
			t.FailNow(hex.EncodeToString(base), hex.EncodeToString(got), "security descriptor of "+exp+" differs from "+t.ShareName(i)+"'s")
		}
	}
}

// expose/hidden-share: a base share whose name ends in '$' is exposed as
// <name>@{GUID}$, hidden too (§3.1.4.6, note <9>), and can be connected.
func checkExposeHidden(t *T) {
	hidden := t.target.HiddenShare
	f := t.Files()
	s := t.NewSet(Exposed, client.CtxBackup, t.UNC(hidden))
	m := t.Mapping(s, 0)
	t.Advance(s, Recovered)
	want := hidden + "@{" + s.Copies[0].String() + "}$"
	got := bareShare(m.ExposedName)
	if !strings.HasPrefix(m.ExposedName, `\\`) {
		t.Logf("ShadowCopyShareName %q is not a UNC name (see mapping/fields)", m.ExposedName)
	}
	if !strings.EqualFold(got, want) {
		t.FailNow(`\\<server>\`+want, m.ExposedName, "ShadowCopyShareName of a hidden share")
	}
	if err := f.Connect(t.ctx, got); err != nil {
		t.FailNow("tree connect succeeds", err.Error(), "tree connect to "+got)
	}
}

// exposeRemoved: the exposed share exists (it can be connected and is
// listed) and is gone after end(t, s). With recover, the set is Recovered
// first (no timer runs during the slow share listing); otherwise only the
// tree connect is tried before the end.
func exposeRemoved(how string, recover bool, end func(t *T, s *Set)) func(*T) {
	return func(t *T) {
		f := t.Files()
		s := t.NewSet(Exposed, client.CtxBackup)
		exp := t.Exposed(s, 0)
		if recover {
			t.Advance(s, Recovered)
			t.wantShareThere("before "+how, exp)
		} else if err := f.Connect(t.ctx, exp); err != nil {
			t.FailNow("tree connect succeeds", err.Error(), "while Exposed: tree connect to "+exp)
		}
		end(t, s)
		t.wantShareGone("after "+how, exp)
	}
}

func endByDelete(t *T, s *Set) { t.DeleteAll(s) }
func endByAbort(t *T, s *Set) {
	t.OK("AbortShadowCopySet of the set", t.c.AbortShadowCopySet(t.ctx, s.ID))
}
func endByExpiry(t *T, s *Set) {
	t.timerWait()
	t.WantGone("after the timer expired", s)
}
func endByRetry(t *T, s *Set) {
	t.SetContext(client.CtxBackup)
	t.WantGone("after the SetContext retry", s)
}

// robustNames are malformed ShareNames that no server may accept. The
// client writes names with counts in UTF-16 code units (msdtyp.WriteWString;
// go-msrpc's own stubs would send a non-ASCII one as bad stub data), so
// non-ASCII ones are among them.
func robustNames(t *T) []string {
	host, name := t.target.shareHost(), t.ShareName(0)
	return []string{
		`\\` + host + `\` + name + "\x01" + `\`,
		`\\` + host + `\..\`,
		`\\` + host + `\.\`,
		`\\` + host + `\` + name + `/..\`,
		`//` + host + `/` + name + `/`,
		`\\` + host + `\` + name + `:stream\`,
		`\\` + host + `\*\`,
		`\\` + host + `\` + name + "?\\",
		`\\` + host + `\\` + name + `\`,
		`\\` + host + `\IPC$\`,
		`\\` + host + `\Données` + "\x01" + `\`,
		`\\` + host + `\資料*\`,
	}
}

// refusedName: codes a server may give for a ShareName it cannot serve.
var refusedName = []uint32{client.EInvalidArg, client.EObjectNotFound, client.ENotSupported}

// wantRefusedName ends the check unless err is one of refusedName.
func (t *T) wantRefusedName(what string, err error) {
	t.Helper()
	code, ok := codeOf(err)
	if ok && slices.Contains(refusedName, code) {
		return
	}
	t.FailNow("E_INVALIDARG, FSRVP_E_OBJECT_NOT_FOUND or FSRVP_E_NOT_SUPPORTED", observed(err), what)
}

// robust/malformed-share-names: ShareNames that are no share of the
// server (control characters, dot names, wrong separators, streams,
// wildcards, IPC$) are refused by IsPathSupported, IsPathShadowCopied and
// Add, and the set stays usable. (The set is started after the path
// queries: refused calls need not restart a short timer.)
func checkRobustMalformed(t *T) {
	names := robustNames(t)
	for _, bad := range names {
		_, _, err := t.c.IsPathSupported(t.ctx, bad)
		t.wantRefusedName(fmt.Sprintf("IsPathSupported(%q)", bad), err)
		_, _, err = t.c.IsPathShadowCopied(t.ctx, bad)
		t.wantRefusedName(fmt.Sprintf("IsPathShadowCopied(%q)", bad), err)
	}
	addRefused(t, names)
}

// addRefused: Add refuses every name of bad, each in a fresh set (a
// refused call need not restart a short timer, and looking up a name
// that is no share may be slow), and the set takes a good share after.
func addRefused(t *T, bad []string) {
	t.Helper()
	for _, name := range bad {
		s := t.NewSet(Started, client.CtxBackup)
		_, err := t.c.AddToShadowCopySet(t.ctx, uuid.New(), s.ID, name)
		what := fmt.Sprintf("Add(%q)", name)
		if len(name) > 100 {
			what = fmt.Sprintf("Add(a %d-character name)", len(name))
		}
		t.wantRefusedName(what, err)
		t.Add(s.ID, t.Share(0))
		t.OK("AbortShadowCopySet", t.c.AbortShadowCopySet(t.ctx, s.ID))
	}
	t.NewSet(Committed, client.CtxBackup)
}

// robust/long-share-names: very long share and host names are refused
// with a return code (no fault, no dropped connection), a long host name
// is ignored, and a set stays usable.
func checkRobustLong(t *T) {
	host := t.target.shareHost()
	var bad []string
	for _, n := range []int{81, 1000, 16000} {
		long := strings.Repeat("s", n)
		bad = append(bad, `\\`+host+`\`+long+`\`, `\\`+strings.Repeat("h", n)+`\`+long)
	}
	for _, name := range bad {
		_, _, err := t.c.IsPathSupported(t.ctx, name)
		t.wantRefusedName(fmt.Sprintf("IsPathSupported(a %d-character name)", len(name)), err)
	}
	long := `\\` + strings.Repeat("h", 2000) + `\` + t.ShareName(0) + `\`
	ok, _, err := t.c.IsPathSupported(t.ctx, long)
	t.OK("IsPathSupported of our share with a 2000-character host name", err)
	Equal(t, "SupportedByThisProvider", ok, true)
	addRefused(t, bad)
}

// robust/racing-clients: two clients racing for the context get exactly
// one success (§3.1.4.2); racing Adds of one share and racing deletes of
// one mapping succeed exactly once (the server serializes its state).
func checkRobustRace(t *T) {
	a, b := t.c, t.Second()
	for round := 1; round <= 3; round++ {
		errs := race(func() error { return a.SetContext(t.ctx, client.CtxBackup) }, func() error { return b.SetContext(t.ctx, client.CtxBackup) })
		t.wantOneWinner(fmt.Sprintf("round %d: SetContext from two clients at once", round), errs, client.EShadowCopySetInProgress)
		winner := a
		if errs[0] != nil {
			winner = b
		}
		id, err := winner.StartShadowCopySet(t.ctx, uuid.New())
		t.OK("StartShadowCopySet by the winner", err)
		t.Track(id)
		t.OK("AbortShadowCopySet by the winner", winner.AbortShadowCopySet(t.ctx, id))
	}
	s := t.NewSet(Started, client.CtxBackup)
	var ids [2]uuid.UUID
	errs := race(func() (err error) { ids[0], err = a.AddToShadowCopySet(t.ctx, uuid.New(), s.ID, t.Share(0)); return },
		func() (err error) { ids[1], err = b.AddToShadowCopySet(t.ctx, uuid.New(), s.ID, t.Share(0)); return })
	t.wantOneWinner("AddToShadowCopySet of one share by two clients at once", errs, client.EObjectAlreadyExists)
	sc := ids[0]
	if errs[0] != nil {
		sc = ids[1]
	}
	s.Shares, s.Copies, s.State = []string{t.Share(0)}, []uuid.UUID{sc}, Added
	t.Advance(s, Recovered)
	errs = race(func() error { return a.DeleteShareMapping(t.ctx, s.ID, sc, t.Share(0)) },
		func() error { return b.DeleteShareMapping(t.ctx, s.ID, sc, t.Share(0)) })
	t.wantOneWinner("DeleteShareMapping of one mapping by two clients at once", errs, client.EObjectNotFound)
	t.WantGone("after the racing deletes", s)
}

// race runs f and g at once.
func race(f, g func() error) [2]error {
	var out [2]error
	done := make(chan struct{})
	go func() { out[1] = g(); close(done) }()
	out[0] = f()
	<-done
	return out
}

// wantOneWinner: exactly one of errs is nil and the other is loser.
func (t *T) wantOneWinner(what string, errs [2]error, loser uint32) {
	t.Helper()
	c0, ok0 := codeOf(errs[0])
	c1, ok1 := codeOf(errs[1])
	if ok0 && ok1 && ((c0 == 0 && c1 == loser) || (c1 == 0 && c0 == loser)) {
		return
	}
	t.FailNow("one S_OK and one "+CodeString(loser), observed(errs[0])+" and "+observed(errs[1]), what)
}
