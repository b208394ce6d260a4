package kdctest

import (
	"net"
	"strconv"
	"testing"
)

// A KDC port taken by another process between its choice and samba's
// bind (a parallel test's listener got the same number) makes Start pick
// new ports instead of failing.
func TestStartRetriesTakenPort(t *testing.T) {
	Requirements(t)
	var taken []int
	squat = func(port int) {
		if len(taken) > 0 {
			return // the first attempt only
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Errorf("squat %d: %v", port, err)
			return
		}
		t.Cleanup(func() { l.Close() })
		taken = append(taken, port)
	}
	defer func() { squat = nil }()
	dc, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Stop()
	if len(taken) != 1 || dc.KDCAddr == net.JoinHostPort("127.0.0.1", strconv.Itoa(taken[0])) {
		t.Fatalf("KDC on %s; squatted %v", dc.KDCAddr, taken)
	}
	if _, err := dc.Kinit(t.Context(), t.TempDir(), AdminUser, AdminPassword); err != nil {
		t.Fatalf("kinit against the relaunched KDC: %v", err)
	}
}
