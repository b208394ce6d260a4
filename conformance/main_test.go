package conformance_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/fsrvpd/fsrvpd/storage/storagetest"
)

// TestMain runs the tests with storagetest.ZFSMain, which stops the
// zfs-fuse daemon that the zfs run of TestConformance may start.
func TestMain(m *testing.M) { os.Exit(storagetest.ZFSMain(m)) }

// ciSummary prints line and, when FSRVPD_CI_SUMMARY names a file, appends
// it there: .ci/test shows that file after the race run instead of running
// the long end-to-end tests a second time.
func ciSummary(line string) {
	fmt.Println(line)
	path := os.Getenv("FSRVPD_CI_SUMMARY")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintln(f, line)
}
