// Package btrfs is the storage backend for btrfs: a snapshot is a btrfs
// snapshot of the subvolume that holds the share, taken with the kernel's
// ioctls (no cgo, no btrfs CLI).
//
// # Volumes
//
// The volume of a path is the subvolume containing it: the nearest
// directory at or above it whose inode number is 256 (the root of every
// subvolume). Volume.ID is the subvolume UUID (BTRFS_IOC_GET_SUBVOL_INFO;
// fsid/treeid for a top level without one) and Volume.Root its mounted
// path. A share that is a subdirectory of a subvolume is supported: its
// copy is at the same relative path below Snapshot.Path.
//
// A volume is not supported (storage.ErrNotSupported) when it is not on
// btrfs, is on another btrfs filesystem than SnapshotDir, contains
// SnapshotDir, is reached through a bind mount of a directory that is not a
// subvolume root, or has anywhere below its root a nested subvolume
// (BTRFS_IOC_GET_SUBVOL_ROOTREF) or a mount point (/proc/self/mountinfo):
// a snapshot would hold an empty directory in their place.
//
// With Config.Recursive, nested subvolumes (not mount points) are accepted.
// The snapshot of such a volume is a tree: the volume is snapshotted,
// writable, to fsrvp-<id>/building; each nested subvolume, parents first,
// is snapshotted into the empty directory that stands for it there; for a
// read-only snapshot every subvolume of the tree is then made read-only,
// the nested ones first; last, building is renamed to data, which makes the
// snapshot exist. The snapshots of a tree are taken one after the other,
// not at one instant. A leftover building tree is destroyed by List, Delete
// and the next Create of its id; deletion walks the tree deepest first
// (SNAP_DESTROY refuses a subvolume that holds others), clearing the
// read-only flag of the subvolumes that hold others. List and Stat report
// the tree as one snapshot; SetReadOnly covers all of it.
//
// # Layout
//
// Every snapshot lives in SnapshotDir under a name carrying its ID, so the
// directory alone says which snapshots exist:
//
//	<SnapshotDir>/fsrvp-<id>/        directory; xattr user.fsrvpd.meta (JSON:
//	                                 volume ID and root path)
//	<SnapshotDir>/fsrvp-<id>/data    the snapshot subvolume (Snapshot.Path)
//
// The subvolume says when it was made (otime: Snapshot.Created) and whether
// it is read-only; the xattr says what the subvolume cannot: the volume it
// was taken from. Names come from the caller's unique IDs, so any number of
// snapshots per second never collide. Each snapshot has its own parent
// directory because the kernel creates snapshots under the lock of the
// parent directory: snapshots in distinct directories are taken in
// parallel, several in one transaction.
//
// Create makes fsrvp-<id> (mkdir also reserves the ID), sets its xattr,
// then issues BTRFS_IOC_SNAP_CREATE_V2 on it with the volume root as
// source, with BTRFS_SUBVOL_RDONLY unless the snapshot is writable (FSRVP
// ATTR_AUTO_RECOVERY). SetReadOnly sets that flag later with
// BTRFS_IOC_SUBVOL_SETFLAGS; a read-only subvolume refuses every write with
// EROFS, root's included. Delete issues BTRFS_IOC_SNAP_DESTROY, removes
// fsrvp-<id> and fsyncs SnapshotDir. CreateBatch (storage.BatchCreator)
// issues the ioctls of several volumes in parallel and destroys them all if
// one fails. Usage (storage.UsageReporter) sums the exclusive qgroup bytes
// of a volume's snapshots when quotas are enabled.
//
// # Crashes
//
// The directory and its xattr are metadata, and the snapshot ioctl commits
// a btrfs transaction, so once the ioctl returns the snapshot exists
// durably together with its directory and xattr, and no fsync is needed
// on the way. A crash during Create or Delete leaves at worst a
// fsrvp-<id> directory without a data subvolume. List never reports it and
// removes it, as do a Delete or Create of that ID. One SnapshotDir must be
// used by one Backend at a time; the Backend serialises operations on one
// ID.
package btrfs
