package scmp_test

import (
	"os"
	"testing"

	"github.com/fsrvpd/fsrvpd/storage/storagetest"
)

func TestMain(m *testing.M) { os.Exit(storagetest.ZFSMain(m)) }
