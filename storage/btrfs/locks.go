package btrfs

import "sync"

// idLocks serialises the operations on one snapshot id while letting
// operations on different ids run in parallel.
type idLocks struct {
	mu   sync.Mutex
	byID map[string]*idLock
}

type idLock struct {
	mu   sync.Mutex
	refs int
}

func (l *idLocks) ref(id string) *idLock {
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

func (l *idLocks) unref(id string, k *idLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if k.refs--; k.refs == 0 {
		delete(l.byID, id)
	}
}

// lock blocks until id is free and returns the function that frees it.
func (l *idLocks) lock(id string) (unlock func()) {
	k := l.ref(id)
	k.mu.Lock()
	return func() { k.mu.Unlock(); l.unref(id, k) }
}

// tryLock is lock without waiting: ok is false if id is busy.
func (l *idLocks) tryLock(id string) (unlock func(), ok bool) {
	k := l.ref(id)
	if !k.mu.TryLock() {
		l.unref(id, k)
		return nil, false
	}
	return func() { k.mu.Unlock(); l.unref(id, k) }, true
}
