package requestor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/client/vss"
)

// ServiceControl runs a writer's service stop and start hooks on the
// server, for STOP_RESTART_SERVICE restores.
type ServiceControl interface {
	StopService(ctx context.Context, writer vss.Identification, service string) error
	StartService(ctx context.Context, writer vss.Identification, service string) error
}

// RestoreOptions configure Restore.
type RestoreOptions struct {
	// Backup is the backup directory.
	Backup string
	// SMB is the server to restore to (its shares). Ignored with ToDir.
	SMB SMB
	// ShareMap renames shares: backup share name → target share name.
	ShareMap map[string]string
	// ToDir, if set, restores into this local directory
	// (<ToDir>/<share>/...) instead of the server's shares.
	ToDir string
	// TargetPaths, if not nil, gives the server path of the target's
	// shares for alternate location mappings instead of srvsvc.
	TargetPaths SharePaths
	// Include and Exclude select components (component specs, as for
	// Backup). With Include, or with ComponentsOnly, files that belong to
	// no component are not restored.
	Include, Exclude []string
	ComponentsOnly   bool
	// Services runs STOP_RESTART_SERVICE hooks (WriterControl for fsrvpd);
	// nil fails such components, except with ToDir, where no service runs.
	Services ServiceControl
	Progress *Progress
	Log      *logrus.Entry
}

// Restore actions of a component.
const (
	ActionRestored  = "restored"  // in place
	ActionRelocated = "relocated" // to the alternate location mappings
	ActionSkipped   = "skipped"   // RESTORE_IF_NONE_THERE and files were there
	ActionFailed    = "failed"
	ActionManual    = "manual" // REPLACE_AT_REBOOT, CUSTOM: instructions given
)

// RestoreOutcome is what happened to one component.
type RestoreOutcome struct {
	ComponentResult
	Method       string `json:"method"`
	Action       string `json:"action"`
	Instructions string `json:"instructions,omitempty"`
	// Relocations are the alternate location mappings used, as recorded in
	// the backup components document.
	Relocations []vss.Files `json:"relocations,omitempty"`
}

// RestoreResult sums up a restore.
type RestoreResult struct {
	Components []RestoreOutcome `json:"components"`
	// PlainFiles counts the restored files that belong to no component.
	PlainFiles int   `json:"plain_files"`
	Files      int   `json:"files"`
	Bytes      int64 `json:"bytes"`
	// Document is the backup components document with this restore's
	// relocations (AddAlternativeLocationMapping), written next to the
	// backup's documents; "" when there are no writer documents.
	Document string `json:"document,omitempty"`
}

// ErrComponentsFailed is returned (wrapped) by Restore when a component
// could not be restored; the result says which.
var ErrComponentsFailed = errors.New("some components were not restored")

type restoreFile struct {
	src          Entry
	share, rel   string // target
	relocatedVia int    // index in the method's mappings, -1 in place
}

