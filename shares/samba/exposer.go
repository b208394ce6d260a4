package samba

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/shares"
	"github.com/fsrvpd/fsrvpd/shares/internal/atomicfile"
)

// Config configures New.
type Config struct {
	// SMBConf is smb.conf, passed as -s to every Samba tool. Default
	// /etc/samba/smb.conf.
	SMBConf string
	// IncludeFile is the file fsrvpd owns, named by "include =" in the
	// [global] section of SMBConf. Required.
	IncludeFile string
	// ResolverTTL bounds how long the base share definitions are cached
	// (the cache is also dropped when smb.conf changes). Default 5 s.
	ResolverTTL time.Duration
	// PreviousVersionsDir, if set (an absolute path), holds per base share
	// a directory of @GMT-... links to its exposed snapshots, for
	// vfs_shadow_copy2 on the base share (see prevver.go and the package
	// documentation). Empty: no Previous Versions.
	PreviousVersionsDir string
	// RegistryMirror also writes every snapshot share into Samba's
	// registry configuration, so that srvsvc (samba-dcerpcd's rpcd_classic,
	// which never rereads include files) finds it: NetShareGetInfo, the
	// share list of Windows clients, smbtorture's share_sd. It needs
	// "registry shares = yes" and costs one `net conf` run (60-100 ms) per
	// Expose, SetReadOnly and Remove; without it exposure takes about 9 ms.
	RegistryMirror bool
	// Log receives a line per change; nil discards.
	Log *logrus.Entry
}

// Exposer is a shares.Exposer on a running smbd. See the package
// documentation for the mechanism. It is safe for concurrent use within
// one process; only one Exposer may own an include file.
type Exposer struct {
	cfg   Config
	log   *logrus.Entry
	res   *Resolver
	msg   *messenger
	sec   shareSec
	reg   bool   // registry shares = yes: mirror our shares there (registry.go)
	regDB string // <state directory>/registry.tdb

	mu      sync.Mutex
	byName  map[string]exposed // by lower-case name
	pending map[string]bool    // lower-case names whose SD may need deleting
}

var _ shares.Exposer = (*Exposer)(nil)

// exposed is one of our shares with the parameters copied from its base.
type exposed struct {
	shares.Share
	Params []param
}

