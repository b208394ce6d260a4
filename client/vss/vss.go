package vss

import (
	"bytes"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// Version is the only document version the schemas define.
const Version = "1.0"

// Namespaces of the documents, as in the patent's samples (Appendix A, C)
// and, for WRITER_STATUS, fsrvpd's own.
const (
	WriterMetadataNamespace   = "x-schema:writermetadata.xml"
	BackupComponentsNamespace = "x-schema:componentmetadata.xml"
	StatusNamespace           = "x-schema:fsrvpd-writerstatus.xml"
)

// Names in the published directory and share; see the package doc.
const (
	WriterMetadataDir    = "WRITER_METADATA"
	BackupComponentsFile = "BACKUP_COMPONENTS.xml"
	WriterStatusFile     = "WRITER_STATUS.xml"
)

// ShareName is the hidden read-only SMB share under which fsrvpd publishes
// the documents of exposed set setID: "vss@{<set id>}$".
func ShareName(setID uuid.UUID) string { return "vss@{" + setID.String() + "}$" }

// WriterMetadataFile is the path, relative to the set's directory or share,
// of the writer metadata document of writer instance instanceID.
func WriterMetadataFile(instanceID string) string {
	return WriterMetadataDir + "/" + strings.ToLower(instanceID) + ".xml"
}

// ErrInvalid is wrapped by every validation and parse error.
var ErrInvalid = errors.New("invalid document")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrInvalid)
}

// YesNo is the schemas' "yes no" enumeration.
type YesNo bool

// MarshalXMLAttr writes "yes" or "no".
func (b YesNo) MarshalXMLAttr(name xml.Name) (xml.Attr, error) {
	if b {
		return xml.Attr{Name: name, Value: "yes"}, nil
	}
	return xml.Attr{Name: name, Value: "no"}, nil
}

// UnmarshalXMLAttr reads "yes" or "no".
func (b *YesNo) UnmarshalXMLAttr(a xml.Attr) error {
	switch a.Value {
	case "yes":
		*b = true
	case "no":
		*b = false
	default:
		return invalid("attribute %s: %q is neither yes nor no", a.Name.Local, a.Value)
	}
	return nil
}

// Usage says how a writer's data is used (IDENTIFICATION usage).
type Usage string

// Usage values; the default is UsageOther.
const (
	UsageUserData            Usage = "USER_DATA"
	UsageBootableSystemState Usage = "BOOTABLE_SYSTEM_STATE"
	UsageSystemService       Usage = "SYSTEM_SERVICE"
	UsageOther               Usage = "OTHER"
)

// DataSource is the nature of a writer's data manager (IDENTIFICATION
// dataSource).
type DataSource string

// DataSource values; the default is DataSourceOther.
const (
	DataSourceTransactionDB    DataSource = "TRANSACTION_DB"
	DataSourceNonTransactionDB DataSource = "NONTRANSACTIONAL_DB"
	DataSourceOther            DataSource = "OTHER"
)

// RestoreMethodType is RESTORE_METHOD's method attribute.
type RestoreMethodType string

// The six restore methods of Appendix B, spelled as the schema spells them.
const (
	// RestoreIfNoneThere restores only where the data is absent (a clean system).
	RestoreIfNoneThere RestoreMethodType = "RESTORE_IF_NONE_THERE"
	// RestoreIfCanBeReplaced restores if every file can be replaced; fails if
	// one is open; uses the alternate location mappings for the others.
	RestoreIfCanBeReplaced RestoreMethodType = "RESTORE_IF_CAN_BE_REPLACED"
	// StopRestartService stops the service named by RestoreMethod.Service,
	// restores, restarts it.
	StopRestartService RestoreMethodType = "STOP_RESTART_SERVICE"
	// ReplaceAtReboot restores to a temporary location and replaces at reboot.
	ReplaceAtReboot RestoreMethodType = "REPLACE_AT_REBOOT"
	// RestoreToAlternateLocation restores to the alternate location mappings.
	RestoreToAlternateLocation RestoreMethodType = "RESTORE_TO_ALTERNATE_LOCATION"
	// Custom: the restore cannot be expressed by this specification.
	Custom RestoreMethodType = "CUSTOM"
)