// Restore restores a backup per component, applying each component's
// restore method from its writer's metadata (US 6,948,038; client/vss):
//
//   - RESTORE_IF_NONE_THERE: only when none of the component's files exist.
//   - RESTORE_IF_CAN_BE_REPLACED: only when every existing file can be
//     replaced, i.e. no other client holds it open (an SMB open for delete
//     access meets STATUS_SHARING_VIOLATION); otherwise the whole component
//     goes to the method's alternate location mappings, or fails when it
//     has none.
//   - RESTORE_TO_ALTERNATE_LOCATION: to the alternate location mappings.
//   - STOP_RESTART_SERVICE: the writer's service is stopped on the server
//     (ServiceControl), the files restored in place, the service started
//     again, whatever the restore's outcome.
//   - REPLACE_AT_REBOOT and CUSTOM: nothing is written; the outcome carries
//     instructions.
//
// Nothing of a component is written before its checks passed. Relocations
// are recorded in a copy of the backup components document
// (AddAlternativeLocationMapping), written as
// documents/restore-<time>-backup-components.xml in the backup directory.
// Files outside every component are restored in place (replaced) unless
// Include or ComponentsOnly is given.
func Restore(ctx context.Context, o RestoreOptions) (*RestoreResult, error) {
	log := o.Log
	if log == nil {
		log = discardLog()
	}
	cat, err := LoadCatalog(o.Backup)
	if err != nil {
		return nil, err
	}
	docs, err := loadBackupDocuments(o.Backup)
	if err != nil {
		return nil, err
	}
	backupPaths := SharePaths{}
	for _, s := range cat.Shares {
		if s.Path != "" {
			backupPaths[s.Name] = s.Path
		}
	}
	plan, err := planComponents(docs, backupPaths, cat.Shares, o.Include, o.Exclude)
	if err != nil {
		return nil, err
	}
	var bc *vss.BackupComponents
	if docs.backupComponents != nil {
		if bc, err = vss.ParseBackupComponents(docs.backupComponents); err != nil {
			return nil, fmt.Errorf("%s: %w", BackupComponents, err)
		}
	}

	var tgt restoreTarget
	targetPaths := o.TargetPaths
	if o.ToDir != "" {
		tgt = dirTarget{root: o.ToDir}
		if targetPaths == nil {
			targetPaths = backupPaths
		}
	} else {
		st, err := newSMBTarget(ctx, o.SMB)
		if err != nil {
			return nil, err
		}
		tgt = st
	}
	defer tgt.close()
	r := &restorer{o: o, cat: cat, tgt: tgt, backupPaths: backupPaths, targetPaths: targetPaths, log: log, bc: bc}

	res := &RestoreResult{}
	var failed []string
	for _, pc := range plan.comps {
		if !pc.selected {
			continue
		}
		if bc != nil {
			w := bc.Writer(pc.writer.Identification.WriterID, pc.writer.Identification.InstanceID)
			if w == nil || w.Component(pc.comp.LogicalPath, pc.comp.ComponentName) == nil {
				continue // not in this backup
			}
		}
		out := r.component(ctx, pc)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		log.WithField("component", componentPath(pc.comp.LogicalPath, pc.comp.ComponentName)).
			WithField("action", out.Action).Info(out.Message)
		if out.Action == ActionFailed {
			failed = append(failed, componentPath(out.LogicalPath, out.ComponentName)+": "+out.Message)
		}
		res.Components = append(res.Components, out)
	}
	if len(o.Include) == 0 && !o.ComponentsOnly {
		var plain []restoreFile
		for _, e := range cat.Entries {
			if e.Dir || inAnyComponent(plan, e) {
				continue
			}
			plain = append(plain, restoreFile{src: e, share: r.targetShare(e.Share), rel: e.Path, relocatedVia: -1})
		}
		if err := r.writeAll(ctx, plain); err != nil {
			return nil, fmt.Errorf("restoring the files outside the components: %w", err)
		}
		res.PlainFiles = len(plain)
	}
	res.Files, res.Bytes = r.files, r.bytes
	if bc != nil {
		data, err := vss.Marshal(bc)
		if err != nil {
			return nil, err
		}
		name := filepath.Join(o.Backup, DocumentsDir, "restore-"+time.Now().UTC().Format("20060102T150405Z")+"-backup-components.xml")
		if err := os.WriteFile(name, data, 0o644); err != nil {
			return nil, err
		}
		res.Document = name
	}
	if len(failed) > 0 {
		return res, fmt.Errorf("%w: %s", ErrComponentsFailed, strings.Join(failed, "; "))
	}
	return res, nil
}

func inAnyComponent(p *componentPlan, e Entry) bool {
	for _, pc := range p.comps {
		if pc.match(e.Share, e.Path) {
			return true
		}
	}
	return false
}

// loadBackupDocuments reads the documents a backup holds, checking them
// against the catalog first.
func loadBackupDocuments(dir string) (*documents, error) {
	d := &documents{writerMetadata: map[string]*vss.WriterMetadata{}, writerMetadataRaw: map[string][]byte{}}
	ents, err := os.ReadDir(filepath.Join(dir, filepath.FromSlash(WriterMetadataDir)))
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".xml") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(WriterMetadataDir), e.Name()))
		if err != nil {
			return nil, err
		}
		wm, err := vss.ParseWriterMetadata(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		d.writerMetadata[e.Name()], d.writerMetadataRaw[e.Name()] = wm, data
	}
	for _, f := range []struct {
		name string
		dst  *[]byte
	}{{BackupComponents, &d.backupComponents}, {WriterStatus, &d.writerStatus}} {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.name)))
		switch {
		case err == nil:
			*f.dst = data
		case !os.IsNotExist(err):
			return nil, err
		}
	}
	return d, nil
}

type restorer struct {
	o                        RestoreOptions
	cat                      *Catalog
	tgt                      restoreTarget
	backupPaths, targetPaths SharePaths
	bc                       *vss.BackupComponents
	log                      *logrus.Entry
	files                    int
	bytes                    int64
}

func (r *restorer) targetShare(s string) string {
	for k, v := range r.o.ShareMap {
		if strings.EqualFold(k, s) {
			return v
		}
	}
	return s
}

