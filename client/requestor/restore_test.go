package requestor_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/hirochachacha/go-smb2"

	"github.com/fsrvpd/fsrvpd/client/requestor"
	"github.com/fsrvpd/fsrvpd/client/vss"
	"github.com/fsrvpd/fsrvpd/conformance/testbed"
	"github.com/fsrvpd/fsrvpd/conformance/testbed/bedtest"
)

// restoreWriter is fsrvpd's configuration of a writer with one component
// per restore method, on share1 (s1); alternate locations on share2 (s2).
// Its service hooks record their calls in state; the start hook also
// copies what svc/s.dat holds at that time to state.during.
func restoreWriter(s1, s2, state string) string {
	group := func(name, restore string) string {
		return fmt.Sprintf(`
[[writer.component]]
type = "filegroup"
logical_path = "app"
name = %[1]q
selectable = true
files = [{ path = "%[2]s/%[1]s", filespec = "*", recursive = true }]
[writer.component.restore]
%[3]s
`, name, s1, restore)
	}
	return fmt.Sprintf(`[[writer]]
name = "TestWriter"
writer_id = %[1]q
instance_id = %[2]q

[[writer.component]]
type = "database"
logical_path = "app"
name = "db"
selectable = true
files = [{ path = "%[3]s/db", filespec = "*.db" }]
log_files = [{ path = "%[3]s/db", filespec = "*.log" }]
[writer.component.restore]
method = "RESTORE_IF_CAN_REPLACE"
alternate_location = [{ path = "%[3]s/db", filespec = "*", recursive = true, alternate_path = "%[4]s/restored-db" }]
`, uuid.NewString(), uuid.NewString(), s1, s2) +
		group("busy", `method = "RESTORE_IF_CAN_REPLACE"`) +
		group("fresh", `method = "RESTORE_IF_NOT_THERE"`) +
		group("alt", fmt.Sprintf(`method = "RESTORE_TO_ALTERNATIVE_LOCATION"
alternate_location = [{ path = "%s/alt", filespec = "*", recursive = true, alternate_path = "%s/elsewhere" }]`, s1, s2)) +
		group("svc", `method = "STOP_RESTART_SERVICE"
service = "testd"`) +
		group("reboot", `method = "REPLACE_AT_REBOOT"
reboot_required = true`) +
		group("custom", `method = "CUSTOM"
user_procedure = "run testwriter-restore --from the backup"`) +
		fmt.Sprintf(`
[writer.hooks.service-stop]
command = ["sh", "-c", "echo stop >> %[1]s"]
[writer.hooks.service-start]
command = ["sh", "-c", "cat %[2]s/svc/s.dat > %[1]s.during; echo start >> %[1]s"]
`, state, s1)
}

func outcome(t *testing.T, res *requestor.RestoreResult, name string) requestor.RestoreOutcome {
	t.Helper()
	for _, o := range res.Components {
		if o.ComponentName == name {
			return o
		}
	}
	t.Fatalf("no outcome for component %s in %+v", name, res)
	return requestor.RestoreOutcome{}
}

func read(p string) string { b, _ := os.ReadFile(p); return string(b) }