// New checks that Samba includes cfg.IncludeFile, loads the shares it
// holds and finishes what a crash interrupted: security descriptors written
// for shares that were never published or already withdrawn are deleted,
// their tree connects closed, and smbd told to reload.
func New(ctx context.Context, cfg Config) (*Exposer, error) {
	if cfg.SMBConf == "" {
		cfg.SMBConf = "/etc/samba/smb.conf"
	}
	if cfg.ResolverTTL == 0 {
		cfg.ResolverTTL = 5 * time.Second
	}
	if cfg.IncludeFile == "" || !filepath.IsAbs(cfg.IncludeFile) {
		return nil, fmt.Errorf("samba: include file %q must be an absolute path", cfg.IncludeFile)
	}
	if d := cfg.PreviousVersionsDir; d != "" {
		if !filepath.IsAbs(d) {
			return nil, fmt.Errorf("samba: previous versions directory %q must be an absolute path", d)
		}
		cfg.PreviousVersionsDir = filepath.Clean(d)
		if err := os.MkdirAll(cfg.PreviousVersionsDir, 0o755); err != nil {
			return nil, fmt.Errorf("samba: %w", err)
		}
	}
	log := cfg.Log
	if log == nil {
		l := logrus.New()
		l.Out = nopWriter{}
		log = logrus.NewEntry(l)
	}
	sm := samba{conf: cfg.SMBConf}
	g, err := sm.globals(ctx)
	if err != nil {
		return nil, fmt.Errorf("samba: reading %s: %w", cfg.SMBConf, err)
	}
	if !strings.Contains(g["include"], cfg.IncludeFile) {
		return nil, fmt.Errorf("samba: %s does not include %s: add \"include = %[2]s\" as the last line of [global]", cfg.SMBConf, cfg.IncludeFile)
	}
	e := &Exposer{
		cfg: cfg, log: log.WithField("include", cfg.IncludeFile),
		res: newResolver(sm, g, cfg.ResolverTTL, cfg.IncludeFile),
		msg: newMessenger(g["lock directory"]),
		sec: shareSec{db: filepath.Join(g["state directory"], "share_info.tdb")},
		reg: cfg.RegistryMirror, regDB: filepath.Join(g["state directory"], "registry.tdb"),
	}
	if cfg.RegistryMirror && !yes(g["registry shares"]) {
		return nil, fmt.Errorf("registry mirror: %s must set \"registry shares = yes\"", cfg.SMBConf)
	}
	if e.byName, e.pending, err = readInclude(cfg.IncludeFile); err != nil {
		return nil, err
	}
	var stale []string
	for k := range e.pending {
		if _, ok := e.byName[k]; !ok {
			stale = append(stale, k)
		}
	}
	for _, k := range stale {
		if err := e.sec.del(ctx, k); err != nil {
			return nil, fmt.Errorf("samba: deleting the security descriptor of %q: %w", k, err)
		}
	}
	if len(e.pending) > 0 {
		e.pending = map[string]bool{}
		if err := e.write(); err != nil {
			return nil, err
		}
	}
	if err := e.msg.reloadConfig(); err != nil {
		e.log.WithError(err).Warn("Cannot tell smbd to reload its configuration")
	}
	for _, k := range stale {
		e.msg.closeShare(k)
	}
	links := e.reconcileLinks()
	regDel, regPut, err := e.regReconcile(ctx)
	if err != nil {
		e.log.WithError(err).Warn("Cannot reconcile the registry copies of the shares (srvsvc may not see them)")
	}
	e.log.WithFields(logrus.Fields{"shares": len(e.byName), "reconciled": len(stale), "links_removed": links,
		"registry_mirror": e.reg, "registry_deleted": regDel, "registry_written": regPut}).Debug("Samba exposer ready")
	return e, nil
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

// Resolver returns the base-share resolver over the same configuration.
func (e *Exposer) Resolver() *Resolver { return e.res }

// NewResolver returns a Resolver alone, for the daemon's lookups.
func NewResolver(ctx context.Context, cfg Config) (*Resolver, error) {
	if cfg.SMBConf == "" {
		cfg.SMBConf = "/etc/samba/smb.conf"
	}
	if cfg.ResolverTTL == 0 {
		cfg.ResolverTTL = 5 * time.Second
	}
	sm := samba{conf: cfg.SMBConf}
	g, err := sm.globals(ctx)
	if err != nil {
		return nil, fmt.Errorf("samba: reading %s: %w", cfg.SMBConf, err)
	}
	return newResolver(sm, g, cfg.ResolverTTL, cfg.IncludeFile), nil
}

// notCopied are the base parameters a snapshot share does not copy: set by
// us, or meaningless for a copy.
var notCopied = []string{"path", "comment", "read only", "writeable", "writable", "write ok",
	"include", "copy", "preexec", "root preexec", "postexec", "root postexec"}

func checkShare(s shares.Share) error {
	if err := shares.ValidName(s.Name); err != nil {
		return err
	}
	if strings.ContainsAny(s.Name, "[]%") || strings.TrimSpace(s.Name) != s.Name {
		return fmt.Errorf("share %q: cannot be named in smb.conf: %w", s.Name, shares.ErrInvalidName)
	}
	if !filepath.IsAbs(s.Path) || strings.ContainsAny(s.Path, "%\n\r") {
		return fmt.Errorf("share %q: path %q must be absolute, without %% or line breaks", s.Name, s.Path)
	}
	return nil
}

// Expose implements shares.Exposer. The share copies the parameters of its
// base share (s.Base) as Samba has them now, except path, comment, access
// mode, the shadow:* options and shadow_copy2 in vfs objects; it is hidden from browse lists (browseable = no) when its name ends
// in '$' or its base is not browseable. Its share security descriptor is the base share's, copied now.
func (e *Exposer) Expose(ctx context.Context, s shares.Share) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkShare(s); err != nil {
		return err
	}
	s.Path = filepath.Clean(s.Path)
	s.Comment = strings.NewReplacer("\n", " ", "\r", " ", "%", "").Replace(s.Comment)
	base, err := e.res.section(ctx, s.Base)
	if err != nil {
		return fmt.Errorf("share %q: base: %w", s.Name, err)
	}
	s.Base = base.Name
	e.mu.Lock()
	defer e.mu.Unlock()
	k := strings.ToLower(s.Name)
	if old, ok := e.byName[k]; ok {
		return fmt.Errorf("share %q: %w (as %q)", s.Name, shares.ErrExists, old.Name)
	}
	if other, err := e.res.find(ctx, s.Name, false); err == nil {
		return fmt.Errorf("share %q: %w in Samba's configuration (as %q)", s.Name, shares.ErrExists, other.Name)
	}
	sd, err := e.sec.get(ctx, base.Name)
	if err != nil {
		return fmt.Errorf("share %q: reading the security descriptor of %q: %w", s.Name, base.Name, err)
	}
	if sd != nil {
		// Journal the name first: a crash after the SD is stored and before
		// the share is published leaves an SD that New deletes.
		e.pending[k] = true
		if err := e.write(); err != nil {
			delete(e.pending, k)
			return err
		}
		err = e.sec.put(ctx, s.Name, sd)
	} else {
		err = e.sec.del(ctx, s.Name)
	}
	if err != nil {
		return fmt.Errorf("share %q: security descriptor: %w", s.Name, err)
	}
	x := exposed{Share: s, Params: copyParams(base.Params)}
	if _, set := base.get("browseable"); !set && strings.HasSuffix(s.Name, "$") {
		if _, set := base.get("browsable"); !set {
			x.Params = append(x.Params, param{"browseable", "no"})
		}
	}
	e.byName[k] = x
	delete(e.pending, k)
	if err := e.write(); err != nil {
		delete(e.byName, k)
		e.pending[k] = true
		return err
	}
	e.addLink(x)
	f := logrus.Fields{"share": s.Name, "path": s.Path, "read_only": s.ReadOnly, "sd": sd != nil}
	if e.reg {
		// Before the reload: smbd reads registry shares too.
		d, err := timed(func() error { return e.regImport(ctx, x) })
		if err != nil {
			e.log.WithError(err).WithField("share", s.Name).Warn("Cannot copy the share to the registry: srvsvc does not see it until List repairs it")
		}
		f["registry_ms"] = float64(d.Microseconds()) / 1000
	}
	if err := e.msg.reloadConfig(); err != nil {
		e.log.WithError(err).Warn("Cannot tell smbd to reload: the share reaches new connections only")
	}
	e.log.WithFields(f).Info("Share exposed")
	return nil
}