// component restores one component and says what happened.
func (r *restorer) component(ctx context.Context, pc *plannedComponent) RestoreOutcome {
	out := RestoreOutcome{ComponentResult: pc.result}
	id := pc.writer.Identification
	fail := func(format string, args ...any) RestoreOutcome {
		out.Action, out.Succeeded, out.Message = ActionFailed, false, fmt.Sprintf(format, args...)
		return out
	}
	if r.bc != nil {
		if c, err := r.bc.Component(id.WriterID, pc.comp.LogicalPath, pc.comp.ComponentName); err == nil && !bool(c.BackupSucceeded) {
			return fail("its backup did not succeed (backupSucceeded=\"no\")")
		}
	}
	method, ok := pc.writer.RestoreMethodFor(pc.comp.LogicalPath, pc.comp.ComponentName)
	if !ok {
		return fail("writer %s gives no restore method", id.FriendlyName)
	}
	out.Method = string(method.Method)
	var files []restoreFile
	for _, e := range r.cat.Entries {
		if !e.Dir && pc.match(e.Share, e.Path) {
			files = append(files, restoreFile{src: e, share: r.targetShare(e.Share), rel: e.Path, relocatedVia: -1})
		}
	}
	out.Files = len(files)
	inPlace := func() RestoreOutcome {
		if err := r.writeAll(ctx, files); err != nil {
			return fail("%v", err)
		}
		out.Action, out.Succeeded, out.Message = ActionRestored, true, fmt.Sprintf("%d files restored in place", len(files))
		return out
	}
	relocate := func(why string) RestoreOutcome {
		moved, err := r.relocate(pc, method, files)
		if err != nil {
			return fail("%s; %v", why, err)
		}
		if err := r.writeAll(ctx, moved); err != nil {
			return fail("%v", err)
		}
		used := map[int]bool{}
		for _, f := range moved {
			if !used[f.relocatedVia] {
				used[f.relocatedVia] = true
				m := method.AlternateLocationMappings[f.relocatedVia]
				out.Relocations = append(out.Relocations, m)
				if r.bc != nil {
					if err := r.bc.AddAlternativeLocationMapping(id.WriterID, pc.comp.LogicalPath, pc.comp.ComponentName, m); err != nil {
						r.log.WithError(err).Warn("recording the alternate location mapping")
					}
				}
			}
		}
		out.Action, out.Succeeded = ActionRelocated, true
		out.Message = fmt.Sprintf("%s; %d files restored to the alternate location", why, len(moved))
		return out
	}

	switch method.Method {
	case vss.RestoreIfNoneThere:
		var there []string
		for _, f := range files {
			ok, err := r.tgt.exists(ctx, f.share, f.rel)
			if err != nil {
				return fail("%v", err)
			}
			if ok {
				there = append(there, r.tgt.describe(f.share, f.rel))
			}
		}
		if len(there) > 0 {
			out.Action, out.Succeeded = ActionSkipped, false
			out.Message = fmt.Sprintf("not restored: %d of its files exist (%s); RESTORE_IF_NONE_THERE restores only where none does", len(there), firstOf(there))
			return out
		}
		return inPlace()

	case vss.RestoreIfCanBeReplaced:
		var busy []string
		for _, f := range files {
			ok, err := r.tgt.exists(ctx, f.share, f.rel)
			if err != nil {
				return fail("%v", err)
			}
			if !ok {
				continue
			}
			if err := r.tgt.probeReplace(ctx, f.share, f.rel); err != nil {
				if !errors.Is(err, ErrInUse) {
					return fail("%v", err)
				}
				busy = append(busy, r.tgt.describe(f.share, f.rel))
			}
		}
		if len(busy) == 0 {
			return inPlace()
		}
		why := fmt.Sprintf("%d files cannot be replaced, they are open elsewhere (%s)", len(busy), firstOf(busy))
		if len(method.AlternateLocationMappings) == 0 {
			return fail("%s, and the writer gives no alternate location mapping", why)
		}
		return relocate(why)

	case vss.RestoreToAlternateLocation:
		if len(method.AlternateLocationMappings) == 0 {
			return fail("RESTORE_TO_ALTERNATE_LOCATION without an alternate location mapping")
		}
		return relocate("RESTORE_TO_ALTERNATE_LOCATION")

	case vss.StopRestartService:
		if r.o.ToDir != "" {
			res := inPlace()
			if res.Action == ActionRestored {
				res.Message += " (into a directory: no service stopped)"
			}
			return res
		}
		if r.o.Services == nil {
			return fail("STOP_RESTART_SERVICE needs the writer's service hooks on the server (not available for this target)")
		}
		if err := r.o.Services.StopService(ctx, id, method.Service); err != nil {
			return fail("stopping service %q: %v", method.Service, err)
		}
		res := inPlace()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if err := r.o.Services.StartService(sctx, id, method.Service); err != nil {
			if res.Action == ActionFailed {
				return fail("%s; starting service %q again failed too: %v", res.Message, method.Service, err)
			}
			return fail("files restored, but starting service %q failed: %v", method.Service, err)
		}
		if res.Action == ActionRestored {
			res.Message += fmt.Sprintf(" (service %q stopped and started)", method.Service)
		}
		return res

	case vss.ReplaceAtReboot:
		out.Action, out.Succeeded = ActionManual, false
		out.Message = "REPLACE_AT_REBOOT: not restored"
		out.Instructions = fmt.Sprintf("The writer %s replaces these files only while it is not running. Restore them to a staging "+
			"directory (fsrvp restore -to DIR -include '%s'), then, with the service stopped or at the next reboot, move them to their "+
			"places on the server (%d files, e.g. %s).", id.FriendlyName, componentPath(pc.comp.LogicalPath, pc.comp.ComponentName),
			len(files), r.firstPath(files))
		if method.UserProcedure != "" {
			out.Instructions += " Writer's procedure: " + method.UserProcedure
		}
		return out

	case vss.Custom:
		out.Action, out.Succeeded = ActionManual, false
		out.Message = "CUSTOM: not restored"
		out.Instructions = "The writer " + id.FriendlyName + " restores this component its own way"
		if method.UserProcedure != "" {
			out.Instructions += ": " + method.UserProcedure
		} else {
			out.Instructions += " and gives no procedure; see its documentation."
		}
		out.Instructions += fmt.Sprintf(" The backed-up files are in %s (%d files, e.g. %s).",
			filepath.Join(r.o.Backup, DataDir), len(files), r.firstPath(files))
		return out
	}
	return fail("unknown restore method %q", method.Method)
}

