package sharestest

import (
	"errors"
	"testing"

	"github.com/fsrvpd/fsrvpd/shares"
)

func TestExposer(t *testing.T) {
	var e Exposer
	ctx := t.Context()
	boom := errors.New("smbd down")
	e.FailAfter(OpExpose, 1, boom)
	if err := e.Expose(ctx, shares.Share{Name: "a@{1}", Path: "/a"}); err != nil {
		t.Fatal(err)
	}
	if err := e.Expose(ctx, shares.Share{Name: "b@{1}", Path: "/b"}); !errors.Is(err, boom) {
		t.Fatalf("second Expose: %v, want the injected error", err)
	}
	if err := e.Expose(ctx, shares.Share{Name: "A@{1}", Path: "/a"}); !errors.Is(err, shares.ErrExists) {
		t.Fatalf("duplicate Expose: %v", err)
	}
	if err := e.Expose(ctx, shares.Share{Name: "IPC$"}); !errors.Is(err, shares.ErrInvalidName) {
		t.Fatalf("invalid Expose: %v", err)
	}
	e.FailNext(OpRemove, boom)
	if err := e.Remove(ctx, "a@{1}"); !errors.Is(err, boom) {
		t.Fatalf("Remove: %v, want the injected error", err)
	}
	if err := e.SetReadOnly(ctx, "A@{1}", true); err != nil {
		t.Fatal(err)
	}
	if s, ok := e.Get("a@{1}"); !ok || !s.ReadOnly {
		t.Fatalf("Get = %+v, %v", s, ok)
	}
	if err := e.Remove(ctx, "a@{1}"); err != nil {
		t.Fatal(err)
	}
	if err := e.Remove(ctx, "a@{1}"); !errors.Is(err, shares.ErrNotFound) {
		t.Fatalf("second Remove: %v", err)
	}
	if l, err := e.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("List = %v, %v", l, err)
	}
	if n := e.Calls(OpExpose); n != 4 {
		t.Fatalf("Calls(Expose) = %d, want 4", n)
	}
}
