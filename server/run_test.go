package server

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/fsrvpd/fsrvpd/server/config"
)

// runDaemon starts the daemon for c, logging through lg (nil: nowhere, or
// stderr with -v), and runs it until the test ends.
func runDaemon(tb testing.TB, c config.Config, lg *logrus.Logger) *Daemon {
	tb.Helper()
	if lg == nil {
		lg = logrus.New()
		lg.SetOutput(io.Discard)
		if testing.Verbose() {
			lg.SetOutput(os.Stderr)
		}
	}
	d, err := Start(context.Background(), c, logrus.NewEntry(lg))
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx, 5*time.Second); close(done) }()
	tb.Cleanup(func() { cancel(); <-done })
	return d
}

// loggerTo returns a logger writing to w, as JSON when json is set.
func loggerTo(w io.Writer, json bool) *logrus.Logger {
	lg := logrus.New()
	lg.SetOutput(w)
	if json {
		lg.SetFormatter(&logrus.JSONFormatter{})
	}
	return lg
}

// makeShares creates the directories of c's shares, each with a file "f"
// holding "data" when withFile is set.
func makeShares(tb testing.TB, c config.Config, withFile bool) {
	tb.Helper()
	for _, s := range c.Shares {
		if err := os.MkdirAll(s.Path, 0o755); err != nil {
			tb.Fatal(err)
		}
		if withFile {
			if err := os.WriteFile(filepath.Join(s.Path, "f"), []byte("data"), 0o644); err != nil {
				tb.Fatal(err)
			}
		}
	}
}
