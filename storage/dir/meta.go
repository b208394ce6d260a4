package dir

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

const (
	metaName    = "meta.json"
	metaVersion = 1
)

// meta is the content of <SnapshotDir>/fsrvp-<id>/meta.json.
type meta struct {
	Version    int       `json:"version"`
	ID         string    `json:"id"`
	VolumeID   string    `json:"volume_id"`
	VolumeRoot string    `json:"volume_root"`
	Created    time.Time `json:"created"`
	ReadOnly   bool      `json:"read_only"`
}

func readMeta(dir string) (meta, error) {
	var m meta
	data, err := os.ReadFile(filepath.Join(dir, metaName))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("%s: %w", filepath.Join(dir, metaName), err)
	}
	if m.Version != metaVersion {
		return m, fmt.Errorf("%s: unsupported version %d", filepath.Join(dir, metaName), m.Version)
	}
	return m, nil
}

func encodeMeta(m meta) []byte {
	data, err := json.MarshalIndent(m, "", "\t")
	if err != nil {
		panic(err) // a struct of strings, a bool and a time always encodes
	}
	return append(data, '\n')
}

// writeFileAtomic replaces dir/name with data: it writes a temporary file in
// dir, fsyncs it, renames it over name and fsyncs dir. A crash leaves either
// the old or the new content.
func writeFileAtomic(dir, name string, data []byte, perm os.FileMode) (err error) {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}
