package fsutil

import (
	"slices"
	"sync"
)

// IDLocks serialises the operations on one id while letting operations on
// different ids run in parallel. The zero value is ready to use.
type IDLocks struct {
	mu   sync.Mutex
	byID map[string]*idLock
}

type idLock struct {
	mu   sync.Mutex
	refs int
}

// Lock blocks until every id is free and returns the function that frees
// them. It takes them sorted and without duplicates, so that callers
// locking overlapping sets cannot deadlock.
func (l *IDLocks) Lock(ids ...string) (unlock func()) {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	held := make([]*idLock, len(ids))
	for i, id := range ids {
		held[i] = l.ref(id)
		held[i].mu.Lock()
	}
	return func() {
		for i, id := range ids {
			held[i].mu.Unlock()
			l.unref(id, held[i])
		}
	}
}

// TryLock is Lock of one id without waiting: ok is false if id is busy.
func (l *IDLocks) TryLock(id string) (unlock func(), ok bool) {
	k := l.ref(id)
	if !k.mu.TryLock() {
		l.unref(id, k)
		return nil, false
	}
	return func() { k.mu.Unlock(); l.unref(id, k) }, true
}

func (l *IDLocks) ref(id string) *idLock {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byID == nil {
		l.byID = make(map[string]*idLock)
	}
	k := l.byID[id]
	if k == nil {
		k = &idLock{}
		l.byID[id] = k
	}
	k.refs++
	return k
}

func (l *IDLocks) unref(id string, k *idLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if k.refs--; k.refs == 0 {
		delete(l.byID, id)
	}
}
