package btrfs

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// mountinfoPath is read by Volume; a variable so tests can point it at a
// fixture.
var mountinfoPath = "/proc/self/mountinfo"

// mountPoints returns the mount point of every line of a mountinfo file
// (proc(5): field 5, with space, tab, newline and backslash escaped as
// three-digit octal sequences such as \040).
func mountPoints(r io.Reader) ([]string, error) {
	var points []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			return nil, fmt.Errorf("mountinfo line %d: %d fields, want at least 5", line, len(fields))
		}
		points = append(points, unescapeOctal(fields[4]))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return points, nil
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

// mountBelow returns a mount point strictly below root, or "".
func mountBelow(root string) (string, error) {
	f, err := os.Open(mountinfoPath)
	if err != nil {
		return "", err
	}
	defer f.Close()
	points, err := mountPoints(f)
	if err != nil {
		return "", err
	}
	for _, p := range points {
		if p != root && within(root, p) {
			return p, nil
		}
	}
	return "", nil
}

// within reports whether path is root or below it, comparing whole path
// components. Both must be clean and absolute.
func within(root, path string) bool {
	if root == "/" {
		return strings.HasPrefix(path, "/")
	}
	return path == root || strings.HasPrefix(path, root+"/")
}
