package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/client"
	"github.com/fsrvpd/fsrvpd/client/requestor"
)

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// smbFlags are the SMB flags of backup and restore.
type smbFlags struct {
	addr, user, domain string
	pipe               bool
	owners             listFlag
}

func (f *smbFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "smb", "", "SMB server `host[:port]` holding the shares (default: the -server host, port 445)")
	fs.StringVar(&f.user, "user", "", "SMB user, or DOMAIN\\user (env FSRVP_SMB_USER; default: -U's); the password comes from env FSRVP_SMB_PASSWORD")
	fs.BoolVar(&f.pipe, "pipe", false, "talk FSRVP over \\PIPE\\FssagentRpc on the SMB server, as Windows does, instead of ncacn_ip_tcp to -server")
	fs.Var(&f.owners, "owner", "`NAME=target`: dial target when IsPathSupported names NAME as the share's owner (repeatable)")
}

// resolve turns the flags into the requestor's SMB settings and dialer.
func (a *app) smbSettings(f *smbFlags) (requestor.SMB, requestor.Dialer, string, map[string]string, error) {
	smb, err := a.smbTarget(f.addr, f.user)
	if err != nil {
		return smb, nil, "", nil, err
	}
	owners := map[string]string{}
	for _, o := range f.owners {
		k, v, ok := strings.Cut(o, "=")
		if !ok || k == "" || v == "" {
			return smb, nil, "", nil, usagef("-owner %q: want NAME=target", o)
		}
		owners[k] = v
	}
	opts := a.clientOptions()
	target := a.server
	var dial requestor.Dialer
	if f.pipe {
		host, _, err := net.SplitHostPort(smb.Addr)
		if err != nil {
			host = smb.Addr
		}
		target = "ncacn_np:" + host + "[" + client.DefaultPipe + "]"
		dial = requestor.NewDialer(smb, opts...)
	} else {
		dial = func(ctx context.Context, t string) (*client.Client, error) { return a.dial(ctx, t, opts...) }
	}
	return smb, dial, target, owners, nil
}

