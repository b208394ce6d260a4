package server

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fsrvpd/fsrvpd/client"
	"github.com/fsrvpd/fsrvpd/client/vss"
	"github.com/fsrvpd/fsrvpd/server/config"
	"github.com/fsrvpd/fsrvpd/server/writers"
	"github.com/fsrvpd/fsrvpd/storage/storagetest"
)

// The writer's transaction keeps three invariants: log has n rows, the
// balances sum to 0, account 2 holds n.
const ledgerTxn = `BEGIN IMMEDIATE; UPDATE c SET n=n+1; INSERT INTO log(n) SELECT n FROM c; ` +
	`UPDATE acct SET bal=bal-1 WHERE id=1; UPDATE acct SET bal=bal+1 WHERE id=2; COMMIT;`

type ledger struct {
	dir, db, marks string
	writerID       string
}

// startLedger creates the database in share1 of a demo daemon, starts a
// process that commits transactions continuously, and returns the daemon's
// configuration with the ledger writer added.
func startLedger(tb testing.TB) (config.Config, *ledger) {
	tb.Helper()
	storagetest.RequireCommand(tb, "sqlite3")
	storagetest.RequireCommand(tb, "bash")
	dir := tb.TempDir()
	c := config.Demo(dir)
	c.Server.Listen = []string{"127.0.0.1:0"}
	c.Server.EndpointMapper = ""
	makeShares(tb, c, false)
	l := &ledger{dir: filepath.Join(c.Shares[0].Path, "ledger"), marks: filepath.Join(dir, "marks"), writerID: uuid.NewString()}
	l.db = filepath.Join(l.dir, "ledger.db")
	os.MkdirAll(l.dir, 0o755)
	os.MkdirAll(l.marks, 0o755)
	out, err := exec.Command("sqlite3", l.db, "CREATE TABLE c(n INTEGER); INSERT INTO c VALUES(0); "+
		"CREATE TABLE log(n INTEGER, pad TEXT); CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER); INSERT INTO acct VALUES(1,0),(2,0);").CombinedOutput()
	if err != nil {
		tb.Fatalf("%v: %s", err, out)
	}
	// The helper fsrvpd ships (server/writers/sessions).
	session, err := filepath.Abs(filepath.Join("writers", "sessions", "sqlite-session"))
	if err != nil {
		tb.Fatal(err)
	}
	mark := func(name string) writers.Hook {
		return writers.Hook{Command: []string{"sh", "-c", `echo "$FSRVPD_SET_ID" >> ` + filepath.Join(l.marks, name)}}
	}
	c.Writer = []writers.Writer{{
		Name: "ledger", WriterID: l.writerID, InstanceID: uuid.NewString(), Usage: "USER_DATA", DataSource: "TRANSACTION_DB",
		Components: []writers.Component{{
			Type: "database", LogicalPath: "ledger", Name: "main", RestoreMetadata: true,
			Files:    []writers.FileSpec{{Path: l.dir, Filespec: "ledger.db"}},
			LogFiles: []writers.FileSpec{{Path: l.dir, Filespec: "ledger.db-journal"}},
			Restore:  &writers.Restore{Method: "STOP_RESTART_SERVICE", Service: "ledger.service"},
		}},
		Session: &writers.Session{Command: []string{session, l.db}, Phases: []writers.Phase{"freeze", "thaw", "post-snapshot"}},
		Hooks:   map[writers.Phase]writers.Hook{"prepare": mark("prepare"), "backup-complete": mark("backup-complete")},
	}}
	// A loaded CI machine can make the session wait long for the lock.
	c.Writers.FreezeTimeout.Duration = 30 * time.Second
	if err := c.Validate(); err != nil {
		tb.Fatal(err)
	}

	// The writer process: one sqlite3 per transaction, back to back. (One
	// long-lived sqlite3 fed through a pipe never pauses between
	// transactions, and SQLite's locks are not fair: it would starve the
	// session's BEGIN IMMEDIATE.) A transaction that fails (busy beyond the
	// timeout) rolls back as a whole: -bail stops at the failing statement
	// and the transaction is never committed.
	w := exec.Command("bash", "-c", `while :; do sqlite3 -batch -bail -cmd ".timeout 30000" `+l.db+` "`+ledgerTxn+`" || exit 1; done`)
	w.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	w.Stderr = os.Stderr
	if err := w.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { syscall.Kill(-w.Process.Pid, syscall.SIGKILL); w.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for l.counter(tb, l.db) < 50 {
		if time.Now().After(deadline) {
			tb.Fatal("the writer process does not write")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return c, l
}

// counter reads n from a copy of the database.
func (l *ledger) counter(tb testing.TB, db string) int {
	out, _ := exec.Command("sqlite3", "-cmd", ".timeout 5000", db, "SELECT n FROM c").Output()
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return n
}

func startDaemon(tb testing.TB, c config.Config) (string, *Daemon) {
	tb.Helper()
	d := runDaemon(tb, c, nil)
	return d.Addrs()[0].String(), d
}

// registryPath finds the path of an exposed share in the TCP-only
// registry (shares.json in the state dir).
func registryPath(tb testing.TB, stateDir, name string) string {
	tb.Helper()
	var reg struct {
		Shares []struct{ Name, Path string } `json:"shares"`
	}
	data, err := os.ReadFile(filepath.Join(stateDir, "shares.json"))
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(data, &reg); err != nil {
		tb.Fatal(err)
	}
	for _, s := range reg.Shares {
		if strings.EqualFold(s.Name, name) {
			return s.Path
		}
	}
	tb.Fatalf("share %s not in the registry: %s", name, data)
	return ""
}

// TestSQLiteWriterConsistentSnapshot: while a process keeps committing
// transactions, a BACKUP shadow copy of the share holding the database,
// with the ledger writer holding the write lock across the freeze, has an
// intact database, no hot journal, and every invariant of the transaction;
// the set's documents describe the writer and its success.
func TestSQLiteWriterConsistentSnapshot(t *testing.T) {
	c, l := startLedger(t)
	addr, _ := startDaemon(t, c)
	ctx := t.Context()
	cl, err := client.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for round := 0; round < 3; round++ {
		res, err := cl.Create(ctx, client.CreateRequest{Context: 0, Shares: []string{"share1"}, RecoveryComplete: true})
		if err != nil {
			t.Fatal(err)
		}
		m := res.Mappings[0]
		snap := registryPath(t, c.Server.StateDir, m.ExposedName[strings.LastIndexByte(m.ExposedName, '\\')+1:])
		snapDir := filepath.Join(snap, "ledger")
		if _, err := os.Stat(filepath.Join(snapDir, "ledger.db-journal")); err == nil {
			t.Fatal("hot journal in the snapshot: a transaction was half-written")
		}
		// Check a copy: opening the snapshot must not change it.
		work := t.TempDir()
		data, err := os.ReadFile(filepath.Join(snapDir, "ledger.db"))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(work, "ledger.db"), data, 0o644)
		out, err := exec.Command("sqlite3", filepath.Join(work, "ledger.db"),
			"PRAGMA integrity_check; SELECT n, (SELECT count(*) FROM log), (SELECT sum(bal) FROM acct), (SELECT bal FROM acct WHERE id=2) FROM c;").CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		lines := strings.Fields(string(out))
		if len(lines) != 2 || lines[0] != "ok" {
			t.Fatalf("integrity_check: %s", out)
		}
		f := strings.Split(lines[1], "|")
		if len(f) != 4 || f[0] != f[1] || f[2] != "0" || f[3] != f[0] || f[0] == "0" {
			t.Fatalf("invariants broken in the snapshot: n|count(log)|sum(bal)|bal2 = %s", lines[1])
		}
		live := l.counter(t, l.db)
		n, _ := strconv.Atoi(f[0])
		t.Logf("round %d: snapshot at n=%d, live n=%d", round, n, live)

		// The documents, where the set's hidden share serves them.
		docs := registryPath(t, c.Server.StateDir, vss.ShareName(res.ShadowCopySetID))
		raw, err := os.ReadFile(filepath.Join(docs, vss.BackupComponentsFile))
		if err != nil {
			t.Fatal(err)
		}
		bc, err := vss.ParseBackupComponents(raw)
		if err != nil {
			t.Fatal(err)
		}
		comp, err := bc.Component(l.writerID, "ledger", "main")
		if err != nil {
			t.Fatal(err)
		}
		md, _ := comp.Metadata()
		if !comp.BackupSucceeded || string(md) != "set="+res.ShadowCopySetID.String()+"\n" {
			st, _ := os.ReadFile(filepath.Join(docs, vss.WriterStatusFile))
			t.Fatalf("component %+v metadata %q; %s", comp, md, st)
		}
		raw, err = os.ReadFile(filepath.Join(docs, vss.WriterStatusFile))
		if err != nil {
			t.Fatal(err)
		}
		st, err := vss.ParseWriterStatus(raw)
		if err != nil || len(st.Writers) != 1 || st.Writers[0].Failed() || st.Writers[0].FreezeWindowMicroseconds <= 0 {
			t.Fatalf("status %+v %v", st, err)
		}
		wm, err := os.ReadFile(filepath.Join(docs, vss.WriterMetadataFile(c.Writer[0].InstanceID)))
		if err != nil {
			t.Fatal(err)
		}
		if md, err := vss.ParseWriterMetadata(wm); err != nil || md.Identification.FriendlyName != "ledger" {
			t.Fatalf("writer metadata %v", err)
		}
		if _, err := vss.ReadSet(os.DirFS(docs)); err != nil {
			t.Fatal(err)
		}
		t.Logf("freeze window %d µs", st.Writers[0].FreezeWindowMicroseconds)

		if err := cl.Delete(ctx, res.ShadowCopySetID, res.Mappings); err != nil {
			t.Fatal(err)
		}
		mark := filepath.Join(l.marks, "backup-complete")
		deadline := time.Now().Add(10 * time.Second)
		for {
			b, _ := os.ReadFile(mark)
			if strings.Contains(string(b), res.ShadowCopySetID.String()) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("backup-complete hook did not run")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if b, _ := os.ReadFile(filepath.Join(l.marks, "prepare")); !strings.Contains(string(b), res.ShadowCopySetID.String()) {
			t.Fatal("prepare hook did not run")
		}
	}
	if l.counter(t, l.db) == 0 {
		t.Fatal("writer stopped")
	}
}

// BenchmarkWriterFreezeWindow reports the ledger writer's freeze window
// (FIFREEZE-free: BEGIN IMMEDIATE held by the session from freeze to
// thaw, around a dir-backend snapshot) while the writer process commits
// continuously; one op is a whole BACKUP create and delete.
func BenchmarkWriterFreezeWindow(b *testing.B) {
	c, _ := startLedger(b)
	addr, _ := startDaemon(b, c)
	ctx := b.Context()
	cl, err := client.Dial(ctx, addr)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	var total time.Duration
	for b.Loop() {
		res, err := cl.Create(ctx, client.CreateRequest{Shares: []string{"share1"}, RecoveryComplete: true})
		if err != nil {
			b.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(registryPath(b, c.Server.StateDir, vss.ShareName(res.ShadowCopySetID)), vss.WriterStatusFile))
		if err != nil {
			b.Fatal(err)
		}
		st, err := vss.ParseWriterStatus(raw)
		if err != nil || len(st.Writers) != 1 {
			b.Fatal(err)
		}
		total += time.Duration(st.Writers[0].FreezeWindowMicroseconds) * time.Microsecond
		if err := cl.Delete(ctx, res.ShadowCopySetID, res.Mappings); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N), "freeze-µs/op")
}
