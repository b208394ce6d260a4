// Package zfs is the ZFS storage backend: a snapshot is a ZFS snapshot of
// the dataset that holds the share, taken and managed through the zfs(8)
// command line, so that it works with OpenZFS and with zfs-fuse 0.7 alike
// and needs no cgo.
//
// # Names and properties
//
// ZFS alone says which snapshots exist; the backend keeps no state:
//
//	<dataset>@fsrvp-<id>                   the snapshot, with org.fsrvpd:state
//	<pool>/<CloneParent>/fsrvp-<id>         its clone, if any, with org.fsrvpd:id=<id>
//
// org.fsrvpd:state marks a snapshot as fsrvpd's and records how far its
// Create got: "creating", set atomically by `zfs snapshot -o`, then
// "snapdir" or "clone" once it is finished. A snapshot named fsrvp-<id>
// without the property is someone else's and is ignored.
//
// # Exposure
//
// A read-only snapshot is exposed at <mountpoint>/.zfs/snapshot/fsrvp-<id>
// when that directory is reachable (OpenZFS). Otherwise (zfs-fuse has no
// .zfs directory) and for writable snapshots (FSRVP ATTR_AUTO_RECOVERY),
// Create clones the snapshot; SetReadOnly sets readonly=on on the clone and
// records it in org.fsrvpd:readonly, because zfs-fuse misreports the
// readonly property of mounted datasets. Snapshot.Path is the clone's
// mountpoint, inherited from CloneParent.
//
// Every snapshot carries the hold tag HoldTag (`zfs hold fsrvpd …`) for as
// long as it exists, so that sanoid, zfs-auto-snapshot or an admin's
// `zfs destroy` cannot remove a snapshot a client is reading. Delete
// destroys the clone, releases the hold, then destroys the snapshot. If
// zfs has no holds, the backend logs a warning once and goes on without.
//
// # Atomicity and crashes
//
// CreateBatch takes the snapshots of one pool with a single
// `zfs snapshot a@x b@y …`, one transaction group: the point in time is the
// same for every dataset of the pool. zfs-fuse 0.7 takes one snapshot per
// command: there the batch falls back to one command per dataset, after a
// warning. Across pools there is no common instant.
//
// Create is a CreateBatch of one: snapshot, hold, clone, then the final
// org.fsrvpd:state. A snapshot still "creating", or marked "clone" with no
// clone (a Delete interrupted after destroying it), is a leftover: List
// and Stat never report it, and List, Delete and a Create of that id
// destroy it.
//
// # Volumes
//
// A volume is a mounted filesystem dataset, found through
// /proc/self/mountinfo (fstype "zfs" or "fuse.zfs", source = dataset) and
// identified by its guid. Paths with a mount point below the dataset's
// root, child datasets included, are unsupported: a snapshot holds one
// dataset, not its children. Config.Datasets limits the datasets the
// backend serves and lists; clones are never volumes.
//
// # Recursive snapshots
//
// With Config.Recursive, mounts of descendant datasets below the volume's
// root are accepted (other mounts, and a volume that contains the clone
// parent, stay unsupported). If the volume has such children, Create runs
// `zfs snapshot -r -o org.fsrvpd:state=creating <dataset>@fsrvp-<id>`, one
// command and one instant for the whole tree (zfs-fuse 0.7 has -r), holds
// every snapshot of the tree, and exposes it through clones whatever
// .zfs/snapshot offers (that view shows one dataset): the volume's clone
// <pool>/<CloneParent>/fsrvp-<id>, then, parents first, one clone per
// child mounted below the volume, <clone>/<n>, with
// mountpoint=<clone's mountpoint>/<the child's path relative to the
// volume root>. The snapshots of descendants under the same id are members
// of the snapshot of their topmost ancestor: List and Stat report the tree
// as one snapshot, finished when that snapshot's state says so.
// SetReadOnly sets the children's clones read-only before the volume's.
// Delete first marks the tree "creating" again (so that a crash midway
// leaves a leftover, never a snapshot with missing children), destroys the
// children's clones deepest mount first, the volume's clone, then releases
// and destroys the snapshots. In a CreateBatch, the recursive and the plain
// snapshots of one pool are taken by two commands.
//
// # Commands
//
// Every command goes through one Runner (ExecRunner by default), which logs
// argv, duration, exit code and stderr. Failures are *CommandError values
// whose Unwrap maps known stderr messages to storage.ErrNotFound,
// storage.ErrAlreadyExists, ErrBusy, ErrNoSuchTag, ErrUsage and
// ErrUnavailable. Numbers and times are read with `zfs get -Hp`, which
// both zfs-fuse and OpenZFS have (`zfs list -p` is OpenZFS only).
package zfs
