package testbed

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
)

// Rpcclient runs rpcclient against the testbed's smbd (ncacn_np) as
// user%pw with the ';'-separated commands and returns its combined output.
// Note that rpcclient exits 0 on many FSRVP failures: parse the output.
// With PipeAuth "rpc" the bind is signed (NTLM), as fsrvpd then requires.
func (tb *Testbed) Rpcclient(ctx context.Context, user, pw, commands string) (string, error) {
	binding := "127.0.0.1"
	if tb.PipeAuth == "rpc" {
		binding = "ncacn_np:127.0.0.1[sign]"
	}
	out, err := exec.CommandContext(ctx, "rpcclient", "-s", tb.ClientConf, "-p", strconv.Itoa(tb.Port),
		"-U", user+"%"+pw, binding, "-c", commands).CombinedOutput()
	return string(out), err
}

// SMBClient runs smbclient on //127.0.0.1/share as root with the commands.
func (tb *Testbed) SMBClient(ctx context.Context, share, commands string) (string, error) {
	out, err := exec.CommandContext(ctx, "smbclient", "-s", tb.ClientConf, "//127.0.0.1/"+share, "-p", strconv.Itoa(tb.Port),
		"-U", User+"%"+Password, "-c", commands).CombinedOutput()
	return string(out), err
}

// ListShares runs smbclient -L and returns the disk shares it lists.
func (tb *Testbed) ListShares(ctx context.Context) ([]string, error) {
	out, err := exec.CommandContext(ctx, "smbclient", "-s", tb.ClientConf, "-L", "//127.0.0.1", "-p", strconv.Itoa(tb.Port),
		"-U", User+"%"+Password, "-g").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("smbclient -L: %v: %s", err, out)
	}
	var names []string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Split(l, "|"); len(f) >= 2 && f[0] == "Disk" {
			names = append(names, f[1])
		}
	}
	return names, nil
}

// AddUser creates a unix user without home or login shell and adds it to
// the private passdb with pw. Down deletes it (RemoveUser earlier).
func (tb *Testbed) AddUser(ctx context.Context, name, pw string) error {
	if _, err := user.Lookup(name); err == nil {
		return fmt.Errorf("user %s exists already: not touching it", name)
	}
	if out, err := exec.CommandContext(ctx, "useradd", "-M", "-N", "-d", "/nonexistent", "-s", "/usr/sbin/nologin",
		"-c", "fsrvpd testbed "+tb.Dir, name).CombinedOutput(); err != nil {
		return fmt.Errorf("useradd %s: %v: %s", name, err, out)
	}
	tb.Users = append(tb.Users, name)
	if err := tb.save(); err != nil {
		return err
	}
	return tb.smbpasswd(ctx, name, pw)
}

// RemoveUser deletes a user AddUser added.
func (tb *Testbed) RemoveUser(name string) error {
	for i, u := range tb.Users {
		if u == name {
			exec.Command("smbpasswd", "-c", tb.SMBConf, "-x", name).Run()
			if err := removeUnixUser(name); err != nil {
				return err
			}
			tb.Users = append(tb.Users[:i], tb.Users[i+1:]...)
			return tb.save()
		}
	}
	return fmt.Errorf("user %s was not added by this testbed", name)
}

func removeUnixUser(name string) error {
	if _, err := user.Lookup(name); err != nil {
		return nil
	}
	if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
		return fmt.Errorf("userdel %s: %v: %s", name, err, out)
	}
	return nil
}

// TortureResult is one smbtorture test's outcome.
type TortureResult struct {
	Name    string // e.g. "fsrvp.share_sd"
	Outcome string // "success", "failure", "error", "skip", "xfail"
	Reason  string // the text smbtorture printed with a failure
}

// Smbtorture runs smbtorture --target=samba3 against the testbed's smbd as
// root with the given tests (e.g. "rpc.fsrvp"), passing the sequence
// timeout as fss:sequence timeout when shortened. It returns the
// outcome of every test and smbtorture's whole output.
func (tb *Testbed) Smbtorture(ctx context.Context, tests ...string) ([]TortureResult, string, error) {
	args := []string{"--configfile=" + tb.ClientConf, "--target=samba3", "ncacn_np:127.0.0.1", "-U" + User + "%" + Password,
		"--option=smb ports=" + strconv.Itoa(tb.Port)}
	if n := tb.SeqTimeoutSeconds(); n > 0 {
		args = append(args, "--option=fss:sequence timeout="+strconv.Itoa(n))
	}
	out, err := exec.CommandContext(ctx, "smbtorture", append(args, tests...)...).CombinedOutput()
	res := ParseTorture(string(out))
	if len(res) == 0 && err != nil {
		return nil, string(out), fmt.Errorf("smbtorture: %w", err)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return res, string(out), err
	}
	return res, string(out), nil
}

// ParseTorture reads smbtorture's subunit-like lines ("success: name",
// "failure: name [ reason ]", ...).
func ParseTorture(out string) []TortureResult {
	var res []TortureResult
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		l := sc.Text()
		for _, oc := range []string{"success", "failure", "error", "skip", "xfail"} {
			rest, ok := strings.CutPrefix(l, oc+": ")
			if !ok {
				continue
			}
			name, reason, multi := strings.Cut(rest, " [")
			r := TortureResult{Name: strings.TrimSpace(name), Outcome: oc}
			if reason = strings.TrimSpace(reason); multi && strings.HasSuffix(reason, "]") {
				r.Reason = strings.TrimSpace(strings.TrimSuffix(reason, "]"))
			} else if multi {
				var b strings.Builder
				b.WriteString(reason)
				for sc.Scan() && strings.TrimSpace(sc.Text()) != "]" {
					b.WriteString(" " + strings.TrimSpace(sc.Text()))
				}
				r.Reason = strings.TrimSpace(b.String())
			}
			res = append(res, r)
		}
	}
	return res
}
