package zfs

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// defaultMountinfo is the mountinfo file of a Backend.
const defaultMountinfo = "/proc/self/mountinfo"

// mount is one line of a mountinfo file.
type mount struct {
	point  string // mount point
	fstype string // "zfs", or "fuse.zfs" under zfs-fuse
	source string // the dataset name for a ZFS mount
	ro     bool   // the mount point is read-only (per-mount option "ro")
}

// isZFS reports whether m is a ZFS mount, native or zfs-fuse.
func (m mount) isZFS() bool { return m.fstype == "zfs" || m.fstype == "fuse.zfs" }

// parseMountinfo parses a mountinfo file (proc(5)): field 5 is the mount
// point; after the "-" separator come the filesystem type and the source.
// Space, tab, newline and backslash are escaped as \ooo.
func parseMountinfo(r io.Reader) ([]mount, error) {
	var mounts []mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if len(f) < 5 || sep < 0 || sep+2 >= len(f) {
			return nil, fmt.Errorf("mountinfo line %d: malformed", line)
		}
		mounts = append(mounts, mount{
			point:  unescapeOctal(f[4]),
			ro:     slices.Contains(strings.Split(f[5], ","), "ro"),
			fstype: unescapeOctal(f[sep+1]),
			source: unescapeOctal(f[sep+2]),
		})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return mounts, nil
}

func (b *Backend) readMountinfo() ([]mount, error) {
	f, err := os.Open(b.mountinfo)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseMountinfo(f)
}

// mountOf returns the last-mounted of the mounts whose point contains path,
// the one path is on.
func mountOf(mounts []mount, path string) (mount, bool) {
	var best mount
	found := false
	for _, m := range mounts {
		if within(m.point, path) && (!found || len(m.point) >= len(best.point)) {
			best, found = m, true
		}
	}
	return best, found
}

// unescapeOctal decodes the \ooo escapes the kernel writes in mountinfo.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// within reports whether path is root or below it, comparing whole path
// components. Both must be clean and absolute.
func within(root, path string) bool {
	if root == "/" {
		return strings.HasPrefix(path, "/")
	}
	return path == root || strings.HasPrefix(path, root+"/")
}
