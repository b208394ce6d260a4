package samba

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/fsrvpd/fsrvpd/shares"
)

// The include file, rewritten whole on every change:
//
//	# Snapshot shares published by fsrvpd. Do not edit: fsrvpd rewrites it.
//	# fsrvpd-pending: data@{...}        (names whose SD may need deleting)
//	# fsrvpd-base: data
//	# fsrvpd-created: 2026-11-22T04:58:15.123Z   (Share.Created, if known)
//	[data@{6f1c...}]
//		path = /snap/...
//		comment = Shadow copy of data taken ...
//		read only = yes
//		browseable = no                  (hidden names, ending in $)
//		vfs objects = ...                (copied from the base share)
//	[global]
//
// The closing [global] makes parameters that follow the include line in
// smb.conf land in [global] again, not in our last share.
const (
	headerLine  = "# Snapshot shares published by fsrvpd. Do not edit: fsrvpd rewrites it."
	pendingMark = "# fsrvpd-pending: "
	baseMark    = "# fsrvpd-base: "
	createdMark = "# fsrvpd-created: "
)

func renderInclude(list []exposed, pending []string) []byte {
	var b bytes.Buffer
	b.WriteString(headerLine + "\n")
	for _, p := range pending {
		b.WriteString(pendingMark + p + "\n")
	}
	for _, x := range list {
		fmt.Fprintf(&b, "\n%s%s\n", baseMark, x.Base)
		if !x.Created.IsZero() {
			fmt.Fprintf(&b, "%s%s\n", createdMark, x.Created.UTC().Format(time.RFC3339Nano))
		}
		fmt.Fprintf(&b, "[%s]\n", x.Name)
		fmt.Fprintf(&b, "\tpath = %s\n", x.Path)
		if x.Comment != "" {
			fmt.Fprintf(&b, "\tcomment = %s\n", x.Comment)
		}
		fmt.Fprintf(&b, "\tread only = %s\n", yesNo(x.ReadOnly))
		for _, p := range x.Params {
			fmt.Fprintf(&b, "\t%s = %s\n", p.Key, p.Value)
		}
	}
	b.WriteString("\n[global]\n")
	return b.Bytes()
}

func yesNo(v bool) string {
	if v {
		return "yes"
	}
	return "no"
}

// readInclude parses the include file; a missing file holds nothing.
func readInclude(path string) (map[string]exposed, map[string]bool, error) {
	by, pending := map[string]exposed{}, map[string]bool{}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return by, pending, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("samba: %w", err)
	}
	bad := func(n int, why string) error {
		return fmt.Errorf("samba: %s line %d: %s; fix or empty the file", path, n, why)
	}
	var cur *exposed
	base := ""
	var created time.Time
	flush := func() {
		if cur != nil {
			by[strings.ToLower(cur.Name)] = *cur
			cur = nil
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(l, pendingMark):
			pending[strings.ToLower(strings.TrimPrefix(l, pendingMark))] = true
		case strings.HasPrefix(l, baseMark):
			base = strings.TrimPrefix(l, baseMark)
		case strings.HasPrefix(l, createdMark):
			created, _ = time.Parse(time.RFC3339Nano, strings.TrimPrefix(l, createdMark))
		case l == "" || l[0] == '#' || l[0] == ';':
		case l[0] == '[' && strings.HasSuffix(l, "]"):
			flush()
			name := l[1 : len(l)-1]
			if strings.EqualFold(name, "global") {
				continue
			}
			if err := shares.ValidName(name); err != nil || base == "" {
				return nil, nil, bad(n, fmt.Sprintf("share %q without a valid name and base", name))
			}
			if _, dup := by[strings.ToLower(name)]; dup {
				return nil, nil, bad(n, fmt.Sprintf("share %q twice", name))
			}
			cur = &exposed{Share: shares.Share{Name: name, Base: base, Created: created}}
			base, created = "", time.Time{}
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || cur == nil {
				return nil, nil, bad(n, "not a parameter of one of our shares")
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			switch strings.ToLower(k) {
			case "path":
				cur.Path = v
			case "comment":
				cur.Comment = v
			case "read only":
				cur.ReadOnly = yes(v)
			default:
				cur.Params = append(cur.Params, param{k, v})
			}
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("samba: %s: %w", path, err)
	}
	return by, pending, nil
}
