// Package scmp implements MS-SCMP (Shadow Copy Management Protocol) over
// the DCOM plumbing of rpc/dcom: the Shadow Copies tab of Computer
// Management lists a server's volumes and shadow copies and manages the
// shadow copy storage associations ("diff areas").
//
// The model on Linux (MS-SCMP §3.1.1, the digest's §11):
//
//   - Volumes are the backend volumes (btrfs subvolumes, ZFS datasets, dir
//     roots) behind the shares, named \\?\Volume{GUID}\ with a GUID derived
//     from the backend's stable volume id, displayed as their root path.
//     Inputs may be that name (with or without the trailing backslash), the
//     root path, or a share name (\\host\share or share).
//   - Shadow copies are the snapshots FSRVP committed, with their FSRVP
//     set id; listed read-only (SCMP cannot create or delete them).
//   - A storage association is one per volume, on the volume itself (the
//     copy-on-write data cannot live elsewhere), persisted in the state
//     store. Its used space is the backend's usage figure (btrfs qgroups,
//     ZFS usedbysnapshots) or, for backends without one, the apparent size
//     of the snapshot copies. Its maximum, and MaxShadowCopies, are
//     enforced after every FSRVP commit and on every resize by deleting the
//     oldest shadow copies (Decide), never one of an FSRVP set still in use.
package scmp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/server/fsrvp"
	"github.com/fsrvpd/fsrvpd/server/state"
	"github.com/fsrvpd/fsrvpd/shares"
	"github.com/fsrvpd/fsrvpd/storage"
)

// Defaults.
const (
	// DefaultMaxShadowCopies is Windows' MaxShadowCopies default.
	DefaultMaxShadowCopies = 64
	// DefaultMinDiffArea is Windows' MinDiffAreaFileSize for volumes up to
	// 500 MB; a non-zero maximum below it is VSS_E_INSUFFICIENT_STORAGE.
	DefaultMinDiffArea = 32 << 20
)

// Inventory is what SCMP needs from the FSRVP service.
type Inventory interface {
	ShadowCopies() []fsrvp.ShadowCopyInfo
	ReleaseShadowCopy(ctx context.Context, id uuid.UUID, why string) error
}

// Config configures a Model.
type Config struct {
	Backend   storage.Backend
	Shares    shares.Lister
	Inventory Inventory
	DB        *state.DB
	// ServerName is m_pwszOriginatingMachine and m_pwszServiceMachine.
	ServerName string
	// MaxShadowCopies per volume; 0 means DefaultMaxShadowCopies.
	MaxShadowCopies int
	// MinDiffArea is the smallest non-zero maximum accepted; 0 means
	// DefaultMinDiffArea, negative means none.
	MinDiffArea int64
	Logger      *logrus.Entry
}

// Volume is a snapshot-capable volume.
type Volume struct {
	GUID uuid.UUID
	// Name is the volume mount name \\?\Volume{GUID}\.
	Name string
	// Display is the volume's root path.
	Display string
	Backend storage.Volume
	Shares  []string
}

// ShadowCopy is a shadow copy of a volume.
type ShadowCopy struct {
	fsrvp.ShadowCopyInfo
	Volume Volume
}

// DiffArea is a storage association (VSS_DIFF_AREA_PROP).
type DiffArea struct {
	Volume   Volume
	MaxBytes int64 // -1: unbounded
	// Used is the space the shadow copies hold; Allocated = Used.
	Used int64
}

// diffAreaRecord is the stored form of an association.
type diffAreaRecord struct {
	VolumeID string `json:"volume_id"`
	MaxBytes int64  `json:"max_bytes"`
}

const bucket = "scmp_diff_areas"

// Model is the SCMP view of the server. Safe for concurrent use.
type Model struct {
	cfg Config
	mu  sync.Mutex // serializes association changes and pruning
}

// New returns a Model.
func New(cfg Config) *Model {
	if cfg.MaxShadowCopies <= 0 {
		cfg.MaxShadowCopies = DefaultMaxShadowCopies
	}
	if cfg.MinDiffArea == 0 {
		cfg.MinDiffArea = DefaultMinDiffArea
	}
	if cfg.Logger == nil {
		cfg.Logger = logrus.NewEntry(logrus.StandardLogger())
	}
	return &Model{cfg: cfg}
}

// volumeNamespace derives volume GUIDs: SHA-1 name-based UUIDs of
// "<backend>:<volume id>", stable as long as the backend's id is.
var volumeNamespace = uuid.MustParse("6d0b5a44-2f6e-4c55-9a3e-5f1a3c2b7e10")

