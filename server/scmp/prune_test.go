package scmp

import (
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	id := func(n byte) uuid.UUID { return uuid.UUID{15: n} }
	c := func(n byte, bytes int64, pinned bool) Candidate {
		return Candidate{ID: id(n), Created: t0.Add(time.Duration(n) * time.Hour), Bytes: bytes, Pinned: pinned}
	}
	ids := func(d Decision) []byte {
		var out []byte
		for _, x := range d.Delete {
			out = append(out, x.ID[15])
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		copies    []Candidate
		used, max int64
		count     int
		want      []byte
		remeasure bool
		over      bool
	}{
		{"within limits", []Candidate{c(1, 10, false), c(2, 10, false)}, 20, 20, 64, nil, false, false},
		{"size: oldest first", []Candidate{c(3, 10, false), c(1, 10, false), c(2, 10, false)}, 30, 15, 64, []byte{1, 2}, false, false},
		{"size: skip pinned", []Candidate{c(1, 10, true), c(2, 10, false), c(3, 10, false)}, 30, 5, 64, []byte{2, 3}, false, true},
		{"count", []Candidate{c(1, 1, false), c(2, 1, false), c(3, 1, false), c(4, 1, false)}, 4, -1, 2, []byte{1, 2}, false, false},
		{"count with pinned oldest", []Candidate{c(1, 1, true), c(2, 1, false), c(3, 1, false)}, 3, -1, 2, []byte{2}, false, false},
		{"all pinned", []Candidate{c(1, 1, true), c(2, 1, true)}, 2, 1, 1, nil, false, true},
		{"unknown size: one, then remeasure", []Candidate{c(1, -1, false), c(2, -1, false)}, 100, 50, 64, []byte{1}, true, false},
		{"unknown size, count first", []Candidate{c(1, -1, false), c(2, -1, false), c(3, -1, false)}, 100, 50, 1, []byte{1, 2}, true, false},
		{"unbounded size", []Candidate{c(1, 10, false)}, 1 << 40, -1, 64, nil, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.copies, tc.used, tc.max, tc.count)
			if got := ids(d); !reflect.DeepEqual(got, tc.want) || d.Remeasure != tc.remeasure || d.Over != tc.over {
				t.Errorf("Decide = %v remeasure %v over %v, want %v %v %v", got, d.Remeasure, d.Over, tc.want, tc.remeasure, tc.over)
			}
			for _, x := range d.Delete {
				if x.Reason == "" {
					t.Errorf("deletion %v without a reason", x.ID)
				}
			}
		})
	}
}
