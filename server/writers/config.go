package writers

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/fsrvpd/fsrvpd/client/vss"
)

// Config is the [writers] section and the [[writer]] list of fsrvpd.toml.
type Config struct {
	// FreezeTimeout bounds the freeze window: from the first Freeze to the
	// last Thaw. When it passes, the writers are thawed whatever the
	// snapshot is doing and marked failed. Default 10 s, VSS's window.
	FreezeTimeout Duration `toml:"freeze_timeout"`
	// DocumentsDir holds the documents of each set, <documents_dir>/<set
	// id>/; default <state_dir>/vss. smbd serves it as the set's documents
	// share, so the connecting users must be able to traverse the path.
	DocumentsDir string `toml:"documents_dir"`
}

// Phase names a hook.
type Phase string

// The phases, in the order a backup visits them (Abort replaces the rest
// after a failure).
const (
	PhasePrepare        Phase = "prepare"
	PhaseFreeze         Phase = "freeze"
	PhaseThaw           Phase = "thaw"
	PhasePostSnapshot   Phase = "post-snapshot"
	PhaseBackupComplete Phase = "backup-complete"
	PhaseAbort          Phase = "abort"
	PhaseServiceStop    Phase = "service-stop"
	PhaseServiceStart   Phase = "service-start"
)

// Phases lists every phase a hook can be configured for.
var Phases = []Phase{PhasePrepare, PhaseFreeze, PhaseThaw, PhasePostSnapshot, PhaseBackupComplete, PhaseAbort, PhaseServiceStop, PhaseServiceStart}

// Writer is one [[writer]]: an application whose data must be quiesced
// around the snapshot, and what the patent's writer metadata says of it.
type Writer struct {
	// Name is the friendly name (IDENTIFICATION friendlyName) and the
	// writer's name in logs and in the private control interface.
	Name       string `toml:"name"`
	WriterID   string `toml:"writer_id"`
	InstanceID string `toml:"instance_id"`
	// Usage: USER_DATA, BOOTABLE_SYSTEM_STATE, SYSTEM_SERVICE or OTHER.
	Usage string `toml:"usage"`
	// DataSource: TRANSACTION_DB, NONTRANSACTIONAL_DB or OTHER.
	DataSource string `toml:"data_source"`
	// Required: a failure of this writer fails the snapshot (Prepare or
	// Commit returns an error) instead of only the writer.
	Required bool `toml:"required"`
	// Volumes: the writer takes part in sets holding a volume whose root
	// contains one of these paths. Default: its component and include
	// paths.
	Volumes []string `toml:"volumes"`
	// FSFreeze: mount points frozen with FIFREEZE after the freeze hooks
	// and thawed with FITHAW before the thaw hooks. Only for backends whose
	// snapshot does not write to the frozen file system.
	FSFreeze []string `toml:"fsfreeze"`

	Include    []FileSpec  `toml:"include"`
	Exclude    []FileSpec  `toml:"exclude"`
	Components []Component `toml:"component"`
	// Restore is the writer-wide restore method.
	Restore *Restore `toml:"restore"`

	Hooks   map[Phase]Hook `toml:"hooks"`
	Session *Session       `toml:"session"`
}

// FileSpec is a path and a filespec (wildcards * and ?).
type FileSpec struct {
	Path          string `toml:"path"`
	Filespec      string `toml:"filespec"`
	Recursive     bool   `toml:"recursive"`
	AlternatePath string `toml:"alternate_path"`
}

// Component is a [[writer.component]]: a database or a file group.
type Component struct {
	// Type is "database" or "filegroup".
	Type                   string     `toml:"type"`
	LogicalPath            string     `toml:"logical_path"`
	Name                   string     `toml:"name"`
	Caption                string     `toml:"caption"`
	Selectable             *bool      `toml:"selectable"`
	RestoreMetadata        bool       `toml:"restore_metadata"`
	NotifyOnBackupComplete bool       `toml:"notify_on_backup_complete"`
	Files                  []FileSpec `toml:"files"`
	LogFiles               []FileSpec `toml:"log_files"`
	Restore                *Restore   `toml:"restore"`
}

