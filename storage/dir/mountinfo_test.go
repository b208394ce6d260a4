package dir

import (
	"slices"
	"strings"
	"testing"
)

func TestMountPoints(t *testing.T) {
	const info = `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
35 22 0:31 / /srv/my\040share/snap\134x rw shared:17 - tmpfs tmpfs rw,size=1024k
36 22 0:32 / /srv/tab\011nl\012end rw - tmpfs tmpfs rw
37 22 0:33 / /srv/bad\04escape rw - tmpfs tmpfs rw
`
	got, err := mountPoints(strings.NewReader(info))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/", `/srv/my share/snap\x`, "/srv/tab\tnl\nend", `/srv/bad\04escape`}
	if !slices.Equal(got, want) {
		t.Fatalf("mountPoints = %q, want %q", got, want)
	}
	if _, err := mountPoints(strings.NewReader("1 2 3\n")); err == nil {
		t.Fatal("a short line parsed")
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
	} {
		if got := within(c.root, c.path); got != c.want {
			t.Errorf("within(%q, %q) = %v", c.root, c.path, got)
		}
	}
}
