package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fsrvpd/fsrvpd/client"
	"github.com/google/uuid"
)

// setDocument is what create -json prints and delete -from reads.
type setDocument struct {
	Server           string           `json:"server"`
	ShadowCopySetID  uuid.UUID        `json:"shadow_copy_set_id"`
	Context          uint32           `json:"context"`
	ContextName      string           `json:"context_name"`
	RecoveryComplete bool             `json:"recovery_complete"`
	Mappings         []client.Mapping `json:"mappings"`
}

// subcommand parses the flags and positional arguments of command name:
// between min and max positional arguments (max < 0: no limit).
func (a *app) subcommand(name string, fs *flag.FlagSet, args []string, min, max int) ([]string, error) {
	if fs == nil {
		fs = flag.NewFlagSet(name, flag.ContinueOnError)
	}
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			a.subUsage(name, fs)
			return nil, err
		}
		return nil, usagef("%s: %v", name, err)
	}
	rest := fs.Args()
	if len(rest) < min || (max >= 0 && len(rest) > max) {
		return nil, usagef("%s: wrong number of arguments; usage: fsrvp %s %s", name, name, a.cmd.args)
	}
	return rest, nil
}

func (a *app) subUsage(name string, fs *flag.FlagSet) {
	fmt.Fprintf(a.stdout, "Usage: fsrvp %s %s\n", name, a.cmd.args)
	fs.SetOutput(a.stdout)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

func parseID(what, s string) (uuid.UUID, error) {
	u, err := uuid.Parse(strings.TrimSpace(s))
	if err != nil {
		return uuid.Nil, usagef("%s %q is not a GUID", what, s)
	}
	return u, nil
}

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// withClient dials, runs f and closes the connection.
func (a *app) withClient(ctx context.Context, f func(*client.Client) error) error {
	c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return f(c)
}

func runVersion(a *app, ctx context.Context, args []string) error {
	if _, err := a.subcommand("version", nil, args, 0, 0); err != nil {
		return err
	}
	return a.withClient(ctx, func(c *client.Client) error {
		min, max, err := c.GetSupportedVersion(ctx)
		if err != nil {
			return err
		}
		if a.json {
			return a.printJSON(map[string]uint32{"min_version": min, "max_version": max})
		}
		fmt.Fprintf(a.stdout, "FSRVP versions %d to %d\n", min, max)
		return nil
	})
}

func runSetContext(a *app, ctx context.Context, args []string) error {
	rest, err := a.subcommand("set-context", nil, args, 1, 2)
	if err != nil {
		return err
	}
	mode := ""
	if len(rest) == 2 {
		mode = rest[1]
	}
	v, err := client.ParseContext(rest[0], mode)
	if err != nil {
		return usagef("set-context: %v", err)
	}
	return a.withClient(ctx, func(c *client.Client) error { return c.SetContext(ctx, v) })
}

func runStart(a *app, ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("start", flag.ContinueOnError)
	clientID := fs.String("client-id", "", "client shadow copy set `id` (default: random)")
	if _, err := a.subcommand("start", fs, args, 0, 0); err != nil {
		return err
	}
	id := uuid.New()
	if *clientID != "" {
		var err error
		if id, err = parseID("-client-id", *clientID); err != nil {
			return err
		}
	}
	return a.withClient(ctx, func(c *client.Client) error {
		set, err := c.StartShadowCopySet(ctx, id)
		if err != nil {
			return err
		}
		if a.json {
			return a.printJSON(map[string]uuid.UUID{"shadow_copy_set_id": set})
		}
		fmt.Fprintln(a.stdout, set)
		return nil
	})
}

func runAdd(a *app, ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("add", flag.ContinueOnError)
	clientID := fs.String("client-id", "", "client shadow copy `id` (default: random)")
	rest, err := a.subcommand("add", fs, args, 2, 2)
	if err != nil {
		return err
	}
	set, err := parseID("shadow copy set id", rest[0])
	if err != nil {
		return err
	}
	id := uuid.New()
	if *clientID != "" {
		if id, err = parseID("-client-id", *clientID); err != nil {
			return err
		}
	}
	share := a.share(rest[1])
	return a.withClient(ctx, func(c *client.Client) error {
		sc, err := c.AddToShadowCopySet(ctx, id, set, share)
		if err != nil {
			return err
		}
		if a.json {
			return a.printJSON(map[string]string{"shadow_copy_set_id": set.String(), "shadow_copy_id": sc.String(), "share": share})
		}
		fmt.Fprintln(a.stdout, sc)
		return nil
	})
}

// runWait implements prepare, commit and expose: a set id and a wait limit.
func runWait(a *app, ctx context.Context, name string, args []string, def time.Duration,
	call func(*client.Client, context.Context, uuid.UUID, time.Duration) error) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	wait := fs.Duration("wait", def, "how long the server may take (sent as TimeOutInMilliseconds)")
	rest, err := a.subcommand(name, fs, args, 1, 1)
	if err != nil {
		return err
	}
	set, err := parseID("shadow copy set id", rest[0])
	if err != nil {
		return err
	}
	return a.withClient(ctx, func(c *client.Client) error { return call(c, ctx, set, *wait) })
}