var methodAliases = map[string]RestoreMethodType{
	"RESTORE_IF_NONE_THERE":           RestoreIfNoneThere,
	"RESTORE_IF_NOT_THERE":            RestoreIfNoneThere,
	"RESTORE_IF_CAN_BE_REPLACED":      RestoreIfCanBeReplaced,
	"RESTORE_IF_CAN_REPLACE":          RestoreIfCanBeReplaced,
	"STOP_RESTART_SERVICE":            StopRestartService,
	"REPLACE_AT_REBOOT":               ReplaceAtReboot,
	"RESTORE_TO_ALTERNATE_LOCATION":   RestoreToAlternateLocation,
	"RESTORE_TO_ALTERNATIVE_LOCATION": RestoreToAlternateLocation,
	"CUSTOM":                          Custom,
}

// ParseRestoreMethod accepts the schema's spelling of a method and the
// prose's variants (case-insensitive) and returns the schema's spelling.
func ParseRestoreMethod(s string) (RestoreMethodType, error) {
	if m, ok := methodAliases[strings.ToUpper(strings.TrimSpace(s))]; ok {
		return m, nil
	}
	return "", invalid("unknown restore method %q", s)
}

// UnmarshalXMLAttr accepts any spelling ParseRestoreMethod does.
func (m *RestoreMethodType) UnmarshalXMLAttr(a xml.Attr) error {
	v, err := ParseRestoreMethod(a.Value)
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// WriterRestore says whether the writer is invoked after its files are
// restored.
type WriterRestore string

// WriterRestore values; the default is WriterRestoreNever.
const (
	WriterRestoreAlways         WriterRestore = "always"
	WriterRestoreNever          WriterRestore = "never"
	WriterRestoreIfReplaceFails WriterRestore = "ifReplaceFails"
)

// ComponentType is "database" or "filegroup".
type ComponentType string

// Component types.
const (
	ComponentDatabase  ComponentType = "database"
	ComponentFileGroup ComponentType = "filegroup"
)

// BackupType is BACKUP_COMPONENTS' backupType.
type BackupType string

// Backup types.
const (
	BackupFull         BackupType = "full"
	BackupDifferential BackupType = "differential"
	BackupIncremental  BackupType = "incremental"
	BackupOther        BackupType = "other"
)

// Files names files: INCLUDE_FILES, EXCLUDE_FILES, FILE_LIST, DATABASE_FILES,
// DATABASE_LOGFILES and ALTERNATE_LOCATION_MAPPING all have this shape
// (the last four without some of the attributes).
type Files struct {
	// Path is a directory; Filespec a file name that may hold * and ?.
	Path     string `xml:"path,attr"`
	Filespec string `xml:"filespec,attr"`
	// Recursive includes the subdirectories of Path.
	Recursive YesNo `xml:"recursive,attr,omitempty"`
	// AlternatePath: in a FILE_LIST or INCLUDE_FILES, where the writer put
	// copies that backup should read instead; in an
	// ALTERNATE_LOCATION_MAPPING, where the files are restored to.
	AlternatePath string `xml:"alternatePath,attr,omitempty"`
}

func (f Files) validate(what string, needAlt bool) error {
	if f.Path == "" {
		return invalid("%s: path is required", what)
	}
	if f.Filespec == "" {
		return invalid("%s %s: filespec is required", what, f.Path)
	}
	if needAlt && f.AlternatePath == "" {
		return invalid("%s %s: alternatePath is required", what, f.Path)
	}
	return nil
}

// dbFiles is the shape of DATABASE_FILES and DATABASE_LOGFILES (path and
// filespec only, model="closed").
type dbFiles struct {
	Path     string `xml:"path,attr"`
	Filespec string `xml:"filespec,attr"`
}

// WriterMetadata is the WRITER_METADATA document (Appendix B).
type WriterMetadata struct {
	XMLName         xml.Name        `xml:"WRITER_METADATA"`
	Version         string          `xml:"version,attr"`
	Identification  Identification  `xml:"IDENTIFICATION"`
	BackupLocations BackupLocations `xml:"BACKUP_LOCATIONS"`
	// RestoreMethods: the schema has one, for the whole writer. More, each
	// naming a component by logicalPath and componentName, override it for
	// that component (an extension; WRITER_METADATA is model="open").
	RestoreMethods []RestoreMethod `xml:"RESTORE_METHOD"`
}

// Identification is IDENTIFICATION.
type Identification struct {
	FriendlyName string     `xml:"friendlyName,attr"`
	WriterID     string     `xml:"writerId,attr"`
	InstanceID   string     `xml:"instanceId,attr"`
	Usage        Usage      `xml:"usage,attr,omitempty"`
	DataSource   DataSource `xml:"dataSource,attr,omitempty"`
}

// BackupLocations is BACKUP_LOCATIONS. The schema lets its children come in
// any order (order="many"); they are kept by kind, which loses nothing.
type BackupLocations struct {
	Include    []Files     `xml:"INCLUDE_FILES"`
	Exclude    []Files     `xml:"EXCLUDE_FILES"`
	Databases  []Database  `xml:"DATABASE"`
	FileGroups []FileGroup `xml:"FILE_GROUP"`
}

// ComponentAttrs are the attributes DATABASE and FILE_GROUP share.
type ComponentAttrs struct {
	LogicalPath   string `xml:"logicalPath,attr,omitempty"`
	ComponentName string `xml:"componentName,attr"`
	Caption       string `xml:"caption,attr,omitempty"`
	Icon          string `xml:"icon,attr,omitempty"`
	// RestoreMetadata: the writer attaches restore metadata
	// (BACKUP_METADATA) that the requestor keeps and hands back on restore.
	RestoreMetadata YesNo `xml:"restoreMetadata,attr,omitempty"`
	// NotifyOnBackupComplete: the writer wants BackupComplete whatever the
	// outcome.
	NotifyOnBackupComplete YesNo `xml:"notifyOnBackupComplete,attr,omitempty"`
	// Selectable (default yes): the component may be backed up on its own;
	// if no, it is backed up whenever any of the writer's components is.
	Selectable YesNo `xml:"selectable,attr"`
}

// Database is DATABASE: a database component.
type Database struct {
	ComponentAttrs
	Files    []Files `xml:"DATABASE_FILES"`
	LogFiles []Files `xml:"DATABASE_LOGFILES"`
}

// FileGroup is FILE_GROUP: a named group of files backed up together.
type FileGroup struct {
	ComponentAttrs
	Files []Files `xml:"FILE_LIST"`
}

// UnmarshalXML applies the schema's default selectable="yes".
func (d *Database) UnmarshalXML(dec *xml.Decoder, start xml.StartElement) error {
	type plain Database
	p := plain{ComponentAttrs: ComponentAttrs{Selectable: true}}
	if err := dec.DecodeElement(&p, &start); err != nil {
		return err
	}
	*d = Database(p)
	return nil
}

// MarshalXML writes DATABASE_FILES and DATABASE_LOGFILES with path and
// filespec only, as the closed schema requires.
func (d Database) MarshalXML(enc *xml.Encoder, start xml.StartElement) error {
	out := struct {
		ComponentAttrs
		Files    []dbFiles `xml:"DATABASE_FILES"`
		LogFiles []dbFiles `xml:"DATABASE_LOGFILES"`
	}{ComponentAttrs: d.ComponentAttrs}
	for _, f := range d.Files {
		out.Files = append(out.Files, dbFiles{f.Path, f.Filespec})
	}
	for _, f := range d.LogFiles {
		out.LogFiles = append(out.LogFiles, dbFiles{f.Path, f.Filespec})
	}
	return enc.EncodeElement(out, start)
}

// UnmarshalXML applies the schema's default selectable="yes".
func (g *FileGroup) UnmarshalXML(dec *xml.Decoder, start xml.StartElement) error {
	type plain FileGroup
	p := plain{ComponentAttrs: ComponentAttrs{Selectable: true}}
	if err := dec.DecodeElement(&p, &start); err != nil {
		return err
	}
	*g = FileGroup(p)
	return nil
}

// RestoreMethod is RESTORE_METHOD.
type RestoreMethod struct {
	// LogicalPath and ComponentName (extension) limit the method to one
	// component; both empty: the writer's default.
	LogicalPath   string `xml:"logicalPath,attr,omitempty"`
	ComponentName string `xml:"componentName,attr,omitempty"`

	Method RestoreMethodType `xml:"method,attr"`
	// Service is required for STOP_RESTART_SERVICE.
	Service        string        `xml:"service,attr,omitempty"`
	WriterRestore  WriterRestore `xml:"writerRestore,attr,omitempty"`
	UserProcedure  string        `xml:"userProcedure,attr,omitempty"`
	RebootRequired YesNo         `xml:"rebootRequired,attr,omitempty"`
	// AlternateLocationMappings: where files go when they cannot (or, for
	// RESTORE_TO_ALTERNATE_LOCATION, must not) be restored in place.
	AlternateLocationMappings []Files `xml:"ALTERNATE_LOCATION_MAPPING"`
}

// Component is a database or file group of a writer, flattened.
type Component struct {
	Type ComponentType
	ComponentAttrs
	// Files are the database's files or the group's file list; LogFiles a
	// database's log files.
	Files, LogFiles []Files
}

// Components lists the writer's databases then its file groups.
func (w *WriterMetadata) Components() []Component {
	var out []Component
	for _, d := range w.BackupLocations.Databases {
		out = append(out, Component{Type: ComponentDatabase, ComponentAttrs: d.ComponentAttrs, Files: d.Files, LogFiles: d.LogFiles})
	}
	for _, g := range w.BackupLocations.FileGroups {
		out = append(out, Component{Type: ComponentFileGroup, ComponentAttrs: g.ComponentAttrs, Files: g.Files})
	}
	return out
}

// Component finds a component by logical path and name (exact match).
func (w *WriterMetadata) Component(logicalPath, name string) (Component, bool) {
	for _, c := range w.Components() {
		if c.LogicalPath == logicalPath && c.ComponentName == name {
			return c, true
		}
	}
	return Component{}, false
}

// RestoreMethodFor returns the restore method of a component: the one naming
// it, else the writer's default, else false.
func (w *WriterMetadata) RestoreMethodFor(logicalPath, name string) (RestoreMethod, bool) {
	var def *RestoreMethod
	for i := range w.RestoreMethods {
		m := &w.RestoreMethods[i]
		if m.ComponentName == "" && m.LogicalPath == "" {
			if def == nil {
				def = m
			}
			continue
		}
		if m.LogicalPath == logicalPath && m.ComponentName == name {
			return *m, true
		}
	}
	if def != nil {
		return *def, true
	}
	return RestoreMethod{}, false
}

func validGUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}

