// Package mancheck lets a command's tests check that its committed man
// page mentions every flag and subcommand the command has.
package mancheck

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var (
	// "  -name type" lines of flag.PrintDefaults, and "[-name" or " -name"
	// in synopsis lines.
	defaultsRE = regexp.MustCompile(`(?m)^\s+-([a-zA-Z0-9][\w-]*)`)
	synopsisRE = regexp.MustCompile(`(?m)[\[|]-([a-zA-Z][\w-]*)`)
	fontRE     = regexp.MustCompile(`\\f[BIRP]|\\&`)
)

// Flags returns the flag names in a command's usage text, without the
// leading dash, sorted and unique.
func Flags(usage string) []string {
	var out []string
	for _, re := range []*regexp.Regexp{defaultsRE, synopsisRE} {
		for _, m := range re.FindAllStringSubmatch(usage, -1) {
			if !slices.Contains(out, m[1]) {
				out = append(out, m[1])
			}
		}
	}
	slices.Sort(out)
	return out
}

// Text is the man page at path with roff's escapes for dashes and fonts
// removed.
func Text(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), `\-`, "-")
	return fontRE.ReplaceAllString(s, "")
}

// Check fails t for every flag (as -name) and command (as a word) the man
// page at path does not mention.
func Check(t testing.TB, path string, flags, commands []string) {
	t.Helper()
	text := Text(t, path)
	for _, f := range flags {
		if !regexp.MustCompile(`(^|[^\w-])-` + regexp.QuoteMeta(f) + `($|[^\w-])`).MatchString(text) {
			t.Errorf("%s does not mention the flag -%s", path, f)
		}
	}
	for _, c := range commands {
		if !regexp.MustCompile(`(^|[^\w-])` + regexp.QuoteMeta(c) + `($|[^\w-])`).MatchString(text) {
			t.Errorf("%s does not mention the command %s", path, c)
		}
	}
}