// Restore is a restore method.
type Restore struct {
	// Method: one of the six methods, schema or prose spelling.
	Method         string `toml:"method"`
	Service        string `toml:"service"`
	WriterRestore  string `toml:"writer_restore"`
	RebootRequired bool   `toml:"reboot_required"`
	UserProcedure  string `toml:"user_procedure"`
	// AlternateLocations map original files to restore locations.
	AlternateLocations []FileSpec `toml:"alternate_location"`
}

// Hook is a command run for one phase.
type Hook struct {
	// Command is argv; run without a shell, in its own process group.
	Command []string `toml:"command"`
	// Timeout kills the hook's process group; default 60 s (freeze and
	// thaw: the freeze timeout).
	Timeout Duration `toml:"timeout"`
}

// Session is a long-lived helper process that holds one session (a
// database connection, a lock) across the freeze. It is started before the
// first phase it handles and stopped after the last one of the snapshot.
// The line protocol, on its stdin and stdout:
//
//	fsrvpd -> helper:  <phase> <set id>
//	helper -> fsrvpd:  zero or more "data <text>" lines, then "ok" or
//	                   "error <message>"
//
// "data" lines answering post-snapshot become the components'
// BACKUP_METADATA. The helper's stderr goes to fsrvpd's log.
type Session struct {
	Command []string `toml:"command"`
	// Phases the helper handles instead of hooks, among prepare, freeze,
	// thaw, post-snapshot; default freeze and thaw.
	Phases []Phase `toml:"phases"`
	// Timeout for each answer; default 30 s.
	Timeout Duration `toml:"timeout"`
}

// Duration is a time.Duration written as "10s" in TOML.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("negative duration %s", b)
	}
	d.Duration = v
	return nil
}

// MarshalText prints a Go duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Defaults.
const (
	DefaultFreezeTimeout  = 10 * time.Second
	DefaultHookTimeout    = 60 * time.Second
	DefaultSessionTimeout = 30 * time.Second
)

func (s *Session) handles(p Phase) bool {
	if s == nil {
		return false
	}
	if len(s.Phases) == 0 {
		return p == PhaseFreeze || p == PhaseThaw
	}
	for _, x := range s.Phases {
		if x == p {
			return true
		}
	}
	return false
}

// Validate reports every problem of the writers' configuration, with the
// key path of each.
func Validate(c Config, ws []Writer) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.DocumentsDir != "" && !filepath.IsAbs(c.DocumentsDir) {
		bad("writers.documents_dir: %q is not absolute", c.DocumentsDir)
	}
	names := map[string]bool{}
	instances := map[string]bool{}
	for i, w := range ws {
		key := fmt.Sprintf("writer[%d]", i)
		if w.Name == "" {
			bad("%s.name: required", key)
		} else if names[strings.ToLower(w.Name)] {
			bad("%s.name: %q used twice", key, w.Name)
		}
		names[strings.ToLower(w.Name)] = true
		if _, err := uuid.Parse(w.WriterID); err != nil || len(w.WriterID) != 36 {
			bad("%s.writer_id: %q is not a GUID", key, w.WriterID)
		}
		if _, err := uuid.Parse(w.InstanceID); err != nil || len(w.InstanceID) != 36 {
			bad("%s.instance_id: %q is not a GUID", key, w.InstanceID)
		} else if instances[strings.ToLower(w.InstanceID)] {
			bad("%s.instance_id: %s used twice", key, w.InstanceID)
		}
		instances[strings.ToLower(w.InstanceID)] = true
		for _, p := range append(append([]string(nil), w.Volumes...), w.FSFreeze...) {
			if !filepath.IsAbs(p) {
				bad("%s: path %q is not absolute", key, p)
			}
		}
		for p, h := range w.Hooks {
			if !validPhase(p) {
				bad("%s.hooks.%s: unknown phase (want one of %v)", key, p, Phases)
			}
			if len(h.Command) == 0 {
				bad("%s.hooks.%s.command: required", key, p)
			}
			if w.Session.handles(p) {
				bad("%s.hooks.%s: the session handles that phase", key, p)
			}
		}
		if s := w.Session; s != nil {
			if len(s.Command) == 0 {
				bad("%s.session.command: required", key)
			}
			for _, p := range s.Phases {
				switch p {
				case PhasePrepare, PhaseFreeze, PhaseThaw, PhasePostSnapshot:
				default:
					bad("%s.session.phases: %q cannot be handled by a session", key, p)
				}
			}
		}
		if w.Session.handles(PhaseFreeze) != w.Session.handles(PhaseThaw) {
			bad("%s.session.phases: freeze and thaw go together", key)
		}
		if _, err := w.Metadata(); err != nil {
			bad("%s: %v", key, err)
		}
	}
	return errors.Join(errs...)
}

