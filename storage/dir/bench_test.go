package dir

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/fsrvpd/fsrvpd/storage"
)

// BenchmarkCreate snapshots a tree of 100 files of 4 KiB in 10 directories
// on the file system of the temporary directory.
func BenchmarkCreate(b *testing.B) {
	base := b.TempDir()
	vol := filepath.Join(base, "vol")
	data := make([]byte, 4096)
	for i := range 100 {
		p := filepath.Join(vol, fmt.Sprintf("d%d/f%d", i%10, i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	be, err := New(Config{Volumes: []string{vol}, SnapshotDir: filepath.Join(base, "snaps")})
	if err != nil {
		b.Fatal(err)
	}
	v, err := be.Volume(b.Context(), vol)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("bench-%d", i)
		if _, err := be.Create(b.Context(), v, id, storage.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := be.Delete(b.Context(), id); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
