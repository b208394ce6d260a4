package samba

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The registry mirror: with "registry shares = yes" in the smb.conf in use
// (detected at New from testparm's [global]), every snapshot share is also
// written to Samba's registry configuration, for srvsvc. samba-dcerpcd's
// rpcd_classic loads smb.conf once and ignores reload messages, so it never
// sees shares added to the include file after it started
// (NetShareGetInfo = WERR_INVALID_NAME); but its find_service loads
// registry shares on demand. The include file stays the record and smbd's
// source; the registry copy carries the same parameters (path, comment,
// read only, the copied ones) plus "fsrvpd:include = <include file>", which
// marks it as ours. The share security descriptor in share_info.tdb is
// found by name by both. No "include = registry" is needed or wanted.
//
// Costs (one net process each, Samba 4.17, see doc.go): Expose one
// "net conf import" of a one-share file, SetReadOnly one "net conf
// setparm", Remove one "net conf delshare" (which also deletes the SD;
// Remove deletes it anyway), New and List one "net conf list" to
// reconcile: registry shares named like ours ("@{") and marked with our
// include file but not in it are deleted, shares of the file missing from
// the registry (or with another access mode) are written again. A failing
// registry write is logged, not returned: smbd serves the share anyway and
// the next List repairs the mirror.
const regMark = "fsrvpd:include"

// regImport writes x to the registry, replacing any share of that name
// (net conf import with a service name touches only that share and keeps
// its security descriptor).
func (e *Exposer) regImport(ctx context.Context, x exposed) error {
	f, err := os.CreateTemp(filepath.Dir(e.cfg.IncludeFile), ".fsrvpd-registry-*.conf")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	var b bytes.Buffer
	b.Write(renderInclude([]exposed{x}, nil))
	// renderInclude ends with "[global]": drop it, append our mark.
	data := bytes.TrimSuffix(b.Bytes(), []byte("\n[global]\n"))
	data = append(data, fmt.Sprintf("\t%s = %s\n", regMark, e.cfg.IncludeFile)...)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	_, err = e.res.sm.run(ctx, "net", "-s", e.cfg.SMBConf, "conf", "import", f.Name(), x.Name)
	e.res.absorb(e.regDB)
	return err
}

func (e *Exposer) regSetReadOnly(ctx context.Context, name string, readOnly bool) error {
	_, err := e.res.sm.run(ctx, "net", "-s", e.cfg.SMBConf, "conf", "setparm", name, "read only", yesNo(readOnly))
	e.res.absorb(e.regDB)
	return err
}

func (e *Exposer) regDelete(ctx context.Context, name string) error {
	_, err := e.res.sm.run(ctx, "net", "-s", e.cfg.SMBConf, "conf", "delshare", name)
	e.res.absorb(e.regDB)
	return err
}

// regReconcile makes the registry's shares marked as ours equal to the
// include file's. e.mu is held (or e not yet shared). It returns how many
// registry shares it deleted and wrote.
func (e *Exposer) regReconcile(ctx context.Context) (deleted, written int, err error) {
	if !e.reg {
		return 0, 0, nil
	}
	out, err := e.res.sm.run(ctx, "net", "-s", e.cfg.SMBConf, "conf", "list")
	if err != nil {
		return 0, 0, err
	}
	have := map[string]section{}
	for _, s := range parseConf(out) {
		if v, _ := s.get(regMark); strings.Contains(s.Name, "@{") && v == e.cfg.IncludeFile {
			have[strings.ToLower(s.Name)] = s
		}
	}
	var errs []error
	for k, s := range have {
		if _, ok := e.byName[k]; !ok {
			if err := e.regDelete(ctx, s.Name); err != nil {
				errs = append(errs, err)
				continue
			}
			deleted++
		}
	}
	for k, x := range e.byName {
		s, ok := have[k]
		if ok && s.Name == x.Name {
			ro, _ := s.get("read only")
			p, _ := s.get("path")
			if yes(ro) == x.ReadOnly && p == x.Path {
				continue
			}
		}
		if err := e.regImport(ctx, x); err != nil {
			errs = append(errs, err)
			continue
		}
		written++
	}
	if len(errs) > 0 {
		return deleted, written, fmt.Errorf("samba: registry mirror: %v", errs)
	}
	return deleted, written, nil
}

// absorb records the current modification time of file, which we have just
// changed ourselves, so that our own registry writes do not invalidate the
// cached base shares (an outside change made at the same moment is then
// seen after the TTL at the latest).
func (r *Resolver) absorb(file string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byName == nil || r.stamps == nil {
		return
	}
	if _, ok := r.stamps[file]; !ok {
		return
	}
	if fi, err := os.Stat(file); err == nil {
		r.stamps[file] = fi.ModTime()
	}
}

// timed runs f and returns how long it took.
func timed(f func() error) (time.Duration, error) {
	start := time.Now()
	err := f()
	return time.Since(start), err
}
