// Command fsrvp is a command-line client for MS-FSRVP (File Server Remote VSS
// Protocol) servers such as fsrvpd, Samba and Windows Server: one subcommand
// per protocol operation, plus create and delete, which run the whole
// sequence a backup application runs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/fsrvpd/fsrvpd/client"
	scmpc "github.com/fsrvpd/fsrvpd/client/scmp"
	"github.com/fsrvpd/fsrvpd/server/admin"
	"github.com/sirupsen/logrus"
)

const usageHeader = `Usage: fsrvp [global flags] <command> [flags] [args]

fsrvp talks MS-FSRVP (File Server Remote VSS Protocol) to a file server.
Each command is one connection; the server keeps shadow copy sets between
connections. Shares are UNC names (\\host\share\) or bare share names, which
become \\<server host>\<name>\.

Commands:
`

const usageFooter = `
Global flags:
%s
Commands that only change server state print nothing on success.

Typical use:
  fsrvp -server nas create -json share1 share2 > set.json
  ... back up from the exposed shares ...
  fsrvp -server nas delete -from set.json

The 180-second trap: the server deletes any shadow copy set that is not
Recovered 180 s after the last call of its creation sequence, Exposed sets
included. create therefore ends with RecoveryCompleteShadowCopySet unless
-no-recovery-complete is given; then run "fsrvp recovery-complete <set>"
in time.

Authentication: -U DOMAIN\user authenticates the RPC bind (SPNEGO/NTLM,
packet integrity by default; -auth-level seal for privacy), the password
taken from env FSRVP_PASSWORD (or -U user%%password, visible to ps).
-k uses Kerberos instead (inside SPNEGO; -auth-mech kerberos for plain
auth type 16): the ticket comes from the credential cache in KRB5CCNAME,
or from -keytab or the password for -U user@REALM; the KDC from
-krb5-conf (default $KRB5_CONFIG or /etc/krb5.conf); -krb5-target names
the server's principal (default cifs/<server host>).
fsrvpd and Windows refuse FSRVP calls without it (E_ACCESSDENIED) unless
configured otherwise.

Exit status:
  0  success
  1  the server returned an FSRVP error code (printed by name, e.g.
     FSRVP_E_BAD_STATE (0x80042301)) or an SCMP/DCOM HRESULT, or fsrvpd
     refused an admin command
  2  usage error (unknown command, bad flag or argument)
  3  connection or transport error (dial, endpoint mapper, RPC fault, timeout)
  4  any other error (backup: the copy failed or was interrupted; verify:
     the backup does not match its catalog; restore: a component failed)
`

type command struct {
	name, args, summary string
	run                 func(a *app, ctx context.Context, args []string) error
}

// commands is the command table, in help order.
var commands = []command{
	{"create", "[-context ctx] [-rw] [-no-recovery-complete] <share>...", "create, expose and (by default) recovery-complete a shadow copy set", runCreate},
	{"delete", "-from <file|-> | <set> <sc>=<share>...", "delete the mappings of a set (its shadow copies go with the last one)", runDelete},
	{"backup", "[-smb host[:port]] [-pipe] [-workers n] [-incremental-from dir] [-include spec] [-exclude spec] <dest> <share>...", "back up shares through a shadow copy set into dest (data, documents, catalog)", runBackup},
	{"verify", "<backup dir>", "check a backup against its catalog (sizes and SHA-256)", runVerify},
	{"restore", "[-smb host[:port]] [-pipe] [-to dir] [-map-share b=t] [-include spec] [-exclude spec] [-components-only] <backup dir>", "restore a backup, each writer component with its restore method", runRestore},
	{"version", "", "GetSupportedVersion", runVersion},
	{"set-context", "<backup|file_share_backup|nas_rollback|app_rollback|number> [ro|rw]", "SetContext", runSetContext},
	{"start", "[-client-id uuid]", "StartShadowCopySet; prints the set id", runStart},
	{"add", "[-client-id uuid] <set> <share>", "AddToShadowCopySet; prints the shadow copy id", runAdd},
	{"prepare", "[-wait 30m] <set>", "PrepareShadowCopySet", runPrepare},
	{"commit", "[-wait 1m] <set>", "CommitShadowCopySet", runCommit},
	{"expose", "[-wait 30m] <set>", "ExposeShadowCopySet", runExpose},
	{"recovery-complete", "<set>", "RecoveryCompleteShadowCopySet", runRecoveryComplete},
	{"abort", "<set>", "AbortShadowCopySet", runAbort},
	{"is-path-supported", "<share>", "IsPathSupported", runIsPathSupported},
	{"is-path-shadow-copied", "<share>", "IsPathShadowCopied", runIsPathShadowCopied},
	{"get-mapping", "[-level 1] <set> <sc> <share>", "GetShareMapping", runGetMapping},
	{"delete-mapping", "<set> <sc> <share>", "DeleteShareMapping", runDeleteMapping},
	{"nthash", "", "read a password from stdin, print its NT hash (for fsrvpd's [[auth.account]] nt_hash)", runNTHash},
	{"scmp", "[-port 135] <volumes|snapshots|diff-areas|diff-volumes|add|resize> ...", "MS-SCMP over DCOM: volumes, shadow copies, storage associations (fsrvp scmp -h)", runSCMP},
	{"admin", "[-socket path] <sets|show|abort|delete|orphans|gc|prune> ...", "administer the local fsrvpd (fsrvp admin -h)", runAdmin},
}

