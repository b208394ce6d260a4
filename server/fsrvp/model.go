package fsrvp

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Status of a shadow copy set, MS-FSRVP §3.1.1.1.
type Status int

// Set states in the order a successful sequence visits them.
const (
	Started Status = iota
	Added
	CreationInProgress
	Committed
	Exposed
	Recovered
)

var statusNames = [...]string{"Started", "Added", "CreationInProgress", "Committed", "Exposed", "Recovered"}

func (s Status) String() string {
	if s >= 0 && int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// MarshalText stores the status by name, so state files stay readable.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText is the inverse of MarshalText.
func (s *Status) UnmarshalText(b []byte) error {
	for i, n := range statusNames {
		if n == string(b) {
			*s = Status(i)
			return nil
		}
	}
	return fmt.Errorf("unknown set status %q", b)
}

// Context values and attribute bits, MS-FSRVP §2.2.2.1 and §2.2.2.2.
const (
	CtxBackup          uint32 = 0x00000000
	CtxFileShareBackup uint32 = 0x00000010
	CtxNASRollback     uint32 = 0x00000019
	CtxAppRollback     uint32 = 0x00000009

	AttrPersistent     uint32 = 0x00000001
	AttrNoAutoRecovery uint32 = 0x00000002
	AttrNoAutoRelease  uint32 = 0x00000008
	AttrNoWriters      uint32 = 0x00000010
	AttrAutoRecovery   uint32 = 0x00400000
	recoveryAttrs             = AttrAutoRecovery | AttrNoAutoRecovery
)

// ValidContext reports whether c is one of the 12 values §3.1.4.2 accepts:
// one of the four base contexts, optionally with ATTR_AUTO_RECOVERY or
// ATTR_NO_AUTO_RECOVERY (not both).
func ValidContext(c uint32) bool {
	switch c &^ recoveryAttrs {
	case CtxBackup, CtxFileShareBackup, CtxNASRollback, CtxAppRollback:
	default:
		return false
	}
	return c&recoveryAttrs != recoveryAttrs
}

// persistentContext reports whether sets of context c survive a restart
// (ATTR_PERSISTENT, §2.2.2.1; the digest's §13).
func persistentContext(c uint32) bool { return c&AttrPersistent != 0 }

// writableContext reports whether shadow copies of context c are writable
// between Expose and RecoveryComplete (ATTR_AUTO_RECOVERY).
func writableContext(c uint32) bool { return c&AttrAutoRecovery != 0 }

// Set is a ShadowCopySet, §3.1.1.1.
type Set struct {
	ID      uuid.UUID     `json:"id"`
	Status  Status        `json:"status"`
	Context uint32        `json:"context"`
	Created time.Time     `json:"created"`
	Copies  []*ShadowCopy `json:"copies"`
	// DocsShare is the share exposing the set's writer documents
	// (vss.ShareName), empty if none.
	DocsShare string `json:"docs_share,omitempty"`
	// abortWriters: the set is being deleted by AbortShadowCopySet, so its
	// writers get Abort, not BackupComplete (writers.go).
	abortWriters bool
}

// ShadowCopy is one volume's shadow copy within a set, §3.1.1.2.
type ShadowCopy struct {
	ID uuid.UUID `json:"id"`
	// VolumeID and VolumeRoot identify the file store (§3.1.1.2 VolumeName).
	VolumeID   string `json:"volume_id"`
	VolumeRoot string `json:"volume_root"`
	// Created is the CreationTimeStamp: the time of the Add call.
	Created time.Time `json:"created"`
	// SnapshotPath is where the backend's snapshot of VolumeRoot is readable,
	// set once the set is committed.
	SnapshotPath string         `json:"snapshot_path,omitempty"`
	Mappings     []*MappedShare `json:"mappings"`
}

// snapshotID is the backend name of this shadow copy's snapshot.
func (sc *ShadowCopy) snapshotID() string { return sc.ID.String() }

// MappedShare is one share of a shadow copy, §3.1.1.3.
type MappedShare struct {
	// ShareName is the UNC name exactly as the client gave it.
	ShareName string `json:"share_name"`
	// Base is the configured name of the base share, Path its directory.
	Base string `json:"base"`
	Path string `json:"path"`
	// Exposed is the SMB name of the exposed share (share@{GUID}), empty
	// until the set is exposed.
	Exposed string `json:"exposed,omitempty"`
}

// isExposed is the §3.1.1.3 IsExposed flag.
func (m *MappedShare) isExposed() bool { return m.Exposed != "" }

// addShareNames adds the lower-case names of the shares s has exposed,
// its mappings' and its writer documents share, to names.
func (s *Set) addShareNames(names map[string]bool) {
	for _, sc := range s.Copies {
		for _, m := range sc.Mappings {
			if m.isExposed() {
				names[strings.ToLower(m.Exposed)] = true
			}
		}
	}
	if s.DocsShare != "" {
		names[strings.ToLower(s.DocsShare)] = true
	}
}

func (s *Set) copyByID(id uuid.UUID) *ShadowCopy {
	for _, sc := range s.Copies {
		if sc.ID == id {
			return sc
		}
	}
	return nil
}

func (s *Set) copyByVolume(volumeID string) *ShadowCopy {
	for _, sc := range s.Copies {
		if sc.VolumeID == volumeID {
			return sc
		}
	}
	return nil
}

// mappingOf returns the mapping of sc for base share name, compared
// case-insensitively, as SMB share names are.
func (sc *ShadowCopy) mappingOf(base string) (int, *MappedShare) {
	for i, m := range sc.Mappings {
		if strings.EqualFold(m.Base, base) {
			return i, m
		}
	}
	return -1, nil
}

// clone deep-copies a set, so a change can be prepared and persisted before
// it becomes visible.
func (s *Set) clone() *Set {
	c := *s
	c.Copies = make([]*ShadowCopy, len(s.Copies))
	for i, sc := range s.Copies {
		scc := *sc
		scc.Mappings = make([]*MappedShare, len(sc.Mappings))
		for j, m := range sc.Mappings {
			mc := *m
			scc.Mappings[j] = &mc
		}
		c.Copies[i] = &scc
	}
	return &c
}
