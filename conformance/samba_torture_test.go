package conformance_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fsrvpd/fsrvpd/client"
	"github.com/fsrvpd/fsrvpd/conformance/testbed"
	"github.com/fsrvpd/fsrvpd/conformance/testbed/bedtest"
)

// tortureTests are smbtorture's rpc.fsrvp tests (Samba 4.17).
var tortureTests = []string{"share_sd", "seq_timeout", "enum_created", "sc_share_io", "bad_id",
	"sc_set_abort", "create_simple", "set_ctx", "get_version", "is_path_supported"}

// Known failures, shared by both modes; each is explained, none hidden.
// None left: share_sd passes since shares/samba mirrors snapshot shares
// into the registry (the testbed has "registry shares = yes"), which
// srvsvc (samba-dcerpcd's rpcd_classic, deaf to reloads) loads on demand;
// enum_created and sc_share_io since an Exposed set no longer blocks Start
// in compat "samba" mode.
var tortureKnownCommon = map[string]string{}

// Failures of spec mode: Samba's deviations that smbtorture encodes
// (fsrvp.CompatSamba), and what they knock on.
var tortureKnownSpec = map[string]string{
	"bad_id":      "DeleteShareMapping(unknown ShadowCopyId) is FSRVP_E_OBJECT_NOT_FOUND per §3.1.4.12; smbtorture wants Samba's E_INVALIDARG",
	"seq_timeout": "Add to a timed-out set is FSRVP_E_SHADOWCOPYSET_ID_MISMATCH per §3.1.4.4; smbtorture wants Samba's E_INVALIDARG",
	"sc_share_io": "GetShareMapping's ShadowCopyShareName is a UNC name (§2.2.1.1); smbtorture tree-connects to it as a bare share name: NT_STATUS_BAD_NETWORK_NAME",
	// Passes in compat mode with the same server and share mirror: the only
	// difference is the UNC ShadowCopyShareName, which smbtorture passes to
	// NetShareGetInfo as the share name.
	"share_sd": "smbtorture passes GetShareMapping's UNC ShadowCopyShareName (§2.2.1.1) to NetShareGetInfo as a bare share name: WERR_INVALID_NAME",
	// share_sd fails after its Expose and leaves that set exposed.
	"enum_created": "knock-on of share_sd: its leaked exposed snapshot makes the first FSCTL_SRV_ENUM_SNAPS count 1 (want 0)",
}

// TestSambaSmbtorture runs smbtorture rpc.fsrvp as one process against
// fsrvpd behind smbd, with sequence_timeout 1s, in compat "samba" mode and in
// spec mode: every test outside the known failures must pass, every
// failure must be a known one.
func TestSambaSmbtorture(t *testing.T) {
	skipUnlessSambaTestbed(t, "smbtorture")
	for _, mode := range []string{"samba", "spec"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			known := map[string]string{}
			for k, v := range tortureKnownCommon {
				known[k] = v
			}
			if mode == "spec" {
				for k, v := range tortureKnownSpec {
					if known[k] != "" {
						v = known[k] + "; and " + v
					}
					known[k] = v
				}
			}
			bed := bedtest.Up(t, testbed.Options{SambaCompat: mode == "samba", SeqTimeout: time.Second, RegistryMirror: true})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			res, out, err := bed.Smbtorture(ctx, "rpc.fsrvp")
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			got := map[string]testbed.TortureResult{}
			for _, r := range res {
				got[strings.TrimPrefix(r.Name, "fsrvp.")] = r
			}
			var passed []string
			for _, name := range tortureTests {
				r, ok := got[name]
				switch {
				case !ok:
					t.Errorf("%s: no result in smbtorture's output", name)
				case r.Outcome == "success":
					passed = append(passed, name)
					if why, ok := known[name]; ok {
						t.Errorf("%s passes although listed as a known failure (%s): update the list", name, why)
					}
				case known[name] != "":
					t.Logf("known failure %s: %s\n    smbtorture: %s", name, known[name], r.Reason)
				default:
					t.Errorf("%s: %s: %s", name, r.Outcome, r.Reason)
				}
			}
			t.Logf("compat %s: %d/%d pass: %s", mode, len(passed), len(tortureTests), strings.Join(passed, " "))
			ciSummary(fmt.Sprintf("smbtorture rpc.fsrvp against fsrvpd behind smbd, compat %s: %d/%d pass", mode, len(passed), len(tortureTests)))
			if t.Failed() {
				t.Logf("smbtorture output:\n%s", out)
			}
			if mode != "samba" {
				return
			}
			if len(passed) != len(tortureTests) {
				t.Errorf("compat samba: %d/%d pass, want all", len(passed), len(tortureTests))
			}
			// sc_share_io passes on its own too.
			res, out, err = bed.Smbtorture(ctx, "rpc.fsrvp.fsrvp.sc_share_io")
			if err != nil || len(res) != 1 || res[0].Outcome != "success" {
				t.Errorf("sc_share_io alone: %v %+v\n%s", err, res, out)
			}
		})
	}
}

