package samba

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
)

// Previous Versions (Config.PreviousVersionsDir): every exposed snapshot
// share with a creation time also appears as a symbolic link
//
//	<PreviousVersionsDir>/<base share, lower case>/@GMT-YYYY.MM.DD-HH.MM.SS → <snapshot share's path>
//
// (the token is Share.Created in UTC), so that vfs_shadow_copy2 on the base
// share, configured with
//
//	vfs objects = shadow_copy2
//	shadow:snapdir = <PreviousVersionsDir>/<base share, lower case>
//	shadow:mountpoint = <the base share's path>
//
// lists it in FSCTL_SRV_ENUM_SNAPS (Explorer's Previous Versions) and opens
// files through @GMT tokens (shadow_copy2 follows the links). The include
// file is the record: the links are made after a share is written to it and
// removed after it is dropped from it, and New and List reconcile the
// directory against it (a link without its share goes, a missing link is
// made). Two snapshots of one base share created within the same second
// would need the same token: the first keeps the link, the second gets none
// (logged) and is still reachable as its own share.

// gmtFormat is shadow_copy2's default "shadow:format" with the @GMT- prefix.
const gmtFormat = "@GMT-2006.01.02-15.04.05"

// gmtToken is the @GMT token of a creation time.
func gmtToken(t time.Time) string { return t.UTC().Format(gmtFormat) }

// isGMTToken reports whether name is exactly a @GMT token.
func isGMTToken(name string) bool {
	_, err := time.Parse(gmtFormat, name)
	return err == nil && len(name) == len(gmtFormat)
}

// pvDir is the link directory of a base share, or "" if the feature is off
// or the name cannot be a directory name.
func (e *Exposer) pvDir(base string) string {
	if e.cfg.PreviousVersionsDir == "" || base == "" || base == "." || base == ".." || strings.ContainsAny(base, "/\x00") {
		return ""
	}
	return filepath.Join(e.cfg.PreviousVersionsDir, strings.ToLower(base))
}

// pvLink returns the link of x, or "" if it has none.
func (e *Exposer) pvLink(x exposed) string {
	d := e.pvDir(x.Base)
	if d == "" || x.Created.IsZero() {
		return ""
	}
	return filepath.Join(d, gmtToken(x.Created))
}

// addLink makes x's link unless another snapshot holds its token. e.mu is
// held.
func (e *Exposer) addLink(x exposed) {
	l := e.pvLink(x)
	if l == "" {
		return
	}
	log := e.log.WithFields(logrus.Fields{"share": x.Name, "link": l})
	if err := os.MkdirAll(filepath.Dir(l), 0o755); err != nil {
		log.WithError(err).Warn("Cannot create the Previous Versions directory")
		return
	}
	err := os.Symlink(x.Path, l)
	if errors.Is(err, os.ErrExist) {
		if t, _ := os.Readlink(l); t == x.Path {
			return
		}
		log.Warn("Another snapshot of the base share was created within the same second and keeps this @GMT token: this one is not listed in Previous Versions")
		return
	}
	if err != nil {
		log.WithError(err).Warn("Cannot make the Previous Versions link")
	}
}

// removeLink removes x's link if it points to x. e.mu is held.
func (e *Exposer) removeLink(x exposed) {
	l := e.pvLink(x)
	if l == "" {
		return
	}
	if t, err := os.Readlink(l); err != nil || t != x.Path {
		return
	}
	if err := os.Remove(l); err != nil && !errors.Is(err, os.ErrNotExist) {
		e.log.WithError(err).WithFields(logrus.Fields{"share": x.Name, "link": l}).Warn("Cannot remove the Previous Versions link")
	}
}

// reconcileLinks removes the links of <PreviousVersionsDir>/*/ that belong
// to no exposed share and makes the missing ones; other entries are left
// alone. e.mu is held.
func (e *Exposer) reconcileLinks() (removed int) {
	if e.cfg.PreviousVersionsDir == "" {
		return 0
	}
	want := map[string]string{} // link → target
	for _, x := range e.sorted() {
		if l := e.pvLink(x); l != "" {
			if _, taken := want[l]; !taken {
				want[l] = x.Path
			}
		}
	}
	dirs, err := os.ReadDir(e.cfg.PreviousVersionsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		e.log.WithError(err).Warn("Cannot read the Previous Versions directory")
	}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		dir := filepath.Join(e.cfg.PreviousVersionsDir, d.Name())
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, ent := range ents {
			if ent.Type()&os.ModeSymlink == 0 || !isGMTToken(ent.Name()) {
				continue
			}
			l := filepath.Join(dir, ent.Name())
			if t, err := os.Readlink(l); err == nil && want[l] == t {
				continue
			}
			if err := os.Remove(l); err == nil {
				removed++
				e.log.WithField("link", l).Info("Removed a Previous Versions link without its share")
			}
		}
	}
	for _, x := range e.sorted() {
		if l := e.pvLink(x); l != "" && want[l] == x.Path {
			e.addLink(x)
		}
	}
	return removed
}

// copyParams returns the base share's parameters a snapshot share copies:
// all but notCopied and the shadow:* options, with shadow_copy2 taken out
// of "vfs objects" (a snapshot share has no Previous Versions of its own,
// and the base's absolute snapdir and mountpoint break writes to a writable
// snapshot share).
func copyParams(ps []param) []param {
	var out []param
	for _, p := range dropKeys(ps, notCopied...) {
		k := strings.ToLower(strings.Join(strings.Fields(p.Key), " "))
		if strings.HasPrefix(k, "shadow:") || strings.HasPrefix(k, "shadow :") {
			continue
		}
		if k == "vfs objects" || k == "vfs object" {
			var mods []string
			for _, m := range strings.FieldsFunc(p.Value, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' }) {
				if !strings.EqualFold(m, "shadow_copy2") {
					mods = append(mods, m)
				}
			}
			p.Value = strings.Join(mods, " ")
		}
		out = append(out, p)
	}
	return out
}
