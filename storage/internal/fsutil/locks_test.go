package fsutil

import (
	"sync"
	"testing"
	"time"
)

func TestLockExcludes(t *testing.T) {
	var l IDLocks
	unlock := l.Lock("a")
	got := make(chan struct{})
	go func() {
		u := l.Lock("a")
		close(got)
		u()
	}()
	select {
	case <-got:
		t.Fatal("a second Lock of a held id did not wait")
	case <-time.After(50 * time.Millisecond):
	}
	// Another id is not blocked.
	l.Lock("b")()
	unlock()
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("Lock did not get the id once it was freed")
	}
}

func TestTryLock(t *testing.T) {
	var l IDLocks
	unlock, ok := l.TryLock("a")
	if !ok {
		t.Fatal("TryLock of a free id failed")
	}
	if _, ok := l.TryLock("a"); ok {
		t.Fatal("TryLock of a busy id succeeded")
	}
	u, ok := l.TryLock("b")
	if !ok {
		t.Fatal("TryLock of another id failed")
	}
	u()
	unlock()
	unlock, ok = l.TryLock("a")
	if !ok {
		t.Fatal("TryLock of a freed id failed")
	}
	unlock()
	if n := len(l.byID); n != 0 {
		t.Errorf("%d ids left in the map after unlocking", n)
	}
}

func TestLockDuplicates(t *testing.T) {
	var l IDLocks
	unlock := l.Lock("a", "b", "a") // must not deadlock on itself
	if _, ok := l.TryLock("a"); ok {
		t.Error("TryLock of an id held by Lock succeeded")
	}
	unlock()
	l.Lock()()
	if n := len(l.byID); n != 0 {
		t.Errorf("%d ids left in the map after unlocking", n)
	}
}

// TestLockOverlapping locks overlapping sets of ids in opposite orders from
// many goroutines: sorted locking must neither deadlock nor let two holders
// of one id in at once (run with -race).
func TestLockOverlapping(t *testing.T) {
	var l IDLocks
	sets := [][]string{{"a", "b"}, {"b", "a"}, {"c", "b", "a"}, {"a", "c"}, {"c"}}
	// Read-only map of per-id counters: only the *int are written.
	count := map[string]*int{"a": new(int), "b": new(int), "c": new(int)}
	want := map[string]int{}
	for g := range 20 {
		for i := range 200 {
			for _, id := range sets[(g+i)%len(sets)] {
				want[id]++
			}
		}
	}
	var wg sync.WaitGroup
	for g := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				ids := sets[(g+i)%len(sets)]
				unlock := l.Lock(ids...)
				for _, id := range ids {
					*count[id]++ // the race detector checks the exclusion
				}
				unlock()
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("deadlock")
	}
	for id, n := range want {
		if *count[id] != n {
			t.Errorf("id %s held %d times, want %d", id, *count[id], n)
		}
	}
	if n := len(l.byID); n != 0 {
		t.Errorf("%d ids left in the map after unlocking", n)
	}
}
