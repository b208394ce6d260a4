package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/fsrvpd/fsrvpd/client"
	"github.com/fsrvpd/fsrvpd/server/admin"
	"github.com/fsrvpd/fsrvpd/server/fsrvp"
	"github.com/fsrvpd/fsrvpd/shares"
)

const adminUsage = `Usage: fsrvp admin [-socket path] [-json] <command> [args]

Administers the fsrvpd running on this machine through its admin socket,
not through FSRVP: root, the daemon's user and members of the group set by
[admin] group in fsrvpd.toml may use it.

Commands:
  sets               list every shadow copy set: id, state, context, shares,
                     creation time, age, and when the message sequence timer
                     deletes it
  show <set>         one set with its shadow copies, snapshots and shares,
                     and the SMB clients connected to its shares
  abort <set>        delete a set still in its creation sequence, with its
                     snapshots and shares (as AbortShadowCopySet); prints
                     nothing on success (-json: the set as it was)
  delete [-force] <set>
                     delete a finished (Recovered) set with its snapshots and
                     shares; refused for a set in a creation sequence and,
                     unless -force, while SMB clients have its shares
                     connected (-force disconnects them); prints nothing on
                     success (-json: the set as it was)
  orphans            list snapshots and exposed shares that belong to no set
  gc [-dry-run]      delete the orphans (shares first)
  prune [-dry-run] [-at date]
                     apply the [[retention.policy]] tables now and print
                     the decision for every set; -dry-run -at 2026-12-31 or
                     -at 2026-12-31T18:00:00Z shows what would go then; a set
                     whose shares SMB clients have connected is kept until
                     a later run

Flags:
`

type adminApp struct {
	*app
	socket string
}

// adminCommands are the admin subcommands, in help order.
var adminCommands = []struct {
	name, args string
	min, max   int
	run        func(a *adminApp, ctx context.Context, req admin.Request) error
}{
	{"sets", "", 0, 0, (*adminApp).sets},
	{"show", "<set>", 1, 1, (*adminApp).show},
	{"abort", "<set>", 1, 1, (*adminApp).abortOrDelete},
	{"delete", "[-force] <set>", 1, 1, (*adminApp).abortOrDelete},
	{"orphans", "", 0, 0, (*adminApp).orphans},
	{"gc", "[-dry-run]", 0, 0, (*adminApp).gc},
	{"prune", "[-dry-run] [-at date]", 0, 0, (*adminApp).prune},
}

func runAdmin(a *app, ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("admin", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	def := os.Getenv("FSRVPD_ADMIN_SOCKET")
	if def == "" {
		def = admin.DefaultSocket
	}
	aa := &adminApp{app: a}
	fs.StringVar(&aa.socket, "socket", def, "the daemon's admin socket `path` (env FSRVPD_ADMIN_SOCKET; [admin] socket in fsrvpd.toml)")
	fs.BoolVar(&a.json, "json", a.json, "print results as JSON")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(a.stdout, adminUsage)
			fs.SetOutput(a.stdout)
			fs.PrintDefaults()
			return err
		}
		return usagef("admin: %v", err)
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return usagef("admin: no command given (commands: sets, show, abort, delete, orphans, gc, prune)")
	}
	for _, c := range adminCommands {
		if c.name != rest[0] {
			continue
		}
		sub := flag.NewFlagSet(c.name, flag.ContinueOnError)
		sub.SetOutput(io.Discard)
		sub.Usage = func() {}
		sub.BoolVar(&a.json, "json", a.json, "print results as JSON")
		var dry, force *bool
		var at *string
		if c.name == "delete" {
			force = sub.Bool("force", false, "delete even while SMB clients have the set's shares connected (they are disconnected)")
		}
		if c.name == "gc" || c.name == "prune" {
			dry = sub.Bool("dry-run", false, "only print what would be deleted")
		}
		if c.name == "prune" {
			at = sub.String("at", "", "with -dry-run: plan for this `date` (2006-01-02, or RFC 3339 2006-01-02T15:04:05Z07:00; a bare date is local midnight)")
		}
		if err := sub.Parse(rest[1:]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprintln(a.stdout, strings.TrimSpace("Usage: fsrvp admin "+c.name+" "+c.args))
				sub.SetOutput(a.stdout)
				sub.PrintDefaults()
				return err
			}
			return usagef("admin %s: %v", c.name, err)
		}
		pos := sub.Args()
		if len(pos) < c.min || len(pos) > c.max {
			return usagef("admin %s: wrong number of arguments; usage: fsrvp admin %s %s", c.name, c.name, c.args)
		}
		req := admin.Request{Cmd: c.name}
		if dry != nil {
			req.DryRun = *dry
		}
		if force != nil {
			req.Force = *force
		}
		if at != nil && *at != "" {
			t, err := time.Parse(time.RFC3339, *at)
			if err != nil {
				if t, err = time.ParseInLocation(time.DateOnly, *at, time.Local); err != nil {
					return usagef("admin prune: -at %q is neither 2006-01-02 nor RFC 3339", *at)
				}
			}
			if !req.DryRun {
				return usagef("admin prune: -at needs -dry-run")
			}
			req.At = t
		}
		if len(pos) == 1 {
			id, err := parseID("set", pos[0])
			if err != nil {
				return err
			}
			req.ID = id.String()
		}
		return c.run(aa, ctx, req)
	}
	return usagef("admin: unknown command %q (commands: sets, show, abort, delete, orphans, gc, prune)", rest[0])
}

