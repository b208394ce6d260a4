package conformance

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/fsrvpd/fsrvpd/client"
)

// everyMethod calls each of the 13 FSRVP methods on c with arguments that
// an administrator's call would accept (set s is Exposed, share is its
// share) and returns the method names with their errors.
func everyMethod(t *T, c *client.Client, s *Set) []methodResult {
	share := s.Shares[0]
	var out []methodResult
	add := func(name string, err error) { out = append(out, methodResult{name, err}) }
	_, _, err := c.GetSupportedVersion(t.ctx)
	add("GetSupportedVersion", err)
	add("SetContext", c.SetContext(t.ctx, client.CtxBackup))
	id, err := c.StartShadowCopySet(t.ctx, uuid.New())
	if err == nil {
		t.Track(id)
	}
	add("StartShadowCopySet", err)
	_, err = c.AddToShadowCopySet(t.ctx, uuid.New(), s.ID, t.Share(1))
	add("AddToShadowCopySet", err)
	add("PrepareShadowCopySet", c.PrepareShadowCopySet(t.ctx, s.ID, prepareTimeout))
	add("CommitShadowCopySet", c.CommitShadowCopySet(t.ctx, s.ID, commitTimeout))
	add("ExposeShadowCopySet", c.ExposeShadowCopySet(t.ctx, s.ID, exposeTimeout))
	_, _, err = c.IsPathSupported(t.ctx, share)
	add("IsPathSupported", err)
	_, _, err = c.IsPathShadowCopied(t.ctx, share)
	add("IsPathShadowCopied", err)
	_, err = c.GetShareMapping(t.ctx, s.Copies[0], s.ID, share, client.ShareMappingLevel1)
	add("GetShareMapping", err)
	add("RecoveryCompleteShadowCopySet", c.RecoveryCompleteShadowCopySet(t.ctx, s.ID))
	add("DeleteShareMapping", c.DeleteShareMapping(t.ctx, s.ID, s.Copies[0], share))
	add("AbortShadowCopySet", c.AbortShadowCopySet(t.ctx, s.ID))
	return out
}

type methodResult struct {
	name string
	err  error
}

// deniedEverywhere: every method called on c is E_ACCESSDENIED (§3.1.4:
// the access check comes before anything else, GetSupportedVersion
// included, §5), and the administrator's Exposed set is untouched.
func deniedEverywhere(t *T, c *client.Client, who string) {
	s := t.NewSet(Exposed, client.CtxBackup) // c was dialed first: no slow step while the timer runs
	for _, r := range everyMethod(t, c, s) {
		t.Want(fmt.Sprintf("%s by %s", r.name, who), r.err, client.EAccessDenied)
	}
	t.Mapping(s, 0)
	t.Advance(s, Recovered)
	t.DeleteAll(s)
}

// security/non-admin-denied: an account that is neither an administrator
// nor a backup operator gets E_ACCESSDENIED from every method (§3.1.4,
// note <4>).
func checkNonAdmin(t *T) {
	c := t.dial(t.target.NonAdminDial, "non-admin dial")
	deniedEverywhere(t, c, "a non-administrator")
}

// security/unauthenticated-denied: a client bound at authentication level
// NONE gets E_ACCESSDENIED from every method (§3.1.4: PKT_INTEGRITY or
// PKT_PRIVACY is required; the bind itself is not refused).
func checkUnauth(t *T) {
	c := t.dial(t.target.UnauthDial, "unauthenticated dial")
	deniedEverywhere(t, c, "an unauthenticated client")
}

