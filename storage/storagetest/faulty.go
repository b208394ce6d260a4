package storagetest

import (
	"context"
	"fmt"
	"sync"

	"github.com/fsrvpd/fsrvpd/storage"
)

// Method names a method of storage.Backend, for Faulty.
type Method string

// The methods Faulty can fail.
const (
	MethodVolume      Method = "Volume"
	MethodCreate      Method = "Create"
	MethodSetReadOnly Method = "SetReadOnly"
	MethodDelete      Method = "Delete"
	MethodStat        Method = "Stat"
	MethodList        Method = "List"
)

// Faulty wraps a Backend and fails chosen calls, for tests of the code that
// drives a backend: a failed call returns the injected error without
// reaching the wrapped Backend. It is safe for concurrent use.
//
//	b := storagetest.NewFaulty(backend)
//	b.FailAfter(storagetest.MethodCreate, 1, errors.New("disk full")) // the 2nd Create fails
type Faulty struct {
	storage.Backend

	mu     sync.Mutex
	faults map[Method][]fault
	calls  map[Method]int
}

type fault struct {
	pass int // calls to let through first
	err  error
}

var _ storage.Backend = (*Faulty)(nil)

// NewFaulty wraps b.
func NewFaulty(b storage.Backend) *Faulty {
	return &Faulty{Backend: b, faults: map[Method][]fault{}, calls: map[Method]int{}}
}

// FailNext makes the next call of m return err.
func (f *Faulty) FailNext(m Method, err error) { f.FailAfter(m, 0, err) }

// FailAfter lets n calls of m through, then makes the next one return err.
// Faults of one method queue up: n counts from the previous fault of m.
// It panics if m is not a Method constant.
func (f *Faulty) FailAfter(m Method, n int, err error) {
	switch m {
	case MethodVolume, MethodCreate, MethodSetReadOnly, MethodDelete, MethodStat, MethodList:
	default:
		panic(fmt.Sprintf("storagetest.Faulty: no method %q", m))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[m] = append(f.faults[m], fault{pass: n, err: err})
}

// Calls returns how many times m was called, failed calls included.
func (f *Faulty) Calls(m Method) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[m]
}

// call counts a call of m and returns the error it must fail with, or nil.
func (f *Faulty) call(m Method) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[m]++
	q := f.faults[m]
	if len(q) == 0 {
		return nil
	}
	if q[0].pass > 0 {
		q[0].pass--
		return nil
	}
	f.faults[m] = q[1:]
	return q[0].err
}

// Volume implements storage.Backend.
func (f *Faulty) Volume(ctx context.Context, path string) (storage.Volume, error) {
	if err := f.call(MethodVolume); err != nil {
		return storage.Volume{}, err
	}
	return f.Backend.Volume(ctx, path)
}

// Create implements storage.Backend.
func (f *Faulty) Create(ctx context.Context, vol storage.Volume, id string, opts storage.CreateOptions) (storage.Snapshot, error) {
	if err := f.call(MethodCreate); err != nil {
		return storage.Snapshot{}, err
	}
	return f.Backend.Create(ctx, vol, id, opts)
}

// SetReadOnly implements storage.Backend.
func (f *Faulty) SetReadOnly(ctx context.Context, id string) error {
	if err := f.call(MethodSetReadOnly); err != nil {
		return err
	}
	return f.Backend.SetReadOnly(ctx, id)
}

// Delete implements storage.Backend.
func (f *Faulty) Delete(ctx context.Context, id string) error {
	if err := f.call(MethodDelete); err != nil {
		return err
	}
	return f.Backend.Delete(ctx, id)
}

// Stat implements storage.Backend.
func (f *Faulty) Stat(ctx context.Context, id string) (storage.Snapshot, error) {
	if err := f.call(MethodStat); err != nil {
		return storage.Snapshot{}, err
	}
	return f.Backend.Stat(ctx, id)
}

// List implements storage.Backend.
func (f *Faulty) List(ctx context.Context) ([]storage.Snapshot, error) {
	if err := f.call(MethodList); err != nil {
		return nil, err
	}
	return f.Backend.List(ctx)
}