func runPrepare(a *app, ctx context.Context, args []string) error {
	return runWait(a, ctx, "prepare", args, client.DefaultPrepareTimeout, (*client.Client).PrepareShadowCopySet)
}

func runCommit(a *app, ctx context.Context, args []string) error {
	return runWait(a, ctx, "commit", args, client.DefaultCommitTimeout, (*client.Client).CommitShadowCopySet)
}

func runExpose(a *app, ctx context.Context, args []string) error {
	return runWait(a, ctx, "expose", args, client.DefaultExposeTimeout, (*client.Client).ExposeShadowCopySet)
}

// runSetOp implements recovery-complete and abort: a set id only.
func runSetOp(a *app, ctx context.Context, name string, args []string, call func(*client.Client, context.Context, uuid.UUID) error) error {
	rest, err := a.subcommand(name, nil, args, 1, 1)
	if err != nil {
		return err
	}
	set, err := parseID("shadow copy set id", rest[0])
	if err != nil {
		return err
	}
	return a.withClient(ctx, func(c *client.Client) error { return call(c, ctx, set) })
}

func runRecoveryComplete(a *app, ctx context.Context, args []string) error {
	return runSetOp(a, ctx, "recovery-complete", args, (*client.Client).RecoveryCompleteShadowCopySet)
}

func runAbort(a *app, ctx context.Context, args []string) error {
	return runSetOp(a, ctx, "abort", args, (*client.Client).AbortShadowCopySet)
}

func runIsPathSupported(a *app, ctx context.Context, args []string) error {
	rest, err := a.subcommand("is-path-supported", nil, args, 1, 1)
	if err != nil {
		return err
	}
	share := a.share(rest[0])
	return a.withClient(ctx, func(c *client.Client) error {
		ok, owner, err := c.IsPathSupported(ctx, share)
		if err != nil {
			return err
		}
		if a.json {
			return a.printJSON(struct {
				Share     string `json:"share"`
				Supported bool   `json:"supported"`
				Owner     string `json:"owner"`
			}{share, ok, owner})
		}
		if ok {
			fmt.Fprintf(a.stdout, "%s: supported, owner %s\n", share, owner)
		} else {
			fmt.Fprintf(a.stdout, "%s: not supported\n", share)
		}
		return nil
	})
}

func runIsPathShadowCopied(a *app, ctx context.Context, args []string) error {
	rest, err := a.subcommand("is-path-shadow-copied", nil, args, 1, 1)
	if err != nil {
		return err
	}
	share := a.share(rest[0])
	return a.withClient(ctx, func(c *client.Client) error {
		present, compat, err := c.IsPathShadowCopied(ctx, share)
		if err != nil {
			return err
		}
		if a.json {
			return a.printJSON(struct {
				Share         string `json:"share"`
				Present       bool   `json:"present"`
				Compatibility int32  `json:"compatibility"`
			}{share, present, compat})
		}
		if present {
			fmt.Fprintf(a.stdout, "%s: shadow copy present, compatibility 0x%x\n", share, compat)
		} else {
			fmt.Fprintf(a.stdout, "%s: no shadow copy\n", share)
		}
		return nil
	})
}

// mappingArgs parses "<set> <sc> <share>".
func (a *app) mappingArgs(rest []string) (set, sc uuid.UUID, share string, err error) {
	if set, err = parseID("shadow copy set id", rest[0]); err != nil {
		return
	}
	if sc, err = parseID("shadow copy id", rest[1]); err != nil {
		return
	}
	return set, sc, a.share(rest[2]), nil
}

func runGetMapping(a *app, ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("get-mapping", flag.ContinueOnError)
	level := fs.Uint("level", uint(client.ShareMappingLevel1), "information `level` (only 1 is defined)")
	rest, err := a.subcommand("get-mapping", fs, args, 3, 3)
	if err != nil {
		return err
	}
	set, sc, share, err := a.mappingArgs(rest)
	if err != nil {
		return err
	}
	return a.withClient(ctx, func(c *client.Client) error {
		m, err := c.GetShareMapping(ctx, sc, set, share, uint32(*level))
		if err != nil {
			return err
		}
		if a.json {
			return a.printJSON(m)
		}
		a.printMappings(m.ShadowCopySetID, "", []client.Mapping{m})
		return nil
	})
}

func runDeleteMapping(a *app, ctx context.Context, args []string) error {
	rest, err := a.subcommand("delete-mapping", nil, args, 3, 3)
	if err != nil {
		return err
	}
	set, sc, share, err := a.mappingArgs(rest)
	if err != nil {
		return err
	}
	return a.withClient(ctx, func(c *client.Client) error { return c.DeleteShareMapping(ctx, set, sc, share) })
}

