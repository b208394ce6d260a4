package storagetest_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/fsrvpd/fsrvpd/storage"
	"github.com/fsrvpd/fsrvpd/storage/dir"
	"github.com/fsrvpd/fsrvpd/storage/storagetest"
)

func TestFaulty(t *testing.T) {
	base := t.TempDir()
	vol := filepath.Join(base, "vol")
	if err := os.Mkdir(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := dir.New(dir.Config{Volumes: []string{vol}, SnapshotDir: filepath.Join(base, "snaps")})
	if err != nil {
		t.Fatal(err)
	}
	b := storagetest.NewFaulty(d)
	full, gone := errors.New("disk full"), errors.New("gone")
	b.FailAfter(storagetest.MethodCreate, 1, full)
	b.FailNext(storagetest.MethodCreate, gone)
	v, err := b.Volume(t.Context(), vol)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []error{nil, full, gone, nil} {
		id := []string{"a", "b", "c", "d"}[i]
		if _, err := b.Create(t.Context(), v, id, storage.CreateOptions{}); !errors.Is(err, want) || (want == nil) != (err == nil) {
			t.Errorf("Create #%d: %v, want %v", i+1, err, want)
		}
	}
	if n := b.Calls(storagetest.MethodCreate); n != 4 {
		t.Errorf("Calls(Create) = %d, want 4", n)
	}
	list, err := b.List(t.Context())
	if err != nil || len(list) != 2 {
		t.Fatalf("List = %v, %v; want a and d", list, err)
	}
}