// call sends one request; a socket failure is a transport error (exit
// status 3), a refusal by the daemon an error of exit status 1.
func (a *adminApp) call(ctx context.Context, req admin.Request) (admin.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	resp, err := admin.Call(ctx, a.socket, req)
	var ae *admin.Error
	if err != nil && !errors.As(err, &ae) {
		switch {
		case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
			err = fmt.Errorf("%w (is fsrvpd running? -socket names its [admin] socket)", err)
		case errors.Is(err, fs.ErrPermission):
			err = fmt.Errorf("%w (root and the [admin] group only)", err)
		}
		return resp, &client.TransportError{Op: "admin " + req.Cmd, Err: err}
	}
	return resp, err
}

func age(now, t time.Time) string {
	d := now.Sub(t).Round(time.Second)
	switch {
	case d < 0:
		return "-"
	case d < time.Hour:
		return d.String()
	case d < 48*time.Hour:
		return d.Truncate(time.Minute).String()
	default:
		return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// timerOf says when the message sequence timer deletes a set: only sets in
// their creation sequence are subject to it.
func timerOf(o fsrvp.Overview, s fsrvp.SetInfo, now time.Time) string {
	if !s.InCreation || o.TimerDeadline.IsZero() {
		return "-"
	}
	return "in " + o.TimerDeadline.Sub(now).Round(time.Second).String()
}

func (a *adminApp) sets(ctx context.Context, req admin.Request) error {
	resp, err := a.call(ctx, req)
	if err != nil {
		return err
	}
	o := resp.Overview
	if a.json {
		return a.printJSON(o)
	}
	now := time.Now()
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SET\tSTATE\tCONTEXT\tSHARES\tCREATED\tAGE\tTIMER")
	for _, s := range o.Sets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Status, fsrvp.ContextName(s.Context), orDash(strings.Join(s.Shares(), ",")),
			s.Created.Local().Format(time.DateTime), age(now, s.Created), timerOf(*o, s, now))
	}
	tw.Flush()
	if o.ContextSet {
		fmt.Fprintf(a.stdout, "\nSequence in progress: context %s set by %s", fsrvp.ContextName(o.CurrentContext), orDash(o.ClientAddress))
		if !o.TimerDeadline.IsZero() {
			fmt.Fprintf(a.stdout, "; the timer fires at %s", o.TimerDeadline.Local().Format(time.DateTime))
		}
		fmt.Fprintln(a.stdout)
	}
	return nil
}

func (a *adminApp) printSet(s *fsrvp.SetInfo) {
	now := time.Now()
	fmt.Fprintf(a.stdout, "Set:      %s\nState:    %s\nContext:  %s (0x%08x)\nCreated:  %s (%s ago)\n",
		s.ID, s.Status, fsrvp.ContextName(s.Context), s.Context, s.Created.Local().Format(time.DateTime), age(now, s.Created))
	if s.CommitRunning {
		fmt.Fprintln(a.stdout, "Commit:   snapshot job running")
	}
	for _, sc := range s.Copies {
		fmt.Fprintf(a.stdout, "\nShadow copy %s\n  volume:   %s (%s)\n  snapshot: %s\n", sc.ID, sc.VolumeRoot, sc.VolumeID, orDash(sc.SnapshotPath))
		for _, m := range sc.Mappings {
			fmt.Fprintf(a.stdout, "  share:    %s -> %s\n", m.Base, orDash(m.Exposed))
		}
	}
}