// MountName returns \\?\Volume{guid}\.
func MountName(g uuid.UUID) string { return `\\?\Volume{` + g.String() + `}\` }

func (m *Model) volumeOf(v storage.Volume) Volume {
	g := uuid.NewSHA1(volumeNamespace, []byte(m.cfg.Backend.Name()+":"+v.ID))
	return Volume{GUID: g, Name: MountName(g), Display: v.Root, Backend: v}
}

// Volumes returns the volumes behind the shares, re-enumerated at every
// call (MS-SCMP §1.5), sorted by display name.
func (m *Model) Volumes(ctx context.Context) ([]Volume, error) {
	list, err := m.cfg.Shares.List(ctx)
	if err != nil {
		return nil, err
	}
	byID := map[string]*Volume{}
	for _, sh := range list {
		bv, err := m.cfg.Backend.Volume(ctx, sh.Path)
		if err != nil {
			continue // not snapshot-capable: not listed
		}
		v := byID[bv.ID]
		if v == nil {
			vv := m.volumeOf(bv)
			v = &vv
			byID[bv.ID] = v
		}
		v.Shares = append(v.Shares, sh.Name)
	}
	out := make([]Volume, 0, len(byID))
	for _, v := range byID {
		out = append(out, *v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Display < out[j].Display })
	return out, nil
}

// ErrUnknownVolume: the name matches no volume.
var ErrUnknownVolume = errors.New("unknown volume")

// Lookup resolves a volume name in any accepted form.
func (m *Model) Lookup(ctx context.Context, name string) (Volume, error) {
	vols, err := m.Volumes(ctx)
	if err != nil {
		return Volume{}, err
	}
	n := strings.TrimSpace(name)
	if g, ok := parseMountName(n); ok {
		for _, v := range vols {
			if v.GUID == g {
				return v, nil
			}
		}
		return Volume{}, fmt.Errorf("%q: %w", name, ErrUnknownVolume)
	}
	trimmed := strings.TrimRight(n, `/\`)
	if trimmed == "" && n != "" {
		trimmed = "/"
	}
	share := trimmed
	if strings.HasPrefix(share, `\\`) {
		if i := strings.LastIndexByte(share, '\\'); i > 1 {
			share = share[i+1:]
		}
	}
	for _, v := range vols {
		if filepath.Clean(v.Display) == filepath.Clean(trimmed) && strings.HasPrefix(trimmed, "/") {
			return v, nil
		}
		for _, s := range v.Shares {
			if strings.EqualFold(s, share) {
				return v, nil
			}
		}
	}
	return Volume{}, fmt.Errorf("%q: %w", name, ErrUnknownVolume)
}

// parseMountName parses \\?\Volume{GUID}\ (the trailing backslash and the
// case are free).
func parseMountName(n string) (uuid.UUID, bool) {
	const prefix = `\\?\volume{`
	if len(n) < len(prefix) || !strings.EqualFold(n[:len(prefix)], prefix) {
		return uuid.UUID{}, false
	}
	rest := strings.TrimSuffix(n[len(prefix):], `\`)
	if !strings.HasSuffix(rest, "}") {
		return uuid.UUID{}, false
	}
	g, err := uuid.Parse(strings.TrimSuffix(rest, "}"))
	return g, err == nil
}

// ShadowCopies returns the shadow copies of v, oldest first.
func (m *Model) ShadowCopies(v Volume) []ShadowCopy {
	var out []ShadowCopy
	for _, sc := range m.cfg.Inventory.ShadowCopies() {
		if sc.VolumeID == v.Backend.ID {
			out = append(out, ShadowCopy{ShadowCopyInfo: sc, Volume: v})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID.String() < out[j].ID.String()
	})
	return out
}

// Space returns the free and total bytes of v's filesystem.
func Space(v Volume) (free, total int64) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(v.Backend.Root, &st); err != nil {
		return 0, 0
	}
	return int64(st.Bavail) * int64(st.Bsize), int64(st.Blocks) * int64(st.Bsize)
}

// usage returns the space v's shadow copies hold and each one's size
// where it is known (-1 otherwise), and whether the total is known: the
// backend's figure if it reports usage (btrfs qgroups, ZFS
// usedbysnapshots; unknown while btrfs quotas are off or rescanning), else
// (dir) the apparent size of each snapshot's files. An unknown usage is
// never replaced by the apparent size on a copy-on-write backend, where it
// would count shared data and prune for nothing.
func (m *Model) usage(ctx context.Context, v Volume, copies []ShadowCopy) (int64, map[uuid.UUID]int64, bool) {
	sizes := map[uuid.UUID]int64{}
	if ur, ok := m.cfg.Backend.(storage.UsageReporter); ok {
		for _, sc := range copies {
			sizes[sc.ID] = -1
		}
		u, err := ur.Usage(ctx, v.Backend)
		if err != nil || !u.Known {
			return 0, sizes, false
		}
		return u.SnapshotBytes, sizes, true
	}
	var total int64
	for _, sc := range copies {
		n := treeSize(sc.SnapshotPath)
		sizes[sc.ID] = n
		total += n
	}
	return total, sizes, true
}

// treeSize sums the sizes of the regular files below dir.
func treeSize(dir string) int64 {
	var n int64
	if dir == "" {
		return 0
	}
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// DiffAreas returns every association, with live usage.
func (m *Model) DiffAreas(ctx context.Context) ([]DiffArea, error) {
	recs, err := m.records()
	if err != nil {
		return nil, err
	}
	vols, err := m.Volumes(ctx)
	if err != nil {
		return nil, err
	}
	var out []DiffArea
	for _, v := range vols {
		r, ok := recs[v.GUID.String()]
		if !ok {
			continue
		}
		used, _, _ := m.usage(ctx, v, m.ShadowCopies(v))
		if r.MaxBytes >= 0 && used > r.MaxBytes {
			used = r.MaxBytes // the invariant Used ≤ Allocated ≤ Maximum (§2.2.3.6)
		}
		out = append(out, DiffArea{Volume: v, MaxBytes: r.MaxBytes, Used: used})
	}
	return out, nil
}

func (m *Model) records() (map[string]diffAreaRecord, error) {
	out := map[string]diffAreaRecord{}
	err := m.cfg.DB.View(func(tx *state.Tx) error {
		return tx.ForEach(bucket, func(k string, raw json.RawMessage) error {
			var r diffAreaRecord
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			out[k] = r
			return nil
		})
	})
	return out, err
}

// Association errors, mapped to HRESULTs by the service.
var (
	ErrExists       = errors.New("association exists")
	ErrNotFound     = errors.New("association not found")
	ErrInUse        = errors.New("volume has shadow copies")
	ErrTooSmall     = errors.New("maximum below the minimum storage size")
	ErrOtherStorage = errors.New("storage must be on the volume itself")
)

// AddDiffArea creates the association of v on storage (which must be v),
// then enforces it.
func (m *Model) AddDiffArea(ctx context.Context, v, storage Volume, maxBytes int64) error {
	if storage.GUID != v.GUID {
		return ErrOtherStorage
	}
	if err := m.checkMax(maxBytes); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	err := m.cfg.DB.Update(func(tx *state.Tx) error {
		var r diffAreaRecord
		if err := tx.Get(bucket, v.GUID.String(), &r); err == nil {
			return ErrExists
		} else if !errors.Is(err, state.ErrNotFound) {
			return err
		}
		return tx.Put(bucket, v.GUID.String(), diffAreaRecord{VolumeID: v.Backend.ID, MaxBytes: maxBytes})
	})
	if err != nil {
		return err
	}
	m.cfg.Logger.WithFields(logrus.Fields{"volume": v.Name, "root": v.Display, "max_bytes": maxBytes}).Info("scmp: storage association added")
	m.enforceLocked(ctx, v, "association added")
	return nil
}

func (m *Model) checkMax(maxBytes int64) error {
	if maxBytes > 0 && m.cfg.MinDiffArea > 0 && maxBytes < m.cfg.MinDiffArea {
		return ErrTooSmall
	}
	return nil
}

// ChangeDiffAreaMaximumSize sets the maximum of v's association, then
// enforces it; a maximum of 0 deletes the association, refused with
// ErrInUse while v has shadow copies (MS-SCMP §3.1.4.4.2).
func (m *Model) ChangeDiffAreaMaximumSize(ctx context.Context, v, storage Volume, maxBytes int64) error {
	if storage.GUID != v.GUID {
		return ErrNotFound
	}
	if err := m.checkMax(maxBytes); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	err := m.cfg.DB.Update(func(tx *state.Tx) error {
		var r diffAreaRecord
		if err := tx.Get(bucket, v.GUID.String(), &r); errors.Is(err, state.ErrNotFound) {
			return ErrNotFound
		} else if err != nil {
			return err
		}
		if maxBytes == 0 {
			if len(m.ShadowCopies(v)) > 0 {
				return ErrInUse
			}
			return tx.Delete(bucket, v.GUID.String())
		}
		r.MaxBytes = maxBytes
		return tx.Put(bucket, v.GUID.String(), r)
	})
	if err != nil {
		return err
	}
	log := m.cfg.Logger.WithFields(logrus.Fields{"volume": v.Name, "root": v.Display, "max_bytes": maxBytes})
	if maxBytes == 0 {
		log.Info("scmp: storage association deleted")
		return nil
	}
	log.Info("scmp: storage association resized")
	m.enforceLocked(ctx, v, "association resized")
	return nil
}

// Enforce applies v's limits now (after a commit).
func (m *Model) Enforce(ctx context.Context, v Volume, why string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.enforceLocked(ctx, v, why)
}

// EnforceVolumeIDs applies the limits of the volumes with these backend
// ids; it is the FSRVP Committed hook.
func (m *Model) EnforceVolumeIDs(volumeIDs []string) {
	ctx := context.Background()
	vols, err := m.Volumes(ctx)
	if err != nil {
		m.cfg.Logger.WithError(err).Warn("scmp: cannot list volumes to prune")
		return
	}
	for _, v := range vols {
		for _, id := range volumeIDs {
			if v.Backend.ID == id {
				m.Enforce(ctx, v, "shadow copies committed")
				break
			}
		}
	}
}

// enforceLocked deletes the oldest shadow copies of v beyond its limits
// and logs every decision. m.mu is held.
func (m *Model) enforceLocked(ctx context.Context, v Volume, why string) {
	maxBytes := int64(-1)
	recs, err := m.records()
	if err != nil {
		m.cfg.Logger.WithError(err).Warn("scmp: cannot read storage associations")
		return
	}
	if r, ok := recs[v.GUID.String()]; ok {
		maxBytes = r.MaxBytes
	}
	log := m.cfg.Logger.WithFields(logrus.Fields{"volume": v.Name, "root": v.Display, "trigger": why})
	prevUsed := int64(-1)
	for round := 0; round < 1000; round++ {
		copies := m.ShadowCopies(v)
		used, sizes, known := m.usage(ctx, v, copies)
		if prevUsed >= 0 && known && used >= prevUsed {
			// The figure after a deletion of unknown size has not moved
			// yet (ZFS frees asynchronously): wait for it rather than
			// delete more on a stale number.
			for wait := 0; wait < 25 && used >= prevUsed; wait++ {
				time.Sleep(200 * time.Millisecond)
				copies = m.ShadowCopies(v)
				used, sizes, known = m.usage(ctx, v, copies)
			}
			if used >= prevUsed {
				log.WithFields(logrus.Fields{"used_bytes": used}).Warn("scmp: the used space did not drop after a deletion; pruning stops until the next trigger")
				return
			}
		}
		cands := make([]Candidate, len(copies))
		for i, sc := range copies {
			cands[i] = Candidate{ID: sc.ID, Created: sc.Created, Bytes: sizes[sc.ID], Pinned: sc.Pinned}
		}
		limit := maxBytes
		if !known && maxBytes >= 0 {
			log.Warn("scmp: the backend cannot tell the shadow copies' space (btrfs quotas off?): only max_shadow_copies is enforced")
			limit = -1
		}
		d := Decide(cands, used, limit, m.cfg.MaxShadowCopies)
		for _, del := range d.Delete {
			f := log.WithFields(logrus.Fields{"shadow_copy_id": del.ID, "reason": del.Reason, "used_bytes": used, "max_bytes": maxBytes, "max_count": m.cfg.MaxShadowCopies})
			if err := m.cfg.Inventory.ReleaseShadowCopy(ctx, del.ID, "scmp: "+del.Reason); err != nil {
				f.WithError(err).Warn("scmp: pruning the oldest shadow copy failed")
				return
			}
			f.Info("scmp: oldest shadow copy deleted to stay within the storage association")
		}
		if d.Over {
			log.WithFields(logrus.Fields{"used_bytes": used, "max_bytes": maxBytes, "shadow_copies": len(copies)}).
				Warn("scmp: over the storage limits, but the remaining shadow copies belong to FSRVP sets in use")
		}
		if !d.Remeasure {
			return
		}
		prevUsed = used
	}
}