// BenchmarkSambaCreateExpose: the server-side time of the FSRVP calls of a
// create+expose (GetSupportedVersion, SetContext, Start, Add per share,
// Prepare, Commit, Expose, GetShareMapping per share) through smbd on an
// open pipe, for one and for two shares; the delete is not timed.
func BenchmarkSambaCreateExpose(b *testing.B) {
	skipUnlessSambaTestbed(b)
	for _, backend := range []string{"dir", "btrfs"} {
		b.Run(backend, func(b *testing.B) {
			if _, err := exec.LookPath("mkfs.btrfs"); err != nil && backend == "btrfs" {
				b.Skip("btrfs-progs not installed")
			}
			bed := bedtest.Up(b, testbed.Options{Backend: backend})
			for i := range 64 { // some content to snapshot
				os.WriteFile(filepath.Join(bed.Shares["share1"], fmt.Sprintf("f%d", i)), make([]byte, 4096), 0o644)
				os.WriteFile(filepath.Join(bed.Shares["share2"], fmt.Sprintf("f%d", i)), make([]byte, 4096), 0o644)
			}
			np := dialNP(b, bed, testbed.User, testbed.Password)
			c := client.New(np.rpc, client.WithShareHost("127.0.0.1"), client.WithTimeout(time.Minute))
			ctx := context.Background()
			for _, shares := range [][]string{{"share1"}, {"share1", "share2"}} {
				b.Run(fmt.Sprintf("shares=%d", len(shares)), func(b *testing.B) {
					var total time.Duration
					n := 0
					for b.Loop() {
						b.StopTimer()
						start := time.Now()
						b.StartTimer()
						res, err := c.Create(ctx, client.CreateRequest{Context: client.CtxBackup, Shares: shares, RecoveryComplete: false})
						b.StopTimer()
						total += time.Since(start)
						n++
						if err != nil {
							b.Fatal(err)
						}
						if err := c.RecoveryCompleteShadowCopySet(ctx, res.ShadowCopySetID); err != nil {
							b.Fatal(err)
						}
						if err := c.Delete(ctx, res.ShadowCopySetID, res.Mappings); err != nil {
							b.Fatal(err)
						}
						b.StartTimer()
					}
					b.ReportMetric(float64(total.Microseconds())/1000/float64(n), "ms/create+expose")
				})
			}
		})
	}
}