// TestRestoreMethods backs up share1, then restores each component with
// its writer's restore method against the real smbd: a file held open by
// another SMB client makes RESTORE_IF_CAN_BE_REPLACED relocate (or fail).
func TestRestoreMethods(t *testing.T) {
	dir, s1, s2 := bedDir(t)
	state := filepath.Join(t.TempDir(), "service-state")
	b := upTestbed(t, testbed.Options{Dir: dir, FsrvpdExtra: restoreWriter(s1, s2, state)})
	orig := map[string]string{}
	for _, f := range []string{"db/main.db", "db/main.log", "busy/b.dat", "fresh/f.txt", "fresh/sub/g.txt",
		"alt/a.dat", "svc/s.dat", "reboot/r.sys", "custom/c.dat", "plain.txt"} {
		orig[f] = string(writeFile(t, filepath.Join(s1, filepath.FromSlash(f)), 1000+len(f)))
	}
	dest := filepath.Join(t.TempDir(), "b")
	if _, err := requestor.Backup(context.Background(), b.dial, requestor.BackupOptions{
		Snapshot: requestor.SnapshotRequest{Target: b.target(), Shares: []string{"share1"}},
		Dest:     dest, SMB: b.smb,
	}); err != nil {
		t.Fatal(err)
	}

	// The live share changes after the backup.
	for _, f := range []string{"db/main.db", "busy/b.dat", "fresh/f.txt", "svc/s.dat", "reboot/r.sys", "custom/c.dat", "plain.txt"} {
		os.WriteFile(filepath.Join(s1, filepath.FromSlash(f)), []byte("changed"), 0o666)
	}

	// Another SMB client holds db/main.db and busy/b.dat open (go-smb2 opens
	// share read and write, not delete).
	holder := holdOpen(t, b, "share1", `db\main.db`, `busy\b.dat`)

	// The service hooks run on the server through fsrvpd's writer control,
	// over the same pipe as FSRVP.
	svc := &requestor.WriterControl{Target: b.target(), SMB: b.smb}
	res, err := requestor.Restore(context.Background(), requestor.RestoreOptions{
		Backup: dest, SMB: b.smb, Services: svc,
	})
	if !errors.Is(err, requestor.ErrComponentsFailed) || !strings.Contains(err.Error(), "busy") {
		t.Errorf("restore: err = %v, want the busy component to fail", err)
	}
	if res == nil {
		t.Fatal("no result")
	}

	// IF_CAN_BE_REPLACED, file open, with a mapping: relocated whole.
	o := outcome(t, res, "db")
	if o.Action != requestor.ActionRelocated || len(o.Relocations) != 1 {
		t.Errorf("db: %+v", o)
	}
	if read(filepath.Join(s2, "restored-db", "main.db")) != orig["db/main.db"] || read(filepath.Join(s2, "restored-db", "main.log")) != orig["db/main.log"] {
		t.Error("db: not restored to its alternate location")
	}
	if read(filepath.Join(s1, "db", "main.db")) != "changed" {
		t.Error("db: the open file was overwritten")
	}
	// IF_CAN_BE_REPLACED, file open, no mapping: the whole component fails.
	if o := outcome(t, res, "busy"); o.Action != requestor.ActionFailed || !strings.Contains(o.Message, "open elsewhere") {
		t.Errorf("busy: %+v", o)
	}
	if read(filepath.Join(s1, "busy", "b.dat")) != "changed" {
		t.Error("busy: written although it failed")
	}
	// IF_NONE_THERE with files there: skipped, untouched.
	if o := outcome(t, res, "fresh"); o.Action != requestor.ActionSkipped || read(filepath.Join(s1, "fresh", "f.txt")) != "changed" {
		t.Errorf("fresh: %+v", o)
	}
	// TO_ALTERNATE_LOCATION.
	if o := outcome(t, res, "alt"); o.Action != requestor.ActionRelocated || read(filepath.Join(s2, "elsewhere", "a.dat")) != orig["alt/a.dat"] {
		t.Errorf("alt: %+v", o)
	}
	// STOP_RESTART_SERVICE: stop, restore, start.
	if o := outcome(t, res, "svc"); o.Action != requestor.ActionRestored || read(state) != "stop\nstart\n" ||
		read(state+".during") != orig["svc/s.dat"] || read(filepath.Join(s1, "svc", "s.dat")) != orig["svc/s.dat"] {
		t.Errorf("svc: %+v, hooks ran %q, the file held %d bytes when the service started", o, read(state), len(read(state+".during")))
	}
	// REPLACE_AT_REBOOT and CUSTOM: instructions, nothing written.
	for _, n := range []string{"reboot", "custom"} {
		o := outcome(t, res, n)
		if o.Action != requestor.ActionManual || o.Instructions == "" {
			t.Errorf("%s: %+v", n, o)
		}
	}
	if !strings.Contains(outcome(t, res, "custom").Instructions, "testwriter-restore") {
		t.Error("custom: the writer's procedure is not in the instructions")
	}
	if read(filepath.Join(s1, "reboot", "r.sys")) != "changed" || read(filepath.Join(s1, "custom", "c.dat")) != "changed" {
		t.Error("reboot/custom: files were written")
	}
	// Files of no component are restored in place.
	if read(filepath.Join(s1, "plain.txt")) != orig["plain.txt"] || res.PlainFiles != 2 {
		t.Errorf("plain files: %d restored", res.PlainFiles)
	}
	// The relocations are in the backup components document.
	doc, err := os.ReadFile(res.Document)
	if err != nil {
		t.Fatal(err)
	}
	bc, err := vss.ParseBackupComponents(doc)
	if err != nil {
		t.Fatal(err)
	}
	var mapped []string
	for _, w := range bc.Writers {
		for _, c := range w.Components {
			for _, m := range c.AlternateLocationMappings {
				mapped = append(mapped, c.ComponentName+"->"+filepath.Base(m.AlternatePath))
			}
		}
	}
	if strings.Join(mapped, ",") != "db->restored-db,alt->elsewhere" {
		t.Errorf("alternate location mappings recorded: %v", mapped)
	}
	if _, err := requestor.Verify(dest, nil); err != nil {
		t.Errorf("the restore changed the backup: %v", err)
	}

	// Released: db is replaced in place; fresh restores once its files are gone.
	holder()
	os.RemoveAll(filepath.Join(s1, "fresh"))
	res, err = requestor.Restore(context.Background(), requestor.RestoreOptions{
		Backup: dest, SMB: b.smb, Include: []string{"app/db", "busy", "TestWriter:fresh"}, ComponentsOnly: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Components) != 3 || outcome(t, res, "db").Action != requestor.ActionRestored || outcome(t, res, "busy").Action != requestor.ActionRestored ||
		outcome(t, res, "fresh").Action != requestor.ActionRestored {
		t.Errorf("second restore: %+v", res.Components)
	}
	for _, f := range []string{"db/main.db", "busy/b.dat", "fresh/f.txt", "fresh/sub/g.txt"} {
		if read(filepath.Join(s1, filepath.FromSlash(f))) != orig[f] {
			t.Errorf("%s not restored in place", f)
		}
	}
	if read(filepath.Join(s1, "plain.txt")) != orig["plain.txt"] || res.PlainFiles != 0 {
		t.Error("ComponentsOnly restored plain files")
	}

	// An alternate path: a local directory.
	to := t.TempDir()
	res, err = requestor.Restore(context.Background(), requestor.RestoreOptions{Backup: dest, ToDir: to, Include: []string{"db", "svc"}})
	if err != nil {
		t.Fatal(err)
	}
	if read(filepath.Join(to, "share1", "db", "main.db")) != orig["db/main.db"] || read(filepath.Join(to, "share1", "svc", "s.dat")) != orig["svc/s.dat"] ||
		outcome(t, res, "svc").Action != requestor.ActionRestored || read(state) != "stop\nstart\n" {
		t.Errorf("restore -to DIR: %+v; service hooks %q", res.Components, read(state))
	}
}

// holdOpen opens files on share with a second go-smb2 client and returns
// the function that closes them.
func holdOpen(t *testing.T, b *bed, share string, names ...string) func() {
	t.Helper()
	fs := bedtest.Mount(t, b.Testbed, share)
	var files []*smb2.File
	for _, n := range names {
		f, err := fs.OpenFile(n, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	done := false
	release := func() {
		if done {
			return
		}
		done = true
		for _, f := range files {
			f.Close()
		}
		fs.Umount()
	}
	t.Cleanup(release)
	return release
}