// dialFunc connects to an FSRVP server; tests replace it.
type dialFunc func(ctx context.Context, target string, opts ...client.Option) (*client.Client, error)

type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	dial           dialFunc
	getenv         func(string) string

	// global flags
	server  string
	epm     string
	json    bool
	timeout time.Duration
	ndr64   bool
	verbose bool

	// RPC authentication
	authUser  string // -U DOMAIN\user[%password]
	authLevel string
	authMech  string
	pwNTHash  bool
	kerberos  bool         // -k
	krb5Conf  string       // -krb5-conf
	keytab    string       // -keytab
	krbTarget string       // -krb5-target
	auth      *client.Auth // built by dispatch; nil: unauthenticated

	target client.Target
	cmd    command // the command being run
}

// usageError is a mistake on the command line (exit status 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// exitCode maps an error to the exit status documented in the help.
func exitCode(err error) int {
	var ue *usageError
	var ae *admin.Error
	var hr scmpc.HRESULT
	_, isFSRVP := client.Code(err)
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return 2
	case isFSRVP, errors.As(err, &ae), errors.As(err, &hr):
		return 1
	case client.IsTransport(err):
		return 3
	default:
		return 4
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr, client.Dial)
	stop()
	os.Exit(code)
}

// run is the whole program minus the process: it returns the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer, dial dialFunc) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, dial: dial, getenv: getenv}
	fs := flag.NewFlagSet("fsrvp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defServer := getenv("FSRVP_SERVER")
	if defServer == "" {
		defServer = "127.0.0.1"
	}
	fs.StringVar(&a.server, "server", defServer, "server: `host`, host:port or ncacn_ip_tcp string binding (env FSRVP_SERVER); without a port, the endpoint mapper tells it")
	fs.StringVar(&a.epm, "epm", "", "endpoint mapper `address` (host:port, host, or port on the server host) used when -server has no port (default <server host>:135)")
	fs.BoolVar(&a.json, "json", false, "print results as JSON")
	fs.DurationVar(&a.timeout, "timeout", client.DefaultTimeout, "limit for each RPC call")
	fs.BoolVar(&a.ndr64, "ndr64", false, "use the NDR64 transfer syntax")
	fs.BoolVar(&a.verbose, "v", false, "log each RPC call to stderr")
	fs.StringVar(&a.authUser, "U", "", "authenticate the RPC bind as `DOMAIN\\user[%password]` (env FSRVP_USER); better give the password in env FSRVP_PASSWORD than on the command line")
	fs.StringVar(&a.authLevel, "auth-level", "sign", "RPC authentication `level` with -U: sign (packet integrity), seal (privacy) or connect")
	fs.StringVar(&a.authMech, "auth-mech", "spnego", "RPC security `provider` with -U or -k: spnego, ntlm or (with -k) kerberos")
	fs.BoolVar(&a.kerberos, "k", false, "authenticate with Kerberos: a ticket from KRB5CCNAME, -keytab, or -U user@REALM's password")
	fs.StringVar(&a.krb5Conf, "krb5-conf", "", "krb5.conf `path` naming the KDC (default $KRB5_CONFIG or /etc/krb5.conf)")
	fs.StringVar(&a.keytab, "keytab", "", "with -k: keytab `path` holding -U's keys")
	fs.StringVar(&a.krbTarget, "krb5-target", "", "with -k: the server's service `principal` (default cifs/<server host>)")
	fs.BoolVar(&a.pwNTHash, "pw-nt-hash", false, "the password is an NT hash (32 hex digits), as with Samba's --pw-nt-hash")
	// Report flag errors once, our way, instead of through package flag.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}

	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printUsage(fs, stdout)
		return 0
	case err != nil:
		err = usagef("%v", err)
	default:
		err = a.dispatch(ctx, fs.Args())
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "fsrvp: %v\n", err)
		var ue *usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(stderr, "Run 'fsrvp -h' for usage.")
		}
	}
	return exitCode(err)
}

func printUsage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprint(w, usageHeader)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-22s %s\n", c.name, c.summary)
		if c.args != "" {
			fmt.Fprintf(w, "  %-22s   fsrvp %s %s\n", "", c.name, c.args)
		}
	}
	var b strings.Builder
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	fmt.Fprintf(w, usageFooter, b.String())
}

