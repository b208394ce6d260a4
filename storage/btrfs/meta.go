package btrfs

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

const metaVersion = 1

// meta is the content of the sidecar <SnapshotDir>/fsrvp-<id>.json: what the
// snapshot subvolume cannot say about itself.
type meta struct {
	Version    int    `json:"version"`
	ID         string `json:"id"`
	VolumeID   string `json:"volume_id"`
	VolumeRoot string `json:"volume_root"`
}

// writeMeta writes and fsyncs the sidecar of m.ID. It need not be atomic: a
// sidecar is only trusted next to a subvolume, and the subvolume is created
// after the sidecar is on disk. The snapshot ioctl commits a transaction,
// which makes the sidecar's directory entry durable with the subvolume.
func (b *Backend) writeMeta(m meta) error {
	data, err := json.MarshalIndent(m, "", "\t")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(b.metaPath(m.ID), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (b *Backend) readMeta(id string) (meta, error) {
	var m meta
	p := b.metaPath(id)
	data, err := os.ReadFile(p)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("%s: %w", p, err)
	}
	if m.Version != metaVersion {
		return m, fmt.Errorf("%s: unsupported version %d", p, m.Version)
	}
	if m.ID != id {
		return m, fmt.Errorf("%s names snapshot %q", p, m.ID)
	}
	return m, nil
}

func (b *Backend) metaPath(id string) string {
	return filepath.Join(b.snapDir, snapPrefix+id+metaSuffix)
}
