package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fsrvpd/fsrvpd/client"
)

const (
	ctxBackup      = 0x0
	ctxNASRollback = 0x19
	rcBadState     = 0x80042301
	rcIDMismatch   = 0x80042501
)

func wantCode(t *testing.T, what string, err error, code uint32) {
	t.Helper()
	got, ok := client.Code(err)
	if !ok || got != code {
		t.Fatalf("%s: got %v, want 0x%08X", what, err, code)
	}
}

func check(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// exposeOne drives one share to Exposed and returns the set and shadow copy.
func exposeOne(t *testing.T, c *client.Client, context uint32, share string) (uuid.UUID, uuid.UUID) {
	t.Helper()
	ctx := t.Context()
	check(t, "SetContext", c.SetContext(ctx, context))
	set, err := c.StartShadowCopySet(ctx, uuid.New())
	check(t, "Start", err)
	sc, err := c.AddToShadowCopySet(ctx, uuid.New(), set, `\\testbed\`+share+`\`)
	check(t, "Add", err)
	check(t, "Prepare", c.PrepareShadowCopySet(ctx, set, time.Minute))
	check(t, "Commit", c.CommitShadowCopySet(ctx, set, time.Minute))
	check(t, "Expose", c.ExposeShadowCopySet(ctx, set, time.Minute))
	return set, sc
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTimerExpiryDeletesExposedSetAndSnapshot(t *testing.T) {
	b := newTestbed(t, `sequence_timeout = "1s"`)
	b.start()
	c := b.dial(t)
	set, sc := exposeOne(t, c, ctxBackup, "share1")
	if len(b.snapshots()) != 1 || !hasExposedShares(b.registry()) {
		t.Fatalf("after expose: snapshots %v, registry %s", b.snapshots(), b.registry())
	}
	waitFor(t, "timer deletes the exposed set", func() bool {
		return len(b.snapshots()) == 0 && !hasExposedShares(b.registry())
	})
	_, err := c.GetShareMapping(t.Context(), sc, set, `\\testbed\share1`, 1)
	wantCode(t, "GetShareMapping after expiry", err, rcIDMismatch)
	_, err = c.StartShadowCopySet(t.Context(), uuid.New())
	wantCode(t, "Start after expiry (context reset)", err, rcBadState)
}

// TestKillDuringCommit kills the daemon with SIGKILL while Commit is copying
// the volume, restarts it, and checks that nothing is left and a new set
// goes through.
func TestKillDuringCommit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		context uint32
	}{{"backup", ctxBackup}, {"nas_rollback", ctxNASRollback}} {
		t.Run(tc.name, func(t *testing.T) {
			b := newTestbed(t, "")
			// Enough files that copying them takes a while.
			bulk := filepath.Join(b.vol1, "share1", "bulk")
			for d := 0; d < 40; d++ {
				dir := filepath.Join(bulk, fmt.Sprint(d))
				os.MkdirAll(dir, 0o755)
				for f := 0; f < 100; f++ {
					os.WriteFile(filepath.Join(dir, fmt.Sprint(f)), []byte(strings.Repeat("x", 2048)), 0o644)
				}
			}
			b.start()
			c := b.dial(t)
			ctx := t.Context()
			check(t, "SetContext", c.SetContext(ctx, tc.context))
			set, err := c.StartShadowCopySet(ctx, uuid.New())
			check(t, "Start", err)
			_, err = c.AddToShadowCopySet(ctx, uuid.New(), set, `\\testbed\share1`)
			check(t, "Add", err)
			go c.CommitShadowCopySet(context.WithoutCancel(ctx), set, time.Minute)
			waitFor(t, "commit starts writing the snapshot", func() bool {
				for _, n := range b.snapshots() {
					if strings.HasPrefix(n, ".tmp-") {
						return true
					}
				}
				return false
			})
			b.kill()
			if len(b.snapshots()) == 0 {
				t.Fatal("the kill did not interrupt a commit: nothing half-made on disk")
			}
			b.start()
			if got := b.snapshots(); len(got) != 0 {
				t.Fatalf("snapshots left after restart: %v\n%s", got, b.output())
			}
			c = b.dial(t)
			set2, _ := exposeOne(t, c, ctxBackup, "share2")
			check(t, "RecoveryComplete", c.RecoveryCompleteShadowCopySet(ctx, set2))
		})
	}
}

// TestKillAfterExposeLosesNothing: a persistent set survives SIGKILL and is
// served after the restart.
func TestKillAfterExposeLosesNothing(t *testing.T) {
	b := newTestbed(t, "")
	b.start()
	c := b.dial(t)
	set, sc := exposeOne(t, c, ctxNASRollback, "share1")
	b.kill()
	b.start()
	c = b.dial(t)
	m, err := c.GetShareMapping(t.Context(), sc, set, `\\testbed\share1`, 1)
	check(t, "GetShareMapping after restart", err)
	if !strings.Contains(strings.ToLower(m.ExposedName), sc.String()) {
		t.Fatalf("exposed name %q", m.ExposedName)
	}
	data, err := os.ReadFile(filepath.Join(b.dir, "snapshots", "fsrvp-"+sc.String(), "data", "share1", "file.txt"))
	if err != nil || string(data) != "before the snapshot\n" {
		t.Fatalf("snapshot content %q, %v", data, err)
	}
	check(t, "RecoveryComplete", c.RecoveryCompleteShadowCopySet(t.Context(), set))
	check(t, "Delete", c.DeleteShareMapping(t.Context(), set, sc, `\\testbed\share1`))
	if len(b.snapshots()) != 0 || hasExposedShares(b.registry()) {
		t.Fatalf("leak: %v %s", b.snapshots(), b.registry())
	}
}
