package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/fsrvpd/fsrvpd/cmd/internal/mancheck"
)

// fsrvp-conformance.1 mentions every command and flag.
func TestManPage(t *testing.T) {
	var usage string
	for _, args := range [][]string{{"-h"}, {"run", "-h"}, {"smbtorture", "-h"}, {"list", "-h"}} {
		var out, errb bytes.Buffer
		run(context.Background(), args, &out, &errb)
		usage += out.String() + errb.String()
	}
	usage += testbedUsage
	flagNames := mancheck.Flags(usage)
	if len(flagNames) < 20 {
		t.Fatalf("only %d flags found in the usage texts: %v", len(flagNames), flagNames)
	}
	mancheck.Check(t, "fsrvp-conformance.1", flagNames,
		[]string{"run", "smbtorture", "list", "testbed", "up", "status", "down", "help"})
}
