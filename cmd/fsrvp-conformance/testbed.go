package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/fsrvpd/fsrvpd/conformance/testbed"
)

const testbedUsage = `Usage:
  fsrvp-conformance testbed up [-agent fsrvpd|samba] [-backend dir|btrfs] [-samba-compat] [-registry-mirror] [-seq-timeout 1s] [-dir D] [-fsrvpd BIN]
  fsrvp-conformance testbed status [-dir D]
  fsrvp-conformance testbed down [-dir D]

up starts, as root, a private Samba smbd on 127.0.0.1:<free port> with fsrvpd
serving \PIPE\FssagentRpc behind it (ncacn_np; no TCP listener of fsrvpd), and
waits until "rpcclient -c fss_get_sup_version" works through smbd. Missing
Debian packages (samba smbclient samba-testsuite tdb-tools, btrfs-progs for
-backend btrfs) are installed with apt-get first. Everything lives under -dir
(default ` + testbed.DefaultDir + `); its testbed.json lets status and down
work from another process. Without -fsrvpd, fsrvpd is built from the module
the working directory is in (else taken from PATH).

Shares: share1, share2 and fsrvp_share (smbtorture's name), each on its own
volume (directories for -backend dir; subvolumes of a loop-mounted 1 GiB
btrfs image for -backend btrfs). Snapshot shares are share@{GUID} in the
include file fsrvpd owns. Samba's own FSRVP agent is never reached.

-agent samba serves the pipe with Samba's own agent instead of fsrvpd
(/usr/libexec/samba/rpcd_fsrvp, started on demand by samba-dcerpcd; for
comparisons): it needs -backend btrfs (the default with -agent samba), makes
each share the root of its own btrfs subvolume, and configures smbd as in
research/samba-anchor.md §2 (vfs objects = btrfs shadow_copy2, registry
shares, rpcd_fsrvp:num_workers = 1, fss: sequence timeout = -seq-timeout
rounded up to seconds). No fsrvpd runs; -samba-compat and -fsrvpd are
ignored.

up and status print KEY=value lines on stdout (sorted; progress goes to
stderr). The keys are stable:

  ADDR                 127.0.0.1
  PORT                 smbd's SMB port (pass -p PORT to rpcclient/smbclient,
                       --option='smb ports=PORT' to smbtorture)
  USER, PASSWORD       the admin account (root, in the private passdb)
  SHARES               share1,share2,fsrvp_share
  SHARE1_PATH SHARE2_PATH FSRVP_SHARE_PATH   the base shares' directories
  HIDDEN_SHARE         hidden$, a hidden share on share1's volume
  NONADMIN_USER, NONADMIN_PASSWORD   an account that is no administrator,
                       only with -nonadmin (deleted by down)
  NETBIOS_NAME         smbd's and fsrvpd's server name
  SMBCONF              smbd's smb.conf
  CLIENT_CONF          smb.conf for client tools (-s / --configfile=):
                       port set, private client dirs
  INCLUDE_FILE         fsrvpd's snapshot-share include file
  SOCKET_DIR           external_rpc_pipe:socket_dir (np/fssagentrpc = fsrvpd)
  FSRVPD_CONF FSRVPD_BIN FSRVPD_LOG FSRVPD_PID   fsrvpd's config, binary,
                       log and pid
  SMBD_PID             smbd's main pid
  STATE_DIR            fsrvpd's state directory
  ADMIN_SOCKET         fsrvpd's admin socket (fsrvp admin -socket $ADMIN_SOCKET
                       sets); only with -agent fsrvpd
  LOG_DIR              smbd's and fsrvpd's logs
  TESTBED_DIR          the -dir
  BACKEND              dir or btrfs
  AGENT                fsrvpd or samba (who serves \PIPE\FssagentRpc; with
                       samba FSRVPD_PID is 0, FSRVPD_CONF and FSRVPD_BIN are
                       empty, FSRVPD_LOG is rpcd_fsrvp's log, SOCKET_DIR is
                       Samba's ncalrpc dir)
  COMPAT               spec or samba (fsrvpd's [fsrvp] compat)
  SEQ_TIMEOUT          fsrvpd's sequence_timeout (Go duration), only when
                       shortened with -seq-timeout
  SEQ_TIMEOUT_SECONDS  the same rounded up to seconds, for smbtorture's
                       --option='fss:sequence timeout=N'

Example (Samba's own test suite against fsrvpd):

  eval "$(fsrvp-conformance testbed up -samba-compat -seq-timeout 1s)"
  smbtorture --configfile=$CLIENT_CONF --target=samba3 ncacn_np:$ADDR -U$USER%$PASSWORD \
      --option="smb ports=$PORT" --option="fss:sequence timeout=$SEQ_TIMEOUT_SECONDS" rpc.fsrvp
  fsrvp-conformance testbed down

status exits 0 when smbd (and fsrvpd) run and FSRVP answers through smbd, 1
otherwise. down stops only the processes up started (smbd with its
samba-dcerpcd/rpcd helpers, fsrvpd; by pid, checked against their command
lines), unmounts and detaches the btrfs image, deletes users added by tests
and removes -dir. Exit status 2 is a usage error.
`

