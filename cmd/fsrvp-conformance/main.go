// Command fsrvp-conformance runs the MS-FSRVP conformance checks of package
// conformance against a server and prints what passed and what did not.
//
//	fsrvp-conformance run -target 127.0.0.1:41345 -shares share1,share2 \
//	    [-same-volume-share share3] [-timer 1s] [-second-client 127.0.0.2] \
//	    [-share-host HOST] [-retry-limit 5] [-run REGEX] [-json] [-v]
//	fsrvp-conformance list [-run REGEX] [-json]
//	fsrvp-conformance testbed up|status|down [-dir D] [flags]
//
// testbed runs a private smbd with fsrvpd behind it on loopback (see
// "fsrvp-conformance testbed help" for the stable KEY=value interface).
//
// The server must not be used by anyone else while the checks run. Exit
// status: 0 when no check failed (skips are fine), 1 when one failed, 2 on a
// usage error.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/fsrvpd/fsrvpd/client"
	"github.com/fsrvpd/fsrvpd/conformance"
)

const usage = `Usage:
  fsrvp-conformance run -target HOST:PORT -shares SHARE1,SHARE2 [flags]
  fsrvp-conformance list [-run REGEX] [-json]
  fsrvp-conformance testbed up|status|down [flags]   (testbed help: details)

run checks an FSRVP server against MS-FSRVP: return codes, check order,
state machine, share mappings, the message sequence timer. Every check
cleans up what it creates. Nobody else may use the server meanwhile.

Exit status: 0 nothing failed, 1 a check failed, 2 usage error.
`

// runChecks is conformance.Run; tests replace it.
var runChecks = conformance.Run

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the flags of run and list.
type options struct {
	target, shares, sameVolume, secondClient, shareHost string
	timer, callTimeout                                  time.Duration
	retryLimit                                          int
	runRE                                               *regexp.Regexp
	json, verbose                                       bool
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, rest := args[0], args[1:]
	if cmd == "testbed" {
		return runTestbed(ctx, rest, stdout, stderr)
	}
	opts, err := parseFlags(cmd, rest, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "fsrvp-conformance: %v\n", err)
		return 2
	}
	switch cmd {
	case "list":
		return list(opts, stdout)
	case "run":
		tg, err := opts.buildTarget()
		if err != nil {
			fmt.Fprintf(stderr, "fsrvp-conformance: %v\n", err)
			return 2
		}
		rep := runChecks(ctx, tg, opts.runRE)
		if opts.json {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(rep); err != nil {
				fmt.Fprintf(stderr, "fsrvp-conformance: %v\n", err)
			}
		} else {
			writeTable(stdout, rep, opts.verbose)
		}
		if !rep.OK() {
			return 1
		}
		return 0
	}
	return 2 // unreachable: parseFlags rejects other commands
}