// smbTarget fills in the SMB server and credentials: -smb (default: the
// -server host, port 445), -user or FSRVP_SMB_USER with FSRVP_SMB_PASSWORD,
// else the RPC credentials of -U (a password, not an NT hash).
func (a *app) smbTarget(addr, user string) (requestor.SMB, error) {
	smb := requestor.SMB{Addr: addr, User: user, Password: a.getenv("FSRVP_SMB_PASSWORD")}
	if smb.Addr == "" {
		smb.Addr = net.JoinHostPort(a.target.Host, "445")
	}
	if smb.User == "" {
		smb.User = a.getenv("FSRVP_SMB_USER")
	}
	if smb.User == "" && a.auth != nil && a.auth.Password != "" {
		smb.User, smb.Password = a.auth.User, a.auth.Password
	}
	if d, u, ok := strings.Cut(smb.User, `\`); ok {
		smb.Domain, smb.User = d, u
	}
	if smb.User == "" {
		return smb, usagef("no SMB user: give -user or set FSRVP_SMB_USER (and FSRVP_SMB_PASSWORD), or -U with a password")
	}
	return smb, nil
}

// logger is where the requestor logs: stderr, warnings only unless -v.
func (a *app) logger() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(a.stderr)
	l.SetLevel(logrus.WarnLevel)
	if a.verbose {
		l.SetLevel(logrus.DebugLevel)
	}
	return logrus.NewEntry(l)
}

// progress shows progress on stderr when it is a terminal.
func (a *app) progress() *requestor.Progress {
	if f, ok := a.stderr.(*os.File); ok {
		return requestor.NewProgress(f)
	}
	return nil
}

func runBackup(a *app, ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	var sf smbFlags
	sf.register(fs)
	workers := fs.Int("workers", 4, "parallel transfers (one SMB connection each)")
	incr := fs.String("incremental-from", "", "earlier backup `dir`: hard-link the files that did not change since")
	ctxName := fs.String("context", "backup", "shadow copy context (backup involves the server's writers)")
	var include, exclude, sharePaths listFlag
	fs.Var(&sharePaths, "share-path", "`share=path`: the share's directory on the server, to map writer files to shares without asking srvsvc (repeatable)")
	fs.Var(&include, "include", "component `spec` to back up, [writer:]logical/path/name or a glob (repeatable; default all)")
	fs.Var(&exclude, "exclude", "component `spec` to leave out (repeatable)")
	rest, err := a.subcommand("backup", fs, args, 2, -1)
	if err != nil {
		return err
	}
	if *workers < 1 || *workers > 64 {
		return usagef("backup: -workers must be between 1 and 64")
	}
	sctx, err := client.ParseContext(*ctxName, "ro")
	if err != nil {
		return usagef("backup: %v", err)
	}
	smb, dial, target, owners, err := a.smbSettings(&sf)
	if err != nil {
		return err
	}
	var paths requestor.SharePaths
	for _, p := range sharePaths {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" || v == "" {
			return usagef("-share-path %q: want share=path", p)
		}
		if paths == nil {
			paths = requestor.SharePaths{}
		}
		paths[k] = v
	}
	res, err := requestor.Backup(ctx, dial, requestor.BackupOptions{
		Snapshot: requestor.SnapshotRequest{Target: target, Shares: rest[1:], Context: sctx, Owners: owners},
		Dest:     rest[0], SMB: smb, Workers: *workers, IncrementalFrom: *incr,
		Include: include, Exclude: exclude, SharePaths: paths, Progress: a.progress(), Log: a.logger(),
	})
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(a.stderr, "fsrvp: backup interrupted; the shadow copy set was deleted on the server")
		}
		return err
	}
	if a.json {
		return a.printJSON(map[string]any{"dest": rest[0], "shadow_copy_set_id": res.Catalog.ShadowCopySetID,
			"copied": res.Copied, "linked": res.Linked, "bytes": res.Bytes, "seconds": res.Duration.Seconds(),
			"components": res.Catalog.Components})
	}
	rate := float64(res.Bytes) / res.Duration.Seconds()
	fmt.Fprintf(a.stdout, "backed up %d share(s) to %s: %d files copied (%s, %s/s), %d hard-linked, in %s\n",
		len(res.Catalog.Shares), rest[0], res.Copied, requestor.HumanBytes(res.Bytes), requestor.HumanBytes(int64(rate)),
		res.Linked, res.Duration.Round(1e6))
	for _, c := range res.Catalog.Components {
		state := "ok"
		if !c.Succeeded {
			state = "FAILED: " + c.Message
		}
		fmt.Fprintf(a.stdout, "  component %s %s: %d files, %s\n", c.WriterName, joinLogical(c.LogicalPath, c.ComponentName), c.Files, state)
	}
	return nil
}

func joinLogical(path, name string) string {
	if path == "" {
		return name
	}
	return path + `\` + name
}

func runVerify(a *app, ctx context.Context, args []string) error {
	rest, err := a.subcommand("verify", nil, args, 1, 1)
	if err != nil {
		return err
	}
	res, err := requestor.Verify(rest[0], a.progress())
	if res != nil && a.json {
		if perr := a.printJSON(map[string]any{"ok": err == nil, "files": res.Files, "dirs": res.Dirs, "bytes": res.Bytes, "problems": res.Problems}); perr != nil {
			return perr
		}
	} else if res != nil {
		for _, p := range res.Problems {
			fmt.Fprintln(a.stdout, p)
		}
		if err == nil {
			fmt.Fprintf(a.stdout, "%s: %d files, %d directories, %s: all match the catalog\n", rest[0], res.Files, res.Dirs, requestor.HumanBytes(res.Bytes))
		}
	}
	return err
}
