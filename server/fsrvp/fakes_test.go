package fsrvp

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsrvpd/fsrvpd/shares"
	"github.com/fsrvpd/fsrvpd/storage"
)

// memBackend is an in-memory storage.Backend with failure injection.
type memBackend struct {
	mu    sync.Mutex
	vols  []storage.Volume
	snaps map[string]storage.Snapshot
	// failVolume makes Create fail for that volume id.
	failVolume map[string]error
	// gate, when set, blocks Create until closed.
	gate chan struct{}
}

func newMemBackend(roots ...string) *memBackend {
	b := &memBackend{snaps: map[string]storage.Snapshot{}, failVolume: map[string]error{}}
	for _, r := range roots {
		b.vols = append(b.vols, storage.Volume{ID: "vol:" + r, Root: r})
	}
	return b
}

func (b *memBackend) Name() string { return "mem" }

func (b *memBackend) Volume(_ context.Context, path string) (storage.Volume, error) {
	if strings.Contains(path, "unsupported") {
		return storage.Volume{}, fmt.Errorf("%s: %w", path, storage.ErrNotSupported)
	}
	for _, v := range b.vols {
		if path == v.Root || strings.HasPrefix(path, v.Root+"/") {
			return v, nil
		}
	}
	return storage.Volume{}, fmt.Errorf("%s: %w", path, storage.ErrNotFound)
}

func (b *memBackend) Create(ctx context.Context, vol storage.Volume, id string, o storage.CreateOptions) (storage.Snapshot, error) {
	b.mu.Lock()
	gate := b.gate
	b.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return storage.Snapshot{}, ctx.Err()
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.failVolume[vol.ID]; err != nil {
		return storage.Snapshot{}, err
	}
	if _, ok := b.snaps[id]; ok {
		return storage.Snapshot{}, storage.ErrAlreadyExists
	}
	sn := storage.Snapshot{ID: id, VolumeID: vol.ID, VolumeRoot: vol.Root, Path: filepath.Join("/snaps", id), ReadOnly: !o.Writable, Created: time.Now()}
	b.snaps[id] = sn
	return sn, nil
}

func (b *memBackend) SetReadOnly(_ context.Context, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	sn, ok := b.snaps[id]
	if !ok {
		return storage.ErrNotFound
	}
	sn.ReadOnly = true
	b.snaps[id] = sn
	return nil
}

func (b *memBackend) Delete(_ context.Context, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.snaps[id]; !ok {
		return storage.ErrNotFound
	}
	delete(b.snaps, id)
	return nil
}

func (b *memBackend) Stat(_ context.Context, id string) (storage.Snapshot, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	sn, ok := b.snaps[id]
	if !ok {
		return sn, storage.ErrNotFound
	}
	return sn, nil
}

func (b *memBackend) List(context.Context) ([]storage.Snapshot, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []storage.Snapshot
	for _, sn := range b.snaps {
		out = append(out, sn)
	}
	return out, nil
}

func (b *memBackend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.snaps)
}

// memExposer is an in-memory shares.Exposer with failure injection.
type memExposer struct {
	mu     sync.Mutex
	shares map[string]shares.Share
	// failAfter makes Expose fail once this many shares have been exposed.
	failAfter int
	exposes   int
	// conns are the tree connects Connections reports (whatever the
	// shares), connErr its failure.
	conns   []shares.Connection
	connErr error
}

func (e *memExposer) Connections(context.Context) ([]shares.Connection, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.conns), e.connErr
}

func (e *memExposer) connect(share, machine string) {
	e.mu.Lock()
	e.conns = append(e.conns, shares.Connection{Share: share, Machine: machine, Since: time.Now()})
	e.mu.Unlock()
}

func newMemExposer() *memExposer {
	return &memExposer{shares: map[string]shares.Share{}, failAfter: -1}
}

func (e *memExposer) Expose(_ context.Context, s shares.Share) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.failAfter >= 0 && e.exposes >= e.failAfter {
		return fmt.Errorf("injected expose failure")
	}
	if _, ok := e.shares[strings.ToLower(s.Name)]; ok {
		return shares.ErrExists
	}
	e.exposes++
	e.shares[strings.ToLower(s.Name)] = s
	return nil
}

func (e *memExposer) SetReadOnly(_ context.Context, name string, ro bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.shares[strings.ToLower(name)]
	if !ok {
		return shares.ErrNotFound
	}
	s.ReadOnly = ro
	e.shares[strings.ToLower(name)] = s
	return nil
}

func (e *memExposer) Remove(_ context.Context, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.shares[strings.ToLower(name)]; !ok {
		return shares.ErrNotFound
	}
	delete(e.shares, strings.ToLower(name))
	return nil
}

func (e *memExposer) List(context.Context) ([]shares.Share, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []shares.Share
	for _, s := range e.shares {
		out = append(out, s)
	}
	return out, nil
}

func (e *memExposer) get(name string) (shares.Share, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.shares[strings.ToLower(name)]
	return s, ok
}

func (e *memExposer) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.shares)
}

// batchBackend adds storage.BatchCreator to memBackend and counts batches.
type batchBackend struct {
	*memBackend
	batches int
}

func (b *batchBackend) CreateBatch(ctx context.Context, reqs []storage.Request) ([]storage.Snapshot, error) {
	b.mu.Lock()
	b.batches++
	b.mu.Unlock()
	var out []storage.Snapshot
	for _, r := range reqs {
		sn, err := b.Create(ctx, r.Volume, r.ID, r.Options)
		if err != nil {
			for _, done := range out {
				b.Delete(ctx, done.ID)
			}
			return nil, err
		}
		out = append(out, sn)
	}
	return out, nil
}
