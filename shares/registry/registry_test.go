package registry

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/fsrvpd/fsrvpd/shares"
)

func open(t *testing.T, path string) *Registry {
	t.Helper()
	r, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func list(t *testing.T, r *Registry) []shares.Share {
	t.Helper()
	l, err := r.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func share(name string) shares.Share {
	return shares.Share{Name: name, Base: strings.SplitN(name, "@", 2)[0], Path: "/snap/" + name, ReadOnly: true}
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shares.json")
	r := open(t, path)
	if l := list(t, r); len(l) != 0 {
		t.Fatalf("new registry lists %v", l)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open created the file: %v", err)
	}
	ctx := t.Context()
	a := share("data@{6F1C0B5A-0000-4000-8000-000000000001}")
	a.Comment = "shadow copy"
	b := share("home$@{6F1C0B5A-0000-4000-8000-000000000002}")
	b.ReadOnly = false
	for _, s := range []shares.Share{b, a, share("gone")} {
		if err := r.Expose(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Remove(ctx, "GONE"); err != nil {
		t.Fatal(err)
	}
	if err := r.SetReadOnly(ctx, strings.ToUpper(b.Name), true); err != nil {
		t.Fatal(err)
	}
	b.ReadOnly = true
	want := []shares.Share{a, b}
	if got := list(t, r); !reflect.DeepEqual(got, want) {
		t.Fatalf("List = %+v, want %+v", got, want)
	}
	if got := list(t, open(t, path)); !reflect.DeepEqual(got, want) {
		t.Fatalf("reopened List = %+v, want %+v", got, want)
	}
	if s, ok := r.Get(strings.ToLower(a.Name)); !ok || s != a {
		t.Fatalf("Get = %+v, %v", s, ok)
	}
	if _, ok := r.Get("gone"); ok {
		t.Fatal("Get of a removed share succeeded")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("directory holds %v, want only the registry", entries)
	}
}

func TestErrors(t *testing.T) {
	ctx := t.Context()
	r := open(t, filepath.Join(t.TempDir(), "shares.json"))
	if err := r.Expose(ctx, share("Data@{X}")); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"Expose of a taken name":   r.Expose(ctx, share("data@{x}")),
		"Remove of a missing name": r.Remove(ctx, "nope"),
		"SetReadOnly of a missing": r.SetReadOnly(ctx, "nope", true),
	} {
		want := shares.ErrNotFound
		if strings.HasPrefix(name, "Expose") {
			want = shares.ErrExists
		}
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
	if err := r.Expose(ctx, shares.Share{Name: "rel", Path: "relative/path"}); err == nil {
		t.Error("Expose of a relative path succeeded")
	}
	if l := list(t, r); len(l) != 1 {
		t.Errorf("failed calls changed the registry: %v", l)
	}
}

func TestInvalidNames(t *testing.T) {
	r := open(t, filepath.Join(t.TempDir(), "shares.json"))
	for _, name := range []string{
		"", "IPC$", "ipc$", "a\\b", "a/b", "a:b", "a*b", "a?b", `a"b`, "a<b", "a>b", "a|b",
		"tab\there", "nl\n", "del\x7f", "bad\xffutf8", strings.Repeat("x", 81),
	} {
		if err := r.Expose(t.Context(), share(name)); !errors.Is(err, shares.ErrInvalidName) {
			t.Errorf("Expose(%q): %v, want ErrInvalidName", name, err)
		}
	}
	for _, name := range []string{"data@{6F1C0B5A-0000-4000-8000-000000000001}", "hidden$", "a b", "ünïcödé", strings.Repeat("é", 80)} {
		if err := r.Expose(t.Context(), share(name)); err != nil {
			t.Errorf("Expose(%q): %v", name, err)
		}
	}
}

func TestCorruptFile(t *testing.T) {
	for name, content := range map[string]string{
		"not json":         "{version",
		"unknown field":    `{"version":1,"shares":[],"extra":1}`,
		"future version":   `{"version":2,"shares":[]}`,
		"no version":       `{"shares":[]}`,
		"invalid name":     `{"version":1,"shares":[{"name":"a/b","path":"/x"}]}`,
		"duplicate name":   `{"version":1,"shares":[{"name":"a","path":"/x"},{"name":"A","path":"/y"}]}`,
		"relative path":    `{"version":1,"shares":[{"name":"a","path":"x"}]}`,
		"truncated writes": `{"version":1,"shares":[{"name":"a","path":"/x"}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "shares.json")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if r, err := Open(path, nil); err == nil {
				t.Fatalf("Open succeeded: %+v", r)
			}
			if data, _ := os.ReadFile(path); string(data) != content {
				t.Fatalf("Open changed the file to %q", data)
			}
		})
	}
}

func TestWriteFailureKeepsState(t *testing.T) {
	dir := t.TempDir()
	r := open(t, filepath.Join(dir, "shares.json"))
	if err := r.Expose(t.Context(), share("kept")); err != nil {
		t.Fatal(err)
	}
	// Replace the directory by a file so that no temporary file can be made.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	if err := r.Expose(t.Context(), share("lost")); err == nil {
		t.Fatal("Expose succeeded without a directory")
	}
	if err := r.Remove(t.Context(), "kept"); err == nil {
		t.Fatal("Remove succeeded without a directory")
	}
	if l := list(t, r); len(l) != 1 || l[0].Name != "kept" {
		t.Fatalf("failed writes changed the registry: %v", l)
	}
}

func TestConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shares.json")
	r := open(t, path)
	const workers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each*3)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				name := fmt.Sprintf("s%d@{%d}", w, i)
				errs <- r.Expose(t.Context(), share(name))
				errs <- r.SetReadOnly(t.Context(), name, i%2 == 0)
				if i%3 == 0 {
					errs <- r.Remove(t.Context(), name)
				}
				r.Get(name)
				if _, err := r.List(t.Context()); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got := list(t, r)
	if len(got) != workers*(each-4) {
		t.Fatalf("List has %d shares, want %d", len(got), workers*(each-4))
	}
	if again := list(t, open(t, path)); !reflect.DeepEqual(again, got) {
		t.Fatalf("reopened List differs:\n%v\n%v", again, got)
	}
}

// A share another process wrote to the file is listed (adopted) and can be
// removed; a file that became unreadable leaves the registry as it was.
func TestListAdoptsForeignShares(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shares.json")
	r := open(t, path)
	ctx := t.Context()
	if err := r.Expose(ctx, share("a@{1}")); err != nil {
		t.Fatal(err)
	}
	other := open(t, path)
	if err := other.Expose(ctx, share("b@{2}")); err != nil {
		t.Fatal(err)
	}
	if got := list(t, r); len(got) != 2 || got[1].Name != "b@{2}" {
		t.Fatalf("list %+v", got)
	}
	if err := r.Remove(ctx, "b@{2}"); err != nil {
		t.Fatal(err)
	}
	if got := list(t, open(t, path)); len(got) != 1 || got[0].Name != "a@{1}" {
		t.Fatalf("file after remove: %+v", got)
	}
	os.WriteFile(path, []byte("{broken"), 0o600)
	if got := list(t, r); len(got) != 1 {
		t.Fatalf("list over a broken file: %+v", got)
	}
}