// Validate checks what Appendix B requires: version 1.0, an identification
// with a GUID writerId and instanceId and a friendly name, known enumeration
// values, path and filespec on every file element, at least one
// DATABASE_FILES per database, unique components, a service for
// STOP_RESTART_SERVICE, restore methods naming existing components and at
// most one default.
func (w *WriterMetadata) Validate() error {
	if w.Version != Version {
		return invalid("WRITER_METADATA: version %q, want %q", w.Version, Version)
	}
	id := w.Identification
	if !validGUID(id.WriterID) {
		return invalid("IDENTIFICATION: writerId %q is not a GUID", id.WriterID)
	}
	if !validGUID(id.InstanceID) {
		return invalid("IDENTIFICATION: instanceId %q is not a GUID", id.InstanceID)
	}
	if id.FriendlyName == "" {
		return invalid("IDENTIFICATION: friendlyName is required")
	}
	switch id.Usage {
	case "", UsageUserData, UsageBootableSystemState, UsageSystemService, UsageOther:
	default:
		return invalid("IDENTIFICATION: unknown usage %q", id.Usage)
	}
	switch id.DataSource {
	case "", DataSourceTransactionDB, DataSourceNonTransactionDB, DataSourceOther:
	default:
		return invalid("IDENTIFICATION: unknown dataSource %q", id.DataSource)
	}
	bl := w.BackupLocations
	for _, f := range bl.Include {
		if err := f.validate("INCLUDE_FILES", false); err != nil {
			return err
		}
	}
	for _, f := range bl.Exclude {
		if err := f.validate("EXCLUDE_FILES", false); err != nil {
			return err
		}
	}
	seen := map[[2]string]bool{}
	for _, c := range w.Components() {
		what := fmt.Sprintf("%s %q", strings.ToUpper(string(c.Type)), c.ComponentName)
		if c.ComponentName == "" {
			return invalid("%s: componentName is required", strings.ToUpper(string(c.Type)))
		}
		k := [2]string{c.LogicalPath, c.ComponentName}
		if seen[k] {
			return invalid("%s: logicalPath %q holds it twice", what, c.LogicalPath)
		}
		seen[k] = true
		if c.Type == ComponentDatabase && len(c.Files) == 0 {
			return invalid("%s: DATABASE_FILES is required", what)
		}
		for _, f := range append(append([]Files(nil), c.Files...), c.LogFiles...) {
			if err := f.validate(what, false); err != nil {
				return err
			}
		}
	}
	defaults := 0
	for _, m := range w.RestoreMethods {
		if err := m.validate(); err != nil {
			return err
		}
		if m.ComponentName == "" && m.LogicalPath == "" {
			defaults++
		} else if !seen[[2]string{m.LogicalPath, m.ComponentName}] {
			return invalid("RESTORE_METHOD: no component %q at logicalPath %q", m.ComponentName, m.LogicalPath)
		}
	}
	if defaults > 1 {
		return invalid("RESTORE_METHOD: %d writer-wide methods, at most one allowed", defaults)
	}
	return nil
}

