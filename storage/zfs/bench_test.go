package zfs_test

import (
	"errors"
	"fmt"
	"os/exec"
	"testing"

	"github.com/fsrvpd/fsrvpd/storage"
	"github.com/fsrvpd/fsrvpd/storage/storagetest"
	"github.com/fsrvpd/fsrvpd/storage/zfs"
)

// benchBackend makes n volumes pool/c/v<i> and a quiet backend on them.
func benchBackend(b *testing.B, p *storagetest.Pool, n int) (*zfs.Backend, []storage.Volume, []string) {
	cfg := zfs.Config{Datasets: []string{p.Name + "/c"}, CloneParent: "c/clones"}
	be := newBackend(b, cfg)
	var vols []storage.Volume
	var names []string
	for i := range n {
		name, root := p.Dataset(b, fmt.Sprintf("c/v%d", i))
		v, err := be.Volume(b.Context(), root)
		if err != nil {
			b.Fatal(err)
		}
		vols = append(vols, v)
		names = append(names, name)
	}
	b.Cleanup(func() { deleteAll(b, be) })
	return be, vols, names
}

func deleteIDs(b *testing.B, be *zfs.Backend, ids []string) {
	for _, id := range ids {
		if err := be.Delete(b.Context(), id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreate measures one read-only Create (a clone under zfs-fuse).
func BenchmarkCreate(b *testing.B) {
	p := storagetest.ZFSPool(b)
	be, vols, _ := benchBackend(b, p, 1)
	i := 0
	for b.Loop() {
		i++
		if _, err := be.Create(b.Context(), vols[0], fmt.Sprintf("b%d", i), storage.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSnapshot64 compares three ways of snapshotting 64 datasets of
// one pool: one CreateBatch, 64 Creates, and the bare zfs snapshot
// command(s) that CreateBatch starts with.
func BenchmarkSnapshot64(b *testing.B) {
	const n = 64
	p := storagetest.ZFSPool(b)
	be, vols, names := benchBackend(b, p, n)
	round := 0
	ids := func() []string {
		round++
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("r%d-%d", round, i)
		}
		return out
	}
	b.Run("CreateBatch", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			batch := ids()
			reqs := make([]storage.Request, n)
			for i := range reqs {
				reqs[i] = storage.Request{Volume: vols[i], ID: batch[i]}
			}
			b.StartTimer()
			if _, err := be.CreateBatch(b.Context(), reqs); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			deleteIDs(b, be, batch)
			b.StartTimer()
		}
	})
	b.Run("SequentialCreates", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			batch := ids()
			b.StartTimer()
			for i, id := range batch {
				if _, err := be.Create(b.Context(), vols[i], id, storage.CreateOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			deleteIDs(b, be, batch)
			b.StartTimer()
		}
	})
	b.Run("RawZFSSnapshot", func(b *testing.B) {
		run := zfs.ExecRunner{}
		multi := true
		for b.Loop() {
			b.StopTimer()
			snaps := make([]string, n)
			for i, name := range names {
				snaps[i] = name + "@raw"
			}
			b.StartTimer()
			if multi {
				_, err := run.Run(b.Context(), "zfs", append([]string{"snapshot"}, snaps...)...)
				if errors.Is(err, zfs.ErrUsage) {
					b.Log("this zfs takes one snapshot per command: timing 64 commands")
					multi = false
				} else if err != nil {
					b.Fatal(err)
				}
			}
			if !multi {
				for _, s := range snaps {
					if _, err := run.Run(b.Context(), "zfs", "snapshot", s); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			for _, s := range snaps {
				if out, err := exec.Command("zfs", "destroy", s).CombinedOutput(); err != nil {
					b.Fatalf("%v: %s", err, out)
				}
			}
			b.StartTimer()
		}
	})
}
