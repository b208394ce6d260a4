package conformance

import (
	"crypto/rand"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// TestbedTarget makes the Target of a testbed (package testbed) from its
// KEY=value description (Testbed.Env, or "fsrvp-conformance testbed up"):
// ncacn_np to ADDR on SMB port PORT as USER/PASSWORD, the shares of
// SHARES, the timer SEQ_TIMEOUT, the hidden share HIDDEN_SHARE, the
// non-administrator NONADMIN_USER/NONADMIN_PASSWORD if set, and SMB
// access to the shares as USER. When ADDR is 127.0.0.1 the second client
// comes from 127.0.0.2 and the canary address is an unused 127.x address.
// The testbed's shares each lie on their own volume, so the same-volume
// checks are skipped.
func TestbedTarget(env map[string]string, cfg NPConfig) (Target, error) {
	for _, k := range []string{"ADDR", "PORT", "USER", "PASSWORD", "SHARES"} {
		if env[k] == "" {
			return Target{}, fmt.Errorf("testbed: %s is not set", k)
		}
	}
	port, err := strconv.Atoi(env["PORT"])
	if err != nil || port <= 0 || port > 65535 {
		return Target{}, fmt.Errorf("testbed: PORT %q is not a port", env["PORT"])
	}
	var timer time.Duration
	if s := env["SEQ_TIMEOUT"]; s != "" {
		if timer, err = time.ParseDuration(s); err != nil {
			return Target{}, fmt.Errorf("testbed: SEQ_TIMEOUT: %w", err)
		}
	}
	host := env["ADDR"]
	tg := Target{
		Name:        fmt.Sprintf("%s (SMB port %d)", NPBinding(host, pipeOr(cfg.Pipe)), port),
		Dial:        NPDialer(host, port, env["USER"], env["PASSWORD"], cfg),
		Shares:      splitList(env["SHARES"]),
		ShareHost:   host,
		ServerTimer: timer,
		Files:       SMBFiles(host, port, env["USER"], env["PASSWORD"], cfg.Timeout),
		HiddenShare: env["HIDDEN_SHARE"],
	}
	if u := env["NONADMIN_USER"]; u != "" {
		tg.NonAdminDial = NPDialer(host, port, u, env["NONADMIN_PASSWORD"], cfg)
	}
	if host == "127.0.0.1" {
		second := cfg
		second.LocalAddr = "127.0.0.2"
		tg.SecondDial = NPDialer(host, port, env["USER"], env["PASSWORD"], second)
		tg.Canary = LoopbackCanary()
	}
	return tg, tg.Validate()
}

// LoopbackCanary is a random address in 127.0.0.0/8 other than 127.0.0.x,
// for Target.Canary when the server runs on this machine.
func LoopbackCanary() string {
	var b [3]byte
	rand.Read(b[:])
	return fmt.Sprintf("127.%d.%d.%d", 64+b[0]%128, b[1], 1+b[2]%250)
}

func pipeOr(p string) string {
	if p == "" {
		return DefaultPipe
	}
	return p
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
