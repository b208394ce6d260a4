package requestor

import (
	"fmt"
	"path"
	"strings"

	"github.com/fsrvpd/fsrvpd/client/vss"
)

// A component spec selects writer components for Include and Exclude:
//
//	[writer:]pattern
//
// writer (optional) is a writer's friendly name or writer id; pattern is
// matched (path.Match, case-insensitive) against the component's full
// path "logicalPath/componentName" (backslashes read as slashes) and, when
// it holds no slash, against the component name alone. Examples: "db/*",
// "PostgreSQL:main", "*".
type componentSpec struct{ writer, pattern string }

func parseComponentSpec(s string) (componentSpec, error) {
	s = strings.TrimSpace(s)
	var cs componentSpec
	if w, p, ok := strings.Cut(s, ":"); ok {
		cs.writer, s = strings.TrimSpace(w), p
	}
	cs.pattern = strings.ToLower(strings.Trim(strings.ReplaceAll(strings.TrimSpace(s), `\`, "/"), "/"))
	if cs.pattern == "" {
		return cs, fmt.Errorf("component spec %q: empty pattern", s)
	}
	if _, err := path.Match(cs.pattern, ""); err != nil {
		return cs, fmt.Errorf("component spec %q: %w", s, err)
	}
	return cs, nil
}

func (cs componentSpec) matches(w *vss.WriterMetadata, c vss.Component) bool {
	if cs.writer != "" && !strings.EqualFold(cs.writer, w.Identification.FriendlyName) && !strings.EqualFold(cs.writer, w.Identification.WriterID) {
		return false
	}
	full := strings.ToLower(componentPath(c.LogicalPath, c.ComponentName))
	if ok, _ := path.Match(cs.pattern, full); ok {
		return true
	}
	if !strings.Contains(cs.pattern, "/") {
		ok, _ := path.Match(cs.pattern, strings.ToLower(c.ComponentName))
		return ok
	}
	return false
}

func componentPath(logicalPath, name string) string {
	lp := strings.Trim(strings.ReplaceAll(logicalPath, `\`, "/"), "/")
	if lp == "" {
		return name
	}
	return lp + "/" + name
}

// fileMatcher is a Files element (path, filespec, recursive) resolved to a
// share and a directory below it.
type fileMatcher struct {
	share, dir string // dir: slash path below the share root, "" for the root
	spec       string // lower case; "*.*" is read as "*", as Windows does
	recursive  bool
}

func (sp SharePaths) matcher(f vss.Files, names map[string]bool) (fileMatcher, error) {
	share, dir, ok := sp.locate(f.Path, names)
	if !ok {
		return fileMatcher{}, fmt.Errorf("%s is in none of the shares %s", f.Path, strings.Join(sortedKeys(names), ", "))
	}
	spec := strings.ToLower(f.Filespec)
	if spec == "*.*" {
		spec = "*"
	}
	return fileMatcher{share: share, dir: dir, spec: spec, recursive: bool(f.Recursive)}, nil
}

// match reports whether the file rel (slash path) of share is named.
func (m fileMatcher) match(share, rel string) bool {
	if !strings.EqualFold(share, m.share) {
		return false
	}
	dir, base := path.Split(rel)
	dir = strings.TrimSuffix(dir, "/")
	switch {
	case dir == m.dir:
	case m.recursive && (m.dir == "" || strings.HasPrefix(dir, m.dir+"/")):
	default:
		return false
	}
	ok, _ := path.Match(m.spec, strings.ToLower(base))
	return ok
}

// under reports whether rel lies in m's tree (for alternate locations):
// the path of rel relative to m.dir, and whether it matches.
func (m fileMatcher) relative(share, rel string) (string, bool) {
	if !m.match(share, rel) {
		return "", false
	}
	if m.dir == "" {
		return rel, true
	}
	return strings.TrimPrefix(rel, m.dir+"/"), true
}

// plannedComponent is one writer component of a backup.
type plannedComponent struct {
	writer   *vss.WriterMetadata
	comp     vss.Component
	selected bool
	files    []fileMatcher
	result   ComponentResult
}

func (pc *plannedComponent) match(share, rel string) bool {
	for _, m := range pc.files {
		if m.match(share, rel) {
			return true
		}
	}
	return false
}

// componentPlan is the selection of writer components for a backup.
type componentPlan struct {
	docs     *documents
	comps    []*plannedComponent
	excludes []fileMatcher // the writers' EXCLUDE_FILES
	selected bool          // Include or Exclude given
	status   *vss.WriterStatus
}

// planComponents reads the writer metadata and selects components.
// Files of unselected components and the writers' EXCLUDE_FILES are left
// out of the backup; every other file of the shares is backed up.
func planComponents(docs *documents, paths SharePaths, shares []CatalogShare, include, exclude []string) (*componentPlan, error) {
	p := &componentPlan{docs: docs, selected: len(include)+len(exclude) > 0}
	if len(docs.writerMetadata) == 0 {
		if p.selected {
			return nil, fmt.Errorf("component selection: there is no writer metadata (no writer took part in this shadow copy set)")
		}
		return p, nil
	}
	parse := func(specs []string) ([]componentSpec, error) {
		var out []componentSpec
		for _, s := range specs {
			cs, err := parseComponentSpec(s)
			if err != nil {
				return nil, err
			}
			out = append(out, cs)
		}
		return out, nil
	}
	inc, err := parse(include)
	if err != nil {
		return nil, err
	}
	exc, err := parse(exclude)
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, s := range shares {
		names[strings.ToLower(s.Name)] = true
	}
	if docs.writerStatus != nil {
		if p.status, err = vss.ParseWriterStatus(docs.writerStatus); err != nil {
			return nil, fmt.Errorf("%s: %w", shareWriterStatus, err)
		}
	}
	used := make([]bool, len(inc))
	for _, file := range sortedKeys(docs.writerMetadata) {
		wm := docs.writerMetadata[file]
		for _, f := range wm.BackupLocations.Exclude {
			if m, err := paths.matcher(f, names); err == nil {
				p.excludes = append(p.excludes, m)
			}
		}
		for _, c := range wm.Components() {
			pc := &plannedComponent{writer: wm, comp: c, selected: len(inc) == 0,
				result: ComponentResult{WriterID: wm.Identification.WriterID, WriterName: wm.Identification.FriendlyName,
					LogicalPath: c.LogicalPath, ComponentName: c.ComponentName}}
			for i, cs := range inc {
				if cs.matches(wm, c) {
					pc.selected, used[i] = true, true
				}
			}
			for _, cs := range exc {
				if cs.matches(wm, c) {
					pc.selected = false
				}
			}
			if !pc.selected && !bool(c.Selectable) && len(exc) > 0 {
				for _, cs := range exc {
					if cs.matches(wm, c) {
						return nil, fmt.Errorf("-exclude %q: component %s of writer %s is not selectable", cs.pattern,
							componentPath(c.LogicalPath, c.ComponentName), wm.Identification.FriendlyName)
					}
				}
			}
			for _, f := range append(append([]vss.Files(nil), c.Files...), c.LogFiles...) {
				m, err := paths.matcher(f, names)
				if err != nil {
					if pc.selected {
						return nil, fmt.Errorf("component %s of writer %s: %w (add its share to the backup)",
							componentPath(c.LogicalPath, c.ComponentName), wm.Identification.FriendlyName, err)
					}
					continue
				}
				pc.files = append(pc.files, m)
			}
			p.comps = append(p.comps, pc)
		}
	}
	// A writer's non-selectable components go wherever any of its
	// components goes (the patent: they are backed up whenever the writer is).
	for _, pc := range p.comps {
		if pc.selected || bool(pc.comp.Selectable) {
			continue
		}
		for _, o := range p.comps {
			if o.writer == pc.writer && o.selected {
				pc.selected = true
				break
			}
		}
	}
	for i, ok := range used {
		if !ok {
			return nil, fmt.Errorf("-include %q matches no component", include[i])
		}
	}
	return p, nil
}

// filter leaves out the writers' excluded files and the files of
// unselected components.
func (p *componentPlan) filter() Filter {
	if len(p.comps) == 0 && len(p.excludes) == 0 {
		return nil
	}
	return func(share, rel string, dir bool) bool {
		if dir {
			return true
		}
		for _, m := range p.excludes {
			if m.match(share, rel) {
				return false
			}
		}
		in, out := false, false
		for _, pc := range p.comps {
			if pc.match(share, rel) {
				if pc.selected {
					in = true
				} else {
					out = true
				}
			}
		}
		return in || !out
	}
}

// results counts each selected component's files and decides its
// outcome: a component succeeds when its writer did not fail around the
// snapshot (a failed writer's data is only crash-consistent).
func (p *componentPlan) results(entries []Entry) []ComponentResult {
	var out []ComponentResult
	for _, pc := range p.comps {
		if !pc.selected {
			continue
		}
		r := pc.result
		for _, e := range entries {
			if !e.Dir && pc.match(e.Share, e.Path) {
				r.Files++
			}
		}
		r.Succeeded = true
		if st := p.writerState(pc.writer); st != nil && st.Failed() {
			r.Succeeded = false
			r.Message = fmt.Sprintf("writer %s failed in %s: %s", st.FriendlyName, st.Phase, st.Failure)
		} else if r.Files == 0 {
			r.Message = "no files found"
		}
		pc.result = r
		out = append(out, r)
	}
	return out
}

func (p *componentPlan) writerState(wm *vss.WriterMetadata) *vss.WriterState {
	if p.status == nil {
		return nil
	}
	for i, w := range p.status.Writers {
		if strings.EqualFold(w.InstanceID, wm.Identification.InstanceID) ||
			(w.InstanceID == "" && strings.EqualFold(w.WriterID, wm.Identification.WriterID)) {
			return &p.status.Writers[i]
		}
	}
	return nil
}

// backupComponents builds the backup components document of the backup:
// the server's (with the writers' BACKUP_METADATA) or a new one, holding
// exactly the selected components, each with backupSucceeded.
func (p *componentPlan) backupComponents(incremental bool) (*vss.BackupComponents, error) {
	bt := vss.BackupFull
	if incremental {
		bt = vss.BackupIncremental
	}
	var bc *vss.BackupComponents
	if p.docs.backupComponents != nil {
		var err error
		if bc, err = vss.ParseBackupComponents(p.docs.backupComponents); err != nil {
			return nil, fmt.Errorf("%s: %w", shareBackupComponents, err)
		}
		bc.BackupType = bt
		bc.SelectComponents = vss.YesNo(p.selected)
	} else {
		bc = vss.NewBackupComponents(bt, p.selected)
	}
	keep := map[string]bool{}
	for _, pc := range p.comps {
		id := pc.writer.Identification
		key := strings.ToLower(id.WriterID + "\x00" + id.InstanceID + "\x00" + pc.comp.LogicalPath + "\x00" + pc.comp.ComponentName)
		if !pc.selected {
			continue
		}
		keep[key] = true
		w := bc.Writer(id.WriterID, id.InstanceID)
		if w == nil || w.Component(pc.comp.LogicalPath, pc.comp.ComponentName) == nil {
			if _, err := bc.AddComponent(id.WriterID, id.InstanceID, vss.BackupComponent{ComponentType: pc.comp.Type,
				LogicalPath: pc.comp.LogicalPath, ComponentName: pc.comp.ComponentName}); err != nil {
				return nil, err
			}
			w = bc.Writer(id.WriterID, id.InstanceID)
		}
		w.Component(pc.comp.LogicalPath, pc.comp.ComponentName).BackupSucceeded = vss.YesNo(pc.result.Succeeded)
	}
	// Drop what was not selected.
	var writers []vss.WriterComponents
	for _, w := range bc.Writers {
		var cs []vss.BackupComponent
		for _, c := range w.Components {
			if keep[strings.ToLower(w.WriterID+"\x00"+w.InstanceID+"\x00"+c.LogicalPath+"\x00"+c.ComponentName)] {
				cs = append(cs, c)
			}
		}
		if len(cs) > 0 {
			w.Components = cs
			writers = append(writers, w)
		}
	}
	bc.Writers = writers
	return bc, nil
}

// write stores the documents below dest/documents: the writers' metadata
// and status as published, and the backup components document of this
// backup.
func (p *componentPlan) write(dest string, incremental bool) ([]Entry, error) {
	d := p.docs
	var out []Entry
	for _, n := range sortedKeys(d.writerMetadataRaw) {
		e, err := writeDoc(dest, WriterMetadataDir+"/"+n, d.writerMetadataRaw[n])
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	{
		// Always: without writers it records the backup type only.
		bc, err := p.backupComponents(incremental)
		if err != nil {
			return nil, err
		}
		data, err := vss.Marshal(bc)
		if err != nil {
			return nil, err
		}
		e, err := writeDoc(dest, BackupComponents, data)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if d.writerStatus != nil {
		e, err := writeDoc(dest, WriterStatus, d.writerStatus)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}
