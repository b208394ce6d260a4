package btrfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/storage"
)

// CreateBatch implements storage.BatchCreator. Everything that can fail
// before the snapshots are taken (ids, volumes, sidecars) is done first;
// then one goroutine per request issues BTRFS_IOC_SNAP_CREATE_V2, all
// released at once, so that the kernel can take the snapshots in one
// transaction commit when they arrive together. If any snapshot fails, the
// others are destroyed and the first error in request order is returned.
func (b *Backend) CreateBatch(ctx context.Context, reqs []storage.Request) ([]storage.Snapshot, error) {
	ids := make([]string, len(reqs))
	for i, r := range reqs {
		if err := storage.CheckID(r.ID); err != nil {
			return nil, err
		}
		if slices.Contains(ids[:i], r.ID) {
			return nil, fmt.Errorf("snapshot %s requested twice: %w", r.ID, storage.ErrAlreadyExists)
		}
		ids[i] = r.ID
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(reqs) == 0 {
		return nil, nil
	}
	srcs, dirs := make([]*os.File, len(reqs)), make([]*os.File, len(reqs))
	defer func() {
		for _, f := range append(srcs, dirs...) {
			if f != nil {
				f.Close()
			}
		}
	}()
	var err error
	for i, r := range reqs {
		if srcs[i], err = b.openVolume(r.Volume); err != nil {
			return nil, err
		}
	}

	// Lock in sorted order: two batches sharing ids cannot deadlock.
	sorted := slices.Sorted(slices.Values(ids))
	for _, id := range sorted {
		unlock := b.locks.Lock(id)
		defer unlock()
	}
	for i, r := range reqs {
		if dirs[i], err = b.prepare(r.Volume, r.ID); err == nil {
			err = ctx.Err()
		}
		if err != nil {
			for _, id := range ids[:i+1] {
				if dirs[i] != nil || id != r.ID {
					b.removeIDDir(id)
				}
			}
			return nil, err
		}
	}

	errs := make([]error, len(reqs))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, r := range reqs {
		wg.Go(func() {
			<-start
			beforeSnapCreate(r.ID)
			errs[i] = b.take(dirs[i], srcs[i], r.ID, r.Options)
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	took := time.Since(t0)

	if err := errors.Join(errs...); err != nil {
		var first error
		for i, e := range errs {
			if e != nil {
				if first == nil {
					first = e
				}
				continue
			}
			b.rollback(ids[i : i+1])
		}
		return nil, fmt.Errorf("batch of %d snapshots rolled back: %w", len(reqs), first)
	}
	out := make([]storage.Snapshot, len(reqs))
	for i, id := range ids {
		if out[i], err = b.stat(id); err != nil {
			b.rollback(ids)
			return nil, fmt.Errorf("batch of %d snapshots rolled back: %w", len(reqs), err)
		}
	}
	b.log.WithFields(logrus.Fields{"snapshots": len(reqs), "duration_s": took.Seconds()}).Info("Snapshot batch created")
	return out, nil
}

// beforeSnapCreate is called by CreateBatch just before each ioctl; tests
// replace it to make one snapshot of a batch fail.
var beforeSnapCreate = func(id string) {}

// rollback destroys the snapshots of ids, logging failures.
func (b *Backend) rollback(ids []string) {
	for _, id := range ids {
		if err := b.destroy(id); err != nil {
			b.log.WithError(err).WithField("snapshot", id).Error("Rolling back a snapshot of a failed batch")
		}
	}
}
