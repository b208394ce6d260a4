package requestor

import (
	"strings"
	"testing"

	"github.com/fsrvpd/fsrvpd/client/vss"
)

func TestLocate(t *testing.T) {
	sp := SharePaths{"share1": `C:\srv\vol1\share1`, "data": "/srv", "deep": "/srv/vol1/share1/deep", "root": `C:\`}
	cases := []struct{ p, share, rel string }{
		{"/srv/vol1/share1/db/x", "share1", "db/x"},
		{`C:\srv\vol1\share1`, "share1", ""},
		{"/srv/vol1/share1/deep/a", "deep", "a"},
		{"/srv/other", "data", "other"},
		{"/etc/passwd", "root", "etc/passwd"},
	}
	for _, c := range cases {
		s, r, ok := sp.locate(c.p, nil)
		if !ok || s != c.share || r != c.rel {
			t.Errorf("locate(%q) = %q %q %v, want %q %q", c.p, s, r, ok, c.share, c.rel)
		}
	}
	if _, _, ok := sp.locate("/srv/vol1/share1x/a", map[string]bool{"share1": true}); ok {
		t.Error("share1x matched share1")
	}
}

func TestFileMatcher(t *testing.T) {
	m := fileMatcher{share: "s", dir: "db", spec: "*.db"}
	for rel, want := range map[string]bool{"db/a.db": true, "db/A.DB": true, "db/a.log": false, "db/sub/a.db": false, "a.db": false} {
		if got := m.match("s", rel); got != want {
			t.Errorf("match(%q) = %v", rel, got)
		}
	}
	m.recursive = true
	if !m.match("S", "db/sub/a.db") || m.match("t", "db/a.db") {
		t.Error("recursive match")
	}
	if r, ok := m.relative("s", "db/sub/a.db"); !ok || r != "sub/a.db" {
		t.Errorf("relative: %q %v", r, ok)
	}
}

func testWriter() *vss.WriterMetadata {
	return &vss.WriterMetadata{Version: vss.Version,
		Identification: vss.Identification{FriendlyName: "PG", WriterID: "8d1a6a2c-8d5e-4e0b-9d6b-0f4e6b1c2d3e", InstanceID: "11111111-8d5e-4e0b-9d6b-0f4e6b1c2d3e"},
		BackupLocations: vss.BackupLocations{
			Exclude: []vss.Files{{Path: "/srv/s1", Filespec: "*.tmp", Recursive: true}},
			Databases: []vss.Database{
				{ComponentAttrs: vss.ComponentAttrs{LogicalPath: `cluster\main`, ComponentName: "db1", Selectable: true}, Files: []vss.Files{{Path: "/srv/s1/db1", Filespec: "*"}}},
				{ComponentAttrs: vss.ComponentAttrs{LogicalPath: `cluster\main`, ComponentName: "db2", Selectable: true}, Files: []vss.Files{{Path: "/srv/s1/db2", Filespec: "*"}}},
			},
			FileGroups: []vss.FileGroup{{ComponentAttrs: vss.ComponentAttrs{ComponentName: "config"}, Files: []vss.Files{{Path: "/srv/s1/etc", Filespec: "*.conf"}}}},
		},
	}
}

func TestPlanComponents(t *testing.T) {
	wm := testWriter()
	docs := &documents{writerMetadata: map[string]*vss.WriterMetadata{"w.xml": wm}}
	shares := []CatalogShare{{Name: "s1"}}
	paths := SharePaths{"s1": "/srv/s1"}

	p, err := planComponents(docs, paths, shares, []string{"PG:cluster/main/db1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := p.filter()
	for rel, want := range map[string]bool{"db1/x": true, "db2/x": false, "etc/a.conf": true, "other/y": true, "db1/z.tmp": false} {
		if got := f("s1", rel, false); got != want {
			t.Errorf("filter(%q) = %v, want %v (non-selectable config goes with its writer)", rel, got, want)
		}
	}
	entries := []Entry{{Share: "s1", Path: "db1/x"}, {Share: "s1", Path: "db1/y"}, {Share: "s1", Path: "etc/a.conf"}}
	docs.writerStatus = []byte(`<WRITER_STATUS version="1.0" setId="x"><WRITER writerId="` + wm.Identification.WriterID + `" instanceId="` +
		wm.Identification.InstanceID + `" friendlyName="PG" state="failed" phase="freeze" failure="timeout"/></WRITER_STATUS>`)
	if p.status, err = vss.ParseWriterStatus(docs.writerStatus); err != nil {
		t.Fatal(err)
	}
	res := p.results(entries)
	if len(res) != 2 || res[0].ComponentName != "db1" || res[0].Files != 2 || res[0].Succeeded || !strings.Contains(res[0].Message, "failed in freeze") {
		t.Errorf("results: %+v", res)
	}
	bc, err := p.backupComponents(false)
	if err != nil {
		t.Fatal(err)
	}
	if len(bc.Writers) != 1 || len(bc.Writers[0].Components) != 2 || bool(bc.Writers[0].Components[0].BackupSucceeded) || !bool(bc.SelectComponents) {
		t.Errorf("backup components: %+v", bc)
	}
	if err := bc.Validate(); err != nil {
		t.Error(err)
	}

	if _, err := planComponents(docs, paths, shares, []string{"nothing*"}, nil); err == nil {
		t.Error("an include matching nothing was accepted")
	}
	if _, err := planComponents(docs, paths, shares, nil, []string{"config"}); err == nil {
		t.Error("excluding a non-selectable component was accepted")
	}
	if _, err := planComponents(docs, SharePaths{"s2": "/other"}, shares, nil, nil); err == nil {
		t.Error("components outside the backed-up shares were accepted")
	}
	if _, err := planComponents(&documents{}, paths, shares, []string{"x"}, nil); err == nil {
		t.Error("selection without writer metadata was accepted")
	}
	p, err = planComponents(docs, paths, shares, nil, []string{"db2"})
	if err != nil {
		t.Fatal(err)
	}
	if f := p.filter(); f("s1", "db2/x", false) || !f("s1", "db1/x", false) {
		t.Error("-exclude db2")
	}
}
