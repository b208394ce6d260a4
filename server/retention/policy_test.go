package retention

import (
	"slices"
	"testing"
	"time"
)

func at(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestDecideExactSet(t *testing.T) {
	snaps := []Snapshot{
		{"a", at("2026-09-15 10:00")},
		{"b", at("2026-10-03 08:00")},
		{"c", at("2026-10-20 09:00")},
		{"d", at("2026-11-20 10:00")}, // Friday; the week runs Mon 16 - Sun 22
		{"e", at("2026-11-21 09:00")},
		{"f", at("2026-11-22 09:00")},
		{"h", at("2026-11-22 11:40")}, // out of order on purpose
		{"g", at("2026-11-22 11:10")},
		{"i", at("2026-11-22 12:05")},
		{"j", at("2026-11-22 12:20")},
	}
	p := Policy{KeepHourly: 2, KeepDaily: 2, KeepWeekly: 1, KeepMonthly: 2, MinAge: 20 * time.Minute}
	now := at("2026-11-22 12:30")
	want := map[string][]string{
		"b": {"monthly"},
		"d": {"weekly", "monthly"},
		"e": {"daily"},
		"f": {"daily"},
		"g": {"hourly"},
		"i": {"hourly"},
		"j": {"min_age"},
	}
	got := Decide(p, snaps, now)
	var order []string
	for _, d := range got {
		order = append(order, d.ID)
		if !slices.Equal(d.Reasons, want[d.ID]) || d.Keep != (want[d.ID] != nil) {
			t.Errorf("%s: keep %v reasons %v, want %v", d.ID, d.Keep, d.Reasons, want[d.ID])
		}
	}
	if !slices.Equal(order, []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}) {
		t.Errorf("order %v", order)
	}

	// An hour later on the simulated clock: j leaves min_age, a new hour
	// (13:00) has no snapshot, so the two newest hours with one are 12:00
	// and 11:00 still; nothing else changes.
	got = Decide(p, snaps, now.Add(time.Hour))
	for _, d := range got {
		if d.ID == "j" && d.Keep {
			t.Errorf("j kept an hour later: %v", d.Reasons)
		}
	}
	// A month later, with KeepMonthly 2: December has no snapshot, so
	// November (d) and October (b) are kept; the days and hours still
	// count the newest periods that have snapshots.
	got = Decide(Policy{KeepMonthly: 2}, snaps, at("2026-12-25 00:00"))
	var kept []string
	for _, d := range got {
		if d.Keep {
			kept = append(kept, d.ID)
		}
	}
	if !slices.Equal(kept, []string{"b", "d"}) {
		t.Errorf("monthly only: kept %v, want [b d]", kept)
	}
}

func TestDecideEdges(t *testing.T) {
	now := at("2026-11-22 12:00")
	if got := Decide(Policy{KeepDaily: 3}, nil, now); len(got) != 0 {
		t.Fatalf("no snapshots: %v", got)
	}
	// A single snapshot under any count is kept; under no count it goes.
	one := []Snapshot{{"x", at("2026-01-01 00:00")}}
	if d := Decide(Policy{KeepWeekly: 1}, one, now); !d[0].Keep {
		t.Error("single snapshot not kept by weekly=1")
	}
	if d := Decide(Policy{}, one, now); d[0].Keep {
		t.Error("empty policy kept an old snapshot")
	}
	// A snapshot in the future (clock stepped back) is never pruned.
	if d := Decide(Policy{}, []Snapshot{{"f", now.Add(time.Hour)}}, now); !d[0].Keep {
		t.Error("future snapshot pruned")
	}
	// The first snapshot of a day is kept, not the last.
	day := []Snapshot{{"x1", at("2026-11-21 01:00")}, {"x2", at("2026-11-21 23:00")}}
	d := Decide(Policy{KeepDaily: 1}, day, now)
	if !d[0].Keep || d[1].Keep {
		t.Errorf("daily keeps the first of the day: %+v", d)
	}
}

func TestPlanNeedsEverySharesConsent(t *testing.T) {
	now := at("2026-11-22 12:00")
	pol := map[string]Policy{"Share1": {KeepDaily: 1}, "share2": {KeepDaily: 2}}
	sets := []Set{
		{"s1", at("2026-11-20 10:00"), []string{"share1", "share2"}}, // share2 keeps it? no: 2 newest days are 21, 22
		{"s2", at("2026-11-21 10:00"), []string{"share1", "share2"}}, // share2 keeps it (daily), share1 does not
		{"s3", at("2026-11-22 10:00"), []string{"share1"}},           // kept by share1
		{"s4", at("2026-11-22 09:00"), []string{"SHARE2"}},           // kept by share2 (first of the 22nd)
		{"s5", at("2026-11-01 10:00"), []string{"share1", "share3"}}, // share3 has no policy
		{"s6", at("2026-11-02 10:00"), []string{"share1"}},           // pruned
	}
	want := map[string]bool{"s1": true, "s6": true}
	for _, d := range Plan(pol, sets, now) {
		if d.Prune != want[d.ID] {
			t.Errorf("%s: prune %v (%s), want %v", d.ID, d.Prune, d.Reason, want[d.ID])
		}
	}
}