func (m RestoreMethod) validate() error {
	if v, ok := methodAliases[string(m.Method)]; !ok || v != m.Method {
		return invalid("RESTORE_METHOD: unknown method %q", m.Method)
	}
	if m.Method == StopRestartService && m.Service == "" {
		return invalid("RESTORE_METHOD STOP_RESTART_SERVICE: service is required")
	}
	switch m.WriterRestore {
	case "", WriterRestoreAlways, WriterRestoreNever, WriterRestoreIfReplaceFails:
	default:
		return invalid("RESTORE_METHOD: unknown writerRestore %q", m.WriterRestore)
	}
	for _, f := range m.AlternateLocationMappings {
		if err := f.validate("ALTERNATE_LOCATION_MAPPING", true); err != nil {
			return err
		}
	}
	return nil
}

// BackupComponents is the BACKUP_COMPONENTS document (Appendix D).
type BackupComponents struct {
	XMLName                   xml.Name           `xml:"BACKUP_COMPONENTS"`
	Version                   string             `xml:"version,attr"`
	SelectComponents          YesNo              `xml:"selectComponents,attr,omitempty"`
	BootableSystemStateBackup YesNo              `xml:"bootableSystemStateBackup,attr,omitempty"`
	BackupType                BackupType         `xml:"backupType,attr"`
	Writers                   []WriterComponents `xml:"WRITER_COMPONENTS"`
}

