// Command fsrvp-conformance runs the MS-FSRVP conformance checks of package
// conformance against a server and prints what passed and what did not.
//
//	fsrvp-conformance run -target 127.0.0.1:41345 -shares share1,share2 \
//	    [-same-volume-share share3] [-timer 1s] [-second-client 127.0.0.2] \
//	    [-share-host HOST] [-retry-limit 5] [-run REGEX] [-json] [-v]
//	fsrvp-conformance run -target ncacn_np:HOST[FssagentRpc] -smb-port PORT \
//	    -user U -password P -shares share1,share2 [flags]
//	fsrvp-conformance run -testbed /tmp/fsrvpd-testbed [-smbtorture] \
//	    [-junit FILE] [-markdown FILE]
//	fsrvp-conformance smbtorture -testbed DIR [-junit FILE] [-markdown FILE]
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
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/fsrvpd/fsrvpd/client"
	"github.com/fsrvpd/fsrvpd/conformance"
	"github.com/fsrvpd/fsrvpd/conformance/testbed"
)

const usage = `Usage:
  fsrvp-conformance run -target HOST:PORT -shares SHARE1,SHARE2 [flags]
  fsrvp-conformance run -target ncacn_np:HOST[FssagentRpc] -smb-port PORT -user U -password P -shares S1,S2 [flags]
  fsrvp-conformance run -testbed DIR [-smbtorture] [flags]
  fsrvp-conformance smbtorture -testbed DIR | -target ncacn_np:HOST -smb-port PORT -user U -password P [flags]
  fsrvp-conformance list [-run REGEX] [-json]
  fsrvp-conformance testbed up|status|down [flags]   (testbed help: details)

run checks an FSRVP server against MS-FSRVP: return codes, check order,
state machine, share mappings, the message sequence timer, the exposed
shares over SMB (point in time, read-only or writable, security
descriptor, hidden shares, removal), access control and robustness.
Every check cleans up what it creates. Nobody else may use the server
meanwhile. Checks whose needs are not given (-timer, -second-client,
-nonadmin-user, -hidden-share, -canary, SMB access) are skipped with the
reason.

Targets: HOST:PORT or ncacn_ip_tcp:HOST[PORT] dial FSRVP over TCP;
ncacn_np:HOST[PIPE] opens the pipe (default FssagentRpc) through the SMB
server on HOST:-smb-port as -user/-password (NTLM). -testbed DIR takes
target, port, account, shares and timer from DIR/testbed.json (written by
"fsrvp-conformance testbed up"); explicit flags override them.

smbtorture runs Samba's "smbtorture rpc.fsrvp" (one process) against the
same kind of target and reports its tests as checks smbtorture/<test>;
run -smbtorture adds them to the checks' report.

Output: a table on stdout, or JSON (-json); -junit FILE and -markdown FILE
write JUnit XML and a Markdown report as well.

Exit status: 0 nothing failed, 1 a check failed, 2 usage error.
`

