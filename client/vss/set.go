package vss

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// Set is every document fsrvpd publishes for one shadow copy set.
type Set struct {
	// Writers are the writer metadata documents, by instance id order.
	Writers    []*WriterMetadata
	Components *BackupComponents
	Status     *WriterStatus
}

// ReadSet reads and validates the documents of a set from fsys, the root of
// its directory or share (see the package doc for the layout): e.g.
// os.DirFS(dir), or go-smb2's Share.DirFS(".") for \\server\vss@{<set id>}$.
func ReadSet(fsys fs.FS) (*Set, error) {
	var s Set
	data, err := fs.ReadFile(fsys, BackupComponentsFile)
	if err != nil {
		return nil, err
	}
	if s.Components, err = ParseBackupComponents(data); err != nil {
		return nil, err
	}
	if data, err = fs.ReadFile(fsys, WriterStatusFile); err != nil {
		return nil, err
	}
	if s.Status, err = ParseWriterStatus(data); err != nil {
		return nil, err
	}
	names, err := fs.Glob(fsys, WriterMetadataDir+"/*.xml")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	for _, name := range names {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		w, err := ParseWriterMetadata(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		// go-smb2's DirFS answers Glob with backslashes.
		base := path.Base(strings.ReplaceAll(name, `\`, "/"))
		if want := strings.TrimSuffix(base, ".xml"); !strings.EqualFold(want, w.Identification.InstanceID) {
			return nil, invalid("%s: holds writer instance %s", name, w.Identification.InstanceID)
		}
		s.Writers = append(s.Writers, w)
	}
	for _, wc := range s.Components.Writers {
		if s.Writer(wc.InstanceID) == nil {
			return nil, invalid("BACKUP_COMPONENTS names writer instance %s, which has no WRITER_METADATA", wc.InstanceID)
		}
	}
	return &s, nil
}

// Writer returns the metadata of writer instance instanceID, or nil.
func (s *Set) Writer(instanceID string) *WriterMetadata {
	for _, w := range s.Writers {
		if strings.EqualFold(w.Identification.InstanceID, instanceID) {
			return w
		}
	}
	return nil
}

// State returns the status of writer instance instanceID.
func (s *Set) State(instanceID string) (WriterState, error) {
	for _, w := range s.Status.Writers {
		if strings.EqualFold(w.InstanceID, instanceID) {
			return w, nil
		}
	}
	return WriterState{}, errors.New("vss: no status for writer instance " + instanceID)
}
