package requestor_test

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsrvpd/fsrvpd/client"
	"github.com/fsrvpd/fsrvpd/client/requestor"
	"github.com/fsrvpd/fsrvpd/conformance/testbed"
	"github.com/fsrvpd/fsrvpd/conformance/testbed/bedtest"
	"github.com/fsrvpd/fsrvpd/storage/storagetest"
)

// bed is a testbed shared by the tests of one run: smbd with fsrvpd behind
// it on loopback (dir backend), share1 and share2 on two volumes.
type bed struct {
	*testbed.Testbed
	smb  requestor.SMB
	dial requestor.Dialer
}

func upTestbed(t *testing.T, o testbed.Options) *bed {
	t.Helper()
	tb := bedtest.Up(t, o, "smbclient", "rpcclient")
	smb := requestor.SMB{Addr: tb.Addr(), User: testbed.User, Password: testbed.Password}
	return &bed{Testbed: tb, smb: smb, dial: requestor.NewDialer(smb, client.WithTimeout(time.Minute))}
}

// target is the FSRVP server: fsrvpd behind smbd's \PIPE\FssagentRpc.
func (b *bed) target() string { return "ncacn_np:127.0.0.1[FssagentRpc]" }

// assertClean fails unless the server has no snapshot share left: none in
// smbd's share list, none in fsrvpd's include file.
func (b *bed) assertClean(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	names, err := b.ListShares(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.Contains(n, "@{") {
			t.Errorf("snapshot share %s is still exposed", n)
		}
	}
	inc, err := os.ReadFile(b.Include)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(inc), "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "[") && strings.Contains(l, "@{") {
			t.Errorf("fsrvpd's include file still exposes %s", l)
		}
	}
	// The dir backend keeps its snapshots in <state dir>/snapshots.
	if ents, _ := filepath.Glob(filepath.Join(b.StateDir, "snapshots", "*")); len(ents) > 0 {
		t.Errorf("snapshots left: %v", ents)
	}
}

func writeFile(t *testing.T, p string, size int) []byte {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o666); err != nil {
		t.Fatal(err)
	}
	return data
}

