// Package sharestest provides an in-memory shares.Exposer for the tests of
// code that exposes snapshots, with failures on demand.
package sharestest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/fsrvpd/fsrvpd/shares"
)

// Op names a method of shares.Exposer, for FailNext.
type Op string

// The operations Exposer can fail.
const (
	OpExpose      Op = "Expose"
	OpSetReadOnly Op = "SetReadOnly"
	OpRemove      Op = "Remove"
	OpList        Op = "List"
)

// Exposer is an in-memory shares.Exposer that behaves like the real ones
// (case-insensitive names, ValidName, ErrExists, ErrNotFound) and fails
// chosen calls. The zero value is ready to use and safe for concurrent use.
type Exposer struct {
	mu     sync.Mutex
	byName map[string]shares.Share // by lower-case name
	faults map[Op][]fault
	calls  map[Op]int
}

type fault struct {
	pass int
	err  error
}

var _ shares.Exposer = (*Exposer)(nil)

// FailNext makes the next call of op return err, changing nothing.
func (e *Exposer) FailNext(op Op, err error) { e.FailAfter(op, 0, err) }

// FailAfter lets n calls of op through, then makes the next one return err.
// Faults of one op queue up: n counts from the previous fault of op. It
// panics if op is not an Op constant.
func (e *Exposer) FailAfter(op Op, n int, err error) {
	switch op {
	case OpExpose, OpSetReadOnly, OpRemove, OpList:
	default:
		panic(fmt.Sprintf("sharestest.Exposer: no operation %q", op))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.faults == nil {
		e.faults = map[Op][]fault{}
	}
	e.faults[op] = append(e.faults[op], fault{pass: n, err: err})
}

// Calls returns how many times op was called, failed calls included.
func (e *Exposer) Calls(op Op) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls[op]
}

// call counts a call of op and returns its injected error. e.mu is held.
func (e *Exposer) call(op Op) error {
	if e.calls == nil {
		e.calls = map[Op]int{}
		e.byName = map[string]shares.Share{}
	}
	e.calls[op]++
	q := e.faults[op]
	if len(q) == 0 {
		return nil
	}
	if q[0].pass > 0 {
		q[0].pass--
		return nil
	}
	e.faults[op] = q[1:]
	return q[0].err
}

// Expose implements shares.Exposer.
func (e *Exposer) Expose(ctx context.Context, s shares.Share) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.call(OpExpose); err != nil {
		return err
	}
	if err := shares.ValidName(s.Name); err != nil {
		return err
	}
	k := strings.ToLower(s.Name)
	if _, ok := e.byName[k]; ok {
		return fmt.Errorf("share %q: %w", s.Name, shares.ErrExists)
	}
	e.byName[k] = s
	return nil
}

// SetReadOnly implements shares.Exposer.
func (e *Exposer) SetReadOnly(ctx context.Context, name string, readOnly bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.call(OpSetReadOnly); err != nil {
		return err
	}
	k := strings.ToLower(name)
	s, ok := e.byName[k]
	if !ok {
		return fmt.Errorf("share %q: %w", name, shares.ErrNotFound)
	}
	s.ReadOnly = readOnly
	e.byName[k] = s
	return nil
}

// Remove implements shares.Exposer.
func (e *Exposer) Remove(ctx context.Context, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.call(OpRemove); err != nil {
		return err
	}
	k := strings.ToLower(name)
	if _, ok := e.byName[k]; !ok {
		return fmt.Errorf("share %q: %w", name, shares.ErrNotFound)
	}
	delete(e.byName, k)
	return nil
}

// List implements shares.Exposer. The shares are sorted by name, ignoring
// case.
func (e *Exposer) List(ctx context.Context) ([]shares.Share, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.call(OpList); err != nil {
		return nil, err
	}
	return e.sorted(), nil
}

// Shares returns the exposed shares like List, without counting a call or
// failing: for assertions.
func (e *Exposer) Shares() []shares.Share {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sorted()
}

// Get returns the share called name, ignoring case, without counting a call.
func (e *Exposer) Get(name string) (shares.Share, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.byName[strings.ToLower(name)]
	return s, ok
}

func (e *Exposer) sorted() []shares.Share {
	list := make([]shares.Share, 0, len(e.byName))
	for _, s := range e.byName {
		list = append(list, s)
	}
	slices.SortFunc(list, func(a, b shares.Share) int {
		return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
	})
	return list
}
