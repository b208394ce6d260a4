package conformance

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// TestbedTarget makes the Target of a testbed (package testbed) from its
// KEY=value description (Testbed.Env, or "fsrvp-conformance testbed up"):
// ncacn_np to ADDR on SMB port PORT as USER/PASSWORD, the shares of
// SHARES, the timer SEQ_TIMEOUT. The testbed's shares each lie on their
// own volume, so the same-volume checks are skipped; smbd is reached from
// one address, so is the second-client check.
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
	}
	return tg, tg.Validate()
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
