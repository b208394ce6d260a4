package samba

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsrvpd/fsrvpd/shares"
)

// param is one "key = value" line of a share definition, as testparm
// prints it (explicitly set parameters only).
type param struct{ Key, Value string }

// section is a share of Samba's configuration.
type section struct {
	Name   string
	Params []param
}

func (s section) get(key string) (string, bool) {
	for _, p := range s.Params {
		if strings.EqualFold(p.Key, key) {
			return p.Value, true
		}
	}
	return "", false
}

// parseConf parses testparm's or "net conf list"'s output: [name] headers
// and tab-indented "key = value" lines.
func parseConf(out string) []section {
	var list []section
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || l[0] == '#' || l[0] == ';':
		case l[0] == '[' && strings.HasSuffix(l, "]"):
			list = append(list, section{Name: strings.TrimSpace(l[1 : len(l)-1])})
		case len(list) > 0:
			if k, v, ok := strings.Cut(l, "="); ok {
				list[len(list)-1].Params = append(list[len(list)-1].Params, param{strings.TrimSpace(k), strings.TrimSpace(v)})
			}
		}
	}
	return list
}

// isBase reports whether a configured section can be the base of a
// snapshot share: a disk share, not [global], [homes], [printers], IPC$ or
// a snapshot share itself.
func isBase(s section) bool {
	switch strings.ToLower(s.Name) {
	case "global", "homes", "printers", "ipc$", "print$":
		return false
	}
	if strings.Contains(s.Name, "@{") {
		return false
	}
	for _, k := range []string{"printable", "print ok"} {
		if v, ok := s.get(k); ok && yes(v) {
			return false
		}
	}
	_, hasPath := s.get("path")
	return hasPath
}

func yes(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "yes", "true", "1", "on":
		return true
	}
	return false
}

// samba runs Samba's tools against one configuration file.
type samba struct {
	conf string // smb.conf, passed as -s to every tool
}

func (s samba) run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// globals returns every [global] parameter with its effective value
// (testparm -v), keys lower-case.
func (s samba) globals(ctx context.Context) (map[string]string, error) {
	out, err := s.run(ctx, "testparm", "-s", "-v", "--suppress-prompt", "--section-name=global", s.conf)
	if err != nil {
		return nil, err
	}
	g := map[string]string{}
	for _, sec := range parseConf("[global]\n" + out) {
		for _, p := range sec.Params {
			g[strings.ToLower(p.Key)] = p.Value
		}
	}
	return g, nil
}

// shares returns the share sections of the configuration: the files
// (testparm) and, with registry shares, the registry (net conf list).
func (s samba) shares(ctx context.Context, registry bool) ([]section, error) {
	out, err := s.run(ctx, "testparm", "-s", "--suppress-prompt", s.conf)
	if err != nil {
		return nil, err
	}
	list := parseConf(out)
	if registry {
		out, err := s.run(ctx, "net", "-s", s.conf, "conf", "list")
		if err != nil {
			return nil, err
		}
		list = append(list, parseConf(out)...)
	}
	return list, nil
}

// Resolver is a shares.Resolver over the shares Samba serves, read from
// its configuration with testparm (and "net conf list" when registry shares
// are enabled). The result is cached until one of the configuration files
// changes (by modification time), the TTL passes, or Refresh is called.
type Resolver struct {
	sm      samba
	ttl     time.Duration
	reg     bool     // registry shares = yes
	watch   []string // files whose change invalidates the cache
	exclude string   // our include file: its shares are never bases

	mu      sync.Mutex
	at      time.Time
	stamps  map[string]time.Time
	byName  map[string]section // by lower-case name
	loadErr error
	loads   int // configuration reads, for tests
}

// missReread is how old the cache must be before a lookup that misses reads
// the configuration again. A miss rereads because a share may have been
// added a moment ago without a change the cache can see (an included file,
// or a same-tick modification time of smb.conf); the interval keeps a
// client that asks for unknown names in a loop from running testparm (20 to
// 200 ms each) on every call.
const missReread = time.Second

