// Package registry is the shares.Exposer of TCP-only mode, where no Samba
// serves the snapshots: it records which snapshot shares are exposed, under
// which name, path and access mode, so that the daemon can answer FSRVP
// queries and reconcile after a restart. It does not make anything
// reachable over SMB.
//
// The registry lives in memory and in one JSON file, rewritten atomically
// (temporary file, fsync, rename, fsync of the directory) before every
// change returns:
//
//	{"version": 1, "shares": [{"name": "data@{...}", "base": "data", "path": "/...", "read_only": true}]}
//
// Open refuses a file it cannot parse rather than overwrite it.
package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/shares"
	"github.com/fsrvpd/fsrvpd/shares/internal/atomicfile"
)

// Version is the schema version of the registry file.
const Version = 1

// file is the registry file's content.
type file struct {
	Version int            `json:"version"`
	Shares  []shares.Share `json:"shares"`
}

// Registry is a shares.Exposer backed by a JSON file. It is safe for
// concurrent use within one process; two processes must not share a file.
type Registry struct {
	path string
	log  *logrus.Entry

	mu     sync.Mutex
	byName map[string]shares.Share // by lower-case name
}

var _ shares.Exposer = (*Registry)(nil)

// Open loads the registry at path; a missing file is an empty registry,
// created by the first change. A nil log discards messages.
func Open(path string, log *logrus.Entry) (*Registry, error) {
	if log == nil {
		l := logrus.New()
		l.Out = nopWriter{}
		log = logrus.NewEntry(l)
	}
	r := &Registry{path: path, log: log.WithField("registry", path), byName: map[string]shares.Share{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("share registry: %w", err)
	}
	var f file
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("share registry %s is corrupt, fix or remove it: %w", path, err)
	}
	if f.Version != Version {
		return nil, fmt.Errorf("share registry %s: schema version %d, want %d", path, f.Version, Version)
	}
	for _, s := range f.Shares {
		if err := check(s); err != nil {
			return nil, fmt.Errorf("share registry %s is corrupt: %w", path, err)
		}
		k := strings.ToLower(s.Name)
		if _, dup := r.byName[k]; dup {
			return nil, fmt.Errorf("share registry %s is corrupt: share %q twice", path, s.Name)
		}
		r.byName[k] = s
	}
	r.log.WithField("shares", len(r.byName)).Debug("Loaded the share registry")
	return r, nil
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

func check(s shares.Share) error {
	if err := shares.ValidName(s.Name); err != nil {
		return err
	}
	if !filepath.IsAbs(s.Path) {
		return fmt.Errorf("share %q: path %q is not absolute", s.Name, s.Path)
	}
	return nil
}

// Expose implements shares.Exposer.
func (r *Registry) Expose(ctx context.Context, s shares.Share) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := check(s); err != nil {
		return err
	}
	s.Path = filepath.Clean(s.Path)
	r.mu.Lock()
	defer r.mu.Unlock()
	k := strings.ToLower(s.Name)
	if old, ok := r.byName[k]; ok {
		return fmt.Errorf("share %q: %w (as %q)", s.Name, shares.ErrExists, old.Name)
	}
	if err := r.commit(k, &s); err != nil {
		return err
	}
	r.log.WithFields(logrus.Fields{"share": s.Name, "path": s.Path, "read_only": s.ReadOnly}).Info("Share exposed")
	return nil
}

// SetReadOnly implements shares.Exposer.
func (r *Registry) SetReadOnly(ctx context.Context, name string, readOnly bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	k := strings.ToLower(name)
	s, ok := r.byName[k]
	if !ok {
		return fmt.Errorf("share %q: %w", name, shares.ErrNotFound)
	}
	if s.ReadOnly == readOnly {
		return nil
	}
	s.ReadOnly = readOnly
	if err := r.commit(k, &s); err != nil {
		return err
	}
	r.log.WithFields(logrus.Fields{"share": s.Name, "read_only": readOnly}).Info("Share access changed")
	return nil
}

// Remove implements shares.Exposer. The registry has no SMB sessions to
// disconnect.
func (r *Registry) Remove(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	k := strings.ToLower(name)
	s, ok := r.byName[k]
	if !ok {
		return fmt.Errorf("share %q: %w", name, shares.ErrNotFound)
	}
	if err := r.commit(k, nil); err != nil {
		return err
	}
	r.log.WithField("share", s.Name).Info("Share removed")
	return nil
}

// List implements shares.Exposer. The shares are sorted by name, ignoring
// case; shares another process wrote to the file are adopted first.
func (r *Registry) List(ctx context.Context) ([]shares.Share, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.adopt()
	return r.sorted(), nil
}

// adopt reads the file again and takes in the shares it holds that this
// process did not write (another fsrvpd, a restored backup), so the daemon
// sees them as orphans and can remove them. A file it cannot parse is left
// alone (logged). r.mu is held.
func (r *Registry) adopt() {
	data, err := os.ReadFile(r.path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	var f file
	if err == nil {
		err = json.Unmarshal(data, &f)
	}
	if err != nil {
		r.log.WithError(err).Warn("Cannot read the share registry again")
		return
	}
	for _, s := range f.Shares {
		k := strings.ToLower(s.Name)
		if _, ok := r.byName[k]; ok || check(s) != nil {
			continue
		}
		r.byName[k] = s
		r.log.WithField("share", s.Name).Warn("Share in the registry file that this process did not write: adopted")
	}
}

// Get returns the share called name, ignoring case.
func (r *Registry) Get(name string) (shares.Share, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.byName[strings.ToLower(name)]
	return s, ok
}

func (r *Registry) sorted() []shares.Share {
	list := make([]shares.Share, 0, len(r.byName))
	for _, s := range r.byName {
		list = append(list, s)
	}
	slices.SortFunc(list, func(a, b shares.Share) int {
		return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
	})
	return list
}

// commit sets (s != nil) or deletes the share of key k, writes the file and
// keeps the change in memory only if the file was written. r.mu is held.
func (r *Registry) commit(k string, s *shares.Share) error {
	old, had := r.byName[k]
	if s != nil {
		r.byName[k] = *s
	} else {
		delete(r.byName, k)
	}
	data, err := json.MarshalIndent(file{Version: Version, Shares: r.sorted()}, "", "\t")
	if err == nil {
		err = atomicfile.Write(r.path, append(data, '\n'), 0o600)
	}
	if err != nil {
		if had {
			r.byName[k] = old
		} else {
			delete(r.byName, k)
		}
		return fmt.Errorf("share registry %s: %w", r.path, err)
	}
	return nil
}