// WriterComponents is WRITER_COMPONENTS: one writer instance's components.
type WriterComponents struct {
	WriterID   string            `xml:"writerId,attr"`
	InstanceID string            `xml:"instanceId,attr,omitempty"`
	Components []BackupComponent `xml:"COMPONENT"`
}

// UnmarshalXML also reads the "writerid" spelling of Appendix C's sample.
func (w *WriterComponents) UnmarshalXML(dec *xml.Decoder, start xml.StartElement) error {
	type plain WriterComponents
	var p plain
	for _, a := range start.Attr {
		if a.Name.Local == "writerid" {
			p.WriterID = a.Value
		}
	}
	if err := dec.DecodeElement(&p, &start); err != nil {
		return err
	}
	*w = WriterComponents(p)
	return nil
}

// BackupComponent is COMPONENT.
type BackupComponent struct {
	ComponentType   ComponentType   `xml:"componentType,attr,omitempty"`
	LogicalPath     string          `xml:"logicalPath,attr,omitempty"`
	ComponentName   string          `xml:"componentName,attr"`
	BackupSucceeded YesNo           `xml:"backupSucceeded,attr"`
	BackupMetadata  *BackupMetadata `xml:"BACKUP_METADATA"`
	// AlternateLocationMappings records where files were restored when not
	// to their original place (AddAlternativeLocationMapping).
	AlternateLocationMappings []Files `xml:"ALTERNATE_LOCATION_MAPPING"`
}

// BackupMetadata is BACKUP_METADATA: the writer's annotation, a hex string.
type BackupMetadata struct {
	Metadata string `xml:"metadata,attr"`
}

// Metadata decodes the component's BACKUP_METADATA; nil if there is none.
func (c *BackupComponent) Metadata() ([]byte, error) {
	if c.BackupMetadata == nil {
		return nil, nil
	}
	b, err := hex.DecodeString(c.BackupMetadata.Metadata)
	if err != nil {
		return nil, invalid("BACKUP_METADATA of %q: %v", c.ComponentName, err)
	}
	return b, nil
}

// SetMetadata stores b, hex-encoded, as the component's BACKUP_METADATA.
func (c *BackupComponent) SetMetadata(b []byte) {
	c.BackupMetadata = &BackupMetadata{Metadata: hex.EncodeToString(b)}
}

