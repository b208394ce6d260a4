package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/fsrvpd/fsrvpd/server/config"
	"github.com/fsrvpd/fsrvpd/server/doctor"
)

const doctorUsage = `Usage: fsrvpd doctor [-config FILE] [-json]

Checks the environment fsrvpd runs in and explains each finding: the
configuration, permissions, smb.conf, the pipe arrangement and who listens
on the pipe's socket, samba-dcerpcd, whether every share is on a volume the
backend can snapshot, free space, the clock and the TCP endpoints.
Read-only: it changes nothing.

Exit status: 0 all checks passed, 1 warnings only, 2 a check failed (or a
usage error).

Flags:
`

// runDoctor is `fsrvpd doctor`.
func runDoctor(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fsrvpd doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", defaultConfig, "configuration file to check")
	asJSON := fs.Bool("json", false, "print the findings as JSON")
	fs.Usage = func() {
		fmt.Fprint(stderr, doctorUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "fsrvpd doctor: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	env := &doctor.Env{ConfigPath: *cfgPath}
	if env.Config, env.ConfigErr = config.Load(*cfgPath); env.ConfigErr != nil {
		env.Config = config.Default()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep := doctor.Run(ctx, env)
	var err error
	if *asJSON {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "fsrvpd doctor:", err)
		return 2
	}
	return rep.ExitCode()
}