func (a *app) dispatch(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("no command given")
	}
	if a.timeout <= 0 {
		return usagef("-timeout must be positive")
	}
	t, err := client.ParseTarget(a.server)
	if err != nil {
		return usagef("-server: %v", err)
	}
	a.target = t
	if err := a.parseAuth(); err != nil {
		return err
	}
	for _, c := range commands {
		if c.name == args[0] {
			a.cmd = c
			return c.run(a, ctx, args[1:])
		}
	}
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.name
	}
	sort.Strings(names)
	return usagef("unknown command %q (commands: %s)", args[0], strings.Join(names, ", "))
}

// connect dials the server with the global flags.
func (a *app) connect(ctx context.Context) (*client.Client, error) {
	return a.dial(ctx, a.server, a.clientOptions()...)
}

// clientOptions are the client options the global flags ask for.
func (a *app) clientOptions() []client.Option {
	opts := []client.Option{client.WithTimeout(a.timeout), client.WithShareHost(a.target.Host)}
	if a.epm != "" {
		opts = append(opts, client.WithEndpointMapper(a.epm))
	}
	if a.ndr64 {
		opts = append(opts, client.WithNDR64())
	}
	if a.verbose {
		l := logrus.New()
		l.SetOutput(a.stderr)
		l.SetLevel(logrus.DebugLevel)
		opts = append(opts, client.WithLogger(logrus.NewEntry(l)))
	}
	if a.auth != nil {
		opts = append(opts, client.WithAuth(*a.auth))
	}
	return opts
}

// parseAuth turns -U, -auth-level, -auth-mech, -pw-nt-hash and the
// FSRVP_PASSWORD environment variable into a.auth. Other security
// providers (Kerberos from a ccache or keytab) add their flags here and
// fill client.Auth.Options.
func (a *app) parseAuth() error {
	var level string
	switch a.authLevel {
	case "sign", "integrity":
		level = client.LevelIntegrity
	case "seal", "privacy":
		level = client.LevelPrivacy
	case "connect":
		level = client.LevelConnect
	default:
		return usagef("-auth-level %q: want sign, seal or connect", a.authLevel)
	}
	switch a.authMech {
	case client.MechanismSPNEGO, client.MechanismNTLM:
	case client.MechanismKerberos:
		if !a.kerberos {
			return usagef("-auth-mech kerberos needs -k")
		}
	default:
		return usagef("-auth-mech %q: want spnego, ntlm or kerberos", a.authMech)
	}
	if a.authUser == "" {
		a.authUser = a.getenv("FSRVP_USER")
	}
	if a.kerberos {
		if a.authMech == client.MechanismNTLM {
			return usagef("-k with -auth-mech ntlm: want spnego or kerberos")
		}
		if a.pwNTHash {
			return usagef("-k takes no NT hash")
		}
		target := a.krbTarget
		if target == "" {
			if a.target.Host == "" {
				return usagef("-k: give -krb5-target (the server's principal)")
			}
			target = "cifs/" + a.target.Host
		}
		user, secret, hasSecret := strings.Cut(a.authUser, "%")
		if !hasSecret && user != "" && a.keytab == "" {
			secret = a.getenv("FSRVP_PASSWORD")
		}
		k := &client.Kerberos{Krb5Conf: a.krb5Conf, Keytab: a.keytab, Target: target}
		if k.Krb5Conf == "" {
			k.Krb5Conf = a.getenv("KRB5_CONFIG")
		}
		if secret == "" && a.keytab == "" {
			cc := a.getenv("KRB5CCNAME")
			if cc == "" {
				return usagef("-k: no credential cache (KRB5CCNAME), -keytab or password")
			}
			if rest, ok := strings.CutPrefix(cc, "FILE:"); ok {
				cc = rest
			} else if strings.Contains(cc, ":") {
				return usagef("-k: KRB5CCNAME %q is not a FILE: cache", cc)
			}
			k.CCache = cc
		}
		a.auth = &client.Auth{User: user, Password: secret, Level: level, Mechanism: a.authMech, Kerberos: k}
		return nil
	}
	if a.authUser == "" {
		return nil
	}
	user, secret, hasSecret := strings.Cut(a.authUser, "%")
	if !hasSecret {
		secret = a.getenv("FSRVP_PASSWORD")
	}
	if user == "" {
		return usagef("-U: no user name")
	}
	au := &client.Auth{User: user, Level: level, Mechanism: a.authMech}
	if a.pwNTHash {
		if len(secret) != 32 || strings.Trim(strings.ToLower(secret), "0123456789abcdef") != "" {
			return usagef("-pw-nt-hash: the password must be 32 hexadecimal digits")
		}
		au.NTHash = secret
	} else {
		au.Password = secret
	}
	a.auth = au
	return nil
}

// share expands a share argument like the client does.
func (a *app) share(s string) string { return client.ResolveShare(a.target.Host, s) }
