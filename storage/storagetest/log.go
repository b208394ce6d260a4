package storagetest

import (
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
)

// Logger returns a debug-level logger that writes to t.Log, for backends
// under test.
func Logger(t testing.TB) *logrus.Entry {
	l := logrus.New()
	l.Out = testWriter{t}
	l.Level = logrus.DebugLevel
	l.Formatter = &logrus.TextFormatter{DisableTimestamp: true, DisableColors: true}
	return logrus.NewEntry(l)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
