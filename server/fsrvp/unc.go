package fsrvp

import (
	"strings"
)

// parseUNC extracts the share name from an FSRVP ShareName, MS-FSRVP
// §2.2.1.1 / the digest's §12: "\\host\share", optionally followed by a
// backslash and more path, which is ignored. The host part is never
// resolved or contacted: the share is looked up among our own shares, so a
// request naming a foreign host can make us reach nothing (ShadowCoerce,
// CVE-2022-30154). ok is false for anything that is not a UNC share name.
func parseUNC(unc string) (host, share string, ok bool) {
	if !strings.HasPrefix(unc, `\\`) {
		return "", "", false
	}
	rest := unc[2:]
	i := strings.IndexByte(rest, '\\')
	if i <= 0 {
		return "", "", false
	}
	host, rest = rest[:i], rest[i+1:]
	if j := strings.IndexByte(rest, '\\'); j >= 0 {
		rest = rest[:j]
	}
	if rest == "" || strings.ContainsAny(host, "/") {
		return "", "", false
	}
	return host, rest, true
}

// exposedName is the name of the share exposing shadow copy id of base
// share base, §3.1.4.6: "<base>@{<GUID>}", with a '$' appended when the base
// share is hidden (note <9>).
func exposedName(base, id string) string {
	name := base + "@{" + id + "}"
	if strings.HasSuffix(base, "$") {
		name += "$"
	}
	return name
}

// uncOf builds \\host\share.
func uncOf(host, share string) string { return `\\` + host + `\` + share }
