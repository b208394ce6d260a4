package btrfs

import (
	"testing"

	"github.com/fsrvpd/fsrvpd/storage/storagetest"
)

// loopBtrfs, subvolume and run are the shared storagetest helpers.
func loopBtrfs(t testing.TB) string              { return storagetest.LoopBtrfs(t) }
func subvolume(t testing.TB, path string) string { return storagetest.Subvolume(t, path) }
func run(t testing.TB, argv ...string) string    { return storagetest.RunCommand(t, argv...) }
