package conformance_test

import (
	"os"
	"testing"

	"github.com/fsrvpd/fsrvpd/storage/storagetest"
)

// TestMain runs the tests with storagetest.ZFSMain, which stops the
// zfs-fuse daemon that the zfs run of TestConformance may start.
func TestMain(m *testing.M) { os.Exit(storagetest.ZFSMain(m)) }
