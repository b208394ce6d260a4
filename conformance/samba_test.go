package conformance_test

// End-to-end tests through a real smbd (conformance/testbed): clients speak
// ncacn_np to smbd, smbd hands \PIPE\FssagentRpc to fsrvpd, and snapshot
// shares are served by that smbd. Skipped unless root with Samba installed
// (FSRVPD_TEST_STRICT=1 fails instead) and under -short.

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fsrvpd/fsrvpd/client"
	"github.com/fsrvpd/fsrvpd/conformance/testbed"
	"github.com/fsrvpd/fsrvpd/conformance/testbed/bedtest"
)

// TestSambaRpcclient: the 7 fss_* commands of rpcclient over ncacn_np,
// the snapshot's content through the exposed share, and the share's
// removal on DeleteShareMapping (smbclient -L, tree connect).
func TestSambaRpcclient(t *testing.T) {
	skipUnlessSambaTestbed(t)
	t.Parallel()
	bed := bedtest.Up(t, testbed.Options{})
	base := bed.Shares["share1"]
	if err := os.WriteFile(filepath.Join(base, "before.txt"), []byte("pre-snap"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := rpcc(t, bed, "fss_get_sup_version"); !strings.Contains(out, "supports FSRVP versions from 1 to 1") {
		t.Errorf("fss_get_sup_version:\n%s", out)
	}
	if out := rpcc(t, bed, "fss_is_path_sup share1"); !strings.Contains(out, `\share1\ supports shadow copy requests`) {
		t.Errorf("fss_is_path_sup share1:\n%s", out)
	}
	if out, _ := bed.Rpcclient(context.Background(), testbed.User, testbed.Password, "fss_is_path_sup nosuch"); !strings.Contains(out, "0x80042308") {
		t.Errorf("fss_is_path_sup nosuch: want FSRVP_E_OBJECT_NOT_FOUND (spec mode):\n%s", out)
	}
	set, sc, exposed := createExposeRpcclient(t, bed, "backup", "ro", "share1")
	// After Commit: the base changes, the snapshot does not.
	os.WriteFile(filepath.Join(base, "before.txt"), []byte("post-snap"), 0o644)
	os.WriteFile(filepath.Join(base, "after.txt"), []byte("after"), 0o644)
	if got, err := readShareFile(t, bed, exposed, "before.txt"); err != nil || got != "pre-snap" {
		t.Errorf("before.txt on %s = %q, %v; want the data written before Commit", exposed, got, err)
	}
	if _, err := readShareFile(t, bed, exposed, "after.txt"); err == nil {
		t.Errorf("after.txt (written after Commit) is visible on %s", exposed)
	}
	if out, err := bed.SMBClient(context.Background(), exposed, "get before.txt /dev/stdout"); err != nil || !strings.Contains(out, "pre-snap") {
		t.Errorf("smbclient get before.txt from %s: %v\n%s", exposed, err, out)
	}
	// Previous Versions of the base share (fsrvpd's @GMT link, shadow_copy2).
	if out, err := bed.SMBClient(context.Background(), "share1", "allinfo before.txt"); err != nil || !strings.Contains(out, "@GMT-") {
		t.Errorf("allinfo before.txt on share1 lists no previous version: %v\n%s", err, out)
	} else if tok := out[strings.Index(out, "@GMT-"):][:len("@GMT-2006.01.02-15.04.05")]; true {
		if out, err := bed.SMBClient(context.Background(), "share1", "get "+tok+`\before.txt /dev/stdout`); err != nil || !strings.Contains(out, "pre-snap") {
			t.Errorf("get %s\\before.txt on share1: %v\n%s", tok, err, out)
		}
	}
	if out := rpcc(t, bed, "fss_has_shadow_copy share1"); strings.Contains(out, "failed") {
		t.Errorf("fss_has_shadow_copy share1:\n%s", out)
	}
	out := rpcc(t, bed, "fss_get_mapping share1 "+set+" "+sc)
	if !strings.Contains(out, exposed) || !strings.Contains(out, "is a shadow-copy of") {
		t.Errorf("fss_get_mapping:\n%s", out)
	}
	if out := rpcc(t, bed, "fss_recovery_complete "+set); !strings.Contains(out, "marked recovery complete") || strings.Contains(out, "failed") {
		t.Errorf("fss_recovery_complete:\n%s", out)
	}
	if names, err := bed.ListShares(context.Background()); err != nil || !slices.Contains(names, exposed) {
		t.Errorf("smbclient -L before delete = %v, %v; want %s listed", names, err, exposed)
	}
	// (f) DeleteShareMapping: the share is gone from the list and cannot be connected.
	if out := rpcc(t, bed, "fss_delete share1 "+set+" "+sc); !strings.Contains(out, "shadow-copy deleted") || strings.Contains(out, "failed") {
		t.Errorf("fss_delete:\n%s", out)
	}
	if names, err := bed.ListShares(context.Background()); err != nil || slices.Contains(names, exposed) || !slices.Contains(names, "share1") {
		t.Errorf("smbclient -L after delete = %v, %v", names, err)
	}
	if out, _ := bed.SMBClient(context.Background(), "share1", "allinfo before.txt"); strings.Contains(out, "@GMT-") {
		t.Errorf("share1 still lists a previous version after the delete:\n%s", out)
	}
	if out, err := bed.SMBClient(context.Background(), exposed, "ls"); err == nil || !strings.Contains(out, "NT_STATUS_BAD_NETWORK_NAME") {
		t.Errorf("tree connect to deleted %s: %v\n%s", exposed, err, out)
	}
	if out, _ := bed.Rpcclient(context.Background(), testbed.User, testbed.Password, "fss_delete share1 "+set+" "+sc); !strings.Contains(out, "0x80042308") {
		t.Errorf("second fss_delete: want FSRVP_E_OBJECT_NOT_FOUND:\n%s", out)
	}
}

// TestSambaGoMsrpcNP: go-msrpc's client over ncacn_np through smbd runs the
// whole sequence (client.Client wraps it); go-smb2 reads the snapshot.
func TestSambaGoMsrpcNP(t *testing.T) {
	skipUnlessSambaTestbed(t)
	t.Parallel()
	bed := bedtest.Up(t, testbed.Options{})
	ctx := context.Background()
	os.WriteFile(filepath.Join(bed.Shares["share1"], "f.txt"), []byte("one"), 0o644)
	os.WriteFile(filepath.Join(bed.Shares["share2"], "f.txt"), []byte("two"), 0o644)
	np := dialNP(t, bed, testbed.User, testbed.Password)
	c := client.New(np.rpc, client.WithShareHost("127.0.0.1"), client.WithTimeout(time.Minute))
	if lo, hi, err := c.GetSupportedVersion(ctx); err != nil || lo != 1 || hi != 1 {
		t.Fatalf("GetSupportedVersion = %d, %d, %v", lo, hi, err)
	}
	ok, owner, err := c.IsPathSupported(ctx, `\\127.0.0.1\share1`)
	if err != nil || !ok || owner == "" {
		t.Fatalf("IsPathSupported = %v, %q, %v", ok, owner, err)
	}
	res, err := c.Create(ctx, client.CreateRequest{Context: client.CtxBackup, Shares: []string{"share1", "share2"}, RecoveryComplete: true})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	os.WriteFile(filepath.Join(bed.Shares["share1"], "f.txt"), []byte("changed"), 0o644)
	for i, want := range []string{"one", "two"} {
		m := res.Mappings[i]
		if m.ExposedName == "" {
			t.Fatalf("mapping %d not exposed: %+v", i, m)
		}
		if got, err := readShareFile(t, bed, bareShare(m.ExposedName), "f.txt"); err != nil || got != want {
			t.Errorf("f.txt on %s = %q, %v; want %q", m.ExposedName, got, err, want)
		}
	}
	if err := c.Delete(ctx, res.ShadowCopySetID, res.Mappings); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	names, err := bed.ListShares(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range res.Mappings {
		if slices.Contains(names, bareShare(m.ExposedName)) {
			t.Errorf("%s still listed after Delete", m.ExposedName)
		}
	}
}

// TestSambaNonAdminDenied: a Samba user who is neither uid 0 nor an
// administrator, backup operator or SeBackupPrivilege holder gets
// E_ACCESSDENIED on every opnum.
func TestSambaNonAdminDenied(t *testing.T) {
	skipUnlessSambaTestbed(t, "useradd", "userdel")
	t.Parallel()
	bed := bedtest.Up(t, testbed.Options{})
	name := "fsrvptb" + strings.ReplaceAll(uuid.NewString()[:6], "-", "")
	const pw = "NonAdmin-pw-1"
	if err := bed.AddUser(context.Background(), name, pw); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := bed.RemoveUser(name); err != nil {
			t.Error(err)
		}
	})
	np := dialNP(t, bed, name, pw)
	ctx := context.Background()
	set, sc := guid(uuid.NewString()), guid(uuid.NewString())
	unc := `\\127.0.0.1\share1`
	type call struct {
		op string
		do func() (uint32, error)
	}
	r := np.rpc
	calls := []call{
		{"GetSupportedVersion(0)", func() (uint32, error) {
			x, err := r.GetSupportedVersion(ctx, &fssGetSupportedVersion{})
			return ret(x, err)
		}},
		{"SetContext(1)", func() (uint32, error) { x, err := r.SetContext(ctx, &fssSetContext{Context: 0}); return ret(x, err) }},
		{"StartShadowCopySet(2)", func() (uint32, error) {
			x, err := r.StartShadowCopySet(ctx, &fssStart{ClientShadowCopySetID: set})
			return ret(x, err)
		}},
		{"AddToShadowCopySet(3)", func() (uint32, error) {
			x, err := r.AddToShadowCopySet(ctx, &fssAdd{ClientShadowCopyID: sc, ShadowCopySetID: set, ShareName: unc})
			return ret(x, err)
		}},
		{"CommitShadowCopySet(4)", func() (uint32, error) {
			x, err := r.CommitShadowCopySet(ctx, &fssCommit{ShadowCopySetID: set, TimeoutInMilliseconds: 1000})
			return ret(x, err)
		}},
		{"ExposeShadowCopySet(5)", func() (uint32, error) {
			x, err := r.ExposeShadowCopySet(ctx, &fssExpose{ShadowCopySetID: set, TimeoutInMilliseconds: 1000})
			return ret(x, err)
		}},
		{"RecoveryCompleteShadowCopySet(6)", func() (uint32, error) {
			x, err := r.RecoveryCompleteShadowCopySet(ctx, &fssRecovery{ShadowCopySetID: set})
			return ret(x, err)
		}},
		{"AbortShadowCopySet(7)", func() (uint32, error) {
			x, err := r.AbortShadowCopySet(ctx, &fssAbort{ShadowCopySetID: set})
			return ret(x, err)
		}},
		{"IsPathSupported(8)", func() (uint32, error) {
			x, err := r.IsPathSupported(ctx, &fssIsPathSupported{ShareName: unc})
			return ret(x, err)
		}},
		{"IsPathShadowCopied(9)", func() (uint32, error) {
			x, err := r.IsPathShadowCopied(ctx, &fssIsPathShadowCopied{ShareName: unc})
			return ret(x, err)
		}},
		{"GetShareMapping(10)", func() (uint32, error) {
			x, err := r.GetShareMapping(ctx, &fssGetMapping{ShadowCopyID: sc, ShadowCopySetID: set, ShareName: unc, Level: 1})
			return ret(x, err)
		}},
		{"DeleteShareMapping(11)", func() (uint32, error) {
			x, err := r.DeleteShareMapping(ctx, &fssDelete{ShadowCopySetID: set, ShadowCopyID: sc, ShareName: unc})
			return ret(x, err)
		}},
		{"PrepareShadowCopySet(12)", func() (uint32, error) {
			x, err := r.PrepareShadowCopySet(ctx, &fssPrepare{ShadowCopySetID: set, TimeoutInMilliseconds: 1000})
			return ret(x, err)
		}},
	}
	for _, c := range calls {
		code, err := c.do()
		if err != nil {
			t.Errorf("%s: %v", c.op, err)
		} else if code != 0x80070005 {
			t.Errorf("%s = %s, want E_ACCESSDENIED (0x80070005)", c.op, hexCode(code))
		}
	}
	// The same through rpcclient.
	out, _ := bed.Rpcclient(ctx, name, pw, "fss_get_sup_version")
	if !strings.Contains(out, "0x80070005") && !strings.Contains(out, "ACCESS_DENIED") {
		t.Errorf("rpcclient fss_get_sup_version as %s:\n%s", name, out)
	}
	// Root still works.
	if out := rpcc(t, bed, "fss_get_sup_version"); !strings.Contains(out, "supports FSRVP") {
		t.Errorf("root after the denied user:\n%s", out)
	}
}

// TestSambaKillBetweenExposeAndRecovery: kill -9 fsrvpd after Expose,
// restart it: the exposed share and its snapshot are both there and usable
// (persistent context) or both gone (auto-release context), never one
// without the other.
func TestSambaKillBetweenExposeAndRecovery(t *testing.T) {
	skipUnlessSambaTestbed(t)
	t.Parallel()
	bed := bedtest.Up(t, testbed.Options{})
	ctx := context.Background()
	os.WriteFile(filepath.Join(bed.Shares["share1"], "k.txt"), []byte("kept"), 0o644)
	for _, tc := range []struct{ ctx, mode string }{{"nas_rollback", "rw"}, {"backup", "ro"}} {
		set, sc, exposed := createExposeRpcclient(t, bed, tc.ctx, tc.mode, "share1")
		if err := bed.KillFsrvpd(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if err := bed.StartFsrvpd(ctx); err != nil {
			t.Fatal(err)
		}
		names, err := bed.ListShares(ctx)
		if err != nil {
			t.Fatal(err)
		}
		listed := slices.Contains(names, exposed)
		content, readErr := readShareFile(t, bed, exposed, "k.txt")
		mapOut, _ := bed.Rpcclient(ctx, testbed.User, testbed.Password, "fss_get_mapping share1 "+set+" "+sc)
		mapped := strings.Contains(mapOut, "is a shadow-copy of")
		snapOnDisk := snapshotOnDisk(t, bed, sc)
		t.Logf("%s after kill -9 and restart: listed=%v readable=%v mapped=%v snapshot on disk=%v",
			tc.ctx, listed, readErr == nil, mapped, snapOnDisk)
		switch {
		case listed && readErr == nil && content == "kept" && mapped && snapOnDisk:
			if out := rpcc(t, bed, "fss_delete share1 "+set+" "+sc); !strings.Contains(out, "shadow-copy deleted") {
				t.Errorf("%s: fss_delete after restart:\n%s", tc.ctx, out)
			}
			if snapshotOnDisk(t, bed, sc) {
				t.Errorf("%s: snapshot left after delete", tc.ctx)
			}
		case !listed && readErr != nil && !mapped && !snapOnDisk:
			if tc.ctx == "nas_rollback" {
				t.Errorf("nas_rollback (persistent) set lost by a restart")
			}
		default:
			t.Errorf("%s: inconsistent after restart: listed=%v read=%q,%v mapped=%v snapshot=%v\n%s",
				tc.ctx, listed, content, readErr, mapped, snapOnDisk, mapOut)
		}
	}
}

// snapshotOnDisk reports whether the backend still holds a snapshot whose
// directory name carries the shadow copy id.
func snapshotOnDisk(t testing.TB, bed *testbed.Testbed, sc string) bool {
	t.Helper()
	root := filepath.Join(bed.StateDir, "snapshots")
	if bed.Backend == "btrfs" {
		root = filepath.Join(bed.Mount, "snapshots")
	}
	ents, err := os.ReadDir(root)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.Contains(strings.ToLower(e.Name()), strings.ToLower(sc)) {
			return true
		}
	}
	return false
}