func runTestbed(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, testbedUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	sub := args[0]
	fs := flag.NewFlagSet("fsrvp-conformance testbed "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, testbedUsage) }
	var o testbed.Options
	fs.StringVar(&o.Dir, "dir", testbed.DefaultDir, "the testbed's directory")
	switch sub {
	case "up":
		fs.StringVar(&o.Agent, "agent", testbed.AgentFsrvpd, "who serves the FSRVP pipe: fsrvpd or samba (Samba's rpcd_fsrvp; btrfs only)")
		fs.StringVar(&o.Backend, "backend", "", "storage backend: dir or btrfs (default dir; btrfs with -agent samba)")
		fs.BoolVar(&o.SambaCompat, "samba-compat", false, `fsrvpd's [fsrvp] compat = "samba"`)
		fs.BoolVar(&o.RegistryMirror, "registry-mirror", false, `fsrvpd's [samba] registry_mirror: srvsvc lists snapshot shares (smbtorture share_sd)`)
		fs.DurationVar(&o.SeqTimeout, "seq-timeout", 0, "fsrvpd's sequence_timeout (e.g. 1s); 0 keeps the spec's timers")
		fs.StringVar(&o.FsrvpdBinary, "fsrvpd", "", "fsrvpd binary (default: build it)")
		fs.BoolVar(&o.NonAdmin, "nonadmin", false, "add a user that is no administrator (NONADMIN_USER, NONADMIN_PASSWORD; deleted by down)")
	case "down", "status":
	default:
		fmt.Fprintf(stderr, "fsrvp-conformance testbed: unknown command %q (want up, status or down)\n", sub)
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "fsrvp-conformance testbed %s: unexpected argument %q\n", sub, fs.Arg(0))
		return 2
	}
	if o.Agent != "" && o.Agent != testbed.AgentFsrvpd && o.Agent != testbed.AgentSamba {
		fmt.Fprintf(stderr, "fsrvp-conformance testbed up: -agent %q is not fsrvpd or samba\n", o.Agent)
		return 2
	}
	if o.Backend == "dir" && o.Agent == testbed.AgentSamba {
		fmt.Fprintln(stderr, "fsrvp-conformance testbed up: -agent samba needs -backend btrfs")
		return 2
	}
	if o.Backend != "" && o.Backend != "dir" && o.Backend != "btrfs" && sub == "up" {
		fmt.Fprintf(stderr, "fsrvp-conformance testbed up: -backend %q is not dir or btrfs\n", o.Backend)
		return 2
	}
	if o.SeqTimeout < 0 {
		fmt.Fprintln(stderr, "fsrvp-conformance testbed up: -seq-timeout is negative")
		return 2
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "testbed: "+format+"\n", a...) }
	o.Log = logf
	switch sub {
	case "up":
		ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		defer cancel()
		tb, err := testbed.Up(ctx, o)
		if err != nil {
			fmt.Fprintf(stderr, "fsrvp-conformance testbed up: %v\n", err)
			return 1
		}
		printEnv(stdout, tb.Env())
		return 0
	case "status":
		tb, err := testbed.Load(o.Dir)
		if err != nil {
			fmt.Fprintf(stderr, "fsrvp-conformance testbed status: no testbed in %s: %v\n", o.Dir, err)
			return 1
		}
		printEnv(stdout, tb.Env())
		if err := tb.Status(ctx); err != nil {
			fmt.Fprintf(stderr, "fsrvp-conformance testbed status: %v\n", err)
			return 1
		}
		return 0
	default: // down
		tb, err := testbed.Load(o.Dir)
		if errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(stderr, "testbed: nothing in %s\n", o.Dir)
			return 0
		}
		if err != nil {
			fmt.Fprintf(stderr, "fsrvp-conformance testbed down: %v\n", err)
			return 1
		}
		tb.SetLog(logf)
		if err := tb.Down(); err != nil {
			fmt.Fprintf(stderr, "fsrvp-conformance testbed down: %v\n", err)
			return 1
		}
		return 0
	}
}

func printEnv(w io.Writer, env map[string]string) {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "%s=%s\n", k, shellQuote(env[k]))
	}
}

// shellQuote quotes v for eval in sh when it needs it.
func shellQuote(v string) string {
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '/' || c == '.' || c == '_' || c == '-' || c == ',' || c == ':' || c == '%' || c == '+' || c == '=') {
			return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
		}
	}
	return v
}
