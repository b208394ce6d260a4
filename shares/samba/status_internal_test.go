package samba

import (
	"testing"
	"time"
)

func TestParseStatus(t *testing.T) {
	// As printed by smbstatus 4.17.12 -S --json with one client.
	const one = `{"timestamp": "2026-11-22T09:06:59.804183+0000", "version": "4.17.12-Debian", "smb_conf": "/tmp/fsrvpd-smb1393157398/smb.conf", "tcons": {"1150149749": {"service": "share2@{6f1c0000-0000-0000-0000-000000000003}", "server_id": {"pid": "7124", "task_id": "0", "vnn": "4294967295", "unique_id": "6468741912270572190"}, "tcon_id": "1150149749", "session_id": "3603427869", "machine": "127.0.0.1", "connected_at": "2026-11-22T09:06:59.743607+00:00", "encryption": {"cipher": "-", "degree": "none"}, "signing": {"cipher": "AES-128-CMAC", "degree": "full"}}}}`
	got, err := parseStatus([]byte(one))
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 11, 22, 9, 6, 59, 743607000, time.UTC)
	if len(got) != 1 || got[0].Share != "share2@{6f1c0000-0000-0000-0000-000000000003}" || got[0].Machine != "127.0.0.1" || !got[0].Since.Equal(want) {
		t.Fatalf("%+v", got)
	}
	if got, err := parseStatus([]byte(`{"tcons": {}}`)); err != nil || len(got) != 0 {
		t.Fatalf("no clients: %v, %v", got, err)
	}
	for _, bad := range []string{
		``,
		`Failed to open sessionid.tdb`,
		`{"version": "4.17.12"}`, // no table: not what we asked for
		`{"tcons": {"1": {"machine": "10.0.0.1"}}}`, // no share name
		`{"tcons": []}`,
	} {
		if got, err := parseStatus([]byte(bad)); err == nil {
			t.Errorf("%q: accepted as %v", bad, got)
		}
	}
}
