package btrfs

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"
)

const (
	metaVersion = 1
	metaXattr   = "user.fsrvpd.meta"
)

// meta is what the snapshot subvolume cannot say about itself, kept as the
// extended attribute user.fsrvpd.meta of <SnapshotDir>/fsrvp-<id>.
type meta struct {
	Version    int    `json:"version"`
	ID         string `json:"id"`
	VolumeID   string `json:"volume_id"`
	VolumeRoot string `json:"volume_root"`
}

// writeMeta sets the meta xattr on the directory open as fd. An xattr is
// metadata: the transaction that the snapshot ioctl commits makes it
// durable, without the fsync a file's data would need.
func writeMeta(fd int, m meta) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return unix.Fsetxattr(fd, metaXattr, data, 0)
}

func (b *Backend) readMeta(id string) (meta, error) {
	var m meta
	p := b.idDir(id)
	buf := make([]byte, 1024)
	for {
		n, err := unix.Getxattr(p, metaXattr, buf)
		if err == unix.ERANGE {
			buf = make([]byte, 2*len(buf))
			continue
		}
		if err != nil {
			return m, fmt.Errorf("%s: getxattr %s: %w", p, metaXattr, err)
		}
		buf = buf[:n]
		break
	}
	if err := json.Unmarshal(buf, &m); err != nil {
		return m, fmt.Errorf("%s: %s: %w", p, metaXattr, err)
	}
	if m.Version != metaVersion {
		return m, fmt.Errorf("%s: %s: unsupported version %d", p, metaXattr, m.Version)
	}
	if m.ID != id {
		return m, fmt.Errorf("%s: %s names snapshot %q", p, metaXattr, m.ID)
	}
	return m, nil
}

// idDir is the directory of snapshot id; the subvolume is snapPath(id).
func (b *Backend) idDir(id string) string { return filepath.Join(b.snapDir, idPrefix+id) }

func (b *Backend) snapPath(id string) string { return filepath.Join(b.idDir(id), dataName) }
