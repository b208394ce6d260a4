// Package dir is the portable storage backend: a snapshot is a copy of a
// configured directory tree, made with FICLONE (reflinks) where the
// filesystem shares extents (btrfs, XFS with reflink=1) and with
// copy_file_range(2) elsewhere (ext4, tmpfs, overlayfs).
//
// # Layout
//
// Every snapshot lives in SnapshotDir under a reserved name carrying its ID,
// so the directory alone says which snapshots exist:
//
//	<SnapshotDir>/fsrvp-<id>/meta.json   version, volume, creation time, read_only
//	<SnapshotDir>/fsrvp-<id>/data/       the copy of the volume root (Snapshot.Path)
//	<SnapshotDir>/.tmp-<id>/             a Create or Delete in progress, or its leftovers
//
// Create builds .tmp-<id>, flushes the filesystem (syncfs), renames it to
// fsrvp-<id> and fsyncs SnapshotDir. Delete renames fsrvp-<id> back to
// .tmp-<id> before removing it. A crash therefore leaves at most a .tmp-<id>,
// which List never reports and removes, as does a Delete or Create of that
// id. One SnapshotDir must be used by one Backend at a time.
//
// # What a snapshot holds
//
// Regular files, directories and symlinks (copied as symlinks, never
// followed), with their permission bits, owner (when running as root),
// access and modification times, and extended attributes (POSIX ACLs and
// Samba's DOS attributes and NT ACLs included) where the snapshot
// filesystem accepts them. Not preserved: hard links (each name becomes a
// separate file), sockets, devices and FIFOs (skipped with a warning),
// sparseness where copy_file_range does not keep it. Stats counts what was
// cloned, copied, skipped or lost.
//
// A volume with a mount point strictly below its root is not supported
// (ErrNotSupported): the copy would stop at the mount. Create also fails with
// ErrNotSupported when it meets a directory on another device (a mount or a
// nested btrfs subvolume that appeared after Volume).
//
// # Consistency
//
// The copy is best effort point-in-time: files are copied one after the
// other while the volume stays writable, so a file changed during Create may
// be captured before or after the change, and two files may be captured at
// different instants. Freezing the filesystem (FIFREEZE) around the copy is
// left for later; backends with native snapshots (btrfs, ZFS) are atomic.
//
// # Read-only snapshots
//
// A read-only snapshot records read_only in meta.json and has every write
// permission bit of its data tree cleared, so its modes differ from the
// originals by the write bits; a writable snapshot keeps the exact modes
// until SetReadOnly clears them. Permission bits do not stop root or a
// file's owner (who may chmod it back), so the backend alone cannot enforce
// read-only: SnapshotDir is created 0700 to keep local users out, and the
// exposure layer (Samba "read only = yes", or the TCP-only registry) is what
// keeps SMB clients from writing.
package dir
