// Package fsutil holds the filesystem helpers the storage backends share:
// parsing /proc/self/mountinfo and per-id locks.
//
// It is internal to storage and imports nothing else of fsrvpd.
package fsutil
