package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/oiweiwei/go-msrpc/dcerpc"

	"github.com/fsrvpd/fsrvpd/client"
	scmpc "github.com/fsrvpd/fsrvpd/client/scmp"
	"github.com/fsrvpd/fsrvpd/server/config"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startSCMP runs the demo daemon with SCMP enabled (at most maxCopies
// shadow copies per volume, no minimum storage size) and returns it with
// its FSRVP address, the resolver's port and the log.
func startSCMP(t *testing.T, maxCopies int) (*Daemon, string, int, *syncBuffer) {
	t.Helper()
	dir := t.TempDir()
	c := config.Demo(dir)
	c.Server.Name = "FILER"
	c.Server.Listen = []string{"127.0.0.1:0"}
	c.Server.EndpointMapper = "127.0.0.1:0"
	c.Server.EndpointMapperOptional = false
	c.SCMP = config.SCMP{Enabled: true, MaxShadowCopies: maxCopies, MinStorageBytes: -1, MinAuthLevel: "privacy", AllowUnauthenticated: true}
	makeShares(t, c, true)
	logs := &syncBuffer{}
	d := runDaemon(t, c, loggerTo(logs, false))
	addrs := d.Addrs()
	_, port, _ := net.SplitHostPort(addrs[len(addrs)-1].String())
	p, _ := strconv.Atoi(port)
	return d, addrs[0].String(), p, logs
}

func fsrvpClient(t *testing.T, addr string) *client.Client {
	t.Helper()
	c, err := client.Dial(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func isHR(err error, hr uint32) bool {
	var h scmpc.HRESULT
	return errors.As(err, &h) && uint32(h) == hr
}

// TestSCMPThroughDCOM: go-msrpc's DCOM client activates VssSnapshotMgmt on
// the resolver (the endpoint mapper's listener), lists the volumes and
// exactly the shadow copies FSRVP made, and adds, resizes and removes a
// storage association.
func TestSCMPThroughDCOM(t *testing.T) {
	d, fsrvpAddr, resolverPort, _ := startSCMP(t, 64)
	ctx := t.Context()
	fc := fsrvpClient(t, fsrvpAddr)
	a, err := fc.Create(ctx, client.CreateRequest{Context: client.CtxNASRollback, Shares: []string{"share1", "share2"}, RecoveryComplete: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := fc.Create(ctx, client.CreateRequest{Context: client.CtxNASRollback, Shares: []string{"share1"}, RecoveryComplete: true})
	if err != nil {
		t.Fatal(err)
	}

	sc, err := scmpc.Dial(ctx, "127.0.0.1", scmpc.Options{ResolverPort: resolverPort})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close(context.Background())
	vols, err := sc.Volumes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	roots := d.cfg.Storage.Dir.Volumes
	if len(vols) != 2 || vols[0].Display != roots[0] || vols[1].Display != roots[1] ||
		!strings.HasPrefix(vols[0].Name, `\\?\Volume{`) || !strings.HasSuffix(vols[0].Name, `}\`) {
		t.Fatalf("volumes %+v", vols)
	}
	vol1 := vols[0].Name

	// Exactly the FSRVP shadow copies of vol1, oldest first, in any input form.
	want := []client.Mapping{a.Mappings[0], b.Mappings[0]}
	for _, name := range []string{vol1, strings.TrimSuffix(vol1, `\`), strings.ToLower(vol1), roots[0], roots[0] + "/", "share1", `\\FILER\share1`} {
		got, err := sc.ShadowCopies(ctx, name)
		if err != nil {
			t.Fatalf("ShadowCopies(%q): %v", name, err)
		}
		if len(got) != len(want) {
			t.Fatalf("ShadowCopies(%q) = %+v", name, got)
		}
		for i, m := range want {
			g := got[i]
			if g.ID != m.ShadowCopyID || g.SetID != m.ShadowCopySetID || !g.Created.Equal(m.CreationTime.Truncate(100*time.Nanosecond)) ||
				g.OriginalVolume != vol1 || g.Machine != "FILER" || g.Status != 0xC || g.Provider != scmpc.SystemProvider || g.Attributes != 0x1D {
				t.Errorf("shadow copy %d = %+v, want %+v", i, g, m)
			}
			if data, err := os.ReadFile(filepath.Join(g.DeviceObject, "share1", "f")); err != nil || string(data) != "data" {
				t.Errorf("device object %q: %q, %v", g.DeviceObject, data, err)
			}
		}
	}
	if got, err := sc.ShadowCopies(ctx, vols[1].Name); err != nil || len(got) != 1 || got[0].SetID != a.ShadowCopySetID || got[0].SetCount != 2 {
		t.Errorf("vol2 shadow copies %+v, %v", got, err)
	}
	if _, err := sc.ShadowCopies(ctx, `\\?\Volume{00000000-0000-0000-0000-000000000001}\`); !isHR(err, 0x80042308) {
		t.Errorf("unknown volume: %v", err)
	}

	// Storage associations.
	if das, err := sc.DiffAreasFor(ctx, vol1); err != nil || len(das) != 0 {
		t.Fatalf("diff areas before: %+v, %v", das, err)
	}
	if dv, err := sc.DiffVolumes(ctx, "share1"); err != nil || len(dv) != 1 || dv[0].Name != vol1 || dv[0].Total <= 0 {
		t.Fatalf("DiffVolumes = %+v, %v", dv, err)
	}
	if err := sc.AddDiffArea(ctx, vol1, vol1, -1); err != nil {
		t.Fatal(err)
	}
	if err := sc.AddDiffArea(ctx, roots[0], "share1", 1<<30); !isHR(err, 0x8004230D) {
		t.Errorf("second AddDiffArea: %v", err)
	}
	if err := sc.AddDiffArea(ctx, vol1, vols[1].Name, 1<<30); !isHR(err, 0x8004231E) {
		t.Errorf("AddDiffArea on another volume: %v", err)
	}
	if err := sc.AddDiffArea(ctx, vols[1].Name, vol1, 1<<30); !isHR(err, 0x8004230C) {
		t.Errorf("AddDiffArea of vol2 on vol1: %v", err)
	}
	if err := sc.AddDiffArea(ctx, "nosuch", "nosuch", 1<<30); !isHR(err, 0x8004230C) {
		t.Errorf("AddDiffArea of an unknown volume: %v", err)
	}
	if err := sc.AddDiffArea(ctx, vols[1].Name, vols[1].Name, 0); !isHR(err, 0x80070057) {
		t.Errorf("AddDiffArea with maximum 0: %v", err)
	}
	das, err := sc.DiffAreasFor(ctx, vol1)
	if err != nil || len(das) != 1 || das[0].Volume != vol1 || das[0].Storage != vol1 || das[0].Maximum != -1 || das[0].Used < 8 || das[0].Allocated != das[0].Used {
		t.Fatalf("diff areas %+v, %v", das, err)
	}
	if err := sc.ChangeDiffAreaMaximumSize(ctx, vol1, vol1, 1<<40); err != nil {
		t.Fatal(err)
	}
	if das, err := sc.DiffAreasOn(ctx, "share1"); err != nil || len(das) != 1 || das[0].Maximum != 1<<40 {
		t.Fatalf("diff areas on vol1 after resize: %+v, %v", das, err)
	}
	if err := sc.ChangeDiffAreaMaximumSize(ctx, vol1, vol1, 0); !isHR(err, 0x8004231D) {
		t.Errorf("removing an association in use: %v", err)
	}
	if err := sc.ChangeDiffAreaMaximumSize(ctx, vols[1].Name, vols[1].Name, 1<<30); !isHR(err, 0x80042308) {
		t.Errorf("resizing a missing association: %v", err)
	}
	// Remove: vol2 gets an association, its shadow copies go, it is removed.
	if err := sc.AddDiffArea(ctx, vols[1].Name, vols[1].Name, 1<<30); err != nil {
		t.Fatal(err)
	}
	if err := fc.Delete(ctx, a.ShadowCopySetID, a.Mappings); err != nil {
		t.Fatal(err)
	}
	if err := sc.ChangeDiffAreaMaximumSize(ctx, vols[1].Name, vols[1].Name, 0); err != nil {
		t.Fatalf("removing an unused association: %v", err)
	}
	if das, err := sc.DiffAreasFor(ctx, vols[1].Name); err != nil || len(das) != 0 {
		t.Fatalf("vol2 diff areas after removal: %+v, %v", das, err)
	}
	// The association survives a restart of the model (it is in the store).
	if das, err := d.scmp.DiffAreas(ctx); err != nil || len(das) != 1 || das[0].MaxBytes != 1<<40 {
		t.Fatalf("stored associations %+v, %v", das, err)
	}
}

// TestSCMPPruning: beyond max_shadow_copies, and on a resize below the
// used space, the oldest shadow copies go, never one of an FSRVP set in
// use; each decision is logged.
func TestSCMPPruning(t *testing.T) {
	_, fsrvpAddr, resolverPort, logs := startSCMP(t, 3)
	ctx := t.Context()
	fc := fsrvpClient(t, fsrvpAddr)
	var sets []uuid.UUID
	for range 3 {
		r, err := fc.Create(ctx, client.CreateRequest{Context: client.CtxNASRollback, Shares: []string{"share1"}, RecoveryComplete: true})
		if err != nil {
			t.Fatal(err)
		}
		sets = append(sets, r.ShadowCopySetID)
	}
	sc, err := scmpc.Dial(ctx, "127.0.0.1", scmpc.Options{ResolverPort: resolverPort})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close(context.Background())
	setsOf := func() []uuid.UUID {
		got, err := sc.ShadowCopies(ctx, "share1")
		if err != nil {
			t.Fatal(err)
		}
		var out []uuid.UUID
		for _, g := range got {
			out = append(out, g.SetID)
		}
		return out
	}
	eventually := func(what string, want []uuid.UUID) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got := setsOf()
			if equalIDs(got, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: sets %v, want %v", what, got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	eventually("three", sets)
	// A fourth, left in use (Exposed, no RecoveryComplete): the oldest goes.
	p, err := fc.Create(ctx, client.CreateRequest{Context: client.CtxNASRollback, Shares: []string{"share1"}})
	if err != nil {
		t.Fatal(err)
	}
	eventually("after the fourth", []uuid.UUID{sets[1], sets[2], p.ShadowCopySetID})
	if !strings.Contains(logs.String(), "oldest shadow copy deleted") || !strings.Contains(logs.String(), sets[0].String()) {
		t.Errorf("pruning not logged:\n%s", logs.String())
	}
	// A storage maximum below the used space: everything but the pinned
	// set goes, and the overflow is logged.
	if err := sc.AddDiffArea(ctx, "share1", "share1", 1); err != nil {
		t.Fatal(err)
	}
	eventually("after a 1-byte maximum", []uuid.UUID{p.ShadowCopySetID})
	if !strings.Contains(logs.String(), "remaining shadow copies belong to FSRVP sets in use") {
		t.Errorf("overflow not logged")
	}
	if err := sc.ChangeDiffAreaMaximumSize(ctx, "share1", "share1", 0); !isHR(err, 0x8004231D) {
		t.Errorf("removing the association with a pinned copy: %v", err)
	}
}

func equalIDs(a, b []uuid.UUID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// startSCMPAuth runs a daemon whose SCMP needs packet privacy and a backup
// operator: "backup" is one, "alice" is not.
//
// As root (always in CI), the endpoint mapper and resolver listen on TCP
// 135, where Windows and go-msrpc's DCOM client look for them, of a random
// 127.x.y.z address (so that tests running at the same time do not meet)
// and resolverPort is 0; otherwise on a random port.
func startSCMPAuth(t *testing.T) (host, fsrvpAddr string, resolverPort int) {
	t.Helper()
	dir := t.TempDir()
	c := config.Demo(dir)
	host, epmPort := "127.0.0.1", "0"
	if os.Geteuid() == 0 {
		host, epmPort = freeLoopback135(t), "135"
	}
	c.Server.Listen = []string{net.JoinHostPort(host, "0")}
	c.Server.EndpointMapper = net.JoinHostPort(host, epmPort)
	c.Server.EndpointMapperOptional = false
	c.SCMP = config.SCMP{Enabled: true, MaxShadowCopies: 64, MinStorageBytes: -1, MinAuthLevel: "privacy"}
	c.Auth.Accounts = []config.Account{
		{User: "backup", NTHash: config.Secret(hashHex("backup-pw")), BackupOperator: true},
		{User: "alice", NTHash: config.Secret(hashHex("alice-pw"))},
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	makeShares(t, c, false)
	d := runDaemon(t, c, nil)
	addrs := d.Addrs()
	_, port, _ := net.SplitHostPort(addrs[len(addrs)-1].String())
	p, _ := strconv.Atoi(port)
	t.Logf("FSRVP on %s, endpoint mapper and DCOM resolver on %s", addrs[0], addrs[len(addrs)-1])
	if p == 135 {
		p = 0 // the client's default
	}
	return host, addrs[0].String(), p
}

// freeLoopback135 returns a random 127.x.y.z address whose TCP port 135 is
// free.
func freeLoopback135(t *testing.T) string {
	t.Helper()
	for range 20 {
		host := fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(250), rand.IntN(250), 1+rand.IntN(250))
		l, err := net.Listen("tcp", net.JoinHostPort(host, "135"))
		if err == nil {
			l.Close()
			return host
		}
	}
	t.Fatal("no 127.x.y.z address with a free TCP port 135")
	return ""
}

// TestSCMPAuthenticated: go-msrpc's DCOM client activates and uses SCMP
// with NTLM and with SPNEGO at packet privacy; integrity, an
// unauthenticated client and a plain user are refused with
// E_ACCESSDENIED.
func TestSCMPAuthenticated(t *testing.T) {
	host, fsrvpAddr, port := startSCMPAuth(t)
	ctx := t.Context()
	backup := client.Auth{User: "backup", Password: "backup-pw", Level: client.LevelPrivacy}
	fc, err := client.Dial(ctx, fsrvpAddr, client.WithAuth(backup))
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	set, err := fc.Create(ctx, client.CreateRequest{Context: client.CtxNASRollback, Shares: []string{"share1"}, RecoveryComplete: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, mech := range []string{client.MechanismNTLM, client.MechanismSPNEGO} {
		t.Run(mech, func(t *testing.T) {
			a := backup
			a.Mechanism = mech
			sec, err := a.RPCOptions()
			if err != nil {
				t.Fatal(err)
			}
			sc, err := scmpc.Dial(ctx, host, scmpc.Options{ResolverPort: port, Security: sec})
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close(context.Background())
			got, err := sc.ShadowCopies(ctx, "share1")
			if err != nil || len(got) != 1 || got[0].ID != set.Mappings[0].ShadowCopyID || got[0].SetID != set.ShadowCopySetID {
				t.Fatalf("shadow copies %+v, %v", got, err)
			}
			if err := sc.AddDiffArea(ctx, "share1", "share1", 1<<40); err != nil && !isHR(err, 0x8004230D) {
				t.Fatal(err)
			}
			if err := sc.ChangeDiffAreaMaximumSize(ctx, "share1", "share1", 1<<41); err != nil {
				t.Fatal(err)
			}
			if das, err := sc.DiffAreasFor(ctx, "share1"); err != nil || len(das) != 1 || das[0].Maximum != 1<<41 {
				t.Fatalf("diff areas %+v, %v", das, err)
			}
		})
	}
	for name, a := range map[string]*client.Auth{
		"unauthenticated": nil,
		"integrity":       {User: "backup", Password: "backup-pw", Level: client.LevelIntegrity},
		"plain user":      {User: "alice", Password: "alice-pw", Level: client.LevelPrivacy},
	} {
		t.Run(name, func(t *testing.T) {
			var sec []dcerpc.Option
			if a != nil {
				var err error
				if sec, err = a.RPCOptions(); err != nil {
					t.Fatal(err)
				}
			}
			sc, err := scmpc.Dial(ctx, host, scmpc.Options{ResolverPort: port, Security: sec})
			if err == nil {
				sc.Close(context.Background())
			}
			if !isHR(err, 0x80070005) {
				t.Fatalf("Dial: %v, want E_ACCESSDENIED", err)
			}
		})
	}
}
