package requestor

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/fsrvpd/fsrvpd/client"
	"github.com/fsrvpd/fsrvpd/client/clienttest"
)

func fakeDialer(fakes map[string]*clienttest.Fake, dialed *[]string) Dialer {
	return func(ctx context.Context, target string) (*client.Client, error) {
		*dialed = append(*dialed, target)
		f, ok := fakes[target]
		if !ok {
			return nil, &client.TransportError{Op: "dial", Err: errors.New("no such server")}
		}
		return client.New(clienttest.Loopback(f), client.WithShareHost("filer")), nil
	}
}

func calls(f *clienttest.Fake) string { return strings.Join(f.Calls, ",") }

func TestTakeSnapshotFollowsOwner(t *testing.T) {
	front, node := clienttest.NewFake("s1", "s2"), clienttest.NewFake("s1", "s2")
	front.Host, node.Host = "NODE2", "NODE2"
	var dialed []string
	dial := fakeDialer(map[string]*clienttest.Fake{"filer": front, "10.0.0.2": node}, &dialed)
	snap, err := TakeSnapshot(context.Background(), dial, SnapshotRequest{Target: "filer", Shares: []string{"s1", "s2"},
		Owners: map[string]string{"node2": "10.0.0.2"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Target != "10.0.0.2" || calls(front) != "IsPathSupported" || !strings.Contains(calls(node), "RecoveryCompleteShadowCopySet") {
		t.Errorf("target %s; front %s; node %s", snap.Target, calls(front), calls(node))
	}
	if got := snap.ExposedShares(); len(got) != 2 || !strings.HasPrefix(got[0], "s1@{") {
		t.Errorf("exposed shares %v", got)
	}
	if err := snap.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(calls(node), "GetSupportedVersion,DeleteShareMapping,DeleteShareMapping") || dialed[len(dialed)-1] != "10.0.0.2" {
		t.Errorf("release: %s (dialed %v)", calls(node), dialed)
	}
	// Without a mapping for the owner the connection is kept.
	other := clienttest.NewFake("s1")
	other.Host = "ELSEWHERE"
	dialed = nil
	snap, err = TakeSnapshot(context.Background(), fakeDialer(map[string]*clienttest.Fake{"filer": other}, &dialed),
		SnapshotRequest{Target: "filer", Shares: []string{"s1"}}, nil)
	if err != nil || snap.Target != "filer" || len(dialed) != 1 {
		t.Fatalf("unmapped owner: %v %v", err, dialed)
	}
}

func TestTakeSnapshotAbortsOnFailure(t *testing.T) {
	for _, step := range []string{"AddToShadowCopySet", "PrepareShadowCopySet", "CommitShadowCopySet", "ExposeShadowCopySet", "GetShareMapping", "RecoveryCompleteShadowCopySet"} {
		f := clienttest.NewFake("s1")
		f.Fail[step] = client.EBadState
		var dialed []string
		_, err := TakeSnapshot(context.Background(), fakeDialer(map[string]*clienttest.Fake{"filer": f}, &dialed),
			SnapshotRequest{Target: "filer", Shares: []string{"s1"}}, nil)
		if code, _ := client.Code(err); code != client.EBadState {
			t.Errorf("%s: err %v", step, err)
		}
		if !strings.HasSuffix(calls(f), ","+step+",AbortShadowCopySet") {
			t.Errorf("%s failed: calls %s, want an abort last", step, calls(f))
		}
	}
}

func TestSnapshotAbort(t *testing.T) {
	f := clienttest.NewFake("s1")
	var dialed []string
	snap, err := TakeSnapshot(context.Background(), fakeDialer(map[string]*clienttest.Fake{"filer": f}, &dialed),
		SnapshotRequest{Target: "filer", Shares: []string{"s1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Ctrl-C: the cleanup still runs
	if err := snap.Abort(ctx, context.Canceled); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(calls(f), "RecoveryCompleteShadowCopySet,AbortShadowCopySet,DeleteShareMapping") {
		t.Errorf("abort: %s", calls(f))
	}
	if err := snap.Release(ctx); err != nil || strings.Count(calls(f), "DeleteShareMapping") != 1 {
		t.Errorf("release after abort: %v %s", err, calls(f))
	}
}
