package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"strings"

	"github.com/fsrvpd/fsrvpd/client"
	"github.com/fsrvpd/fsrvpd/client/requestor"
)

func runRestore(a *app, ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	smbAddr := fs.String("smb", "", "SMB server `host[:port]` to restore to (default: the -server host, port 445)")
	user := fs.String("user", "", "SMB user, or DOMAIN\\user (env FSRVP_SMB_USER; default: -U's); the password comes from env FSRVP_SMB_PASSWORD")
	to := fs.String("to", "", "restore into this local `dir` (<dir>/<share>/...) instead of the server's shares")
	var shareMap, include, exclude listFlag
	fs.Var(&shareMap, "map-share", "`backup=target`: restore the backup's share into another share (repeatable)")
	fs.Var(&include, "include", "component `spec` to restore, [writer:]logical/path/name or a glob (repeatable; default all)")
	fs.Var(&exclude, "exclude", "component `spec` not to restore (repeatable)")
	componentsOnly := fs.Bool("components-only", false, "restore only writer components, not the files outside them")
	pipe := fs.Bool("pipe", false, "reach fsrvpd's writer control (service hooks of STOP_RESTART_SERVICE) over \\PIPE\\FssagentRpc on the SMB server instead of ncacn_ip_tcp to -server")
	rest, err := a.subcommand("restore", fs, args, 1, 1)
	if err != nil {
		return err
	}
	o := requestor.RestoreOptions{Backup: rest[0], ToDir: *to, Include: include, Exclude: exclude,
		ComponentsOnly: *componentsOnly, Progress: a.progress(), Log: a.logger(), ShareMap: map[string]string{}}
	for _, m := range shareMap {
		k, v, ok := strings.Cut(m, "=")
		if !ok || k == "" || v == "" {
			return usagef("-map-share %q: want backup=target", m)
		}
		o.ShareMap[k] = v
	}
	if *to == "" {
		if o.SMB, err = a.smbTarget(*smbAddr, *user); err != nil {
			return err
		}
		wc := &requestor.WriterControl{Target: a.server, SMB: o.SMB, Options: a.clientOptions()}
		if *pipe {
			host, _, err := net.SplitHostPort(o.SMB.Addr)
			if err != nil {
				host = o.SMB.Addr
			}
			wc.Target = "ncacn_np:" + host + "[" + client.DefaultPipe + "]"
		}
		o.Services = wc
	}
	res, err := requestor.Restore(ctx, o)
	if res == nil {
		return err
	}
	if a.json {
		if perr := a.printJSON(res); perr != nil {
			return perr
		}
		return err
	}
	for _, c := range res.Components {
		fmt.Fprintf(a.stdout, "%-9s %s %s (%s): %s\n", c.Action, c.WriterName, joinLogical(c.LogicalPath, c.ComponentName), c.Method, c.Message)
		for _, m := range c.Relocations {
			fmt.Fprintf(a.stdout, "          %s\\%s -> %s\n", m.Path, m.Filespec, m.AlternatePath)
		}
		if c.Instructions != "" {
			fmt.Fprintf(a.stdout, "          what to do: %s\n", c.Instructions)
		}
	}
	fmt.Fprintf(a.stdout, "restored %d files (%s), %d of them outside any component\n", res.Files, requestor.HumanBytes(res.Bytes), res.PlainFiles)
	if res.Document != "" {
		fmt.Fprintf(a.stdout, "backup components document with this restore's relocations: %s\n", res.Document)
	}
	return err
}
