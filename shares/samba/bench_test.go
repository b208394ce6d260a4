package samba_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hirochachacha/go-smb2"

	"github.com/fsrvpd/fsrvpd/shares"
	"github.com/fsrvpd/fsrvpd/shares/samba/sambatest"
)

// mechanism adds and removes one share on a live smbd.
type mechanism struct {
	name   string
	add    func(b *testing.B, name, path string)
	remove func(b *testing.B, name string)
}

func run(b *testing.B, name string, args ...string) {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		b.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// BenchmarkExpose measures, per mechanism, add→connectable (a tree connect
// on a session opened before the add succeeds) and remove→gone (a tree
// connect fails), median of b.N runs, reported as add-ms and remove-ms.
func BenchmarkExpose(b *testing.B) {
	srv, e := setup(b, sambatest.Options{Global: []string{"usershare path = USERSHARES", "usershare max shares = 1000", "usershare owner only = no"}})
	us := filepath.Join(srv.Dir, "usershares")
	ctx := context.Background()
	snap := snapshot(b, srv, "x")
	mechs := []mechanism{
		{"fsrvpd-include+msg", func(b *testing.B, n, p string) {
			if err := e.Expose(ctx, shares.Share{Name: n, Base: "share1", Path: p, ReadOnly: true}); err != nil {
				b.Fatal(err)
			}
		}, func(b *testing.B, n string) {
			if err := e.Remove(ctx, n); err != nil {
				b.Fatal(err)
			}
		}},
		{"include+smbcontrol", func(b *testing.B, n, p string) {
			os.WriteFile(srv.Include+".bench", []byte(fmt.Sprintf("[%s]\n\tpath = %s\n\tread only = yes\n[global]\n", n, p)), 0o644)
			run(b, "smbcontrol", "-s", srv.Conf, "smbd", "reload-config")
		}, func(b *testing.B, n string) {
			os.WriteFile(srv.Include+".bench", nil, 0o644)
			run(b, "smbcontrol", "-s", srv.Conf, "smbd", "reload-config")
			run(b, "smbcontrol", "-s", srv.Conf, "smbd", "close-share", n)
		}},
		{"net-conf-import", func(b *testing.B, n, p string) {
			f := filepath.Join(srv.Dir, "import.conf")
			os.WriteFile(f, []byte(fmt.Sprintf("[%s]\n\tpath = %s\n\tread only = yes\n", n, p)), 0o644)
			run(b, "net", "-s", srv.Conf, "conf", "import", f, n)
		}, func(b *testing.B, n string) {
			run(b, "net", "-s", srv.Conf, "conf", "delshare", n)
			run(b, "smbcontrol", "-s", srv.Conf, "smbd", "close-share", n)
			run(b, "smbcontrol", "-s", srv.Conf, "smbd", "reload-config")
		}},
		{"usershare-file", func(b *testing.B, n, p string) {
			os.WriteFile(filepath.Join(us, strings.ToLower(n)), []byte(fmt.Sprintf("#VERSION 2\npath=%s\ncomment=\nusershare_acl=S-1-1-0:R\nguest_ok=n\nsharename=%s\n", p, n)), 0o644)
		}, func(b *testing.B, n string) {
			os.Remove(filepath.Join(us, strings.ToLower(n)))
			run(b, "smbcontrol", "-s", srv.Conf, "smbd", "close-share", n)
		}},
	}
	s := session(b, srv)
	for _, m := range mechs {
		b.Run(m.name, func(b *testing.B) {
			var add, rm []time.Duration
			for i := 0; b.Loop(); i++ {
				n := fmt.Sprintf("share1@{%08d-0000-0000-0000-%012d}", time.Now().UnixNano()%1e8, i)
				t0 := time.Now()
				m.add(b, n, snap)
				fs, err := sambatest.MountSoon(s, n)
				if err != nil {
					b.Fatalf("%s: not connectable: %v", m.name, err)
				}
				add = append(add, time.Since(t0))
				fs.Umount()
				t0 = time.Now()
				m.remove(b, n)
				if err := goneSoon(s, n); err != nil {
					b.Fatal(err)
				}
				rm = append(rm, time.Since(t0))
			}
			b.ReportMetric(ms(median(add)), "add-ms")
			b.ReportMetric(ms(median(rm)), "remove-ms")
		})
	}
}

// BenchmarkTools is the start-up cost of the Samba tools each mechanism runs.
func BenchmarkTools(b *testing.B) {
	srv := sambatest.Start(b, sambatest.Options{})
	tdb := filepath.Join(srv.Dir, "state", "share_info.tdb")
	run(b, "sharesec", "-s", srv.Conf, "share1", "--replace=S-1-1-0:ALLOWED/0x0/READ")
	for _, c := range [][]string{
		{"tdbtool", tdb, "show", `SECDESC/share1\00`},
		{"smbcontrol", "-s", srv.Conf, "smbd", "ping"},
		{"sharesec", "-s", srv.Conf, "share1", "--viewsddl"},
		{"testparm", "-s", "--suppress-prompt", srv.Conf},
		{"net", "-s", srv.Conf, "conf", "listshares"},
		{"smbstatus", "-s", srv.Conf, "--shares", "--json"}, // Connections: retention, admin delete and show
	} {
		b.Run(c[0], func(b *testing.B) {
			for b.Loop() {
				run(b, c[0], c[1:]...)
			}
		})
	}
}

func goneSoon(s *smb2.Session, n string) error {
	deadline := time.Now().Add(2 * time.Second)
	for {
		fs, err := s.Mount(n)
		if err != nil {
			return nil
		}
		fs.Umount()
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still connectable", n)
		}
		time.Sleep(time.Millisecond)
	}
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[len(d)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
