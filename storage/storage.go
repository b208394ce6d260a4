// Package storage defines how fsrvpd takes, lists and deletes point-in-time
// snapshots of a volume. It knows nothing about SMB, FSRVP or shares: the
// server decides when to snapshot, and the shares package decides how a
// snapshot is exposed.
//
// Vocabulary:
//
//   - A Volume is a snapshottable file store: a btrfs subvolume, a ZFS
//     dataset, or a configured directory root for the dir backend. FSRVP calls
//     it the VolumeName of a shadow copy (MS-FSRVP §3.1.1.2).
//   - A Snapshot is a copy of one whole Volume at one instant, named by an ID
//     chosen by the caller. Snapshot.Path is where the copy of the volume root
//     is readable on the local filesystem; a share that is a subdirectory of
//     the volume is found at the same relative path below it.
//
// Every snapshot a backend creates is discoverable from the filesystem alone
// (a reserved name prefix carrying the ID), so that List rebuilds the truth
// after a crash. A Create that fails, or that is interrupted by a crash,
// leaves nothing that List reports as a finished snapshot; leftovers of an
// interrupted Create are removed by the next List or Delete of that ID.
package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// Sentinel errors. Backends wrap them with the identifiers involved
// (fmt.Errorf("snapshot %s: %w", id, storage.ErrNotFound)); callers test with
// errors.Is.
var (
	// ErrNotFound: no such path, volume or snapshot.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: a snapshot with that ID exists already.
	ErrAlreadyExists = errors.New("already exists")
	// ErrNotSupported: the path cannot be snapshotted by this backend (not on
	// a volume it manages, or mount points / nested volumes below it).
	ErrNotSupported = errors.New("not supported")
	// ErrInvalidID: the ID does not match ValidID.
	ErrInvalidID = errors.New("invalid snapshot id")
)

// ValidID is the syntax of a snapshot ID: it becomes part of file and
// dataset names, so it is restricted to a safe alphabet.
var ValidID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,63}$`)

// CheckID returns an error wrapping ErrInvalidID unless id matches ValidID.
// Backends call it (or CheckCall) first in every method that takes an id.
func CheckID(id string) error {
	if !ValidID.MatchString(id) {
		return fmt.Errorf("snapshot %q: %w", id, ErrInvalidID)
	}
	return nil
}

// CheckCall is the preamble of the backend methods that take an id: the id
// is valid (CheckID) and ctx is still live.
func CheckCall(ctx context.Context, id string) error {
	if err := CheckID(id); err != nil {
		return err
	}
	return ctx.Err()
}

// ResolvePath is the preamble of every backend's Volume: ctx is still
// live, path is absolute (else ErrNotSupported) and exists (else
// ErrNotFound); it returns path with its symbolic links resolved.
func ResolvePath(ctx context.Context, path string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if !filepath.IsAbs(path) {
		return "", fmt.Errorf("path %q is not absolute: %w", path, ErrNotSupported)
	}
	real, err := filepath.EvalSymlinks(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("path %s: %w", path, ErrNotFound)
	}
	return real, err
}

// Volume is a snapshottable file store.
type Volume struct {
	// ID is stable for the life of the volume and unique within the backend
	// (btrfs subvolume UUID, ZFS dataset guid, dir root path).
	ID string
	// Root is the mounted path of the volume's root directory.
	Root string
}

// Snapshot is one point-in-time copy of a Volume.
type Snapshot struct {
	ID       string
	VolumeID string
	// VolumeRoot is the Root of the volume it was taken from.
	VolumeRoot string
	// Path is where the copy of VolumeRoot is readable.
	Path     string
	ReadOnly bool
	Created  time.Time
}

// CreateOptions tune Create.
type CreateOptions struct {
	// Writable creates a snapshot that can be written to until SetReadOnly
	// (FSRVP ATTR_AUTO_RECOVERY).
	Writable bool
}

// Backend takes snapshots. Implementations are safe for concurrent use.
// Every method that takes an id fails with ErrInvalidID if the id does not
// match ValidID. storage/storagetest checks an implementation against this
// contract.
type Backend interface {
	// Name is the backend's short name ("dir", "btrfs", "zfs").
	Name() string
	// Volume resolves path to the volume that contains it. It fails with
	// ErrNotFound if path does not exist, and with ErrNotSupported if the path
	// is not on a volume this backend can snapshot or has mount points or
	// nested volumes below it.
	Volume(ctx context.Context, path string) (Volume, error)
	// Create snapshots vol under id. ErrAlreadyExists if id is taken,
	// ErrInvalidID if id is malformed. A failed Create leaves nothing behind.
	Create(ctx context.Context, vol Volume, id string, opts CreateOptions) (Snapshot, error)
	// SetReadOnly turns a writable snapshot read-only for good. It is a no-op
	// on a snapshot that is read-only already. ErrNotFound if absent.
	SetReadOnly(ctx context.Context, id string) error
	// Delete removes the snapshot, including the leftovers of an interrupted
	// Create of that id. ErrNotFound if nothing of that id exists.
	Delete(ctx context.Context, id string) error
	// Stat describes one snapshot. ErrNotFound if absent.
	Stat(ctx context.Context, id string) (Snapshot, error)
	// List returns every finished snapshot this backend owns, in no
	// particular order.
	List(ctx context.Context) ([]Snapshot, error)
}

// Request is one snapshot of a CreateBatch.
type Request struct {
	Volume  Volume
	ID      string
	Options CreateOptions
}

// BatchCreator is implemented by backends that can snapshot several volumes
// closer to one instant than separate Creates can (ZFS: one `zfs snapshot`
// per pool, atomic within the pool; btrfs: parallel ioctls). CreateBatch is
// all or nothing: if any snapshot fails, those taken are deleted and the
// error is returned. The snapshots come back in the order of reqs. Callers
// use it when a backend has it and fall back to parallel Creates.
type BatchCreator interface {
	CreateBatch(ctx context.Context, reqs []Request) ([]Snapshot, error)
}

// VolumeUsage is the space a volume's snapshots hold.
type VolumeUsage struct {
	VolumeID string
	// SnapshotBytes is the space held only by snapshots (ZFS
	// usedbysnapshots, btrfs exclusive qgroup bytes of our snapshots).
	SnapshotBytes int64
	// Known is false when the filesystem cannot tell (btrfs without
	// qgroups, the dir backend on a filesystem without reflinks).
	Known bool
}

// UsageReporter is implemented by backends that can report snapshot space.
type UsageReporter interface {
	Usage(ctx context.Context, vol Volume) (VolumeUsage, error)
}
