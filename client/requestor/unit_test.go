package requestor

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestNames(t *testing.T) {
	cases := []struct{ unc, share, base string }{
		{`\\FILER\share1@{8d1a6a2c-8d5e-4e0b-9d6b-0f4e6b1c2d3e}\`, "share1@{8d1a6a2c-8d5e-4e0b-9d6b-0f4e6b1c2d3e}", "share1"},
		{`\\h\plain`, "plain", "plain"},
		{`//h/a@b@{x}`, "a@b@{x}", "a@b"},
	}
	for _, c := range cases {
		if got := shareName(c.unc); got != c.share {
			t.Errorf("shareName(%q) = %q, want %q", c.unc, got, c.share)
		}
		if got := baseName(shareName(c.unc)); got != c.base {
			t.Errorf("baseName(%q) = %q, want %q", c.share, got, c.base)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 5 << 30: "5.0 GiB"} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestProgress(t *testing.T) {
	var b bytes.Buffer
	p := NewProgressTo(&b, time.Hour)
	p.start(4, 4096)
	p.add(1024)
	p.fileDone()
	line := p.Line()
	if !strings.HasPrefix(line, "1/4 files  1.0 KiB/4.0 KiB  ") || !strings.Contains(line, "ETA ") {
		t.Errorf("line: %q", line)
	}
	p.stop()
	if !strings.Contains(b.String(), "1/4 files") || !strings.HasSuffix(b.String(), "\n") {
		t.Errorf("final line: %q", b.String())
	}
	var nilP *Progress // quiet: every method is a no-op
	nilP.start(1, 1)
	nilP.add(1)
	nilP.fileDone()
	nilP.stop()
	if r := nilP.reader(strings.NewReader("x")); r == nil {
		t.Error("nil progress reader")
	}
	if clock(3725*time.Second) != "1:02:05" || clock(65*time.Second) != "1:05" {
		t.Error("clock")
	}
}
