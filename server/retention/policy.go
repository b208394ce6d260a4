// Package retention prunes old shadow copy sets of the persistent contexts
// (NAS_ROLLBACK, APP_ROLLBACK), which no client ever deletes by itself,
// by per-share policies in the style of btrbk and sanoid: keep the first
// snapshot of each of the last N hours, days, weeks and months that have
// one, and everything younger than a minimum age.
//
// The decision is a pure function of the policies, the sets and a clock
// (Plan); Runner applies it in the daemon through the service's own delete
// path, which refuses sets still in a creation sequence.
package retention

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Policy is the retention policy of one share. Zero values keep nothing
// for that period.
type Policy struct {
	// KeepHourly, KeepDaily, KeepWeekly and KeepMonthly are how many of
	// the most recent hours, days, ISO weeks (Monday to Sunday) and
	// calendar months that have a snapshot keep one: the first (oldest) of
	// the period, as btrbk does, so the kept snapshot of a period does not
	// change as newer ones arrive.
	KeepHourly, KeepDaily, KeepWeekly, KeepMonthly int
	// MinAge keeps every snapshot younger than this, whatever the counts.
	MinAge time.Duration
}

// Snapshot is one candidate for pruning.
type Snapshot struct {
	ID      string
	Created time.Time
}

// Decision is what a policy decided for one snapshot.
type Decision struct {
	ID      string
	Created time.Time
	Keep    bool
	// Reasons say why it is kept: "min_age", "hourly", "daily", "weekly",
	// "monthly"; empty when it is pruned.
	Reasons []string
}

type period struct {
	name  string
	keep  int
	start func(time.Time) time.Time
}

func periods(p Policy) []period {
	return []period{
		{"hourly", p.KeepHourly, func(t time.Time) time.Time {
			return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), 0, 0, 0, t.Location())
		}},
		{"daily", p.KeepDaily, func(t time.Time) time.Time {
			return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, t.Location())
		}},
		{"weekly", p.KeepWeekly, func(t time.Time) time.Time {
			back := (int(t.Weekday()) + 6) % 7 // days since Monday
			return time.Date(t.Year(), t.Month(), t.Day()-back, 0, 0, 0, 0, t.Location())
		}},
		{"monthly", p.KeepMonthly, func(t time.Time) time.Time {
			return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, t.Location())
		}},
	}
}

// Decide applies p to snaps at time now. Periods are calendar periods in
// now's location. A snapshot dated after now is kept (reason "min_age"):
// a clock step must not prune. The decisions come back oldest first.
func Decide(p Policy, snaps []Snapshot, now time.Time) []Decision {
	out := make([]Decision, len(snaps))
	for i, s := range snaps {
		out[i] = Decision{ID: s.ID, Created: s.Created.In(now.Location())}
	}
	slices.SortStableFunc(out, func(a, b Decision) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	for i := range out {
		if now.Sub(out[i].Created) < p.MinAge || out[i].Created.After(now) {
			out[i].Reasons = append(out[i].Reasons, "min_age")
		}
	}
	for _, per := range periods(p) {
		if per.keep <= 0 {
			continue
		}
		// Newest period first; within a period the first snapshot wins.
		kept := 0
		var last time.Time
		for i := len(out) - 1; i >= 0 && kept <= per.keep; i-- {
			start := per.start(out[i].Created)
			if !start.Equal(last) {
				// A new (older) period begins at out[i]; the previous
				// period's first snapshot was out[i+1].
				if !last.IsZero() {
					out[i+1].Reasons = append(out[i+1].Reasons, per.name)
				}
				last = start
				kept++
			}
		}
		if kept <= per.keep && !last.IsZero() {
			// The loop ran off the oldest snapshot, which opens its period.
			out[0].Reasons = append(out[0].Reasons, per.name)
		}
	}
	for i := range out {
		out[i].Keep = len(out[i].Reasons) > 0
	}
	return out
}

// Set is a candidate shadow copy set: finished, of a persistent context.
type Set struct {
	ID      string
	Created time.Time
	// Shares are its base share names.
	Shares []string
}

// SetDecision is the plan for one set.
type SetDecision struct {
	ID      string    `json:"set_id"`
	Created time.Time `json:"created"`
	Shares  []string  `json:"shares"`
	Prune   bool      `json:"prune"`
	// Reason says why, e.g. "share1: daily, weekly" or "share2 has no
	// policy" or "expired under every share's policy".
	Reason string `json:"reason"`
}

// Plan decides for every set: a set is pruned only when each of its
// shares has a policy (matched case-insensitively) and every one of those
// policies prunes it. A set with a share that has no policy is kept.
func Plan(policies map[string]Policy, sets []Set, now time.Time) []SetDecision {
	pol := make(map[string]Policy, len(policies))
	for name, p := range policies {
		pol[strings.ToLower(name)] = p
	}
	// Per share, the decisions over the sets that contain it.
	perShare := map[string]map[string]Decision{}
	byShare := map[string][]Snapshot{}
	for _, s := range sets {
		for _, sh := range s.Shares {
			k := strings.ToLower(sh)
			if _, ok := pol[k]; ok {
				byShare[k] = append(byShare[k], Snapshot{ID: s.ID, Created: s.Created})
			}
		}
	}
	for k, snaps := range byShare {
		m := map[string]Decision{}
		for _, d := range Decide(pol[k], snaps, now) {
			m[d.ID] = d
		}
		perShare[k] = m
	}
	out := make([]SetDecision, 0, len(sets))
	for _, s := range sets {
		d := SetDecision{ID: s.ID, Created: s.Created, Shares: s.Shares, Prune: len(s.Shares) > 0}
		var keepers []string
		for _, sh := range s.Shares {
			k := strings.ToLower(sh)
			if _, ok := pol[k]; !ok {
				d.Prune = false
				keepers = append(keepers, sh+" has no policy")
				continue
			}
			if dec := perShare[k][s.ID]; dec.Keep {
				d.Prune = false
				keepers = append(keepers, fmt.Sprintf("%s: %s", sh, strings.Join(dec.Reasons, ", ")))
			}
		}
		switch {
		case d.Prune:
			d.Reason = "expired under every share's policy"
		case len(s.Shares) == 0:
			d.Reason = "no shares"
		default:
			d.Reason = "kept by " + strings.Join(keepers, "; ")
		}
		out = append(out, d)
	}
	slices.SortStableFunc(out, func(a, b SetDecision) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}
