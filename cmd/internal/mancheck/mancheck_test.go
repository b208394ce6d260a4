package mancheck

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestFlags(t *testing.T) {
	usage := "Usage: x [-alpha a] [-b-c] <arg>\n  -delta string\n    \tsomething -notaflag\n  -v\tverbose\n"
	want := []string{"alpha", "b-c", "delta", "v"}
	if got := Flags(usage); !slices.Equal(got, want) {
		t.Errorf("Flags = %v, want %v", got, want)
	}
}

func TestCheck(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.1")
	os.WriteFile(p, []byte(".TP\n.B \\-alpha\n\\fB\\-b\\-c\\fR and \\-v\n.B run\n"), 0o644)
	Check(t, p, []string{"alpha", "b-c", "v"}, []string{"run"})
	// A missing flag or command must be reported.
	rec := &recorder{TB: t}
	Check(rec, p, []string{"gamma", "b"}, []string{"list"})
	if rec.errors != 3 {
		t.Errorf("Check reported %d problems, want 3 (-gamma, -b, list)", rec.errors)
	}
}

type recorder struct {
	testing.TB
	errors int
}

func (r *recorder) Errorf(string, ...any) { r.errors++ }
func (r *recorder) Helper()               {}
