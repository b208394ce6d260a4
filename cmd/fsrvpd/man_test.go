package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/fsrvpd/fsrvpd/cmd/internal/mancheck"
)

// fsrvpd.8 mentions every flag of fsrvpd and of fsrvpd doctor.
func TestManPage(t *testing.T) {
	var f flags
	fs := newFlagSet(&f)
	var b strings.Builder
	fs.SetOutput(&b)
	fs.PrintDefaults()
	var out, errb bytes.Buffer
	if code := runDoctor([]string{"-h"}, &out, &errb); code != 0 {
		t.Fatalf("doctor -h: exit %d", code)
	}
	flagNames := mancheck.Flags(b.String() + errb.String())
	for _, want := range []string{"config", "demo", "json"} {
		if !strings.Contains(" "+strings.Join(flagNames, " ")+" ", " "+want+" ") {
			t.Fatalf("flag -%s not found in the usage texts: %v", want, flagNames)
		}
	}
	mancheck.Check(t, "fsrvpd.8", flagNames, []string{"doctor"})
}
