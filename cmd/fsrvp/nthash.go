package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/fsrvpd/fsrvpd/rpc/auth/ntlm"
)

// runNTHash prints the NT hash (MD4 of the UTF-16LE password) of the first
// line of stdin, for fsrvpd's configuration. No connection is made.
func runNTHash(a *app, _ context.Context, args []string) error {
	if len(args) != 0 {
		return usagef("nthash takes no arguments; it reads the password from stdin")
	}
	line, err := bufio.NewReader(a.stdin).ReadString('\n')
	if err != nil && line == "" {
		return fmt.Errorf("nthash: no password on stdin")
	}
	h := ntlm.NTHash(strings.TrimRight(line, "\r\n"))
	fmt.Fprintln(a.stdout, hex.EncodeToString(h[:]))
	return nil
}