func TestBackupVerifyIncremental(t *testing.T) {
	b := upTestbed(t, testbed.Options{})
	s1, s2 := b.Shares["share1"], b.Shares["share2"]
	want := map[string][]byte{}
	want["share1/a.bin"] = writeFile(t, filepath.Join(s1, "a.bin"), 300_000)
	want["share1/dir/sub/b.bin"] = writeFile(t, filepath.Join(s1, "dir", "sub", "b.bin"), 5_000)
	want["share1/empty"] = writeFile(t, filepath.Join(s1, "empty"), 0)
	want["share2/big.bin"] = writeFile(t, filepath.Join(s2, "big.bin"), 3_000_000)
	want["share2/x/y.txt"] = writeFile(t, filepath.Join(s2, "x", "y.txt"), 17)
	want["share2/exact.bin"] = writeFile(t, filepath.Join(s2, "exact.bin"), 4<<20) // a multiple of the read-ahead chunk
	os.MkdirAll(filepath.Join(s2, "emptydir"), 0o777)

	ctx := context.Background()
	dest := filepath.Join(t.TempDir(), "full")
	res, err := requestor.Backup(ctx, b.dial, requestor.BackupOptions{
		Snapshot: requestor.SnapshotRequest{Target: b.target(), Shares: []string{"share1", "share2"}},
		Dest:     dest, SMB: b.smb, Workers: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	b.assertClean(t)
	for rel, data := range want {
		got, err := os.ReadFile(filepath.Join(dest, "data", filepath.FromSlash(rel)))
		if err != nil || string(got) != string(data) {
			t.Errorf("%s: not backed up correctly (%v)", rel, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dest, "data", "share2", "emptydir")); err != nil || !fi.IsDir() {
		t.Errorf("empty directory not backed up: %v", err)
	}
	cat, err := requestor.LoadCatalog(dest)
	if err != nil {
		t.Fatal(err)
	}
	if len(cat.Shares) != 2 || cat.Shares[0].Name != "share1" || cat.Shares[1].Name != "share2" || cat.ShadowCopySetID != res.Catalog.ShadowCopySetID {
		t.Errorf("catalog shares: %+v", cat.Shares)
	}
	files := 0
	for _, e := range cat.Entries {
		if !e.Dir {
			files++
			if len(e.SHA256) != 64 {
				t.Errorf("%s/%s: no SHA-256 in the catalog", e.Share, e.Path)
			}
		}
	}
	// README.txt of each share (the testbed's) comes along.
	if files != len(want)+2 || res.Copied != files || res.Linked != 0 {
		t.Errorf("catalog has %d files, copied %d, linked %d; want %d", files, res.Copied, res.Linked, len(want)+2)
	}
	if _, err := requestor.Verify(dest, nil); err != nil {
		t.Fatalf("verify of a fresh backup: %v", err)
	}
	// No writers: the backup components document records the backup only.
	if bc, err := os.ReadFile(filepath.Join(dest, "documents", "backup-components.xml")); err != nil ||
		!strings.Contains(string(bc), `backupType="full"`) || strings.Contains(string(bc), "WRITER_COMPONENTS") || len(cat.Documents) != 1 {
		t.Errorf("backup components document: %v\n%s", err, bc)
	}

	// Incremental: one file changed, one added; the rest is hard-linked.
	time.Sleep(10 * time.Millisecond)
	want["share1/a.bin"] = writeFile(t, filepath.Join(s1, "a.bin"), 300_001)
	want["share2/new.txt"] = writeFile(t, filepath.Join(s2, "new.txt"), 1234)
	inc := filepath.Join(t.TempDir(), "inc")
	res2, err := requestor.Backup(ctx, b.dial, requestor.BackupOptions{
		Snapshot: requestor.SnapshotRequest{Target: b.target(), Shares: []string{"share1", "share2"}},
		Dest:     inc, SMB: b.smb, IncrementalFrom: dest,
	})
	if err != nil {
		t.Fatal(err)
	}
	b.assertClean(t)
	if res2.Copied != 2 || res2.Linked != files-1 {
		t.Errorf("incremental: copied %d, linked %d; want 2 and %d", res2.Copied, res2.Linked, files-1)
	}
	for rel, data := range want {
		got, err := os.ReadFile(filepath.Join(inc, "data", filepath.FromSlash(rel)))
		if err != nil || string(got) != string(data) {
			t.Errorf("incremental %s: not backed up correctly (%v)", rel, err)
		}
	}
	if !sameFile(t, filepath.Join(dest, "data", "share2", "big.bin"), filepath.Join(inc, "data", "share2", "big.bin")) {
		t.Error("unchanged big.bin was not hard-linked from the previous backup")
	}
	if _, err := requestor.Verify(inc, nil); err != nil {
		t.Fatalf("verify of the incremental backup: %v", err)
	}
	if bc, _ := os.ReadFile(filepath.Join(inc, "documents", "backup-components.xml")); !strings.Contains(string(bc), `backupType="incremental"`) {
		t.Errorf("incremental backup components document:\n%s", bc)
	}

	// Corruption: same size, one byte flipped.
	p := filepath.Join(dest, "data", "share1", "dir", "sub", "b.bin")
	data, _ := os.ReadFile(p)
	data[100] ^= 0xff
	os.WriteFile(p, data, 0o644)
	vr, err := requestor.Verify(dest, nil)
	if !errors.Is(err, requestor.ErrVerify) || vr == nil || len(vr.Problems) != 1 ||
		vr.Problems[0].Path != filepath.Join("data", "share1", "dir", "sub", "b.bin") || !strings.Contains(vr.Problems[0].Reason, "SHA-256") {
		t.Errorf("verify of a corrupted file: %v %+v", err, vr)
	}
	os.Remove(filepath.Join(dest, "data", "share2", "x", "y.txt"))
	os.WriteFile(filepath.Join(dest, "data", "share2", "stray"), nil, 0o644)
	if vr, err := requestor.Verify(dest, nil); err == nil || len(vr.Problems) != 3 {
		t.Errorf("verify with a missing and a stray file: %v %+v", err, vr)
	}
}

func sameFile(t *testing.T, a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

// cancelWriter cancels a context the first time progress is drawn, i.e.
// while the copy runs.
type cancelWriter struct{ cancel context.CancelFunc }

func (w cancelWriter) Write(p []byte) (int, error) { w.cancel(); return len(p), nil }

func TestBackupInterruptedLeavesNothing(t *testing.T) {
	b := upTestbed(t, testbed.Options{})
	for i := 0; i < 8; i++ {
		writeFile(t, filepath.Join(b.Shares["share1"], "f"+string(rune('a'+i))), 2<<20)
	}
	writeFile(t, filepath.Join(b.Shares["share2"], "g"), 1<<20)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dest := filepath.Join(t.TempDir(), "b")
	_, err := requestor.Backup(ctx, b.dial, requestor.BackupOptions{
		Snapshot: requestor.SnapshotRequest{Target: b.target(), Shares: []string{"share1", "share2"}},
		Dest:     dest, SMB: b.smb, Workers: 2,
		Progress: requestor.NewProgressTo(cancelWriter{cancel}, time.Millisecond),
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted backup: err = %v, want context.Canceled", err)
	}
	b.assertClean(t)
	if _, err := requestor.LoadCatalog(dest); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Errorf("catalog of an interrupted backup: %v", err)
	}
	if _, err := requestor.Verify(dest, nil); err == nil {
		t.Error("verify accepted an interrupted backup")
	}
	// The server is usable again: a new set can be created and released.
	if _, err := requestor.Backup(context.Background(), b.dial, requestor.BackupOptions{
		Snapshot: requestor.SnapshotRequest{Target: b.target(), Shares: []string{"share2"}},
		Dest:     filepath.Join(t.TempDir(), "c"), SMB: b.smb,
	}); err != nil {
		t.Fatalf("backup after an interrupted one: %v", err)
	}
	b.assertClean(t)
}

// TestBackupSambaAgent backs up through Samba's own rpcd_fsrvp (testbed
// agent samba, btrfs subvolume shares): the requestor is not tied to
// fsrvpd, and nothing stays exposed afterwards.
func TestBackupSambaAgent(t *testing.T) {
	storagetest.RequireCommand(t, "mkfs.btrfs")
	b := upTestbed(t, testbed.Options{Agent: testbed.AgentSamba})
	want := writeFile(t, filepath.Join(b.Shares["share1"], "d", "x.bin"), 200_000)
	dest := filepath.Join(t.TempDir(), "b")
	res, err := requestor.Backup(context.Background(), b.dial, requestor.BackupOptions{
		Snapshot: requestor.SnapshotRequest{Target: b.target(), Shares: []string{"share1"}},
		Dest:     dest, SMB: b.smb,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dest, "data", "share1", "d", "x.bin")); err != nil || string(got) != string(want) {
		t.Errorf("x.bin not backed up: %v", err)
	}
	if _, err := requestor.Verify(dest, nil); err != nil {
		t.Error(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	names, err := b.ListShares(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.Contains(n, "@{") {
			t.Errorf("%s is still exposed after the backup of set %s", n, res.Catalog.ShadowCopySetID)
		}
	}
	// vfs_btrfs puts its snapshots into the share as @GMT-... subvolumes.
	if left, _ := filepath.Glob(filepath.Join(b.Shares["share1"], "@GMT-*")); len(left) > 0 {
		t.Errorf("snapshots left in share1: %v", left)
	}
}