// runChecks is conformance.Run, runTorture conformance.RunSmbtorture;
// tests replace them.
var (
	runChecks  = conformance.Run
	runTorture = conformance.RunSmbtorture
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the flags of run, smbtorture and list.
type options struct {
	target, shares, sameVolume, secondClient, shareHost string
	testbedDir, user, password, clientConf, tortureBin  string
	nonAdminUser, nonAdminPassword, hiddenShare, canary string
	rpcUser, rpcPassword                                string
	smbPort                                             int
	timer, callTimeout                                  time.Duration
	retryLimit                                          int
	runRE                                               *regexp.Regexp
	json, verbose, smbtorture                           bool
	junit, markdown                                     string
	set                                                 map[string]bool // flags given
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
	var rep conformance.Report
	switch cmd {
	case "list":
		return list(opts, stdout)
	case "run":
		env, err := opts.testbedEnv()
		if err != nil {
			fmt.Fprintf(stderr, "fsrvp-conformance: %v\n", err)
			return 2
		}
		tg, err := opts.buildTarget(env)
		if err != nil {
			fmt.Fprintf(stderr, "fsrvp-conformance: %v\n", err)
			return 2
		}
		var tc conformance.TortureConfig
		if opts.smbtorture {
			if tc, err = opts.tortureConfig(env); err != nil {
				fmt.Fprintf(stderr, "fsrvp-conformance: %v\n", err)
				return 2
			}
		}
		rep = runChecks(ctx, tg, opts.runRE)
		if opts.smbtorture {
			trep, out, err := runTorture(ctx, tc)
			if err != nil {
				fmt.Fprintf(stderr, "fsrvp-conformance: %v\n%s", err, out)
				trep = conformance.FoldTorture(nil, conformance.TortureTests)
			}
			rep.Merge(trep)
		}
	case "smbtorture":
		env, err := opts.testbedEnv()
		if err != nil {
			fmt.Fprintf(stderr, "fsrvp-conformance: %v\n", err)
			return 2
		}
		tc, err := opts.tortureConfig(env)
		if err != nil {
			fmt.Fprintf(stderr, "fsrvp-conformance: %v\n", err)
			return 2
		}
		var out string
		rep, out, err = runTorture(ctx, tc)
		if err != nil {
			fmt.Fprintf(stderr, "fsrvp-conformance: %v\n%s", err, out)
			return 1
		}
		if opts.verbose {
			fmt.Fprint(stderr, out)
		}
	default:
		return 2 // unreachable: parseFlags rejects other commands
	}
	code := 0
	if !rep.OK() {
		code = 1
	}
	if err := writeReports(rep, opts, stdout); err != nil {
		fmt.Fprintf(stderr, "fsrvp-conformance: %v\n", err)
		code = 1
	}
	return code
}

// writeReports prints the table or JSON and writes the -junit and
// -markdown files.
func writeReports(rep conformance.Report, opts options, stdout io.Writer) error {
	if opts.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		writeTable(stdout, rep, opts.verbose)
	}
	var errs []error
	for _, f := range []struct {
		path  string
		write func(io.Writer, conformance.Report) error
	}{{opts.junit, conformance.WriteJUnit}, {opts.markdown, conformance.WriteMarkdown}} {
		if f.path == "" {
			continue
		}
		var buf bytes.Buffer
		if err := f.write(&buf, rep); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.WriteFile(f.path, buf.Bytes(), 0o644); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func parseFlags(cmd string, args []string, stderr io.Writer) (options, error) {
	var o options
	var runExpr string
	fs := flag.NewFlagSet("fsrvp-conformance "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&o.json, "json", false, "print the report (or the list) as JSON")
	if cmd == "list" || cmd == "run" {
		fs.StringVar(&runExpr, "run", "", "run only the checks whose ID matches this regular expression")
	}
	connection := func() {
		fs.StringVar(&o.testbedDir, "testbed", "", "take target, port, account, shares and timer from DIR/testbed.json (fsrvp-conformance testbed up)")
		fs.IntVar(&o.smbPort, "smb-port", 0, "SMB port of an ncacn_np target, or of the SMB server of a TCP target for the exposure checks (default 445)")
		fs.StringVar(&o.user, "user", "", "user of an ncacn_np target, or the SMB user of a TCP target (enables the exposure checks; DOMAIN\\user works)")
		fs.StringVar(&o.password, "password", "", "password of -user")
		fs.DurationVar(&o.timer, "timer", 0, "the server's shortened message sequence timer (enables the timer checks)")
		fs.StringVar(&o.junit, "junit", "", "also write the report as JUnit XML to this file")
		fs.StringVar(&o.markdown, "markdown", "", "also write the report as Markdown to this file")
		fs.BoolVar(&o.verbose, "v", false, "print each check's log (smbtorture: its output, on stderr)")
		fs.StringVar(&o.clientConf, "client-conf", "", "smb.conf for smbtorture (--configfile; default: the testbed's CLIENT_CONF)")
		fs.StringVar(&o.tortureBin, "smbtorture-bin", "smbtorture", "the smbtorture to run")
	}
	switch cmd {
	case "list":
	case "run":
		connection()
		fs.StringVar(&o.target, "target", "", "server: HOST:PORT, ncacn_ip_tcp:HOST[PORT] or ncacn_np:HOST[PIPE] (required without -testbed)")
		fs.StringVar(&o.shares, "shares", "", "two or more share names on different volumes, comma-separated (required without -testbed)")
		fs.StringVar(&o.sameVolume, "same-volume-share", "", "a share on the volume of the first share (enables the same-volume checks)")
		fs.StringVar(&o.secondClient, "second-client", "", "a local IP address to dial from as a second client, e.g. 127.0.0.2")
		fs.StringVar(&o.nonAdminUser, "nonadmin-user", "", "an account that is no administrator (the SMB user of ncacn_np targets, the RPC user of TCP targets with -rpc-user): enables security/non-admin-denied")
		fs.StringVar(&o.nonAdminPassword, "nonadmin-password", "", "password of -nonadmin-user")
		fs.StringVar(&o.rpcUser, "rpc-user", "", "authenticate the RPC binds of a TCP target (NTLM, PKT_INTEGRITY) as this administrator (DOMAIN\\user works): enables security/auth-levels and security/unauthenticated-denied")
		fs.StringVar(&o.rpcPassword, "rpc-password", "", "password of -rpc-user")
		fs.StringVar(&o.hiddenShare, "hidden-share", "", "a share whose name ends in '$' (enables expose/hidden-share)")
		fs.StringVar(&o.canary, "canary", "", "an IP address the server could reach and this machine can listen on, ports 445/139/135 (enables security/no-contact-named-host; default with a 127.0.0.1 testbed: a random 127.x address)")
		fs.StringVar(&o.shareHost, "share-host", "", `host part of the UNC names sent (default: the target's host)`)
		fs.IntVar(&o.retryLimit, "retry-limit", conformance.DefaultRetryLimit, "the server's SetContext retry limit, -1 for none")
		fs.DurationVar(&o.callTimeout, "call-timeout", time.Minute, "limit of one RPC call")
		fs.BoolVar(&o.smbtorture, "smbtorture", false, "also run smbtorture rpc.fsrvp (ncacn_np targets) and report its tests")
	case "smbtorture":
		connection()
		fs.StringVar(&o.target, "target", "", "the SMB server: ncacn_np:HOST (required without -testbed)")
	default:
		return o, fmt.Errorf("unknown command %q (want run, smbtorture or list)", cmd)
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	if runExpr != "" {
		re, err := regexp.Compile(runExpr)
		if err != nil {
			return o, fmt.Errorf("-run: %w", err)
		}
		o.runRE = re
	}
	if o.smbPort < 0 || o.smbPort > 65535 {
		return o, fmt.Errorf("-smb-port %d is not a port", o.smbPort)
	}
	switch cmd {
	case "run":
		if o.testbedDir == "" && o.target == "" {
			return o, errors.New("-target (or -testbed) is required")
		}
		if o.testbedDir == "" && o.shares == "" {
			return o, errors.New("-shares (or -testbed) is required")
		}
		if o.retryLimit == 0 || o.retryLimit < -1 {
			return o, fmt.Errorf("-retry-limit %d: must be positive, or -1 for none", o.retryLimit)
		}
	case "smbtorture":
		if o.testbedDir == "" && o.target == "" {
			return o, errors.New("-target ncacn_np:HOST (or -testbed) is required")
		}
	}
	return o, nil
}

// testbedEnv is the KEY=value description of -testbed's testbed (nil
// without -testbed).
func (o options) testbedEnv() (map[string]string, error) {
	if o.testbedDir == "" {
		return nil, nil
	}
	tb, err := testbed.Load(o.testbedDir)
	if err != nil {
		return nil, fmt.Errorf("-testbed %s: %w (fsrvp-conformance testbed up -dir %[1]s)", o.testbedDir, err)
	}
	return tb.Env(), nil
}

// npEnv is the testbed-style description of an explicit ncacn_np target
// (overriding env's entries with the flags given), or ok false when the
// target is not ncacn_np.
func (o options) npEnv(env map[string]string) (out map[string]string, pipe string, ok bool, err error) {
	out = map[string]string{}
	for k, v := range env {
		out[k] = v
	}
	pipe = conformance.DefaultPipe
	if o.target != "" {
		host, p, isNP, err := conformance.ParseNPTarget(o.target)
		if err != nil || !isNP {
			return nil, "", false, err
		}
		out["ADDR"], pipe = host, p
		if !o.set["smb-port"] {
			out["PORT"] = "445"
		}
	}
	if o.set["smb-port"] {
		out["PORT"] = strconv.Itoa(o.smbPort)
	}
	if o.set["user"] {
		out["USER"] = o.user
	}
	if o.set["password"] {
		out["PASSWORD"] = o.password
	}
	if o.set["timer"] {
		out["SEQ_TIMEOUT"] = ""
		if o.timer > 0 {
			out["SEQ_TIMEOUT"] = o.timer.String()
		}
	}
	if o.set["client-conf"] {
		out["CLIENT_CONF"] = o.clientConf
	}
	if o.set["shares"] {
		out["SHARES"] = o.shares
	}
	if o.set["nonadmin-user"] {
		out["NONADMIN_USER"], out["NONADMIN_PASSWORD"] = o.nonAdminUser, o.nonAdminPassword
	}
	if o.set["hidden-share"] {
		out["HIDDEN_SHARE"] = o.hiddenShare
	}
	if out["USER"] == "" {
		return nil, "", true, errors.New("an ncacn_np target needs -user and -password")
	}
	return out, pipe, true, nil
}

func (o options) buildTarget(env map[string]string) (conformance.Target, error) {
	npEnv, pipe, isNP, err := o.npEnv(env)
	if err != nil {
		return conformance.Target{}, err
	}
	var tg conformance.Target
	if isNP {
		cfg := conformance.NPConfig{Pipe: pipe, Timeout: o.callTimeout}
		tg, err = conformance.TestbedTarget(npEnv, cfg)
		if err != nil {
			return tg, err
		}
		if o.secondClient != "" {
			port, _ := strconv.Atoi(npEnv["PORT"])
			cfg.LocalAddr = o.secondClient
			tg.SecondDial = conformance.NPDialer(npEnv["ADDR"], port, npEnv["USER"], npEnv["PASSWORD"], cfg)
		}
	} else {
		if o.nonAdminUser != "" && o.rpcUser == "" {
			return tg, errors.New("-nonadmin-user needs -rpc-user with a TCP target (unauthenticated binds carry no identity)")
		}
		t, err := client.ParseTarget(o.target)
		if err != nil {
			return tg, err
		}
		if t.Port == "" {
			return tg, fmt.Errorf("-target %q: give the port (HOST:PORT)", o.target)
		}
		tg = conformance.Target{
			Name:        t.String(),
			Dial:        conformance.TCPDialer(o.target, client.WithTimeout(o.callTimeout)),
			ShareHost:   t.Host,
			ServerTimer: o.timer,
		}
		if o.rpcUser != "" {
			as := func(user, pw, level string) conformance.Dialer {
				return conformance.TCPDialer(o.target, client.WithTimeout(o.callTimeout),
					client.WithAuth(client.Auth{User: user, Password: pw, Level: level}))
			}
			tg.UnauthDial = tg.Dial
			tg.Dial = as(o.rpcUser, o.rpcPassword, client.LevelIntegrity)
			tg.AuthDial = func(level string) conformance.Dialer { return as(o.rpcUser, o.rpcPassword, level) }
			if o.nonAdminUser != "" {
				tg.NonAdminDial = as(o.nonAdminUser, o.nonAdminPassword, client.LevelIntegrity)
			}
			if o.secondClient != "" {
				return tg, errors.New("-second-client binds without authentication: not with -rpc-user")
			}
		}
		if o.secondClient != "" {
			d, err := conformance.TCPDialerFrom(t.String(), o.secondClient, o.callTimeout)
			if err != nil {
				return tg, err
			}
			tg.SecondDial = d
		}
		if o.user != "" {
			port := o.smbPort
			if port == 0 {
				port = 445
			}
			tg.Files = conformance.SMBFiles(t.Host, port, o.user, o.password, o.callTimeout)
		}
		tg.HiddenShare = o.hiddenShare
	}
	if o.set["canary"] {
		tg.Canary = o.canary
	}
	if o.set["shares"] || !isNP {
		tg.Shares = nil
		for _, s := range strings.Split(o.shares, ",") {
			if s = strings.TrimSpace(s); s != "" {
				tg.Shares = append(tg.Shares, s)
			}
		}
	}
	tg.SameVolumeShare = o.sameVolume
	tg.RetryLimit = o.retryLimit
	if o.shareHost != "" {
		tg.ShareHost = o.shareHost
	}
	return tg, tg.Validate()
}

// tortureConfig is how to run smbtorture against the ncacn_np target.
func (o options) tortureConfig(env map[string]string) (conformance.TortureConfig, error) {
	npEnv, _, isNP, err := o.npEnv(env)
	if err != nil {
		return conformance.TortureConfig{}, err
	}
	if !isNP {
		return conformance.TortureConfig{}, fmt.Errorf("smbtorture needs an ncacn_np target, not %q", o.target)
	}
	tc, err := conformance.TortureTarget(npEnv)
	tc.Binary = o.tortureBin
	return tc, err
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
