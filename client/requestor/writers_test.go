package requestor_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/fsrvpd/fsrvpd/client/requestor"
	"github.com/fsrvpd/fsrvpd/client/vss"
	"github.com/fsrvpd/fsrvpd/conformance/testbed"
)

// bedDir picks the directory of a testbed so that writer configurations
// can name its share paths before it is up.
func bedDir(t *testing.T) (dir, share1, share2 string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "fsrvpd-rqw")
	if err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(dir)
	return dir, filepath.Join(dir, "vol", "vol1", "share1"), filepath.Join(dir, "vol", "vol2", "share2")
}

// TestBackupWithWriters backs up through fsrvpd with two writers
// configured: the documents come from the set's documents share, the
// writer's EXCLUDE_FILES and an -exclude'd component are left out, the
// backup components document holds the selected components with their
// outcome (a writer whose freeze hook fails: backupSucceeded="no"), and
// share paths come from srvsvc.
func TestBackupWithWriters(t *testing.T) {
	// The testbed's share paths are known only once it is up; its
	// directory is chosen here so that the writer configuration can name them.
	dir, s1, _ := bedDir(t)
	appID, appInst, badID, badInst := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	extra := fmt.Sprintf(`[[writer]]
name = "app"
writer_id = %[2]q
instance_id = %[3]q
exclude = [{ path = %[1]q, filespec = "*.tmp", recursive = true }]
[writer.restore]
method = "RESTORE_IF_CAN_REPLACE"
[[writer.component]]
type = "database"
logical_path = "app"
name = "db"
selectable = true
files = [{ path = "%[1]s/db", filespec = "*.db" }]
log_files = [{ path = "%[1]s/db", filespec = "*.log" }]
[[writer.component]]
type = "filegroup"
logical_path = "app"
name = "cache"
selectable = true
files = [{ path = "%[1]s/cache", filespec = "*", recursive = true }]
[writer.hooks.freeze]
command = ["true"]

[[writer]]
name = "broken"
writer_id = %[4]q
instance_id = %[5]q
[[writer.component]]
type = "filegroup"
name = "logs"
selectable = true
files = [{ path = "%[1]s/logs", filespec = "*" }]
[writer.hooks.freeze]
command = ["false"]
`, s1, appID, appInst, badID, badInst)
	b := upTestbed(t, testbed.Options{Dir: dir, FsrvpdExtra: extra})
	if b.Shares["share1"] != s1 {
		t.Fatalf("share1 is at %s, not %s", b.Shares["share1"], s1)
	}
	for _, f := range []string{"db/main.db", "db/main.log", "db/scratch.tmp", "cache/c1", "cache/sub/c2", "logs/l1", "other.txt"} {
		writeFile(t, filepath.Join(s1, filepath.FromSlash(f)), 100)
	}
	dest := filepath.Join(t.TempDir(), "b")
	res, err := requestor.Backup(context.Background(), b.dial, requestor.BackupOptions{
		Snapshot: requestor.SnapshotRequest{Target: b.target(), Shares: []string{"share1", "share2"}},
		Dest:     dest, SMB: b.smb, Exclude: []string{"app:app/cache"},
	})
	if err != nil {
		t.Fatal(err)
	}
	b.assertClean(t)
	for f, want := range map[string]bool{"db/main.db": true, "db/main.log": true, "db/scratch.tmp": false, "cache/c1": false,
		"cache/sub/c2": false, "logs/l1": true, "other.txt": true} {
		_, err := os.Stat(filepath.Join(dest, "data", "share1", filepath.FromSlash(f)))
		if (err == nil) != want {
			t.Errorf("%s: backed up %v, want %v", f, err == nil, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dest, "documents", "writer-metadata", strings.ToLower(appInst)+".xml")); err != nil {
		t.Errorf("writer metadata not in the backup: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(dest, "documents", "backup-components.xml"))
	if err != nil {
		t.Fatal(err)
	}
	bc, err := vss.ParseBackupComponents(data)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, w := range bc.Writers {
		for _, c := range w.Components {
			got[c.ComponentName] = bool(c.BackupSucceeded)
		}
	}
	if len(got) != 2 || !got["db"] || got["logs"] {
		t.Errorf("backup components: %v (want db succeeded, logs failed, no cache)\n%s", got, data)
	}
	if len(res.Catalog.Components) != 2 || !strings.HasSuffix(strings.ReplaceAll(res.Catalog.Shares[0].Path, `\`, "/"), s1) {
		t.Errorf("catalog: components %+v, share1 path %q", res.Catalog.Components, res.Catalog.Shares[0].Path)
	}
	if _, err := requestor.Verify(dest, nil); err != nil {
		t.Error(err)
	}
}