// NewBackupComponents starts a document of the given type.
func NewBackupComponents(t BackupType, selectComponents bool) *BackupComponents {
	return &BackupComponents{Version: Version, BackupType: t, SelectComponents: YesNo(selectComponents)}
}

// Writer returns the WRITER_COMPONENTS of writerID (and instanceID, unless
// empty), comparing GUIDs case-insensitively.
func (b *BackupComponents) Writer(writerID, instanceID string) *WriterComponents {
	for i := range b.Writers {
		w := &b.Writers[i]
		if strings.EqualFold(w.WriterID, writerID) && (instanceID == "" || strings.EqualFold(w.InstanceID, instanceID)) {
			return w
		}
	}
	return nil
}

// AddComponent adds c to the writer's WRITER_COMPONENTS, creating it if
// needed. It fails if the writer already lists that component.
func (b *BackupComponents) AddComponent(writerID, instanceID string, c BackupComponent) (*BackupComponent, error) {
	w := b.Writer(writerID, instanceID)
	if w == nil {
		b.Writers = append(b.Writers, WriterComponents{WriterID: writerID, InstanceID: instanceID})
		w = &b.Writers[len(b.Writers)-1]
	}
	if w.Component(c.LogicalPath, c.ComponentName) != nil {
		return nil, invalid("writer %s: component %q at %q listed twice", writerID, c.ComponentName, c.LogicalPath)
	}
	w.Components = append(w.Components, c)
	return &w.Components[len(w.Components)-1], nil
}

// Component finds a component by logical path and name.
func (w *WriterComponents) Component(logicalPath, name string) *BackupComponent {
	for i := range w.Components {
		c := &w.Components[i]
		if c.LogicalPath == logicalPath && c.ComponentName == name {
			return c
		}
	}
	return nil
}

// Component finds a writer's component; an error names what is missing.
func (b *BackupComponents) Component(writerID, logicalPath, name string) (*BackupComponent, error) {
	w := b.Writer(writerID, "")
	if w == nil {
		return nil, invalid("no WRITER_COMPONENTS for writer %s", writerID)
	}
	c := w.Component(logicalPath, name)
	if c == nil {
		return nil, invalid("writer %s has no component %q at logicalPath %q", writerID, name, logicalPath)
	}
	return c, nil
}

// SetBackupSucceeded records whether a component was backed up (the
// patent sets it during BackupComplete).
func (b *BackupComponents) SetBackupSucceeded(writerID, logicalPath, name string, ok bool) error {
	c, err := b.Component(writerID, logicalPath, name)
	if err != nil {
		return err
	}
	c.BackupSucceeded = YesNo(ok)
	return nil
}

// AddAlternativeLocationMapping records, as the patent's method of that name
// does, that the files path\filespec of a component were restored to
// alternatePath instead of their original location.
func (b *BackupComponents) AddAlternativeLocationMapping(writerID, logicalPath, name string, m Files) error {
	if err := m.validate("ALTERNATE_LOCATION_MAPPING", true); err != nil {
		return err
	}
	c, err := b.Component(writerID, logicalPath, name)
	if err != nil {
		return err
	}
	c.AlternateLocationMappings = append(c.AlternateLocationMappings, m)
	return nil
}

