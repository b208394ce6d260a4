package vss

import (
	"bytes"
	"encoding/xml"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func readSample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAppendixAWriterMetadata(t *testing.T) {
	w, err := ParseWriterMetadata(readSample(t, "appendix-a-writer-metadata.xml"))
	if err != nil {
		t.Fatal(err)
	}
	id := w.Identification
	if id.FriendlyName != "Exchange Platinum" || id.WriterID != "F04DA480-65B9-11D1-A29E-00AA00C14883" ||
		id.Usage != UsageOther || id.DataSource != DataSourceTransactionDB {
		t.Errorf("identification %+v", id)
	}
	cs := w.Components()
	if len(cs) != 1 {
		t.Fatalf("components %+v", cs)
	}
	c := cs[0]
	if c.Type != ComponentDatabase || c.LogicalPath != `Sit\Department1` || c.ComponentName != "AthruI-USER_FOLDERS" || !bool(c.Selectable) {
		t.Errorf("component %+v (selectable defaults to yes)", c)
	}
	if len(c.Files) != 1 || c.Files[0].Filespec != "AThruI.mdb" || len(c.LogFiles) != 1 || c.LogFiles[0].Filespec != "*.log" {
		t.Errorf("files %+v logs %+v", c.Files, c.LogFiles)
	}
	m, ok := w.RestoreMethodFor(c.LogicalPath, c.ComponentName)
	if !ok || m.Method != RestoreToAlternateLocation || m.WriterRestore != WriterRestoreAlways ||
		len(m.AlternateLocationMappings) != 1 || m.AlternateLocationMappings[0].AlternatePath != `%systemroot%\EXCHANGE\RESTORE` {
		t.Errorf("restore method %+v %v", m, ok)
	}
	roundTrip(t, w, func(b []byte) (any, error) { return ParseWriterMetadata(b) })
}

func TestAppendixCBackupComponents(t *testing.T) {
	b, err := ParseBackupComponents(readSample(t, "appendix-c-backup-components.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if b.BackupType != BackupFull || bool(b.SelectComponents) || len(b.Writers) != 1 {
		t.Fatalf("document %+v", b)
	}
	w := b.Writers[0]
	if w.WriterID != "F04DA480-65B9-11D1-A29F-00AA00C14882" || w.InstanceID != "E04DA480-65B9-11D1-A29F-00AA00C14882" {
		t.Errorf("writer %+v (writerid spelling of the sample)", w)
	}
	c, err := b.Component(w.WriterID, "", "NTDSDatabase")
	if err != nil {
		t.Fatal(err)
	}
	md, err := c.Metadata()
	if err != nil || !bytes.Equal(md, []byte{0x0a, 0x0a, 0x0b, 0x0b, 0x0c, 0x0c, 0x0d, 0x0d, 0x0e, 0x0e, 0x0f}) {
		t.Errorf("metadata %x %v", md, err)
	}
	if c.ComponentType != ComponentDatabase || c.BackupSucceeded {
		t.Errorf("component %+v (backupSucceeded defaults to no)", c)
	}
	out := roundTrip(t, b, func(d []byte) (any, error) { return ParseBackupComponents(d) })
	if !strings.Contains(string(out), `writerId="F04DA480-65B9-11D1-A29F-00AA00C14882"`) {
		t.Errorf("written with the schema's writerId spelling:\n%s", out)
	}
}

// roundTrip marshals doc, parses it back, compares, and checks the
// namespace; it returns the XML.
func roundTrip(t *testing.T, doc any, parse func([]byte) (any, error)) []byte {
	t.Helper()
	out, err := Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	back, err := parse(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// Parse fills XMLName; compare the rest.
	clear := func(v any) any {
		switch d := v.(type) {
		case *WriterMetadata:
			c := *d
			c.XMLName = xml.Name{}
			return c
		case *BackupComponents:
			c := *d
			c.XMLName = xml.Name{}
			return c
		case *WriterStatus:
			c := *d
			c.XMLName = xml.Name{}
			return c
		}
		return v
	}
	if !reflect.DeepEqual(clear(doc), clear(back)) {
		t.Errorf("round trip differs:\n%+v\n%+v\n%s", doc, back, out)
	}
	if !bytes.HasPrefix(out, []byte(`<?xml version="1.0" encoding="UTF-8"?>`)) || !bytes.Contains(out, []byte(`xmlns="x-schema:`)) {
		t.Errorf("no declaration or namespace:\n%s", out)
	}
	return out
}

func fullWriter() *WriterMetadata {
	return &WriterMetadata{
		Version: Version,
		Identification: Identification{
			FriendlyName: "SQLite ledger", WriterID: "3b1f0e8a-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
			InstanceID: "9c8b7a6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d", Usage: UsageUserData, DataSource: DataSourceTransactionDB,
		},
		BackupLocations: BackupLocations{
			Include: []Files{{Path: "/srv/vol1/app", Filespec: "*.conf"}},
			Exclude: []Files{{Path: "/srv/vol1/app/tmp", Filespec: "*", Recursive: true}},
			Databases: []Database{{
				ComponentAttrs: ComponentAttrs{LogicalPath: `ledger`, ComponentName: "main", Caption: "The ledger", RestoreMetadata: true, NotifyOnBackupComplete: true, Selectable: false},
				Files:          []Files{{Path: "/srv/vol1/db", Filespec: "ledger.db"}},
				LogFiles:       []Files{{Path: "/srv/vol1/db", Filespec: "ledger.db-wal"}},
			}},
			FileGroups: []FileGroup{{
				ComponentAttrs: ComponentAttrs{ComponentName: "attachments", Selectable: true},
				Files:          []Files{{Path: "/srv/vol1/att", Filespec: "*", Recursive: true, AlternatePath: "/srv/vol1/att.copy"}},
			}},
		},
		RestoreMethods: []RestoreMethod{
			{Method: RestoreIfCanBeReplaced, WriterRestore: WriterRestoreIfReplaceFails,
				AlternateLocationMappings: []Files{{Path: "/srv/vol1/att", Filespec: "*", AlternatePath: "/srv/restore/att"}}},
			{LogicalPath: "ledger", ComponentName: "main", Method: StopRestartService, Service: "ledger.service", RebootRequired: false},
		},
	}
}

func TestWriterMetadataRoundTrip(t *testing.T) {
	w := fullWriter()
	if err := w.Validate(); err != nil {
		t.Fatal(err)
	}
	out := roundTrip(t, w, func(b []byte) (any, error) { return ParseWriterMetadata(b) })
	for _, want := range []string{`<WRITER_METADATA xmlns="x-schema:writermetadata.xml" version="1.0">`, `selectable="no"`,
		`<DATABASE_FILES path="/srv/vol1/db" filespec="ledger.db"></DATABASE_FILES>`, `recursive="yes"`, `method="STOP_RESTART_SERVICE"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("missing %s in\n%s", want, out)
		}
	}
	m, _ := w.RestoreMethodFor("ledger", "main")
	if m.Method != StopRestartService || m.Service != "ledger.service" {
		t.Errorf("component method %+v", m)
	}
	m, _ = w.RestoreMethodFor("", "attachments")
	if m.Method != RestoreIfCanBeReplaced {
		t.Errorf("default method %+v", m)
	}
}

func TestParseRestoreMethod(t *testing.T) {
	for in, want := range map[string]RestoreMethodType{
		"RESTORE_IF_NOT_THERE": RestoreIfNoneThere, "restore_if_can_replace": RestoreIfCanBeReplaced,
		"RESTORE_TO_ALTERNATIVE_LOCATION": RestoreToAlternateLocation, "CUSTOM": Custom, "REPLACE_AT_REBOOT": ReplaceAtReboot,
	} {
		if got, err := ParseRestoreMethod(in); err != nil || got != want {
			t.Errorf("%s: %s %v", in, got, err)
		}
	}
	if _, err := ParseRestoreMethod("RESTORE_SOMETIMES"); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown method: %v", err)
	}
	// Prose spelling in a document is read and written back canonical.
	doc := strings.Replace(string(readSample(t, "appendix-a-writer-metadata.xml")), "RESTORE_TO_ALTERNATE_LOCATION", "RESTORE_TO_ALTERNATIVE_LOCATION", 1)
	w, err := ParseWriterMetadata([]byte(doc))
	if err != nil || w.RestoreMethods[0].Method != RestoreToAlternateLocation {
		t.Fatalf("%+v %v", w, err)
	}
}

func TestWriterMetadataInvalid(t *testing.T) {
	cases := map[string]func(w *WriterMetadata){
		"version":        func(w *WriterMetadata) { w.Version = "2.0" },
		"writerId":       func(w *WriterMetadata) { w.Identification.WriterID = "exchange" },
		"instanceId":     func(w *WriterMetadata) { w.Identification.InstanceID = "" },
		"friendlyName":   func(w *WriterMetadata) { w.Identification.FriendlyName = "" },
		"usage":          func(w *WriterMetadata) { w.Identification.Usage = "GAMES" },
		"dataSource":     func(w *WriterMetadata) { w.Identification.DataSource = "CSV" },
		"filespec":       func(w *WriterMetadata) { w.BackupLocations.Include[0].Filespec = "" },
		"DATABASE_FILES": func(w *WriterMetadata) { w.BackupLocations.Databases[0].Files = nil },
		"componentName":  func(w *WriterMetadata) { w.BackupLocations.FileGroups[0].ComponentName = "" },
		"twice": func(w *WriterMetadata) {
			w.BackupLocations.FileGroups[0].ComponentAttrs = w.BackupLocations.Databases[0].ComponentAttrs
		},
		"service":        func(w *WriterMetadata) { w.RestoreMethods[1].Service = "" },
		"unknown method": func(w *WriterMetadata) { w.RestoreMethods[0].Method = "RESTORE_IF_NOT_THERE" },
		"writerRestore":  func(w *WriterMetadata) { w.RestoreMethods[0].WriterRestore = "sometimes" },
		"alternatePath":  func(w *WriterMetadata) { w.RestoreMethods[0].AlternateLocationMappings[0].AlternatePath = "" },
		"no component":   func(w *WriterMetadata) { w.RestoreMethods[1].ComponentName = "other" },
		"writer-wide":    func(w *WriterMetadata) { w.RestoreMethods[1].ComponentName, w.RestoreMethods[1].LogicalPath = "", "" },
	}
	for name, mutate := range cases {
		w := fullWriter()
		mutate(w)
		err := w.Validate()
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if name == "unknown method" {
			continue // a prose spelling: Parse reads it as the schema's
		}
		if out, merr := Marshal(w); merr == nil {
			if _, perr := ParseWriterMetadata(out); !errors.Is(perr, ErrInvalid) {
				t.Errorf("%s: parse accepted it: %v", name, perr)
			}
		}
	}
	for _, bad := range []string{`<BACKUP_COMPONENTS version="1.0" backupType="full"/>`, `<WRITER_METADATA version="1.0"`, `<WRITER_METADATA version="1.0"><IDENTIFICATION usage="x" recursive="maybe"/></WRITER_METADATA>`} {
		if _, err := ParseWriterMetadata([]byte(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", bad, err)
		}
	}
	if _, err := ParseWriterMetadata([]byte(`<WRITER_METADATA version="1.0"><IDENTIFICATION/><BACKUP_LOCATIONS><FILE_GROUP componentName="a" selectable="maybe"/></BACKUP_LOCATIONS></WRITER_METADATA>`)); !errors.Is(err, ErrInvalid) {
		t.Errorf("yes/no: %v", err)
	}
}

func TestBackupComponentsHelpers(t *testing.T) {
	w := fullWriter()
	b := NewBackupComponents(BackupFull, true)
	for _, c := range w.Components() {
		bc, err := b.AddComponent(w.Identification.WriterID, w.Identification.InstanceID, BackupComponent{ComponentType: c.Type, LogicalPath: c.LogicalPath, ComponentName: c.ComponentName})
		if err != nil {
			t.Fatal(err)
		}
		bc.SetMetadata([]byte("lsn=42\n"))
	}
	if _, err := b.AddComponent(w.Identification.WriterID, w.Identification.InstanceID, BackupComponent{LogicalPath: "ledger", ComponentName: "main"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("duplicate component: %v", err)
	}
	wid := strings.ToUpper(w.Identification.WriterID) // GUIDs compare ignoring case
	if err := b.SetBackupSucceeded(wid, "ledger", "main", true); err != nil {
		t.Fatal(err)
	}
	if err := b.SetBackupSucceeded(wid, "", "nothing", true); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown component: %v", err)
	}
	if err := b.SetBackupSucceeded(uuid.NewString(), "ledger", "main", true); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown writer: %v", err)
	}
	m := Files{Path: "/srv/vol1/att", Filespec: "*", Recursive: true, AlternatePath: "/srv/restore/att"}
	if err := b.AddAlternativeLocationMapping(wid, "", "attachments", m); err != nil {
		t.Fatal(err)
	}
	if err := b.AddAlternativeLocationMapping(wid, "", "attachments", Files{Path: "/x", Filespec: "*"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("mapping without alternatePath: %v", err)
	}
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	out := roundTrip(t, b, func(d []byte) (any, error) { return ParseBackupComponents(d) })
	back, _ := ParseBackupComponents(out)
	c, _ := back.Component(w.Identification.WriterID, "ledger", "main")
	md, _ := c.Metadata()
	if !c.BackupSucceeded || string(md) != "lsn=42\n" {
		t.Errorf("component %+v metadata %q", c, md)
	}
	c, _ = back.Component(w.Identification.WriterID, "", "attachments")
	if bool(c.BackupSucceeded) || !reflect.DeepEqual(c.AlternateLocationMappings, []Files{m}) {
		t.Errorf("component %+v", c)
	}

	bad := *b
	bad.BackupType = "weekly"
	if err := bad.Validate(); !errors.Is(err, ErrInvalid) {
		t.Errorf("backupType: %v", err)
	}
	bad = *b
	bad.Writers = append(bad.Writers, bad.Writers[0])
	if err := bad.Validate(); !errors.Is(err, ErrInvalid) {
		t.Errorf("writer twice: %v", err)
	}
	if _, err := ParseBackupComponents([]byte(`<BACKUP_COMPONENTS version="1.0" backupType="full"><WRITER_COMPONENTS writerId="` + uuid.NewString() + `"><COMPONENT componentName="a"><BACKUP_METADATA metadata="zz"/></COMPONENT></WRITER_COMPONENTS></BACKUP_COMPONENTS>`)); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad hex: %v", err)
	}
}

func TestWriterStatus(t *testing.T) {
	id := uuid.New()
	s := &WriterStatus{Version: Version, SetID: id.String(), Writers: []WriterState{
		{WriterID: uuid.NewString(), InstanceID: uuid.NewString(), FriendlyName: "a", State: StateStable, Phase: "thaw", FreezeWindowMicroseconds: 1234},
		{WriterID: uuid.NewString(), InstanceID: uuid.NewString(), FriendlyName: "b", State: StateFailed, Phase: "freeze", Failure: "exit status 3"},
	}}
	roundTrip(t, s, func(b []byte) (any, error) { return ParseWriterStatus(b) })
	if !s.Writers[1].Failed() || s.Writers[0].Failed() {
		t.Error("Failed")
	}
	if ShareName(id) != "vss@{"+id.String()+"}$" || WriterMetadataFile("ABC") != "WRITER_METADATA/abc.xml" {
		t.Error(ShareName(id), WriterMetadataFile("ABC"))
	}
}
