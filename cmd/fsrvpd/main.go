// Command fsrvpd is the FSRVP server daemon.
//
//	fsrvpd -demo                      run the embedded default (loopback, dir backend, share1 and share2)
//	fsrvpd -config /etc/fsrvpd/fsrvpd.toml
//	fsrvpd -check-config -config FILE validate a configuration and exit
//	fsrvpd doctor [-config FILE] [-json] check and explain the environment
//
// -listen ADDR and -epm ADDR override the configured FSRVP and endpoint
// mapper addresses (-epm "" disables the mapper). Exit status: 0 after a
// clean shutdown, 1 on a runtime failure, 2 on a usage or configuration
// error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/server"
	"github.com/fsrvpd/fsrvpd/server/config"
)

const defaultConfig = "/etc/fsrvpd/fsrvpd.toml"

func main() {
	os.Exit(run(os.Args[1:]))
}

type flags struct {
	config, stateDir, listen, epm, logLevel string
	demo, check                             bool
	set                                     map[string]bool
}

func parseFlags(args []string) (flags, error) {
	var f flags
	fs := newFlagSet(&f)
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	f.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	return f, nil
}

// newFlagSet defines fsrvpd's flags into f.
func newFlagSet(f *flags) *flag.FlagSet {
	fs := flag.NewFlagSet("fsrvpd", flag.ContinueOnError)
	fs.StringVar(&f.config, "config", defaultConfig, "configuration file")
	fs.BoolVar(&f.demo, "demo", false, "run the embedded demo configuration (loopback, dir backend, shares share1 and share2)")
	fs.StringVar(&f.stateDir, "state-dir", filepath.Join(os.TempDir(), "fsrvpd-demo"), "state directory of -demo")
	fs.StringVar(&f.listen, "listen", "", "FSRVP ncacn_ip_tcp address host:port (overrides the configuration)")
	fs.StringVar(&f.epm, "epm", "", `endpoint mapper address host:port, "" to disable (overrides the configuration)`)
	fs.BoolVar(&f.check, "check-config", false, "validate the configuration and exit")
	fs.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error (overrides the configuration)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: fsrvpd [-config FILE] [flags]\n       fsrvpd doctor [-config FILE] [-json]\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), "\nSee fsrvpd(8) and fsrvpd doctor -h.\n")
	}
	return fs
}

func loadConfig(f flags) (config.Config, error) {
	var c config.Config
	if f.demo {
		if f.set["config"] {
			return c, errors.New("-demo and -config exclude each other")
		}
		dir, err := filepath.Abs(f.stateDir)
		if err != nil {
			return c, err
		}
		c = config.Demo(dir)
	} else {
		var err error
		if c, err = config.Load(f.config); err != nil {
			return c, fmt.Errorf("%s: %w", f.config, err)
		}
	}
	if f.set["listen"] {
		c.Server.Listen = []string{f.listen}
	}
	if f.set["epm"] {
		c.Server.EndpointMapper = f.epm
		c.Server.EndpointMapperOptional = false
	}
	if f.set["log-level"] {
		c.Server.LogLevel = f.logLevel
	}
	return c, c.Validate()
}

// prepareDemo creates the demo volumes and shares with a file in each, so a
// snapshot has something to show.
func prepareDemo(c config.Config) error {
	for _, s := range c.Shares {
		if err := os.MkdirAll(s.Path, 0o755); err != nil {
			return err
		}
		readme := filepath.Join(s.Path, "README.txt")
		if _, err := os.Stat(readme); errors.Is(err, os.ErrNotExist) {
			msg := fmt.Sprintf("This is the fsrvpd demo share %s.\n", s.Name)
			if err := os.WriteFile(readme, []byte(msg), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

func newLogger(c config.Config) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(os.Stderr)
	if lvl, err := logrus.ParseLevel(c.Server.LogLevel); err == nil {
		l.SetLevel(lvl)
	}
	if c.Server.LogFormat == "json" {
		l.SetFormatter(&logrus.JSONFormatter{})
	} else {
		l.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	}
	return logrus.NewEntry(l)
}

func run(args []string) int {
	if len(args) > 0 && args[0] == "doctor" {
		return runDoctor(args[1:], os.Stdout, os.Stderr)
	}
	f, err := parseFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "fsrvpd:", err)
		return 2
	}
	c, err := loadConfig(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fsrvpd: configuration:", err)
		return 2
	}
	if f.check {
		fmt.Println("configuration OK")
		return 0
	}
	log := newLogger(c)
	if f.demo {
		if err := prepareDemo(c); err != nil {
			log.WithError(err).Error("cannot prepare the demo shares")
			return 1
		}
		log.WithField("state_dir", c.Server.StateDir).Warn("demo mode: unauthenticated FSRVP on loopback")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d, err := server.Start(ctx, c, log)
	if err != nil {
		log.WithError(err).Error("cannot start")
		return 1
	}
	if err := d.Run(ctx, 30*time.Second); err != nil {
		log.WithError(err).Error("stopped on error")
		return 1
	}
	return 0
}