func runCreate(a *app, ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("create", flag.ContinueOnError)
	ctxName := fs.String("context", "backup", "shadow copy `context`: backup, file_share_backup, nas_rollback, app_rollback or a number")
	rw := fs.Bool("rw", false, "writable shadow copies (ATTR_AUTO_RECOVERY) until recovery-complete")
	noRC := fs.Bool("no-recovery-complete", false, "leave the set Exposed; run \"fsrvp recovery-complete <set>\" within 180 s or the server deletes it")
	prep := fs.Duration("prepare-timeout", client.DefaultPrepareTimeout, "PrepareShadowCopySet wait limit")
	commit := fs.Duration("commit-timeout", client.DefaultCommitTimeout, "CommitShadowCopySet wait limit")
	expose := fs.Duration("expose-timeout", client.DefaultExposeTimeout, "ExposeShadowCopySet wait limit")
	rest, err := a.subcommand("create", fs, args, 1, -1)
	if err != nil {
		return err
	}
	mode := "ro"
	if *rw {
		mode = "rw"
	}
	v, err := client.ParseContext(*ctxName, mode)
	if err != nil {
		return usagef("create: %v", err)
	}
	shares := make([]string, len(rest))
	for i, s := range rest {
		shares[i] = a.share(s)
	}
	return a.withClient(ctx, func(c *client.Client) error {
		res, err := c.Create(ctx, client.CreateRequest{
			Context: v, Shares: shares,
			PrepareTimeout: *prep, CommitTimeout: *commit, ExposeTimeout: *expose,
			RecoveryComplete: !*noRC,
		})
		if err != nil {
			return err
		}
		if a.json {
			return a.printJSON(setDocument{
				Server: a.server, ShadowCopySetID: res.ShadowCopySetID,
				Context: res.Context, ContextName: client.ContextName(res.Context),
				RecoveryComplete: res.RecoveryCompleted, Mappings: res.Mappings,
			})
		}
		state := "recovery complete"
		if !res.RecoveryCompleted {
			state = "exposed; run recovery-complete within 180 s"
		}
		a.printMappings(res.ShadowCopySetID, client.ContextName(res.Context)+", "+state, res.Mappings)
		return nil
	})
}

func (a *app) printMappings(set uuid.UUID, note string, ms []client.Mapping) {
	if note != "" {
		fmt.Fprintf(a.stdout, "shadow copy set %s (%s)\n", set, note)
	} else {
		fmt.Fprintf(a.stdout, "shadow copy set %s\n", set)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SHADOW COPY\tSHARE\tEXPOSED AS\tCREATED")
	for _, m := range ms {
		created := "-"
		if !m.CreationTime.IsZero() {
			created = m.CreationTime.UTC().Format(time.RFC3339)
		}
		exposed := m.ExposedName
		if exposed == "" {
			exposed = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.ShadowCopyID, m.ShareUNC, exposed, created)
	}
	tw.Flush()
}

func runDelete(a *app, ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("delete", flag.ContinueOnError)
	from := fs.String("from", "", "read the set from `file` (the output of create -json; - for stdin)")
	rest, err := a.subcommand("delete", fs, args, 0, -1)
	if err != nil {
		return err
	}
	var set uuid.UUID
	var mappings []client.Mapping
	switch {
	case *from != "" && len(rest) > 0:
		return usagef("delete: give either -from or <set> <sc>=<share>..., not both")
	case *from != "":
		doc, err := a.readSetDocument(*from)
		if err != nil {
			return err
		}
		set, mappings = doc.ShadowCopySetID, doc.Mappings
	case len(rest) >= 2:
		if set, err = parseID("shadow copy set id", rest[0]); err != nil {
			return err
		}
		for _, arg := range rest[1:] {
			scArg, share, ok := strings.Cut(arg, "=")
			if !ok || share == "" {
				return usagef("delete: %q is not <shadow copy id>=<share>", arg)
			}
			sc, err := parseID("shadow copy id", scArg)
			if err != nil {
				return err
			}
			mappings = append(mappings, client.Mapping{ShadowCopySetID: set, ShadowCopyID: sc, ShareUNC: a.share(share)})
		}
	default:
		return usagef("delete: usage: fsrvp delete %s", a.cmd.args)
	}
	return a.withClient(ctx, func(c *client.Client) error { return c.Delete(ctx, set, mappings) })
}

// readSetDocument reads and checks a create -json document.
func (a *app) readSetDocument(name string) (*setDocument, error) {
	var r io.Reader = a.stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	var doc setDocument
	dec := json.NewDecoder(r)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("delete: reading %s: %w", name, err)
	}
	if doc.ShadowCopySetID == uuid.Nil && len(doc.Mappings) > 0 {
		doc.ShadowCopySetID = doc.Mappings[0].ShadowCopySetID
	}
	if doc.ShadowCopySetID == uuid.Nil || len(doc.Mappings) == 0 {
		return nil, fmt.Errorf("delete: %s has no shadow_copy_set_id or no mappings", name)
	}
	for i, m := range doc.Mappings {
		if m.ShadowCopyID == uuid.Nil || m.ShareUNC == "" {
			return nil, fmt.Errorf("delete: %s: mapping %d lacks shadow_copy_id or share", name, i)
		}
	}
	return &doc, nil
}