func firstOf(s []string) string {
	if len(s) > 2 {
		return strings.Join(s[:2], ", ") + ", ..."
	}
	return strings.Join(s, ", ")
}

func (r *restorer) firstPath(files []restoreFile) string {
	if len(files) == 0 {
		return "none"
	}
	return r.tgt.describe(files[0].share, files[0].rel)
}

// relocate maps every file through the method's alternate location
// mappings: a file under mapping m (path, filespec, recursive) goes to
// m.alternatePath plus its path below m.path, which must lie in a share
// of the target. A file no mapping covers fails the component.
func (r *restorer) relocate(pc *plannedComponent, method vss.RestoreMethod, files []restoreFile) ([]restoreFile, error) {
	names := map[string]bool{}
	for _, s := range r.cat.Shares {
		names[strings.ToLower(s.Name)] = true
	}
	type mapping struct {
		m   fileMatcher
		alt string
	}
	var ms []mapping
	for _, f := range method.AlternateLocationMappings {
		m, err := r.backupPaths.matcher(f, names)
		if err != nil {
			return nil, fmt.Errorf("alternate location mapping: %w", err)
		}
		ms = append(ms, mapping{m, f.AlternatePath})
	}
	if r.targetPaths == nil {
		paths, err := r.o.SMB.sharePaths(context.Background())
		if err != nil {
			return nil, fmt.Errorf("mapping alternate locations to the target's shares: %w", err)
		}
		r.targetPaths = paths
	}
	out := make([]restoreFile, 0, len(files))
	for _, f := range files {
		done := false
		for i, m := range ms {
			sub, ok := m.m.relative(f.src.Share, f.src.Path)
			if !ok {
				continue
			}
			dst := normServerPath(m.alt) + "/" + sub
			share, rel, ok := r.targetPaths.locate(dst, nil)
			if !ok {
				return nil, fmt.Errorf("alternate location %s is in no share of the target", m.alt)
			}
			out = append(out, restoreFile{src: f.src, share: share, rel: path.Clean(rel), relocatedVia: i})
			done = true
			break
		}
		if !done {
			return nil, fmt.Errorf("no alternate location mapping covers %s/%s", f.src.Share, f.src.Path)
		}
	}
	return out, nil
}

// writeAll copies files from the backup to the target, checking each
// source against the catalog's size first.
func (r *restorer) writeAll(ctx context.Context, files []restoreFile) error {
	var total int64
	for _, f := range files {
		total += f.src.Size
	}
	r.o.Progress.start(len(files), total)
	defer r.o.Progress.stop()
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		src := f.src.localPath(r.o.Backup)
		if fi, err := os.Stat(src); err != nil || fi.Size() != f.src.Size {
			return fmt.Errorf("backup file %s is missing or damaged (run fsrvp verify)", src)
		}
		if err := r.tgt.write(ctx, f.share, f.rel, src, f.src.ModTime, r.o.Progress); err != nil {
			return fmt.Errorf("%s: %w", r.tgt.describe(f.share, f.rel), err)
		}
		r.o.Progress.fileDone()
		r.files++
		r.bytes += f.src.Size
	}
	return nil
}
