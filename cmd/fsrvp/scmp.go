package main

// scmp.go: fsrvp scmp, an MS-SCMP client (the Shadow Copies tab's
// protocol) on client/scmp.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	scmpc "github.com/fsrvpd/fsrvpd/client/scmp"
)

const scmpUsage = `scmp subcommands (DCOM: the resolver on <server host>:135, or -port):
  volumes                                 volumes that support shadow copies
  snapshots <volume>                      shadow copies of a volume
  diff-areas [-on] <volume>               storage associations for (or -on) a volume
  diff-volumes <volume>                   volumes that can hold a volume's storage
  add <volume> <storage> <max>            create a storage association
  resize <volume> <storage> <max>         resize one; max 0 removes it
A volume is \\?\Volume{GUID}\, its path, or a share name; max is bytes
with an optional K, M, G or T suffix (powers of 1024), or -1 / unbounded.`

// runSCMP dispatches fsrvp scmp <sub>.
func runSCMP(a *app, ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("scmp", flag.ContinueOnError)
	port := fs.Int("port", 135, "the DCOM resolver's TCP `port`")
	rest, err := a.subcommand("scmp", fs, args, 1, 5)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(a.stdout, scmpUsage)
		}
		return err
	}
	sub, rest := rest[0], rest[1:]
	on := new(bool)
	if sub == "diff-areas" {
		dfs := flag.NewFlagSet("scmp diff-areas", flag.ContinueOnError)
		on = dfs.Bool("on", false, "the associations stored on the volume (QueryDiffAreasOnVolume)")
		dfs.SetOutput(io.Discard)
		if err := dfs.Parse(rest); err != nil {
			return usagef("scmp diff-areas: %v", err)
		}
		rest = dfs.Args()
	}
	want := map[string]int{"volumes": 0, "snapshots": 1, "diff-areas": 1, "diff-volumes": 1, "add": 3, "resize": 3}
	n, ok := want[sub]
	if !ok {
		return usagef("scmp: unknown subcommand %q\n%s", sub, scmpUsage)
	}
	if len(rest) != n {
		return usagef("scmp %s: wrong number of arguments\n%s", sub, scmpUsage)
	}
	var max int64
	if sub == "add" || sub == "resize" {
		if max, err = parseSize(rest[2]); err != nil {
			return usagef("scmp %s: %v", sub, err)
		}
	}
	if a.target.Host == "" {
		return usagef("scmp: -server names no host")
	}
	o := scmpc.Options{ResolverPort: *port, Timeout: a.timeout}
	if a.auth != nil {
		if o.Security, err = a.auth.RPCOptions(); err != nil {
			return usagef("%v", err)
		}
	}
	c, err := scmpc.Dial(ctx, a.target.Host, o)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	switch sub {
	case "volumes":
		vols, err := c.Volumes(ctx)
		if err != nil {
			return err
		}
		if a.json {
			return a.printJSON(vols)
		}
		fmt.Fprintln(tw, "VOLUME\tDISPLAY NAME")
		for _, v := range vols {
			fmt.Fprintf(tw, "%s\t%s\n", v.Name, v.Display)
		}
	case "snapshots":
		scs, err := c.ShadowCopies(ctx, rest[0])
		if err != nil {
			return err
		}
		if a.json {
			return a.printJSON(scs)
		}
		fmt.Fprintln(tw, "SHADOW COPY\tSET\tCREATED\tDEVICE OBJECT")
		for _, s := range scs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.ID, s.SetID, s.Created.Local().Format(time.RFC3339), s.DeviceObject)
		}
	case "diff-areas":
		f := c.DiffAreasFor
		if *on {
			f = c.DiffAreasOn
		}
		das, err := f(ctx, rest[0])
		if err != nil {
			return err
		}
		if a.json {
			return a.printJSON(das)
		}
		fmt.Fprintln(tw, "VOLUME\tSTORAGE\tMAXIMUM\tUSED")
		for _, d := range das {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", d.Volume, d.Storage, sizeString(d.Maximum), d.Used)
		}
	case "diff-volumes":
		dvs, err := c.DiffVolumes(ctx, rest[0])
		if err != nil {
			return err
		}
		if a.json {
			return a.printJSON(dvs)
		}
		fmt.Fprintln(tw, "VOLUME\tDISPLAY NAME\tFREE\tTOTAL")
		for _, d := range dvs {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", d.Name, d.Display, d.Free, d.Total)
		}
	case "add":
		return c.AddDiffArea(ctx, rest[0], rest[1], max)
	case "resize":
		return c.ChangeDiffAreaMaximumSize(ctx, rest[0], rest[1], max)
	}
	return nil
}

// parseSize reads bytes with an optional K/M/G/T suffix, or -1/unbounded.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToUpper(s))
	if s == "-1" || s == "UNBOUNDED" {
		return -1, nil
	}
	mult := int64(1)
	if i := len(s) - 1; i > 0 && strings.IndexByte("KMGT", s[i]) >= 0 {
		mult = int64(1) << (10 * (1 + strings.IndexByte("KMGT", s[i])))
		s = s[:i]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: want bytes with an optional K, M, G or T suffix, or -1", s)
	}
	return n * mult, nil
}

func sizeString(n int64) string {
	if n < 0 {
		return "unbounded"
	}
	return strconv.FormatInt(n, 10)
}
