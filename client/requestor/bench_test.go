package requestor_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/fsrvpd/fsrvpd/client/requestor"
	"github.com/fsrvpd/fsrvpd/conformance/testbed"
	"github.com/fsrvpd/fsrvpd/conformance/testbed/bedtest"
	"github.com/fsrvpd/fsrvpd/storage/storagetest"
)

// benchTree writes 208 MiB in mixed sizes below dir: 4 files of 32 MiB,
// 64 of 1 MiB and 1024 of 16 KiB in 16 directories.
func benchTree(b *testing.B, dir string) int64 {
	var total int64
	write := func(rel string, size int) {
		data := make([]byte, size)
		rand.Read(data)
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o777)
		if err := os.WriteFile(p, data, 0o666); err != nil {
			b.Fatal(err)
		}
		total += int64(size)
	}
	for i := 0; i < 4; i++ {
		write("big/"+strconv.Itoa(i)+".bin", 32<<20)
	}
	for i := 0; i < 64; i++ {
		write("mid/"+strconv.Itoa(i)+".bin", 1<<20)
	}
	for i := 0; i < 1024; i++ {
		write(fmt.Sprintf("small/%02d/%d.bin", i%16, i), 16<<10)
	}
	return total
}

// BenchmarkBackupVsSmbclient copies the same 208 MiB share of the testbed
// with fsrvp backup (snapshot + parallel copy of the exposed share) and
// with smbclient's tar (-Tc) and recursive mget of the live share, in the
// same run, and prints a table. Reported, never asserted.
func BenchmarkBackupVsSmbclient(b *testing.B) {
	tb := bedtest.Up(b, testbed.Options{Log: func(string, ...any) {}}, "smbclient")
	smbclient := storagetest.RequireCommand(b, "smbclient")
	total := benchTree(b, tb.Shares["share1"])
	total += int64(len("testbed share share1\n")) // README.txt
	smb := requestor.SMB{Addr: tb.Addr(), User: testbed.User, Password: testbed.Password}
	dial := requestor.NewDialer(smb)
	type row struct {
		name string
		d    time.Duration
		note string
	}
	var rows []row
	run := func(name string, f func(dest string) (time.Duration, string)) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(total)
			for i := 0; i < b.N; i++ {
				dest := filepath.Join(b.TempDir(), "d")
				b.StartTimer()
				d, note := f(dest)
				b.StopTimer()
				rows = append(rows, row{name, d, note})
				os.RemoveAll(dest)
			}
		})
	}
	for _, workers := range []int{1, 4} {
		run("fsrvp-backup-w"+strconv.Itoa(workers), func(dest string) (time.Duration, string) {
			start := time.Now()
			res, err := requestor.Backup(context.Background(), dial, requestor.BackupOptions{
				Snapshot: requestor.SnapshotRequest{Target: "ncacn_np:127.0.0.1", Shares: []string{"share1"}},
				Dest:     dest, SMB: smb, Workers: workers,
			})
			if err != nil {
				b.Fatal(err)
			}
			return time.Since(start), fmt.Sprintf("copy phase %s (%s/s), SHA-256 catalog",
				res.CopyDuration.Round(time.Millisecond), requestor.HumanBytes(int64(float64(res.Bytes)/res.CopyDuration.Seconds())))
		})
	}
	smbArgs := []string{"-s", tb.ClientConf, "//127.0.0.1/share1", "-p", strconv.Itoa(tb.Port), "-U", testbed.User + "%" + testbed.Password}
	run("smbclient-tar", func(dest string) (time.Duration, string) {
		os.MkdirAll(dest, 0o755)
		start := time.Now()
		if out, err := exec.Command(smbclient, append(smbArgs, "-Tc", filepath.Join(dest, "share1.tar"))...).CombinedOutput(); err != nil {
			b.Fatalf("smbclient -Tc: %v\n%s", err, out)
		}
		return time.Since(start), "live share, no snapshot, no hashes"
	})
	run("smbclient-mget", func(dest string) (time.Duration, string) {
		os.MkdirAll(dest, 0o755)
		start := time.Now()
		if out, err := exec.Command(smbclient, append(smbArgs, "-c", "prompt off; recurse on; lcd "+dest+"; mget *")...).CombinedOutput(); err != nil {
			b.Fatalf("smbclient mget: %v\n%s", err, out)
		}
		return time.Since(start), "live share, no snapshot, no hashes"
	})
	fmt.Printf("\nBackup of one share, %s in 1093 files, through the testbed's smbd (loopback, dir backend):\n", requestor.HumanBytes(total))
	fmt.Printf("%-20s %10s %12s  %s\n", "tool", "time", "throughput", "notes")
	for _, r := range rows {
		fmt.Printf("%-20s %10s %10s/s  %s\n", r.name, r.d.Round(time.Millisecond), requestor.HumanBytes(int64(float64(total)/r.d.Seconds())), r.note)
	}
}
