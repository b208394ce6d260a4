// Package winbind is an NTLM credential source (an ntlm.Verifier) backed
// by Samba's winbindd, so that a Samba server's existing domain accounts
// work with fsrvpd without copying any secret:
//
//   - the NTLM response is checked by `ntlm_auth
//     --helper-protocol=ntlm-server-1` (the squid/FreeRADIUS helper
//     protocol), which hands it to winbindd (and winbindd to the domain
//     controller); with Request-User-Session-Key it returns the
//     SessionBaseKey (MS-NLMP 3.3.2) the acceptor derives its keys from;
//   - the account's SIDs come from `wbinfo --name-to-sid` and
//     `wbinfo --user-sids` (domain groups and the BUILTIN aliases such as
//     S-1-5-32-544 Administrators and S-1-5-32-551 Backup Operators), for
//     authorization.
//
// ntlm_auth must be able to reach winbindd's privileged pipe: fsrvpd runs
// as root or in the winbindd_priv group.
package winbind

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/fsrvpd/fsrvpd/rpc"
	"github.com/fsrvpd/fsrvpd/rpc/auth/ntlm"
)

// Config configures a Verifier.
type Config struct {
	// NtlmAuth and Wbinfo are the programs; default "ntlm_auth" and
	// "wbinfo" on PATH.
	NtlmAuth, Wbinfo string
	// SMBConf is passed to ntlm_auth as --configfile when set.
	SMBConf string
	// Timeout bounds one authentication (default 15 s).
	Timeout time.Duration
}

// Verifier implements ntlm.Verifier through winbind.
type Verifier struct {
	cfg Config
}

var _ ntlm.Verifier = (*Verifier)(nil)

// New returns a Verifier; it checks that the programs exist.
func New(cfg Config) (*Verifier, error) {
	if cfg.NtlmAuth == "" {
		cfg.NtlmAuth = "ntlm_auth"
	}
	if cfg.Wbinfo == "" {
		cfg.Wbinfo = "wbinfo"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	for _, p := range []*string{&cfg.NtlmAuth, &cfg.Wbinfo} {
		path, err := exec.LookPath(*p)
		if err != nil {
			return nil, fmt.Errorf("winbind: %w", err)
		}
		*p = path
	}
	return &Verifier{cfg: cfg}, nil
}

// Verify implements ntlm.Verifier.
func (v *Verifier) Verify(ctx context.Context, r *ntlm.Response) (*rpc.Identity, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.Timeout)
	defer cancel()
	if r.User == "" {
		return nil, nil, fmt.Errorf("%w: anonymous logon", rpc.ErrAuthFailed)
	}
	key, err := v.check(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	name := r.User
	if r.Domain != "" {
		name = r.Domain + `\` + r.User
	}
	sids, err := v.SIDs(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	return &rpc.Identity{User: r.User, Domain: r.Domain, Workstation: r.Workstation, SIDs: sids}, key, nil
}

// request builds one ntlm-server-1 request. Values go base64-encoded
// ("Key:: value") so that no client-chosen name can inject a line.
func request(r *ntlm.Response) []byte {
	var b bytes.Buffer
	b64 := func(k, v string) {
		fmt.Fprintf(&b, "%s:: %s\n", k, base64.StdEncoding.EncodeToString([]byte(v)))
	}
	b64("Username", r.User)
	b64("NT-Domain", r.Domain)
	fmt.Fprintf(&b, "LANMAN-Challenge: %s\n", hex.EncodeToString(r.ServerChallenge[:]))
	fmt.Fprintf(&b, "NT-Response: %s\n", hex.EncodeToString(r.NTResponse))
	if len(r.LMResponse) > 0 {
		fmt.Fprintf(&b, "LANMAN-Response: %s\n", hex.EncodeToString(r.LMResponse))
	}
	b.WriteString("Request-User-Session-Key: Yes\n.\n")
	return b.Bytes()
}

// parseReply reads ntlm-server-1's answer up to the "." line.
func parseReply(out []byte) (map[string]string, error) {
	kv := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if line == "." {
			return kv, nil
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("winbind: ntlm_auth sent %q", line)
		}
		if strings.HasPrefix(v, ": ") {
			d, err := base64.StdEncoding.DecodeString(v[2:])
			if err != nil {
				return nil, fmt.Errorf("winbind: ntlm_auth sent bad base64 for %s", k)
			}
			v = string(d)
		} else {
			v = strings.TrimPrefix(v, " ")
		}
		kv[k] = v
	}
	return nil, errors.New("winbind: ntlm_auth's reply has no end line")
}

func (v *Verifier) check(ctx context.Context, r *ntlm.Response) ([]byte, error) {
	args := []string{"--helper-protocol=ntlm-server-1"}
	if v.cfg.SMBConf != "" {
		args = append(args, "--configfile="+v.cfg.SMBConf)
	}
	cmd := exec.CommandContext(ctx, v.cfg.NtlmAuth, args...)
	cmd.Stdin = bytes.NewReader(request(r))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("winbind: ntlm_auth: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	kv, err := parseReply(out)
	if err != nil {
		return nil, err
	}
	if kv["Authenticated"] != "Yes" {
		// The reason (wrong password, no such user) stays out of the
		// client's sight; the runtime logs ErrAuthFailed without details.
		return nil, fmt.Errorf("%w: winbind: %s", rpc.ErrAuthFailed, kv["Authentication-Error"])
	}
	key, err := hex.DecodeString(kv["User-Session-Key"])
	if err != nil || len(key) != 16 {
		return nil, errors.New("winbind: ntlm_auth returned no 16-byte User-Session-Key")
	}
	return key, nil
}

// SIDs returns the account's SID followed by its group SIDs (domain groups
// and local aliases, as winbindd sees them).
func (v *Verifier) SIDs(ctx context.Context, name string) ([]string, error) {
	out, err := exec.CommandContext(ctx, v.cfg.Wbinfo, "--name-to-sid", name).Output()
	if err != nil {
		return nil, fmt.Errorf("winbind: wbinfo --name-to-sid %q: %v", name, err)
	}
	f := strings.Fields(string(out))
	if len(f) == 0 || !strings.HasPrefix(f[0], "S-1-") {
		return nil, fmt.Errorf("winbind: wbinfo --name-to-sid %q said %q", name, out)
	}
	user := f[0]
	out, err = exec.CommandContext(ctx, v.cfg.Wbinfo, "--user-sids="+user).Output()
	if err != nil {
		return nil, fmt.Errorf("winbind: wbinfo --user-sids=%s: %v", user, err)
	}
	sids := []string{user}
	for _, s := range strings.Fields(string(out)) {
		if strings.HasPrefix(s, "S-1-") && s != user {
			sids = append(sids, s)
		}
	}
	return sids, nil
}
