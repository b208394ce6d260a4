package client

import "strings"

// ShareUNC returns the UNC name of a share the way Windows' diskshadow and
// Samba's rpcclient send it: `\\host\share\`, with a trailing backslash.
func ShareUNC(host, share string) string {
	return `\\` + host + `\` + share + `\`
}

// ResolveShare turns a share argument into the UNC name sent on the wire.
// UNC names (`\\host\share`, or `//host/share` with forward slashes) are
// returned as given, with slashes turned into backslashes; a bare share name
// becomes ShareUNC(host, name).
func ResolveShare(host, share string) string {
	if strings.HasPrefix(share, `//`) {
		share = strings.ReplaceAll(share, "/", `\`)
	}
	if strings.HasPrefix(share, `\\`) {
		return share
	}
	return ShareUNC(host, strings.Trim(share, `\/`))
}
