package fsutil

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func points(ms []Mount) []string {
	var ps []string
	for _, m := range ms {
		ps = append(ps, m.Point)
	}
	return ps
}

func TestParseMountinfoEscapes(t *testing.T) {
	const info = `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
35 22 0:31 / /srv/my\040share/snap\134x rw shared:17 - tmpfs tmpfs rw,size=1024k
36 22 0:32 / /srv/tab\011nl\012end rw - tmpfs tmpfs rw
37 22 0:33 / /srv/bad\04escape rw - tmpfs tmpfs rw
`
	ms, err := ParseMountinfo(strings.NewReader(info))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/", `/srv/my share/snap\x`, "/srv/tab\tnl\nend", `/srv/bad\04escape`}
	if got := points(ms); !slices.Equal(got, want) {
		t.Fatalf("mount points = %q, want %q", got, want)
	}
}

func TestParseMountinfo(t *testing.T) {
	in := "36 35 98:0 /mnt1 /mnt/my\\040pool rw,noatime master:1 - fuse.zfs tank/my\\040ds rw\n" +
		"37 36 0:5 / /mnt/my\\040pool/ro ro,relatime - zfs tank/ro rw,xattr\n" +
		"38 1 0:6 / /tmp rw shared:2 - tmpfs tmpfs rw\n"
	ms, err := ParseMountinfo(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 || ms[0] != (Mount{Point: "/mnt/my pool", FSType: "fuse.zfs", Source: "tank/my ds"}) ||
		ms[1] != (Mount{Point: "/mnt/my pool/ro", FSType: "zfs", Source: "tank/ro", ReadOnly: true}) ||
		ms[2] != (Mount{Point: "/tmp", FSType: "tmpfs", Source: "tmpfs"}) {
		t.Fatalf("ParseMountinfo = %+v", ms)
	}
	if m, ok := MountOf(ms, "/mnt/my pool/ro/x"); !ok || m.Source != "tank/ro" {
		t.Errorf("MountOf = %+v, %v", m, ok)
	}
	if m, ok := MountOf(ms, "/mnt/my pool/rox"); !ok || m.Source != "tank/my ds" {
		t.Errorf("MountOf on a component boundary = %+v, %v", m, ok)
	}
	if m, ok := MountOf(ms, "/srv"); ok {
		t.Errorf("MountOf outside every mount = %+v, %v", m, ok)
	}
}

func TestParseMountinfoMalformed(t *testing.T) {
	for _, in := range []string{
		"1 2 3\n",
		"bad line\n",
		"22 1 0:21 / / rw shared:1 ext4 /dev/vda rw\n", // no separator
		"22 1 0:21 / / rw - ext4\n",                    // no source
		"22 1 0:21 / / rw - btrfs /dev/loop0 rw\n1 2 3\n",
	} {
		if ms, err := ParseMountinfo(strings.NewReader(in)); err == nil {
			t.Errorf("ParseMountinfo(%q) = %+v, want an error", in, ms)
		}
	}
}

func TestReadMountinfo(t *testing.T) {
	p := filepath.Join(t.TempDir(), "mountinfo")
	info := "22 1 0:21 / / rw - btrfs /dev/loop0 rw\n" +
		"23 22 0:22 / /mnt/a\\040b rw - tmpfs tmpfs rw\n"
	if err := os.WriteFile(p, []byte(info), 0o644); err != nil {
		t.Fatal(err)
	}
	ms, err := ReadMountinfo(p)
	if got := points(ms); err != nil || !slices.Equal(got, []string{"/", "/mnt/a b"}) {
		t.Fatalf("ReadMountinfo = %q, %v", got, err)
	}
	if m, err := MountBelowIn(p, "/mnt"); err != nil || m != "/mnt/a b" {
		t.Errorf("MountBelowIn(/mnt) = %q, %v", m, err)
	}
	if m, err := MountBelowIn(p, "/mnt/a b"); err != nil || m != "" {
		t.Errorf("MountBelowIn(/mnt/a b) = %q, %v", m, err)
	}
	if _, err := ReadMountinfo(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("ReadMountinfo of a missing file succeeded")
	}
	if _, err := MountBelowIn(filepath.Join(t.TempDir(), "missing"), "/"); err == nil {
		t.Error("MountBelowIn of a missing file succeeded")
	}
	if _, err := ReadMountinfo(DefaultMountinfo); err != nil {
		t.Errorf("ReadMountinfo(%s): %v", DefaultMountinfo, err)
	}
}

func TestMountBelow(t *testing.T) {
	ms := []Mount{{Point: "/"}, {Point: "/srv/a"}, {Point: "/srv/ab/c"}, {Point: "/srv/b/c/d"}}
	for _, c := range []struct {
		root string
		want string
		ok   bool
	}{
		{"/srv/a", "", false}, // the root itself is not below it
		{"/srv/ab", "/srv/ab/c", true},
		{"/srv/b", "/srv/b/c/d", true},
		{"/srv", "/srv/a", true},
		{"/", "/srv/a", true},
		{"/srv/b/c/d/e", "", false},
		{"/srv/abc", "", false},
	} {
		if got, ok := MountBelow(ms, c.root); got != c.want || ok != c.ok {
			t.Errorf("MountBelow(%q) = %q, %v, want %q, %v", c.root, got, ok, c.want, c.ok)
		}
	}
}

func TestUnescapeOctal(t *testing.T) {
	for in, want := range map[string]string{
		"plain":        "plain",
		`a\040b`:       "a b",
		`\134`:         `\`,
		`\011\012`:     "\t\n",
		`bad\04escape`: `bad\04escape`,
		`bad\089`:      `bad\089`,
		`trail\04`:     `trail\04`,
		`\`:            `\`,
	} {
		if got := UnescapeOctal(in); got != want {
			t.Errorf("UnescapeOctal(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWithin(t *testing.T) {
	for _, c := range []struct {
		root, path string
		want       bool
	}{
		{"/srv/a", "/srv/a", true},
		{"/srv/a", "/srv/a/b", true},
		{"/srv/a", "/srv/ab", false},
		{"/srv/a", "/srv", false},
		{"/", "/srv", true},
		{"/", "/", true},
	} {
		if got := Within(c.root, c.path); got != c.want {
			t.Errorf("Within(%q, %q) = %v", c.root, c.path, got)
		}
	}
}