func (a *adminApp) show(ctx context.Context, req admin.Request) error {
	resp, err := a.call(ctx, req)
	if err != nil {
		return err
	}
	if a.json {
		return a.printJSON(struct {
			*fsrvp.SetInfo
			Connections      []shares.Connection `json:"connections"`
			ConnectionsError string              `json:"connections_error,omitempty"`
		}{resp.Set, orEmpty(resp.Connections), resp.ConnectionsError})
	}
	a.printSet(resp.Set)
	switch {
	case resp.ConnectionsError != "":
		fmt.Fprintf(a.stdout, "\nSMB clients: cannot tell: %s\n", resp.ConnectionsError)
	case len(resp.Connections) > 0:
		fmt.Fprintln(a.stdout, "\nSMB clients connected:")
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		for _, c := range resp.Connections {
			since := "-"
			if !c.Since.IsZero() {
				since = "since " + c.Since.Local().Format(time.DateTime)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Share, c.Machine, since)
		}
		tw.Flush()
	}
	return nil
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (a *adminApp) abortOrDelete(ctx context.Context, req admin.Request) error {
	resp, err := a.call(ctx, req)
	if err != nil {
		return err
	}
	if a.json {
		return a.printJSON(resp.Set)
	}
	return nil
}

func (a *adminApp) printOrphans(o *fsrvp.Orphans, verb string) {
	if len(o.Snapshots)+len(o.Shares) == 0 {
		fmt.Fprintln(a.stdout, "no orphans")
		return
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	head := "KIND\tNAME\tPATH"
	if verb != "" {
		head = "ACTION\t" + head
		verb += "\t"
	}
	fmt.Fprintln(tw, head)
	for _, sh := range o.Shares {
		fmt.Fprintf(tw, "%sshare\t%s\t%s\n", verb, sh.Name, sh.Path)
	}
	for _, sn := range o.Snapshots {
		fmt.Fprintf(tw, "%ssnapshot\t%s\t%s\n", verb, sn.ID, sn.Path)
	}
	tw.Flush()
}

func (a *adminApp) orphans(ctx context.Context, req admin.Request) error {
	resp, err := a.call(ctx, req)
	if err != nil {
		return err
	}
	if a.json {
		return a.printJSON(resp.Orphans)
	}
	a.printOrphans(resp.Orphans, "")
	return nil
}

func (a *adminApp) gc(ctx context.Context, req admin.Request) error {
	dry := req.DryRun
	resp, err := a.call(ctx, req)
	if err != nil {
		return err
	}
	if a.json {
		return a.printJSON(map[string]any{"dry_run": dry, "orphans": resp.Orphans})
	}
	verb := "deleted"
	if dry {
		verb = "would delete"
	}
	a.printOrphans(resp.Orphans, verb)
	return nil
}

func (a *adminApp) prune(ctx context.Context, req admin.Request) error {
	resp, err := a.call(ctx, req)
	if err != nil {
		return err
	}
	r := resp.Retention
	if a.json {
		return a.printJSON(r)
	}
	if len(r.Decisions) == 0 {
		fmt.Fprintln(a.stdout, "no finished sets of a persistent context (nas_rollback, app_rollback)")
		return nil
	}
	deleted := map[string]bool{}
	for _, id := range r.Deleted {
		deleted[id] = true
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SET\tCREATED\tSHARES\tDECISION\tREASON")
	for _, d := range r.Decisions {
		dec := "keep"
		switch {
		case !d.Prune:
		case r.DryRun:
			dec = "would prune"
		case deleted[d.ID]:
			dec = "pruned"
		case r.Failed[d.ID] != "":
			dec = "FAILED: " + r.Failed[d.ID]
		case r.Connected[d.ID] != "":
			dec = "kept: SMB clients connected"
		default:
			dec = "skipped (in use)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.ID, d.Created.Local().Format(time.DateTime), strings.Join(d.Shares, ","), dec, d.Reason)
	}
	tw.Flush()
	if len(r.Failed) > 0 {
		return fmt.Errorf("prune: %d sets could not be deleted", len(r.Failed))
	}
	return nil
}