func parseFlags(cmd string, args []string, stderr io.Writer) (options, error) {
	var o options
	var runExpr string
	fs := flag.NewFlagSet("fsrvp-conformance "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&runExpr, "run", "", "run only the checks whose ID matches this regular expression")
	fs.BoolVar(&o.json, "json", false, "print the report (or the list) as JSON")
	switch cmd {
	case "list":
	case "run":
		fs.StringVar(&o.target, "target", "", "server address HOST:PORT (required)")
		fs.StringVar(&o.shares, "shares", "", "two or more share names on different volumes, comma-separated (required)")
		fs.StringVar(&o.sameVolume, "same-volume-share", "", "a share on the volume of the first share (enables the same-volume checks)")
		fs.DurationVar(&o.timer, "timer", 0, "the server's shortened message sequence timer (enables the timer checks)")
		fs.StringVar(&o.secondClient, "second-client", "", "a local IP address to dial from as a second client, e.g. 127.0.0.2")
		fs.StringVar(&o.shareHost, "share-host", "", `host part of the UNC names sent (default: the target's host)`)
		fs.IntVar(&o.retryLimit, "retry-limit", conformance.DefaultRetryLimit, "the server's SetContext retry limit, -1 for none")
		fs.DurationVar(&o.callTimeout, "call-timeout", time.Minute, "limit of one RPC call")
		fs.BoolVar(&o.verbose, "v", false, "print each check's log")
	default:
		return o, fmt.Errorf("unknown command %q (want run or list)", cmd)
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if runExpr != "" {
		re, err := regexp.Compile(runExpr)
		if err != nil {
			return o, fmt.Errorf("-run: %w", err)
		}
		o.runRE = re
	}
	if cmd == "run" {
		if o.target == "" {
			return o, errors.New("-target is required")
		}
		if o.shares == "" {
			return o, errors.New("-shares is required")
		}
		if o.retryLimit == 0 || o.retryLimit < -1 {
			return o, fmt.Errorf("-retry-limit %d: must be positive, or -1 for none", o.retryLimit)
		}
	}
	return o, nil
}

func (o options) buildTarget() (conformance.Target, error) {
	t, err := client.ParseTarget(o.target)
	if err != nil {
		return conformance.Target{}, err
	}
	if t.Port == "" {
		return conformance.Target{}, fmt.Errorf("-target %q: give the port (HOST:PORT)", o.target)
	}
	var shares []string
	for _, s := range strings.Split(o.shares, ",") {
		if s = strings.TrimSpace(s); s != "" {
			shares = append(shares, s)
		}
	}
	tg := conformance.Target{
		Name:            t.String(),
		Dial:            conformance.TCPDialer(o.target, client.WithTimeout(o.callTimeout)),
		Shares:          shares,
		SameVolumeShare: o.sameVolume,
		ShareHost:       o.shareHost,
		ServerTimer:     o.timer,
		RetryLimit:      o.retryLimit,
	}
	if tg.ShareHost == "" {
		tg.ShareHost = t.Host
	}
	if o.secondClient != "" {
		d, err := conformance.TCPDialerFrom(t.String(), o.secondClient, o.callTimeout)
		if err != nil {
			return tg, err
		}
		tg.SecondDial = d
	}
	return tg, tg.Validate()
}

func list(o options, w io.Writer) int {
	checks := conformance.Select(o.runRE)
	if o.json {
		type entry struct{ ID, Section, Title string }
		out := make([]entry, len(checks))
		for i, c := range checks {
			out[i] = entry{c.ID, c.Section, c.Title}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return 1
		}
		return 0
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSECTION\tTITLE")
	for _, c := range checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.ID, c.Section, c.Title)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d checks\n", len(checks))
	return 0
}

// writeTable prints one row per check, the failure (or skip reason)
// indented below it, and the summary line.
func writeTable(w io.Writer, rep conformance.Report, verbose bool) {
	idW, secW := len("ID"), len("SECTION")
	for _, r := range rep.Results {
		idW, secW = max(idW, len(r.ID)), max(secW, utf8.RuneCountInString(r.Section))
	}
	row := func(id, sec, result, took string) { // fmt pads by runes: § is one
		fmt.Fprintf(w, "%-*s  %-*s  %-6s  %s\n", idW, id, secW, sec, result, took)
	}
	row("ID", "SECTION", "RESULT", "TIME")
	for _, r := range rep.Results {
		row(r.ID, r.Section, strings.ToUpper(string(r.Status)), r.Duration.Round(time.Millisecond).String())
		switch {
		case r.Status == conformance.Fail && (r.Expected != "" || r.Observed != ""):
			fmt.Fprintf(w, "    %s: expected %s, observed %s\n", oneLine(r.Message), r.Expected, r.Observed)
		case r.Status != conformance.Pass && r.Message != "":
			fmt.Fprintf(w, "    %s\n", oneLine(r.Message))
		}
		if verbose {
			for _, l := range r.Log {
				fmt.Fprintf(w, "    log: %s\n", oneLine(l))
			}
		}
	}
	target := ""
	if rep.Target != "" {
		target = " against " + rep.Target
	}
	fmt.Fprintf(w, "%s%s in %s\n", rep.Summary(), target, rep.Duration.Round(time.Millisecond))
}

// oneLine keeps a table row on one line (panic messages carry a stack:
// only its first line is shown).
func oneLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}
