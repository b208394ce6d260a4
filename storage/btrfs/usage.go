package btrfs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/fsrvpd/fsrvpd/storage"
)

// Usage implements storage.UsageReporter: the sum of the exclusive bytes of
// the level-0 qgroups of vol's snapshots, read from the quota tree with
// BTRFS_IOC_TREE_SEARCH (which needs CAP_SYS_ADMIN). Known is false when
// quotas are disabled, or while the qgroup numbers are being rescanned or
// are marked inconsistent, and with simple quotas (which charge shared
// extents to the subvolume that wrote them, never to a snapshot). Exclusive bytes are those only that snapshot
// references: data shared by two snapshots of the same volume but no longer
// by the volume is counted by neither.
func (b *Backend) Usage(ctx context.Context, vol storage.Volume) (storage.VolumeUsage, error) {
	u := storage.VolumeUsage{VolumeID: vol.ID}
	if err := ctx.Err(); err != nil {
		return u, err
	}
	f, err := b.openVolume(vol)
	if err != nil {
		return u, err
	}
	defer f.Close()
	fd := int(f.Fd())
	status, err := searchItem(fd, quotaTreeObjectID, 0, qgroupStatusKey, 0)
	if errors.Is(err, unix.ENOENT) || err == nil && len(status) < 24 {
		return u, nil // no quota tree: quotas off
	}
	if err != nil {
		return u, fmt.Errorf("volume %s: quota status: %w", vol.ID, err)
	}
	flags := binary.LittleEndian.Uint64(status[16:])
	if flags&qgroupStatusOn == 0 || flags&(qgroupStatusRescan|qgroupStatusInconsistent|qgroupStatusSimpleMode) != 0 {
		return u, nil
	}
	list, err := b.List(ctx)
	if err != nil {
		return u, err
	}
	for _, s := range list {
		if s.VolumeID != vol.ID {
			continue
		}
		excl, err := b.exclusive(fd, s.ID)
		if errors.Is(err, storage.ErrNotFound) {
			continue // deleted since List
		}
		if err != nil {
			return u, err
		}
		u.SnapshotBytes += excl
	}
	u.Known = true
	return u, nil
}

// exclusive returns the exclusive bytes of the qgroup 0/<subvolume id> of
// snapshot id; fd is any file of the filesystem.
func (b *Backend) exclusive(fd int, id string) (int64, error) {
	f, err := b.openSnapshot(id)
	if err != nil {
		return 0, err
	}
	info, err := getSubvolInfo(int(f.Fd()))
	f.Close()
	if err != nil {
		return 0, fmt.Errorf("snapshot %s: GET_SUBVOL_INFO: %w", id, err)
	}
	item, err := searchItem(fd, quotaTreeObjectID, 0, qgroupInfoKey, info.TreeID)
	if err != nil {
		return 0, fmt.Errorf("snapshot %s: qgroup 0/%d: %w", id, info.TreeID, err)
	}
	if len(item) < 32 {
		return 0, nil // no qgroup (created while quotas were off and not rescanned)
	}
	return int64(binary.LittleEndian.Uint64(item[24:])), nil
}
