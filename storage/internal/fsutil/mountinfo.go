package fsutil

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// DefaultMountinfo is the mountinfo file of the calling process.
const DefaultMountinfo = "/proc/self/mountinfo"

// Mount is one line of a mountinfo file.
type Mount struct {
	Point    string // mount point
	FSType   string // filesystem type, e.g. "zfs" or "fuse.zfs"
	Source   string // mount source, e.g. a device or a dataset name
	ReadOnly bool   // the mount point is read-only (per-mount option "ro")
}

// ParseMountinfo parses a mountinfo file (proc(5)): field 5 is the mount
// point and field 6 the per-mount options; after the "-" separator come the
// filesystem type and the source. Space, tab, newline and backslash are
// escaped as \ooo. A malformed line is an error.
func ParseMountinfo(r io.Reader) ([]Mount, error) {
	var mounts []Mount
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
		mounts = append(mounts, Mount{
			Point:    UnescapeOctal(f[4]),
			ReadOnly: slices.Contains(strings.Split(f[5], ","), "ro"),
			FSType:   UnescapeOctal(f[sep+1]),
			Source:   UnescapeOctal(f[sep+2]),
		})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return mounts, nil
}

// ReadMountinfo parses the mountinfo file at path.
func ReadMountinfo(path string) ([]Mount, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseMountinfo(f)
}

// MountBelow returns the first mount point strictly below root.
func MountBelow(mounts []Mount, root string) (string, bool) {
	for _, m := range mounts {
		if m.Point != root && Within(root, m.Point) {
			return m.Point, true
		}
	}
	return "", false
}

// MountBelowIn is MountBelow on the mountinfo file at path; it returns ""
// if there is no mount point below root.
func MountBelowIn(path, root string) (string, error) {
	mounts, err := ReadMountinfo(path)
	if err != nil {
		return "", err
	}
	p, _ := MountBelow(mounts, root)
	return p, nil
}

// MountOf returns the last-mounted of the mounts whose point contains path,
// the one path is on.
func MountOf(mounts []Mount, path string) (Mount, bool) {
	var best Mount
	found := false
	for _, m := range mounts {
		if Within(m.Point, path) && (!found || len(m.Point) >= len(best.Point)) {
			best, found = m, true
		}
	}
	return best, found
}

// UnescapeOctal decodes the \ooo escapes the kernel writes in mountinfo.
// Anything that is not a valid escape is kept as is.
func UnescapeOctal(s string) string {
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

// Within reports whether path is root or below it, comparing whole path
// components. Both must be clean and absolute.
func Within(root, path string) bool {
	if root == "/" {
		return strings.HasPrefix(path, "/")
	}
	return path == root || strings.HasPrefix(path, root+"/")
}