// Validate checks what Appendix D requires: version 1.0, a known
// backupType, GUID writer ids, one entry per writer instance, named and
// unique components of known type, hex BACKUP_METADATA, complete mappings.
func (b *BackupComponents) Validate() error {
	if b.Version != Version {
		return invalid("BACKUP_COMPONENTS: version %q, want %q", b.Version, Version)
	}
	switch b.BackupType {
	case BackupFull, BackupDifferential, BackupIncremental, BackupOther:
	default:
		return invalid("BACKUP_COMPONENTS: unknown backupType %q", b.BackupType)
	}
	writers := map[string]bool{}
	for _, w := range b.Writers {
		if !validGUID(w.WriterID) {
			return invalid("WRITER_COMPONENTS: writerId %q is not a GUID", w.WriterID)
		}
		if w.InstanceID != "" && !validGUID(w.InstanceID) {
			return invalid("WRITER_COMPONENTS: instanceId %q is not a GUID", w.InstanceID)
		}
		k := strings.ToLower(w.WriterID + "/" + w.InstanceID)
		if writers[k] {
			return invalid("WRITER_COMPONENTS: writer %s instance %s listed twice", w.WriterID, w.InstanceID)
		}
		writers[k] = true
		seen := map[[2]string]bool{}
		for i := range w.Components {
			c := &w.Components[i]
			if c.ComponentName == "" {
				return invalid("COMPONENT of writer %s: componentName is required", w.WriterID)
			}
			switch c.ComponentType {
			case "", ComponentDatabase, ComponentFileGroup:
			default:
				return invalid("COMPONENT %q: unknown componentType %q", c.ComponentName, c.ComponentType)
			}
			k := [2]string{c.LogicalPath, c.ComponentName}
			if seen[k] {
				return invalid("COMPONENT %q at logicalPath %q listed twice", c.ComponentName, c.LogicalPath)
			}
			seen[k] = true
			if _, err := c.Metadata(); err != nil {
				return err
			}
			for _, m := range c.AlternateLocationMappings {
				if err := m.validate("ALTERNATE_LOCATION_MAPPING", true); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// WriterStatus is fsrvpd's WRITER_STATUS document: how each writer fared
// around one shadow copy set.
type WriterStatus struct {
	XMLName xml.Name      `xml:"WRITER_STATUS"`
	Version string        `xml:"version,attr"`
	SetID   string        `xml:"setId,attr"`
	Writers []WriterState `xml:"WRITER"`
}

// WriterState is one writer's outcome.
type WriterState struct {
	WriterID     string `xml:"writerId,attr"`
	InstanceID   string `xml:"instanceId,attr"`
	FriendlyName string `xml:"friendlyName,attr"`
	// State: "stable" (every phase so far succeeded) or "failed".
	State string `xml:"state,attr"`
	// Phase is the last phase run (prepare, freeze, thaw, post-snapshot,
	// backup-complete, abort); Failure says why it failed.
	Phase   string `xml:"phase,attr,omitempty"`
	Failure string `xml:"failure,attr,omitempty"`
	// FreezeWindowMicroseconds is the time from the start of the freeze to
	// the end of the thaw.
	FreezeWindowMicroseconds int64 `xml:"freezeWindowMicroseconds,attr,omitempty"`
}

// Writer states.
const (
	StateStable = "stable"
	StateFailed = "failed"
)

// Failed reports whether the writer failed.
func (w WriterState) Failed() bool { return w.State == StateFailed }

// Marshal writes a document (WriterMetadata, BackupComponents or
// WriterStatus) as indented XML with a declaration, in its namespace.
func Marshal(doc any) ([]byte, error) {
	var start xml.StartElement
	switch doc.(type) {
	case *WriterMetadata:
		start.Name = xml.Name{Space: WriterMetadataNamespace, Local: "WRITER_METADATA"}
	case *BackupComponents:
		start.Name = xml.Name{Space: BackupComponentsNamespace, Local: "BACKUP_COMPONENTS"}
	case *WriterStatus:
		start.Name = xml.Name{Space: StatusNamespace, Local: "WRITER_STATUS"}
	default:
		return nil, fmt.Errorf("vss: cannot marshal %T", doc)
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := enc.EncodeElement(doc, start); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

func parse(data []byte, doc any, local string) error {
	if err := xml.Unmarshal(data, doc); err != nil {
		return fmt.Errorf("%s: %v: %w", local, err, ErrInvalid)
	}
	return nil
}

// ParseWriterMetadata reads and validates a WRITER_METADATA document.
func ParseWriterMetadata(data []byte) (*WriterMetadata, error) {
	var w WriterMetadata
	if err := parse(data, &w, "WRITER_METADATA"); err != nil {
		return nil, err
	}
	if err := w.Validate(); err != nil {
		return nil, err
	}
	return &w, nil
}

// ParseBackupComponents reads and validates a BACKUP_COMPONENTS document.
func ParseBackupComponents(data []byte) (*BackupComponents, error) {
	var b BackupComponents
	if err := parse(data, &b, "BACKUP_COMPONENTS"); err != nil {
		return nil, err
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return &b, nil
}

// ParseWriterStatus reads a WRITER_STATUS document.
func ParseWriterStatus(data []byte) (*WriterStatus, error) {
	var s WriterStatus
	if err := parse(data, &s, "WRITER_STATUS"); err != nil {
		return nil, err
	}
	for _, w := range s.Writers {
		if w.State != StateStable && w.State != StateFailed {
			return nil, invalid("WRITER_STATUS: writer %s: unknown state %q", w.WriterID, w.State)
		}
	}
	return &s, nil
}