// security/auth-levels: §3.1.4: binds at PKT_INTEGRITY and PKT_PRIVACY
// are served; a bind at CONNECT is accepted (the bind is not refused) but
// every method is E_ACCESSDENIED.
func checkAuthLevels(t *T) {
	for _, level := range []string{client.LevelIntegrity, client.LevelPrivacy} {
		c := t.dial(t.target.AuthDial(level), "dial at authentication level "+level)
		_, _, err := c.GetSupportedVersion(t.ctx)
		t.OK("GetSupportedVersion at level "+level, err)
		_, _, err = c.IsPathSupported(t.ctx, t.Share(0))
		t.OK("IsPathSupported at level "+level, err)
		t.OK("SetContext at level "+level, c.SetContext(t.ctx, client.CtxBackup))
		id := t.StartWith(c)
		_, err = c.AddToShadowCopySet(t.ctx, uuid.New(), id, t.Share(0))
		t.OK("AddToShadowCopySet at level "+level, err)
		t.OK("AbortShadowCopySet at level "+level, c.AbortShadowCopySet(t.ctx, id))
	}
	c := t.dial(t.target.AuthDial(client.LevelConnect), "dial at authentication level connect (the bind must not be refused)")
	deniedEverywhere(t, c, "a client bound at level CONNECT")
}

// canaryPorts are where a server that contacts a host would connect: SMB,
// NetBIOS session, the endpoint mapper.
var canaryPorts = []int{445, 139, 135}

// security/no-contact-named-host: the host part of a ShareName is never
// contacted (§3.1.4.4 ignores it; CVE-2022-30154): the check listens on
// Target.Canary's SMB, NetBIOS and endpoint mapper ports, sends every
// method that takes a ShareName with \\<Canary>\share, and no connection
// may arrive.
func checkNoContact(t *T) {
	host := t.target.Canary
	if net.ParseIP(host) == nil {
		t.Fatalf("Target.Canary %q is not an IP address", host)
	}
	var (
		mu       sync.Mutex
		arrivals []string
		bound    []string
	)
	for _, port := range canaryPorts {
		l, err := net.Listen("tcp", net.JoinHostPort(host, fmt.Sprint(port)))
		if err != nil {
			t.Logf("cannot listen on %s port %d: %v", host, port, err)
			continue
		}
		bound = append(bound, fmt.Sprint(port))
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				arrivals = append(arrivals, fmt.Sprintf("%s → %s", c.RemoteAddr(), c.LocalAddr()))
				mu.Unlock()
				c.Close()
			}
		}()
	}
	if len(bound) == 0 {
		t.Skipf("cannot listen on any of ports 445, 139, 135 of %s (needs root, and the address must be free)", host)
	}
	t.Logf("listening on %s ports %s", host, strings.Join(bound, ", "))
	// Whatever the server answers, only connections matter here.
	unc := `\\` + host + `\` + t.ShareName(0) + `\`
	_, _, err := t.c.IsPathSupported(t.ctx, unc)
	t.Logf("IsPathSupported(%s): %s", unc, observed(err))
	_, _, err = t.c.IsPathShadowCopied(t.ctx, unc)
	t.Logf("IsPathShadowCopied(%s): %s", unc, observed(err))
	s := t.NewSet(Started, client.CtxBackup)
	sc, err := t.c.AddToShadowCopySet(t.ctx, uuid.New(), s.ID, unc)
	t.Logf("AddToShadowCopySet(%s): %s", unc, observed(err))
	if err == nil {
		for _, step := range []struct {
			name string
			call func() error
		}{
			{"CommitShadowCopySet", func() error { return t.c.CommitShadowCopySet(t.ctx, s.ID, commitTimeout) }},
			{"ExposeShadowCopySet", func() error { return t.c.ExposeShadowCopySet(t.ctx, s.ID, exposeTimeout) }},
			{"GetShareMapping", func() error {
				_, err := t.c.GetShareMapping(t.ctx, sc, s.ID, unc, client.ShareMappingLevel1)
				return err
			}},
			{"RecoveryCompleteShadowCopySet", func() error { return t.c.RecoveryCompleteShadowCopySet(t.ctx, s.ID) }},
			{"DeleteShareMapping", func() error { return t.c.DeleteShareMapping(t.ctx, s.ID, sc, unc) }},
		} {
			t.Logf("%s: %s", step.name, observed(step.call()))
		}
	}
	select {
	case <-time.After(time.Second):
	case <-t.ctx.Done():
	}
	mu.Lock()
	defer mu.Unlock()
	if len(arrivals) > 0 {
		t.FailNow("no connection to "+host, strings.Join(arrivals, "; "), "the server contacted the host named in ShareName")
	}
}
