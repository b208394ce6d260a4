package writers_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/oiweiwei/go-msrpc/dcerpc"
	msmb2 "github.com/oiweiwei/go-msrpc/smb2"
	"github.com/oiweiwei/go-msrpc/ssp"
	"github.com/oiweiwei/go-msrpc/ssp/credential"
	"github.com/oiweiwei/go-msrpc/ssp/gssapi"

	"github.com/fsrvpd/fsrvpd/client"
	"github.com/fsrvpd/fsrvpd/client/vss"
	"github.com/fsrvpd/fsrvpd/client/writerctl"
	"github.com/fsrvpd/fsrvpd/conformance/testbed"
	"github.com/fsrvpd/fsrvpd/conformance/testbed/bedtest"
)

// TestDocumentsOverSMB: fsrvpd behind the testbed's smbd, with a writer on
// share1's volume. A BACKUP set's documents are read over SMB from the
// hidden share vss@{set id}$, which is read-only and unlisted; the snapshot
// share's data is the same before and after; the share goes with the set.
func TestDocumentsOverSMB(t *testing.T) {
	bedtest.Require(t, "smbclient")
	dir, err := os.MkdirTemp("", "fsrvpd-wr")
	if err != nil {
		t.Fatal(err)
	}
	writerID, instanceID := uuid.NewString(), uuid.NewString()
	extra := fmt.Sprintf(`[[writer]]
name = "app"
writer_id = %q
instance_id = %q
volumes = [%q]
[[writer.component]]
type = "filegroup"
name = "files"
files = [{ path = %q, filespec = "*" }]
[writer.hooks.post-snapshot]
command = ["sh", "-c", "echo annotated $FSRVPD_SET_ID"]
`, writerID, instanceID, filepath.Join(dir, "vol", "vol1"), filepath.Join(dir, "vol", "vol1"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tb := bedtest.Up(t, testbed.Options{Dir: dir, FsrvpdExtra: extra}, "smbclient")
	if err := os.WriteFile(filepath.Join(tb.Shares["share1"], "data.bin"), []byte("user data"), 0o644); err != nil {
		t.Fatal(err)
	}
	cl, err := client.DialNP(ctx, client.NPTarget{Host: "127.0.0.1", Port: tb.Port, User: testbed.User, Password: testbed.Password})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	res, err := cl.Create(ctx, client.CreateRequest{Shares: []string{"share1"}, RecoveryComplete: true})
	if err != nil {
		t.Fatal(err)
	}
	set := res.ShadowCopySetID
	snapShare := res.Mappings[0].ExposedName[strings.LastIndexByte(res.Mappings[0].ExposedName, '\\')+1:]
	work := t.TempDir()
	sum := func() string {
		local := filepath.Join(work, "data.bin")
		out, err := tb.SMBClient(ctx, snapShare, `get data.bin "`+local+`"`)
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		data, err := os.ReadFile(local)
		if err != nil || string(data) != "user data" {
			t.Fatalf("snapshot's data.bin: %q %v", data, err)
		}
		return fmt.Sprintf("%x", sha256.Sum256(data))
	}
	before := sum()

	docs := vss.ShareName(set)
	// Not a Previous Version of share1.
	if links, _ := filepath.Glob(filepath.Join(tb.PreviousVersionsDir(), "share1", "*")); len(links) != 1 {
		t.Fatalf("previous versions of share1: %v", links)
	}
	get := func(name string) []byte {
		t.Helper()
		local := filepath.Join(work, strings.ReplaceAll(name, "/", "_"))
		out, err := tb.SMBClient(ctx, docs, fmt.Sprintf(`get "%s" "%s"`, strings.ReplaceAll(name, "/", `\`), local))
		if err != nil {
			t.Fatalf("smbclient get %s: %v: %s", name, err, out)
		}
		data, err := os.ReadFile(local)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	bc, err := vss.ParseBackupComponents(get(vss.BackupComponentsFile))
	if err != nil {
		t.Fatal(err)
	}
	comp, err := bc.Component(writerID, "", "files")
	if err != nil {
		t.Fatal(err)
	}
	md, _ := comp.Metadata()
	if !comp.BackupSucceeded || string(md) != "annotated "+set.String()+"\n" {
		t.Fatalf("component %+v metadata %q", comp, md)
	}
	if w, err := vss.ParseWriterMetadata(get(vss.WriterMetadataFile(instanceID))); err != nil || w.Identification.WriterID != writerID {
		t.Fatalf("writer metadata %+v %v", w, err)
	}
	st, err := vss.ParseWriterStatus(get(vss.WriterStatusFile))
	if err != nil || len(st.Writers) != 1 || st.Writers[0].Failed() {
		t.Fatalf("status %+v %v", st, err)
	}
	// Read-only, and hidden from the share list.
	if out, err := tb.SMBClient(ctx, docs, "mkdir intruder"); err == nil && !strings.Contains(out, "NT_STATUS_") {
		t.Fatalf("wrote to the documents share: %s", out)
	}
	names, err := tb.ListShares(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.EqualFold(n, docs) {
			t.Fatalf("%s is listed", docs)
		}
	}
	// The whole set, read with go-smb2 (what a Go requestor does).
	share := bedtest.Mount(t, tb, docs)
	defer share.Umount()
	vset, err := vss.ReadSet(share.DirFS("."))
	if err != nil {
		t.Fatal(err)
	}
	if vset.Writer(instanceID) == nil || len(vset.Components.Writers) != 1 {
		t.Fatalf("set read over SMB: %+v", vset)
	}
	if err := share.WriteFile("intruder.xml", []byte("x"), 0o644); err == nil {
		t.Fatal("go-smb2 wrote to the documents share")
	}

	// The same documents through the private writer-control interface on
	// smbd's \PIPE\FssagentRpc, authorized by the SMB session.
	cred := credential.NewFromPassword(testbed.User, testbed.Password)
	smb := msmb2.NewDialer(msmb2.WithSecurity(gssapi.WithCredential(cred), gssapi.WithMechanismFactory(ssp.NTLM)))
	cc, err := dcerpc.Dial(ctx, "ncacn_np:127.0.0.1[FssagentRpc]", dcerpc.WithSMBPort(tb.Port), dcerpc.WithSMBDialer(smb))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close(context.Background())
	wc, err := writerctl.New(context.WithoutCancel(ctx), cc, dcerpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	viaRPC, err := wc.ReadSetDocument(ctx, set, vss.BackupComponentsFile)
	if err != nil || string(viaRPC) != string(get(vss.BackupComponentsFile)) {
		t.Fatalf("ReadSetDocument over the pipe: %v\n%s", err, viaRPC)
	}
	if after := sum(); after != before {
		t.Fatal("the snapshot's data changed")
	}

	if err := cl.Delete(ctx, set, res.Mappings); err != nil {
		t.Fatal(err)
	}
	if out, err := tb.SMBClient(ctx, docs, "ls"); err == nil && !strings.Contains(out, "NT_STATUS_BAD_NETWORK_NAME") {
		t.Fatalf("documents share outlived its set: %s", out)
	}
	if _, err := os.Stat(filepath.Join(tb.StateDir, "vss", set.String())); !os.IsNotExist(err) {
		// Release runs in the background; give it a moment.
		deadline := time.Now().Add(10 * time.Second)
		for ; err == nil && time.Now().Before(deadline); _, err = os.Stat(filepath.Join(tb.StateDir, "vss", set.String())) {
			time.Sleep(20 * time.Millisecond)
		}
		if err == nil {
			t.Fatal("documents directory left behind")
		}
	}
}
