package doctor

import (
	"os"
	"testing"

	"github.com/fsrvpd/fsrvpd/storage/storagetest"
)

func TestMain(m *testing.M) { os.Exit(storagetest.ZFSMain(m)) }
