package zfs_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsrvpd/fsrvpd/storage"
	"github.com/fsrvpd/fsrvpd/storage/storagetest"
)

// ours lists the datasets and snapshots of pool/c that carry an fsrvp- name.
func ours(t *testing.T, p *storagetest.Pool, c string) []string {
	t.Helper()
	var got []string
	for _, l := range strings.Split(zfsCmd(t, "list", "-H", "-o", "name", "-t", "all", "-r", p.Name+"/"+c), "\n") {
		if strings.Contains(l, "fsrvp-") {
			got = append(got, l)
		}
	}
	return got
}

func TestRecursive(t *testing.T) {
	p := storagetest.ZFSPool(t)
	const c = "r"
	_, root := p.Dataset(t, c+"/vol")
	p.Dataset(t, c+"/vol/child")
	p.Dataset(t, c+"/vol/child/grand")
	// A child mounted deeper than its name says.
	other := filepath.Join(root, "a", "b", "other")
	zfsCmd(t, "create", "-o", "mountpoint="+other, p.Name+"/"+c+"/vol/other")
	files := map[string]string{"f": "top", "child/f": "child", "child/grand/f": "grand", "a/b/other/f": "other"}
	for rel, data := range files {
		if err := os.WriteFile(filepath.Join(root, rel), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := caseConfig(t, p, c)
	plain := newBackend(t, cfg)
	cfg.Recursive = true
	b := newBackend(t, cfg)
	t.Cleanup(func() {
		deleteAll(t, newBackend(t, cfg))
		if err := storagetest.RetryBusy("zfs", "destroy", "-r", p.Name+"/"+c); err != nil {
			t.Error(err)
		}
	})

	if _, err := plain.Volume(t.Context(), root); !errors.Is(err, storage.ErrNotSupported) {
		t.Errorf("Volume with child datasets, not Recursive: %v, want ErrNotSupported", err)
	}
	vol, err := b.Volume(t.Context(), filepath.Join(root, "a"))
	if err != nil || vol.Root != root {
		t.Fatalf("Volume with child datasets, Recursive: %+v, %v", vol, err)
	}

	ro, err := b.Create(t.Context(), vol, "ro", storage.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rw, err := b.Create(t.Context(), vol, "rw", storage.CreateOptions{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []storage.Snapshot{ro, rw} {
		for rel, want := range files {
			if got, err := os.ReadFile(filepath.Join(s.Path, rel)); err != nil || string(got) != want {
				t.Errorf("%s in snapshot %s: %q, %v; want %q", rel, s.ID, got, err, want)
			}
		}
	}
	checkRO := func(s storage.Snapshot, want bool) {
		t.Helper()
		for rel := range files {
			err := os.WriteFile(filepath.Join(s.Path, rel), []byte("changed"), 0o644)
			if want != (err != nil) {
				t.Errorf("write %s into snapshot %s: %v, want read-only: %v", rel, s.ID, err, want)
			}
		}
		if got, err := b.Stat(t.Context(), s.ID); err != nil || got.ReadOnly != want || got.Path != s.Path {
			t.Errorf("Stat(%s) = %+v, %v", s.ID, got, err)
		}
	}
	checkRO(ro, true)
	checkRO(rw, false)
	if err := b.SetReadOnly(t.Context(), "rw"); err != nil {
		t.Fatal(err)
	}
	checkRO(rw, true)
	if got, err := os.ReadFile(filepath.Join(root, "child", "grand", "f")); err != nil || string(got) != "grand" {
		t.Errorf("the volume changed: %q, %v", got, err)
	}

	list, err := b.List(t.Context())
	if err != nil || len(list) != 2 {
		t.Errorf("List = %+v, %v; want the 2 snapshots", list, err)
	}
	// A restarted backend finds the trees.
	if list, err := newBackend(t, cfg).List(t.Context()); err != nil || len(list) != 2 {
		t.Errorf("List after a restart = %+v, %v; want the 2 snapshots", list, err)
	}

	// A Create interrupted after zfs snapshot -r is a leftover: List
	// removes all of it.
	zfsCmd(t, "snapshot", "-r", "-o", "org.fsrvpd:state=creating", p.Name+"/"+c+"/vol@fsrvp-half")
	if _, err := b.Stat(t.Context(), "half"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat of an interrupted recursive Create: %v, want ErrNotFound", err)
	}
	if list, err := b.List(t.Context()); err != nil || len(list) != 2 {
		t.Errorf("List = %+v, %v; want the 2 snapshots", list, err)
	}
	for _, n := range ours(t, p, c) {
		if strings.Contains(n, "fsrvp-half") {
			t.Errorf("List left %s", n)
		}
	}

	// A batch of a recursive and a plain snapshot of one pool.
	_, plainRoot := p.Dataset(t, c+"/plain")
	plainVol, err := b.Volume(t.Context(), plainRoot)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := b.CreateBatch(t.Context(), []storage.Request{{Volume: vol, ID: "b-rec"}, {Volume: plainVol, ID: "b-plain"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(batch[0].Path, "child", "grand", "f")); err != nil || string(got) != "grand" {
		t.Errorf("child/grand/f in a batch snapshot: %q, %v", got, err)
	}
	for _, id := range []string{"b-rec", "b-plain"} {
		if err := b.Delete(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}

	for _, id := range []string{"ro", "rw"} {
		if err := b.Delete(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	if got := ours(t, p, c); len(got) != 0 {
		t.Errorf("Delete left %q", got)
	}
}
