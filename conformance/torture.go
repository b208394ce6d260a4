package conformance

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/fsrvpd/fsrvpd/conformance/testbed"
)

// TortureSection is the Section of the smbtorture results in a Report.
const TortureSection = "smbtorture rpc.fsrvp"

// TortureTests are the tests of smbtorture's rpc.fsrvp (Samba 4.17); a
// test missing from smbtorture's output is reported as failed.
var TortureTests = []string{"share_sd", "seq_timeout", "enum_created", "sc_share_io", "bad_id",
	"sc_set_abort", "create_simple", "set_ctx", "get_version", "is_path_supported"}

// TortureConfig says how to run smbtorture against an FSRVP server behind
// an SMB server.
type TortureConfig struct {
	Host           string // the SMB server
	Port           int    // its SMB port; 0: 445
	User, Password string
	// ClientConf, optional, is the smb.conf smbtorture reads
	// (--configfile); a testbed's CLIENT_CONF keeps its state private.
	ClientConf string
	// SeqTimeout, if non-zero, is the server's message sequence timer,
	// passed rounded up to seconds as fss:sequence timeout (smbtorture's
	// seq_timeout test waits that long).
	SeqTimeout time.Duration
	// Target is smbtorture's --target; "" means samba3.
	Target string
	// Binary is the smbtorture to run; "" means smbtorture from PATH.
	Binary string
	// Suite is the test (suite) to run; "" means rpc.fsrvp.
	Suite string
}

// TortureTarget is the TortureConfig of a testbed from its KEY=value
// description (see TestbedTarget).
func TortureTarget(env map[string]string) (TortureConfig, error) {
	for _, k := range []string{"ADDR", "PORT", "USER", "PASSWORD"} {
		if env[k] == "" {
			return TortureConfig{}, fmt.Errorf("testbed: %s is not set", k)
		}
	}
	port, err := strconv.Atoi(env["PORT"])
	if err != nil || port <= 0 || port > 65535 {
		return TortureConfig{}, fmt.Errorf("testbed: PORT %q is not a port", env["PORT"])
	}
	cfg := TortureConfig{Host: env["ADDR"], Port: port, User: env["USER"], Password: env["PASSWORD"], ClientConf: env["CLIENT_CONF"]}
	if s := env["SEQ_TIMEOUT"]; s != "" {
		if cfg.SeqTimeout, err = time.ParseDuration(s); err != nil {
			return TortureConfig{}, fmt.Errorf("testbed: SEQ_TIMEOUT: %w", err)
		}
	}
	return cfg, nil
}

// Args are smbtorture's arguments (the password included).
func (cfg TortureConfig) Args() []string {
	target, suite := cfg.Target, cfg.Suite
	if target == "" {
		target = "samba3"
	}
	if suite == "" {
		suite = "rpc.fsrvp"
	}
	var args []string
	if cfg.ClientConf != "" {
		args = append(args, "--configfile="+cfg.ClientConf)
	}
	args = append(args, "--target="+target, "ncacn_np:"+cfg.Host, "-U"+cfg.User+"%"+cfg.Password)
	if cfg.Port != 0 {
		args = append(args, "--option=smb ports="+strconv.Itoa(cfg.Port))
	}
	if cfg.SeqTimeout > 0 {
		n := int((cfg.SeqTimeout + time.Second - 1) / time.Second)
		args = append(args, "--option=fss:sequence timeout="+strconv.Itoa(n))
	}
	return append(args, suite)
}

// RunSmbtorture runs smbtorture (one process) and folds its results into a
// Report (FoldTorture). It returns smbtorture's output too. An error means
// smbtorture could not run or reported nothing.
func RunSmbtorture(ctx context.Context, cfg TortureConfig) (Report, string, error) {
	bin := cfg.Binary
	if bin == "" {
		bin = "smbtorture"
	}
	start := time.Now()
	out, err := exec.CommandContext(ctx, bin, cfg.Args()...).CombinedOutput()
	res := testbed.ParseTorture(string(out))
	var ee *exec.ExitError
	if err != nil && (len(res) == 0 || !errors.As(err, &ee)) {
		return Report{}, string(out), fmt.Errorf("smbtorture: %w", err)
	}
	if len(res) == 0 {
		return Report{}, string(out), errors.New("smbtorture reported no results")
	}
	rep := FoldTorture(res, TortureTests)
	rep.Target = "smbtorture ncacn_np:" + cfg.Host
	if cfg.Port != 0 {
		rep.Target += " (SMB port " + strconv.Itoa(cfg.Port) + ")"
	}
	rep.Started, rep.Duration = start, time.Since(start)
	return rep, string(out), nil
}

// FoldTorture turns smbtorture results into Results with IDs
// "smbtorture/<test>" and Section TortureSection: success passes, failure
// and error fail (expected success, observed the outcome and smbtorture's
// reason), skip and xfail are skipped. Each test of want that has no result
// fails; results of other tests are added as they come.
func FoldTorture(res []testbed.TortureResult, want []string) Report {
	var rep Report
	got := map[string]testbed.TortureResult{}
	var order []string
	for _, r := range res {
		name := strings.TrimPrefix(r.Name, "fsrvp.")
		if _, ok := got[name]; !ok {
			order = append(order, name)
		}
		got[name] = r
	}
	seen := map[string]bool{}
	add := func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		res := Result{ID: "smbtorture/" + name, Section: TortureSection, Title: "smbtorture rpc.fsrvp " + name, Status: Pass}
		r, ok := got[name]
		switch {
		case !ok:
			res.Status, res.Expected, res.Observed = Fail, "success", "no result"
			res.Message = "smbtorture printed no result for " + name
		case r.Outcome == "success":
		case r.Outcome == "skip" || r.Outcome == "xfail":
			res.Status, res.Message = Skip, "smbtorture: "+r.Outcome
			if r.Reason != "" {
				res.Message += ": " + r.Reason
			}
		default:
			res.Status, res.Expected, res.Observed = Fail, "success", r.Outcome
			if r.Reason != "" {
				res.Observed += ": " + r.Reason
			}
			res.Message = "smbtorture " + r.Name
		}
		rep.Add(res)
	}
	for _, n := range want {
		add(n)
	}
	for _, n := range order {
		add(n)
	}
	return rep
}
