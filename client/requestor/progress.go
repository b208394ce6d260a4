package requestor

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Progress shows files, bytes, rate and ETA of a running backup, restore or
// verify on one status line, redrawn every Interval. A nil *Progress shows
// nothing; NewProgress returns nil when w is not a terminal, so output to a
// file or a pipe stays quiet.
type Progress struct {
	w        io.Writer
	interval time.Duration

	files, totalFiles atomic.Int64
	bytes, totalBytes atomic.Int64
	begin             time.Time

	mu   sync.Mutex
	done chan struct{}
	wg   sync.WaitGroup
}

// NewProgress returns a Progress writing to f if f is a terminal, else nil.
func NewProgress(f *os.File) *Progress {
	if f == nil || !IsTerminal(f) {
		return nil
	}
	return NewProgressTo(f, 500*time.Millisecond)
}

// NewProgressTo returns a Progress that always writes to w.
func NewProgressTo(w io.Writer, interval time.Duration) *Progress {
	return &Progress{w: w, interval: interval}
}

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func (p *Progress) start(files int, bytes int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.files.Store(0)
	p.bytes.Store(0)
	p.totalFiles.Store(int64(files))
	p.totalBytes.Store(bytes)
	p.begin = time.Now()
	p.done = make(chan struct{})
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(p.interval)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-t.C:
				p.draw(false)
			}
		}
	}()
}

func (p *Progress) stop() {
	if p == nil || p.done == nil {
		return
	}
	close(p.done)
	p.wg.Wait()
	p.done = nil
	p.draw(true)
}

func (p *Progress) fileDone() {
	if p != nil {
		p.files.Add(1)
	}
}

func (p *Progress) add(n int64) {
	if p != nil {
		p.bytes.Add(n)
	}
}

// reader counts what is read from r.
func (p *Progress) reader(r io.Reader) io.Reader {
	if p == nil {
		return r
	}
	return &countingReader{r: r, p: p}
}

type countingReader struct {
	r io.Reader
	p *Progress
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.add(int64(n))
	return n, err
}

// Line formats the status line: "12/340 files  1.2 GiB/3.4 GiB  45.0 MiB/s  ETA 0:32".
func (p *Progress) Line() string {
	files, bytes := p.files.Load(), p.bytes.Load()
	el := time.Since(p.begin).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(bytes) / el
	}
	eta := "--:--"
	if rest := p.totalBytes.Load() - bytes; rate > 0 && rest >= 0 {
		eta = clock(time.Duration(float64(rest) / rate * float64(time.Second)))
	}
	return fmt.Sprintf("%d/%d files  %s/%s  %s/s  ETA %s", files, p.totalFiles.Load(),
		HumanBytes(bytes), HumanBytes(p.totalBytes.Load()), HumanBytes(int64(rate)), eta)
}

func (p *Progress) draw(final bool) {
	line := p.Line()
	if final {
		fmt.Fprintf(p.w, "\r\033[K%s  in %s\n", line, time.Since(p.begin).Round(time.Millisecond))
		return
	}
	fmt.Fprintf(p.w, "\r\033[K%s", line)
}

func clock(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// HumanBytes prints n in binary units: "1.5 MiB".
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