// SetReadOnly implements shares.Exposer. Tree connects made before the
// change keep the access mode they had, so making a share read-only also
// closes them (clients reconnect and get the new mode).
func (e *Exposer) SetReadOnly(ctx context.Context, name string, readOnly bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	k := strings.ToLower(name)
	x, ok := e.byName[k]
	if !ok {
		return fmt.Errorf("share %q: %w", name, shares.ErrNotFound)
	}
	if x.ReadOnly == readOnly {
		return nil
	}
	if e.reg {
		// First, and it must succeed: smbd reads registry shares too, and
		// the registry's access mode would win at the next reload.
		if err := e.regSetReadOnly(ctx, x.Name, readOnly); err != nil {
			return fmt.Errorf("share %q: registry copy: %w", x.Name, err)
		}
	}
	x.ReadOnly = readOnly
	e.byName[k] = x
	if err := e.write(); err != nil {
		x.ReadOnly = !readOnly
		e.byName[k] = x
		if e.reg {
			if err := e.regSetReadOnly(ctx, x.Name, !readOnly); err != nil {
				e.log.WithError(err).WithField("share", x.Name).Warn("Cannot restore the share's registry copy: List repairs it")
			}
		}
		return err
	}
	if err := e.msg.reloadConfig(); err != nil {
		e.log.WithError(err).Warn("Cannot tell smbd to reload")
	}
	if readOnly {
		e.msg.closeShare(x.Name)
	}
	e.log.WithFields(logrus.Fields{"share": x.Name, "read_only": readOnly}).Info("Share access changed")
	return nil
}

