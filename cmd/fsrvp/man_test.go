package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/fsrvpd/fsrvpd/cmd/internal/mancheck"
)

// fsrvp.1 mentions every command, admin command and flag of fsrvp.
func TestManPage(t *testing.T) {
	help := func(args ...string) string {
		var out, errb bytes.Buffer
		run(context.Background(), args, func(string) string { return "" }, nil, &out, &errb, nil)
		return out.String() + errb.String()
	}
	usage := help("-h")
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
		usage += help(c.name, "-h")
	}
	for _, c := range adminCommands {
		names = append(names, c.name)
		usage += help("admin", c.name, "-h")
	}
	flagNames := mancheck.Flags(usage)
	if len(flagNames) < 20 {
		t.Fatalf("only %d flags found in the usage texts: %v", len(flagNames), flagNames)
	}
	mancheck.Check(t, "fsrvp.1", flagNames, names)
}
