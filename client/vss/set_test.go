package vss

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
)

func writeSet(t *testing.T, dir string, w *WriterMetadata, b *BackupComponents, s *WriterStatus) {
	t.Helper()
	for name, doc := range map[string]any{WriterMetadataFile(w.Identification.InstanceID): w, BackupComponentsFile: b, WriterStatusFile: s} {
		data, err := Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReadSet(t *testing.T) {
	w := fullWriter()
	id := w.Identification
	b := NewBackupComponents(BackupFull, false)
	for _, c := range w.Components() {
		if _, err := b.AddComponent(id.WriterID, id.InstanceID, BackupComponent{ComponentType: c.Type, LogicalPath: c.LogicalPath, ComponentName: c.ComponentName, BackupSucceeded: true}); err != nil {
			t.Fatal(err)
		}
	}
	st := &WriterStatus{Version: Version, SetID: "x", Writers: []WriterState{{WriterID: id.WriterID, InstanceID: id.InstanceID, FriendlyName: id.FriendlyName, State: StateStable}}}
	dir := t.TempDir()
	writeSet(t, dir, w, b, st)
	set, err := ReadSet(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Writers) != 1 || set.Writer(id.InstanceID) == nil || len(set.Components.Writers) != 1 {
		t.Fatalf("%+v", set)
	}
	if ws, err := set.State(id.InstanceID); err != nil || ws.Failed() {
		t.Fatalf("%+v %v", ws, err)
	}
	if _, err := set.State("nobody"); err == nil {
		t.Fatal("status of an unknown writer")
	}

	// A metadata file under another instance's name, a component list
	// naming a writer without metadata, a missing document: errors.
	wrong := os.DirFS(dir).(fs.ReadFileFS)
	data, _ := wrong.ReadFile(WriterMetadataFile(id.InstanceID))
	m := fstest.MapFS{}
	for _, name := range []string{BackupComponentsFile, WriterStatusFile} {
		d, _ := wrong.ReadFile(name)
		m[name] = &fstest.MapFile{Data: d}
	}
	m[WriterMetadataFile("00000000-0000-0000-0000-000000000001")] = &fstest.MapFile{Data: data}
	if _, err := ReadSet(m); !errors.Is(err, ErrInvalid) {
		t.Errorf("misnamed metadata: %v", err)
	}
	delete(m, WriterMetadataFile("00000000-0000-0000-0000-000000000001"))
	if _, err := ReadSet(m); !errors.Is(err, ErrInvalid) {
		t.Errorf("components without metadata: %v", err)
	}
	delete(m, WriterStatusFile)
	if _, err := ReadSet(m); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no status: %v", err)
	}
}