var _ shares.Resolver = (*Resolver)(nil)

func newResolver(sm samba, g map[string]string, ttl time.Duration, exclude string) *Resolver {
	r := &Resolver{sm: sm, ttl: ttl, reg: yes(g["registry shares"]), exclude: exclude}
	r.watch = append(r.watch, sm.conf)
	if r.reg {
		r.watch = append(r.watch, filepath.Join(g["state directory"], "registry.tdb"))
	}
	return r
}

// Refresh drops the cache; the next Lookup reads the configuration again.
func (r *Resolver) Refresh() {
	r.mu.Lock()
	r.byName = nil
	r.mu.Unlock()
}

// Lookup implements shares.Resolver.
func (r *Resolver) Lookup(ctx context.Context, name string) (shares.BaseShare, error) {
	sec, err := r.section(ctx, name)
	if err != nil {
		return shares.BaseShare{}, err
	}
	p, _ := sec.get("path")
	return shares.BaseShare{Name: sec.Name, Path: p}, nil
}

// List returns every base share Samba serves (shares.Lister), sorted by
// name.
func (r *Resolver) List(ctx context.Context) ([]shares.BaseShare, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.load(ctx, false); err != nil {
		return nil, err
	}
	out := make([]shares.BaseShare, 0, len(r.byName))
	for _, sec := range r.byName {
		p, _ := sec.get("path")
		out = append(out, shares.BaseShare{Name: sec.Name, Path: p})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// section returns the base share called name, ignoring case.
func (r *Resolver) section(ctx context.Context, name string) (section, error) {
	return r.find(ctx, name, true)
}

// find returns the base share called name, ignoring case; on a miss it
// reads the configuration again if reread is set.
func (r *Resolver) find(ctx context.Context, name string, reread bool) (section, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.load(ctx, false); err != nil {
		return section{}, err
	}
	sec, ok := r.byName[strings.ToLower(name)]
	if !ok && !reread {
		return section{}, fmt.Errorf("share %q: %w", name, shares.ErrNotFound)
	}
	if !ok && time.Since(r.at) < missReread {
		return section{}, fmt.Errorf("share %q: %w", name, shares.ErrNotFound)
	}
	if !ok {
		// A share added a moment ago (in an included file, or within
		// the same mtime tick): read again.
		if err := r.load(ctx, true); err != nil {
			return section{}, err
		}
		if sec, ok = r.byName[strings.ToLower(name)]; !ok {
			return section{}, fmt.Errorf("share %q: %w", name, shares.ErrNotFound)
		}
	}
	return sec, nil
}

// load reads the configuration unless the cache is fresh. r.mu is held.
func (r *Resolver) load(ctx context.Context, force bool) error {
	stamps := map[string]time.Time{}
	for _, f := range r.watch {
		if fi, err := os.Stat(f); err == nil {
			stamps[f] = fi.ModTime()
		}
	}
	if !force && r.byName != nil && time.Since(r.at) < r.ttl && equalStamps(stamps, r.stamps) {
		return nil
	}
	r.loads++
	list, err := r.sm.shares(ctx, r.reg)
	if err != nil {
		return err
	}
	by := map[string]section{}
	for _, s := range list {
		if !isBase(s) {
			continue
		}
		if v, ok := s.get("include"); ok && v == r.exclude {
			s.Params = dropKeys(s.Params, "include")
		}
		by[strings.ToLower(s.Name)] = s
	}
	r.byName, r.at, r.stamps = by, time.Now(), stamps
	return nil
}

func equalStamps(a, b map[string]time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !b[k].Equal(v) {
			return false
		}
	}
	return true
}

func dropKeys(ps []param, keys ...string) []param {
	var out []param
	for _, p := range ps {
		drop := false
		for _, k := range keys {
			if strings.EqualFold(p.Key, k) {
				drop = true
			}
		}
		if !drop {
			out = append(out, p)
		}
	}
	return out
}
