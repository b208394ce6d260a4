package requestor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/hirochachacha/go-smb2"
)

// ErrInUse is wrapped by a replace probe that found a file open elsewhere.
var ErrInUse = errors.New("file is open elsewhere (sharing violation)")

// restoreTarget is where a restore writes: the shares of an SMB server or
// a local directory.
type restoreTarget interface {
	// exists reports whether share/rel exists.
	exists(ctx context.Context, share, rel string) (bool, error)
	// probeReplace checks that the existing file share/rel could be
	// replaced now: it returns an error wrapping ErrInUse when another
	// client holds it open.
	probeReplace(ctx context.Context, share, rel string) error
	// write copies the local file src to share/rel (creating directories,
	// replacing a file) and sets its modification time.
	write(ctx context.Context, share, rel, src string, mtime time.Time, p *Progress) error
	describe(share, rel string) string
	close()
}

// smbTarget writes to the shares of an SMB server.
type smbTarget struct {
	cfg    SMB
	ss     *session
	mounts map[string]*smb2.Share
}

func newSMBTarget(ctx context.Context, cfg SMB) (*smbTarget, error) {
	ss, err := cfg.dial(ctx)
	if err != nil {
		return nil, err
	}
	return &smbTarget{cfg: cfg, ss: ss, mounts: map[string]*smb2.Share{}}, nil
}

func (t *smbTarget) share(ctx context.Context, name string) (*smb2.Share, error) {
	fs, ok := t.mounts[strings.ToLower(name)]
	if !ok {
		var err error
		if fs, err = t.ss.mount(t.cfg.host(), name); err != nil {
			return nil, err
		}
		t.mounts[strings.ToLower(name)] = fs
	}
	return fs.WithContext(ctx), nil
}

func (t *smbTarget) exists(ctx context.Context, share, rel string) (bool, error) {
	fs, err := t.share(ctx, share)
	if err != nil {
		return false, err
	}
	_, err = fs.Stat(smbPath(rel))
	switch {
	case err == nil:
		return true, nil
	case isNotExist(err):
		return false, nil
	}
	return false, err
}

// probeReplace opens the file for DELETE access, sharing nothing but
// delete, and renames it onto itself (a no-op): the open fails with
// STATUS_SHARING_VIOLATION when any other open of the file does not share
// delete access, i.e. when an application holds it (MS-SMB2 §3.3.5.9,
// MS-FSA §2.1.5.1.2). go-smb2's Rename is exactly that open.
func (t *smbTarget) probeReplace(ctx context.Context, share, rel string) error {
	fs, err := t.share(ctx, share)
	if err != nil {
		return err
	}
	err = fs.Rename(smbPath(rel), smbPath(rel))
	switch {
	case err == nil:
		return nil
	case IsSharingViolation(err):
		return fmt.Errorf("%s: %w", t.describe(share, rel), ErrInUse)
	}
	return fmt.Errorf("%s: checking whether it can be replaced: %w", t.describe(share, rel), err)
}

func (t *smbTarget) write(ctx context.Context, share, rel, src string, mtime time.Time, p *Progress) error {
	fs, err := t.share(ctx, share)
	if err != nil {
		return err
	}
	if dir := path.Dir(rel); dir != "." {
		if err := fs.MkdirAll(smbPath(dir), 0o755); err != nil {
			return err
		}
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := fs.OpenFile(smbPath(rel), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	bp := bufPool.Get().(*[]byte)
	_, err = io.CopyBuffer(onlyWriter{out}, p.reader(in), *bp)
	bufPool.Put(bp)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return fs.Chtimes(smbPath(rel), mtime, mtime)
}

// onlyWriter hides ReadFrom, so io.CopyBuffer uses our buffer.
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(b []byte) (int, error) { return o.w.Write(b) }

func (t *smbTarget) describe(share, rel string) string {
	return `\\` + t.cfg.host() + `\` + share + `\` + smbPath(rel)
}

func (t *smbTarget) close() {
	for _, fs := range t.mounts {
		fs.Umount()
	}
	t.ss.close()
}

// dirTarget writes below a local directory: <root>/<share>/<rel>. It is
// the "alternate path" of a restore; nothing holds its files open in a
// way it could detect, so probeReplace always succeeds.
type dirTarget struct{ root string }

func (t dirTarget) local(share, rel string) string {
	return filepath.Join(t.root, share, filepath.FromSlash(rel))
}

func (t dirTarget) exists(_ context.Context, share, rel string) (bool, error) {
	_, err := os.Lstat(t.local(share, rel))
	if os.IsNotExist(err) {
		return false, nil
	}
	return err == nil, err
}

func (t dirTarget) probeReplace(context.Context, string, string) error { return nil }

func (t dirTarget) write(_ context.Context, share, rel, src string, mtime time.Time, p *Progress) error {
	dst := t.local(share, rel)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".fsrvp-restore"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, p.reader(in))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chtimes(tmp, mtime, mtime)
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func (t dirTarget) describe(share, rel string) string { return t.local(share, rel) }

func (t dirTarget) close() {}
