package requestor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/hirochachacha/go-smb2"
)

// Filter decides whether a file or directory of a share is backed up; rel
// is the path below the share root with forward slashes. Returning false
// for a directory skips everything below it.
type Filter func(share, rel string, dir bool) bool

// source is one exposed snapshot share to copy from.
type source struct {
	name    string // base share name: the directory below data/
	exposed string // share@{GUID}
	pool    *pool
}

type copyJob struct {
	src   *source
	entry Entry
}

// copier copies the files of one or more snapshot shares into
// dest/data/<share>/ with a pool of workers, hashing as it goes.
type copier struct {
	smb      SMB
	dest     string
	workers  int
	filter   Filter
	prev     map[string]Entry // incremental: share + "/" + path → entry of the previous backup
	prevDir  string
	progress *Progress

	mu      sync.Mutex
	entries []Entry
	copied  int
	linked  int
	bytes   int64
}

func entryKey(share, rel string) string { return share + "\x00" + rel }

// list walks the shares (one SMB session each) and returns the directories
// and the files to copy, in walk order.
func (c *copier) list(ctx context.Context, srcs []*source) (dirs []Entry, jobs []copyJob, err error) {
	for _, s := range srcs {
		m, err := s.pool.get(ctx)
		if err != nil {
			return nil, nil, err
		}
		fs := m.fs.WithContext(ctx)
		var walk func(rel string) error
		walk = func(rel string) error {
			fis, err := fs.ReadDir(smbPath(rel))
			if err != nil {
				return fmt.Errorf("%s: listing %q: %w", s.exposed, rel, err)
			}
			sort.Slice(fis, func(i, j int) bool { return fis[i].Name() < fis[j].Name() })
			for _, fi := range fis {
				r := path.Join(rel, fi.Name())
				if c.filter != nil && !c.filter(s.name, r, fi.IsDir()) {
					continue
				}
				e := Entry{Share: s.name, Path: r, ModTime: fi.ModTime().UTC(), Mode: fi.Mode().Perm()}
				if fi.IsDir() {
					e.Dir = true
					dirs = append(dirs, e)
					if err := walk(r); err != nil {
						return err
					}
					continue
				}
				if !fi.Mode().IsRegular() {
					continue // Samba follows links itself; other types have no data
				}
				e.Size = fi.Size()
				jobs = append(jobs, copyJob{src: s, entry: e})
			}
			return nil
		}
		err = walk("")
		s.pool.put(m)
		if err != nil {
			return nil, nil, err
		}
	}
	return dirs, jobs, nil
}

