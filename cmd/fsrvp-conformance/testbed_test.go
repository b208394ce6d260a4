package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestTestbedUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"testbed"}, 2, "KEY=value"},
		{[]string{"testbed", "help"}, 0, "SEQ_TIMEOUT_SECONDS"},
		{[]string{"testbed", "sideways"}, 2, "unknown command"},
		{[]string{"testbed", "up", "-backend", "zfs"}, 2, "not dir or btrfs"},
		{[]string{"testbed", "up", "-agent", "windows"}, 2, "not fsrvpd or samba"},
		{[]string{"testbed", "up", "-agent", "samba", "-backend", "dir"}, 2, "needs -backend btrfs"},
		{[]string{"testbed", "help"}, 0, "AGENT"},
		{[]string{"testbed", "down", "extra"}, 2, "unexpected argument"},
		{[]string{"testbed", "down", "-dir", t.TempDir() + "/none"}, 0, "nothing in"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), tc.args, &out, &errb); code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v = %d, stderr %q; want %d and %q", tc.args, code, errb.String(), tc.code, tc.want)
		}
	}
	var b bytes.Buffer
	printEnv(&b, map[string]string{"B": "x y", "A": "1"})
	if b.String() != "A=1\nB='x y'\n" {
		t.Errorf("printEnv = %q", b.String())
	}
}