// Remove implements shares.Exposer: the definition goes, smbd reloads, its
// tree connects are closed and its security descriptor deleted.
func (e *Exposer) Remove(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	k := strings.ToLower(name)
	x, ok := e.byName[k]
	if !ok {
		return fmt.Errorf("share %q: %w", name, shares.ErrNotFound)
	}
	delete(e.byName, k)
	e.pending[k] = true // its SD and tree connects, if a crash comes first
	if err := e.write(); err != nil {
		e.byName[k] = x
		delete(e.pending, k)
		return err
	}
	e.removeLink(x)
	var errs []error
	if e.reg {
		// Before the reload: smbd reads registry shares too. Also deletes
		// the SD, which is deleted below anyway.
		if err := e.regDelete(ctx, x.Name); err != nil {
			errs = append(errs, fmt.Errorf("deleting its registry copy: %w", err))
		}
	}
	if err := e.msg.reloadConfig(); err != nil {
		errs = append(errs, err)
	}
	if err := e.msg.closeShare(x.Name); err != nil {
		errs = append(errs, err)
	}
	if err := e.sec.del(ctx, x.Name); err != nil {
		errs = append(errs, fmt.Errorf("deleting its security descriptor: %w", err))
	} else {
		delete(e.pending, k) // dropped from the file with the next write
	}
	if err := errors.Join(errs...); err != nil {
		// The share is gone from the configuration (durably); the rest is
		// redone by New.
		e.log.WithError(err).WithField("share", x.Name).Warn("Share removed, cleanup incomplete")
		return nil
	}
	e.log.WithField("share", x.Name).Info("Share removed")
	return nil
}

// List implements shares.Exposer: the shares in the include file, sorted by
// name ignoring case. The file is read again, and shares written to it by
// someone else (another fsrvpd, a restored backup) are adopted, so that
// the daemon sees them as orphans and can remove them.
func (e *Exposer) List(ctx context.Context) ([]shares.Share, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.adopt()
	e.reconcileLinks()
	if _, _, err := e.regReconcile(ctx); err != nil {
		e.log.WithError(err).Warn("Cannot reconcile the registry copies of the shares (srvsvc may not see them)")
	}
	list := make([]shares.Share, 0, len(e.byName))
	for _, x := range e.sorted() {
		list = append(list, x.Share)
	}
	return list, nil
}

func (e *Exposer) sorted() []exposed {
	list := make([]exposed, 0, len(e.byName))
	for _, x := range e.byName {
		list = append(list, x)
	}
	slices.SortFunc(list, func(a, b exposed) int {
		return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
	})
	return list
}

// write rewrites the include file from e.byName and e.pending. e.mu is held.
func (e *Exposer) write() error {
	var pend []string
	for k := range e.pending {
		pend = append(pend, k)
	}
	slices.Sort(pend)
	if err := atomicfile.Write(e.cfg.IncludeFile, renderInclude(e.sorted(), pend), 0o644); err != nil {
		return fmt.Errorf("samba: writing %s: %w", e.cfg.IncludeFile, err)
	}
	return nil
}

// adopt takes into e.byName the shares of the include file it does not
// know. A file it cannot parse is left alone (logged). e.mu is held.
func (e *Exposer) adopt() {
	by, _, err := readInclude(e.cfg.IncludeFile)
	if err != nil {
		e.log.WithError(err).Warn("Cannot read the include file again")
		return
	}
	for k, x := range by {
		if _, ok := e.byName[k]; !ok {
			e.byName[k] = x
			e.log.WithField("share", x.Name).Warn("Share in the include file that this process did not write: adopted")
		}
	}
}
