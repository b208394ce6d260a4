package btrfs

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fsrvpd/fsrvpd/storage"
)

// The benchmarks snapshot subvolumes holding 100 files of 4 KiB on a
// loop-mounted btrfs. Deleting the snapshots is outside the timer. Run:
//
//	go test -run '^$' -bench . -benchtime 20x ./storage/btrfs

func benchSetup(b *testing.B, n int) (*Backend, []storage.Volume) {
	_, be, vols := setup(b, n)
	data := make([]byte, 4096)
	for _, v := range vols {
		for i := range 100 {
			if err := os.WriteFile(filepath.Join(v.Root, fmt.Sprint(i)), data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	return be, vols
}

// rawSnapshots takes one read-only snapshot of each volume with the bare
// ioctl, one after the other, and returns their names.
func rawSnapshots(b *testing.B, be *Backend, vols []storage.Volume, iter int) []string {
	dir, err := openDir(be.snapDir)
	if err != nil {
		b.Fatal(err)
	}
	defer dir.Close()
	srcs := make([]*os.File, len(vols))
	for i, v := range vols {
		if srcs[i], err = openDir(v.Root); err != nil {
			b.Fatal(err)
		}
		defer srcs[i].Close()
	}
	names := make([]string, len(vols))
	b.StartTimer()
	for i := range vols {
		names[i] = fmt.Sprintf("raw-%d-%d", iter, i)
		if err := snapCreate(int(dir.Fd()), int(srcs[i].Fd()), names[i], true); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	for _, name := range names {
		if err := snapDestroy(int(dir.Fd()), name); err != nil {
			b.Fatal(err)
		}
	}
	return names
}

// BenchmarkRawSnapshotIoctl is one BTRFS_IOC_SNAP_CREATE_V2, the floor of
// Create.
func BenchmarkRawSnapshotIoctl(b *testing.B) {
	be, vols := benchSetup(b, 1)
	b.StopTimer()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rawSnapshots(b, be, vols, i)
	}
}

// BenchmarkCreate is one Backend.Create.
func BenchmarkCreate(b *testing.B) {
	be, vols := benchSetup(b, 1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("bench-%d", i)
		if _, err := be.Create(b.Context(), vols[0], id, storage.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := be.Delete(b.Context(), id); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkCreateBatch64 snapshots 64 subvolumes with one CreateBatch. It
// also reports how many btrfs transactions the snapshots of one batch
// landed in, and the spread of their creation times.
func BenchmarkCreateBatch64(b *testing.B) {
	be, vols := benchSetup(b, 64)
	var transactions int
	var spread time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		reqs := make([]storage.Request, len(vols))
		for j, v := range vols {
			reqs[j] = storage.Request{Volume: v, ID: fmt.Sprintf("b%d-%d", i, j)}
		}
		snaps, err := be.CreateBatch(b.Context(), reqs)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		gens := map[uint64]bool{}
		first, last := snaps[0].Created, snaps[0].Created
		for _, s := range snaps {
			f, err := openDir(s.Path)
			if err != nil {
				b.Fatal(err)
			}
			info, err := getSubvolInfo(int(f.Fd()))
			f.Close()
			if err != nil {
				b.Fatal(err)
			}
			gens[info.Otransid] = true
			if s.Created.Before(first) {
				first = s.Created
			}
			if s.Created.After(last) {
				last = s.Created
			}
			if err := be.Delete(b.Context(), s.ID); err != nil {
				b.Fatal(err)
			}
		}
		transactions += len(gens)
		spread += last.Sub(first)
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(vols)), "ns/snapshot")
	b.ReportMetric(float64(transactions)/float64(b.N), "transactions/op")
	b.ReportMetric(float64(spread.Microseconds())/float64(b.N), "µs-spread/op")
}

// BenchmarkSequential64 is 64 bare ioctls one after the other, what a
// backend without CreateBatch would at best do.
func BenchmarkSequential64(b *testing.B) {
	be, vols := benchSetup(b, 64)
	b.StopTimer()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rawSnapshots(b, be, vols, i)
	}
}