func validPhase(p Phase) bool {
	for _, x := range Phases {
		if x == p {
			return true
		}
	}
	return false
}

func files(in []FileSpec) []vss.Files {
	var out []vss.Files
	for _, f := range in {
		out = append(out, vss.Files{Path: f.Path, Filespec: f.Filespec, Recursive: vss.YesNo(f.Recursive), AlternatePath: f.AlternatePath})
	}
	return out
}

func (r *Restore) method(logicalPath, name string) (vss.RestoreMethod, error) {
	m, err := vss.ParseRestoreMethod(r.Method)
	if err != nil {
		return vss.RestoreMethod{}, err
	}
	return vss.RestoreMethod{
		LogicalPath: logicalPath, ComponentName: name, Method: m, Service: r.Service,
		WriterRestore: vss.WriterRestore(r.WriterRestore), UserProcedure: r.UserProcedure,
		RebootRequired: vss.YesNo(r.RebootRequired), AlternateLocationMappings: files(r.AlternateLocations),
	}, nil
}

// Metadata is the writer's WRITER_METADATA document, validated.
func (w *Writer) Metadata() (*vss.WriterMetadata, error) {
	md := &vss.WriterMetadata{
		Version: vss.Version,
		Identification: vss.Identification{
			FriendlyName: w.Name, WriterID: w.WriterID, InstanceID: w.InstanceID,
			Usage: vss.Usage(w.Usage), DataSource: vss.DataSource(w.DataSource),
		},
		BackupLocations: vss.BackupLocations{Include: files(w.Include), Exclude: files(w.Exclude)},
	}
	if w.Restore != nil {
		m, err := w.Restore.method("", "")
		if err != nil {
			return nil, err
		}
		md.RestoreMethods = append(md.RestoreMethods, m)
	}
	for _, c := range w.Components {
		attrs := vss.ComponentAttrs{
			LogicalPath: c.LogicalPath, ComponentName: c.Name, Caption: c.Caption,
			RestoreMetadata: vss.YesNo(c.RestoreMetadata), NotifyOnBackupComplete: vss.YesNo(c.NotifyOnBackupComplete),
			Selectable: vss.YesNo(c.Selectable == nil || *c.Selectable),
		}
		switch vss.ComponentType(c.Type) {
		case vss.ComponentDatabase:
			md.BackupLocations.Databases = append(md.BackupLocations.Databases, vss.Database{ComponentAttrs: attrs, Files: files(c.Files), LogFiles: files(c.LogFiles)})
		case vss.ComponentFileGroup:
			if len(c.LogFiles) > 0 {
				return nil, fmt.Errorf("component %q: log_files only for databases", c.Name)
			}
			md.BackupLocations.FileGroups = append(md.BackupLocations.FileGroups, vss.FileGroup{ComponentAttrs: attrs, Files: files(c.Files)})
		default:
			return nil, fmt.Errorf("component %q: type %q is neither database nor filegroup", c.Name, c.Type)
		}
		if c.Restore != nil {
			m, err := c.Restore.method(c.LogicalPath, c.Name)
			if err != nil {
				return nil, fmt.Errorf("component %q: %w", c.Name, err)
			}
			md.RestoreMethods = append(md.RestoreMethods, m)
		}
	}
	if err := md.Validate(); err != nil {
		return nil, err
	}
	return md, nil
}

// paths are the paths that place the writer on volumes.
func (w *Writer) paths() []string {
	if len(w.Volumes) > 0 {
		return w.Volumes
	}
	var out []string
	for _, f := range w.Include {
		out = append(out, f.Path)
	}
	for _, c := range w.Components {
		for _, f := range append(append([]FileSpec(nil), c.Files...), c.LogFiles...) {
			out = append(out, f.Path)
		}
	}
	return out
}

// within reports whether path is root or below it.
func within(path, root string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}

// involved reports whether the writer has data on one of the volume roots.
func (w *Writer) involved(roots []string) bool {
	for _, p := range w.paths() {
		for _, r := range roots {
			if within(filepath.Clean(p), filepath.Clean(r)) {
				return true
			}
		}
	}
	return false
}