// BenchmarkSambaAgents puts fsrvpd next to Samba's own agent (rpcd_fsrvp,
// the testbed's -agent samba) in one run, both on the btrfs backend behind
// the same kind of private smbd: the time of the FSRVP calls of a
// create+expose of one and of two shares (IsPathSupported per share,
// GetSupportedVersion, SetContext, Start, Add per share, Prepare, Commit,
// Expose, GetShareMapping per share) on an already open pipe, so no
// process start (rpcd_fsrvp is spawned at the testbed's first call).
// RecoveryComplete and Delete are not timed. It reports the median per
// cell and prints a table of medians (with min and max) of both agents.
//
// Samba's agent names its snapshots @GMT-<time> by the second and fails a
// second snapshot of a share within the same second, so its iterations
// sleep 1.1 s (untimed): run with a fixed count, e.g.
//
//	go test -run '^$' -bench SambaAgents -benchtime 10x ./conformance/
//
// Without /usr/libexec/samba/rpcd_fsrvp only fsrvpd is measured.
func BenchmarkSambaAgents(b *testing.B) {
	skipUnlessSambaTestbed(b)
	if _, err := exec.LookPath("mkfs.btrfs"); err != nil {
		b.Skip("btrfs-progs not installed")
	}
	agents := []string{testbed.AgentFsrvpd, testbed.AgentSamba}
	if _, err := os.Stat(testbed.SambaAgentBinary); err != nil {
		b.Logf("Samba's agent %s is not installed: measuring fsrvpd only", testbed.SambaAgentBinary)
		agents = agents[:1]
	}
	type row struct {
		agent         string
		shares, n     int
		med, min, max time.Duration
	}
	var rows []row
	for _, agent := range agents {
		b.Run("agent="+agent, func(b *testing.B) {
			bed := bedtest.Up(b, testbed.Options{Backend: "btrfs", Agent: agent})
			for i := range 64 { // some content to snapshot
				os.WriteFile(filepath.Join(bed.Shares["share1"], fmt.Sprintf("f%d", i)), make([]byte, 4096), 0o644)
				os.WriteFile(filepath.Join(bed.Shares["share2"], fmt.Sprintf("f%d", i)), make([]byte, 4096), 0o644)
			}
			np := dialNP(b, bed, testbed.User, testbed.Password)
			c := client.New(np.rpc, client.WithShareHost("127.0.0.1"), client.WithTimeout(time.Minute))
			ctx := context.Background()
			for _, shares := range [][]string{{"share1"}, {"share1", "share2"}} {
				b.Run(fmt.Sprintf("shares=%d", len(shares)), func(b *testing.B) {
					var samples []time.Duration
					for b.Loop() {
						start := time.Now()
						res, err := c.Create(ctx, client.CreateRequest{Context: client.CtxBackup, Shares: shares})
						d := time.Since(start)
						b.StopTimer()
						if err != nil {
							b.Fatal(err)
						}
						samples = append(samples, d)
						if err := c.RecoveryCompleteShadowCopySet(ctx, res.ShadowCopySetID); err != nil {
							b.Fatal(err)
						}
						if err := c.Delete(ctx, res.ShadowCopySetID, res.Mappings); err != nil {
							b.Fatal(err)
						}
						if agent == testbed.AgentSamba {
							time.Sleep(1100 * time.Millisecond) // snapshot names by the second
						}
						b.StartTimer()
					}
					slices.Sort(samples)
					med := samples[len(samples)/2]
					if len(samples)%2 == 0 {
						med = (samples[len(samples)/2-1] + med) / 2
					}
					b.ReportMetric(float64(med.Microseconds())/1000, "ms/median")
					rows = append(rows, row{agent, len(shares), len(samples), med, samples[0], samples[len(samples)-1]})
				})
			}
		})
	}
	var t strings.Builder
	t.WriteString("create+expose through smbd, FSRVP calls on an open pipe, btrfs:\n| agent | shares | n | median | min | max |\n|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&t, "| %s | %d | %d | %.2f ms | %.2f | %.2f |\n", r.agent, r.shares, r.n,
			float64(r.med.Microseconds())/1000, float64(r.min.Microseconds())/1000, float64(r.max.Microseconds())/1000)
	}
	fmt.Print(t.String()) // on stdout: shown without -v too
}
