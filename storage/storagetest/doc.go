// Package storagetest checks storage backends against the contract of
// storage.Backend, and holds the helpers other packages' tests share: the
// skip policy (Require, StrictEnv), a logger writing to t.Log, and Faulty,
// a Backend wrapper that injects errors.
//
// # Adding a backend
//
// Write a Factory in the backend's _test.go file and run the suite:
//
//	func TestSuite(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storagetest.Fixture {
//			// Prepare two empty volumes and an empty snapshot store,
//			// removed with t.Cleanup (after every snapshot is deleted).
//			return storagetest.Fixture{Backend: b, Volumes: roots, Reopen: ..., Crash: ...}
//		})
//	}
//
// The Factory is called once per case, and cases run in parallel, so each
// call must return independent volumes; they may share one loop-mounted
// filesystem. Provide Reopen (a second Backend on the same store) and a
// CrashSimulator built on the backend's internals: without them two cases
// skip, which fails under FSRVPD_TEST_STRICT=1. A backend that needs root,
// a kernel module or a package calls Require (or RequireRoot,
// RequireCommand, RequireFilesystem) in its Factory.
//
// # Adding a case
//
// Write func testX(t *testing.T, fx Fixture) in the file of its theme and
// add it to Cases. A case may only use the storage.Backend methods, the
// fixture and plain file operations on the volumes and snapshot paths: it
// must hold for btrfs and ZFS as well as for dir. Assert outcomes, never
// durations; compare errors with errors.Is against the storage sentinels.
package storagetest