func smbPath(rel string) string { return strings.ReplaceAll(rel, "/", `\`) }

// run copies the shares. The first error stops every worker and is
// returned; so is ctx's error when it is cancelled.
func (c *copier) run(ctx context.Context, srcs []*source) error {
	dirs, jobs, err := c.list(ctx, srcs)
	if err != nil {
		return err
	}
	for _, s := range srcs {
		if err := os.MkdirAll(filepath.Join(c.dest, DataDir, s.name), 0o755); err != nil {
			return err
		}
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d.localPath(c.dest), 0o755); err != nil {
			return err
		}
	}
	var total int64
	for _, j := range jobs {
		total += j.entry.Size
	}
	c.progress.start(len(jobs), total)
	defer c.progress.stop()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ch := make(chan copyJob)
	var wg sync.WaitGroup
	workers := c.workers
	if workers <= 0 {
		workers = 4
	}
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				if err := c.copyOne(ctx, j); err != nil {
					cancel(err)
					return
				}
			}
		}()
	}
feed:
	for _, j := range jobs {
		select {
		case ch <- j:
		case <-ctx.Done():
			break feed
		}
	}
	close(ch)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	// Directory times last: creating files changed them.
	for i := len(dirs) - 1; i >= 0; i-- {
		os.Chtimes(dirs[i].localPath(c.dest), dirs[i].ModTime, dirs[i].ModTime)
	}
	c.entries = append(c.entries, dirs...)
	return nil
}

func (c *copier) copyOne(ctx context.Context, j copyJob) error {
	e := j.entry
	dst := e.localPath(c.dest)
	if p, ok := c.prev[entryKey(e.Share, e.Path)]; ok && !p.Dir && p.Size == e.Size && p.ModTime.Equal(e.ModTime) && p.SHA256 != "" {
		if err := os.Link(p.localPath(c.prevDir), dst); err == nil {
			e.SHA256, e.Linked = p.SHA256, true
			c.progress.add(e.Size)
			c.progress.fileDone()
			c.record(e, false)
			return nil
		}
		// The previous copy is gone or on another filesystem: copy.
	}
	m, err := j.src.pool.get(ctx)
	if err != nil {
		return err
	}
	sum, n, err := c.fetch(ctx, m.fs.WithContext(ctx), e, dst)
	j.src.pool.put(m)
	if err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return fmt.Errorf("%s: copying %s: %w", j.src.exposed, e.Path, err)
	}
	if n != e.Size {
		// The snapshot is read-only: a size change means something is wrong.
		return fmt.Errorf("%s: %s: read %d bytes, listed as %d", j.src.exposed, e.Path, n, e.Size)
	}
	e.SHA256 = sum
	c.progress.fileDone()
	c.record(e, true)
	return nil
}

func (c *copier) record(e Entry, copied bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = append(c.entries, e)
	if copied {
		c.copied++
		c.bytes += e.Size
	} else {
		c.linked++
	}
}

// copyBufSize is the copy buffer: go-smb2 splits reads into the server's
// maximum read size (8 MiB at most) and credits.
const copyBufSize = 1 << 20

var bufPool = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

func (c *copier) fetch(ctx context.Context, fs *smb2.Share, e Entry, dst string) (string, int64, error) {
	f, err := fs.Open(smbPath(e.Path))
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", 0, err
	}
	h := sha256.New()
	var n int64
	if e.Size > 2*copyBufSize {
		n, err = c.pipelined(ctx, f, io.MultiWriter(out, h))
	} else {
		bp := bufPool.Get().(*[]byte)
		n, err = io.CopyBuffer(io.MultiWriter(out, h), c.progress.reader(onlyReader{f}), *bp)
		bufPool.Put(bp)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", n, err
	}
	if err := os.Chtimes(dst, e.ModTime, e.ModTime); err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// readAhead is the number of reads of one file kept in flight: go-smb2
// reads synchronously, so a large file is read as a window of concurrent
// ReadAt calls, consumed in order (smbclient pipelines the same way).
const readAhead = 4

// pipelined copies f to w with readAhead chunks of copyBufSize in flight.
func (c *copier) pipelined(ctx context.Context, f *smb2.File, w io.Writer) (int64, error) {
	type chunk struct {
		buf *[]byte
		n   int
		err error
	}
	var (
		queue []chan chunk
		off   int64
		total int64
		eof   bool
	)
	launch := func() {
		ch := make(chan chunk, 1)
		queue = append(queue, ch)
		at := off
		off += copyBufSize
		go func() {
			bp := bufPool.Get().(*[]byte)
			n, err := f.ReadAt(*bp, at)
			ch <- chunk{bp, n, err}
		}()
	}
	drain := func() {
		for _, ch := range queue {
			k := <-ch
			bufPool.Put(k.buf)
		}
		queue = nil
	}
	for !eof || len(queue) > 0 {
		for !eof && len(queue) < readAhead {
			launch()
		}
		k := <-queue[0]
		queue = queue[1:]
		if k.err != nil && k.err != io.EOF {
			bufPool.Put(k.buf)
			drain()
			return total, k.err
		}
		if k.n < copyBufSize {
			eof = true // a short read ends the file; later chunks read nothing
		}
		_, err := w.Write((*k.buf)[:k.n])
		bufPool.Put(k.buf)
		total += int64(k.n)
		c.progress.add(int64(k.n))
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			drain()
			return total, err
		}
		if eof {
			// Chunks past the end are in flight: they must read nothing.
			for _, ch := range queue {
				k := <-ch
				if k.n > 0 {
					bufPool.Put(k.buf)
					drain()
					return total, fmt.Errorf("file grew while being read")
				}
				bufPool.Put(k.buf)
			}
			queue = nil
		}
	}
	return total, nil
}

// onlyReader hides WriteTo, so io.CopyBuffer uses our buffer size.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(b []byte) (int, error) { return o.r.Read(b) }

// readSMBFile reads a whole (small) file from fs.
func readSMBFile(ctx context.Context, fs *smb2.Share, rel string) ([]byte, error) {
	return fs.WithContext(ctx).ReadFile(smbPath(rel))
}
