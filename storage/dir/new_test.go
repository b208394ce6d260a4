package dir

import (
	"os"
	"path/filepath"
	"testing"
)

func TestNewRejects(t *testing.T) {
	base := t.TempDir()
	vol, sub, other := filepath.Join(base, "vol"), filepath.Join(base, "vol", "sub"), filepath.Join(base, "other")
	for _, d := range []string{sub, other} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	snaps := filepath.Join(base, "snaps")
	for name, cfg := range map[string]Config{
		"no volumes":            {SnapshotDir: snaps},
		"relative volume":       {Volumes: []string{"vol"}, SnapshotDir: snaps},
		"missing volume":        {Volumes: []string{filepath.Join(base, "nope")}, SnapshotDir: snaps},
		"nested volumes":        {Volumes: []string{vol, sub}, SnapshotDir: snaps},
		"same volume twice":     {Volumes: []string{other, other + "/"}, SnapshotDir: snaps},
		"relative snapshot dir": {Volumes: []string{vol}, SnapshotDir: "snaps"},
		"snapshots in a volume": {Volumes: []string{vol}, SnapshotDir: filepath.Join(sub, "snaps")},
		"volume in snapshots":   {Volumes: []string{sub}, SnapshotDir: vol},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New(%+v) succeeded", name, cfg)
		}
	}
	b, err := New(Config{Volumes: []string{vol, other}, SnapshotDir: snaps})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(snaps); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("snapshot dir: %v, %v; want mode 0700", fi.Mode(), err)
	}
	if b.Name() != "dir" {
		t.Fatalf("Name = %q", b.Name())
	}
}
