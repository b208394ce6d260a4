// Package writers runs application writers around fsrvpd's shadow copies,
// the model of US patent 6,948,038: a writer is an application (a
// database, a mail store) that quiesces its data while the snapshot is
// taken and describes, in a writer metadata document, what it owns and how
// it must be restored.
//
// # Phases
//
// server/fsrvp calls a Coordinator for sets whose context has writers
// (BACKUP and APP_ROLLBACK; FILE_SHARE_BACKUP and NAS_ROLLBACK carry
// ATTR_NO_WRITERS), and only the writers with data on the set's volumes
// take part ([[writer]] volumes, default the paths of its components):
//
//	PrepareShadowCopySet  prepare         (PrepareForFreeze)
//	CommitShadowCopySet   freeze, FIFREEZE of fsfreeze mount points,
//	                      the snapshots,
//	                      FITHAW, thaw    (always, in reverse order)
//	                      post-snapshot   (if the snapshots were taken; its
//	                                       output becomes BACKUP_METADATA)
//	set released          backup-complete (last DeleteShareMapping, or a
//	                      finished set deleted otherwise)
//	set aborted           abort (AbortShadowCopySet, or deleted unfinished
//	                      by the timer or at start-up)
//
// The freeze window, from the first freeze to the last thaw, is bounded by
// [writers] freeze_timeout (10 s): when it passes, the writers are thawed
// even though the snapshot is still running, and marked failed. It is
// measured, logged ("writers thawed", freeze_window_s) and recorded in the
// WRITER_STATUS document. A failing or timed-out writer is marked failed and
// its components' backupSucceeded is "no"; the snapshot goes on unless the
// writer is required, in which case Prepare or Commit fails and nothing is
// kept.
//
// # Hooks
//
// A hook is argv run without a shell, in its own process group, killed as
// a group at its timeout. Its environment: FSRVPD_PHASE, FSRVPD_SET_ID,
// FSRVPD_CONTEXT (0x%08x), FSRVPD_VOLUMES (volume roots, one a line),
// FSRVPD_WRITER_NAME, FSRVPD_WRITER_ID, FSRVPD_INSTANCE_ID and, for
// post-snapshot, FSRVPD_SNAPSHOTS (the snapshots' paths). A non-zero exit
// fails the writer; the last line of stderr is the reason. service-stop and
// service-start hooks are run on a requestor's demand (RunService, the
// client/writerctl interface) for STOP_RESTART_SERVICE restores.
//
// # Sessions
//
// Some databases quiesce only for as long as one session stays open:
// SQLite's write lock (BEGIN IMMEDIATE), MySQL's FLUSH TABLES WITH READ
// LOCK, PostgreSQL's pg_backup_start/pg_backup_stop pair. A [writer.session]
// is a helper process started at the first phase it handles and stopped
// after post-snapshot, spoken to in lines (see Session); when it dies or
// does not answer in time its process group is killed, which also releases
// whatever it held. sessions/sqlite-session is the SQLite helper, used by
// the tests; helpers for other databases follow the same shape (a coprocess
// of the database's CLI, one statement per phase).
//
// # Documents
//
// Per set the Coordinator writes, below [writers] documents_dir
// (default <state_dir>/vss), WRITER_METADATA/<instance id>.xml per writer,
// BACKUP_COMPONENTS.xml and WRITER_STATUS.xml (package client/vss), and
// keeps the writers' status in the state store (bucket "writers"). fsrvp
// exposes the directory as the hidden read-only share vss@{<set id>}$; the
// documents and the record are deleted with the set. The contract for
// requestors is in package client/vss.
//
// # File system freeze
//
// fsfreeze mount points are frozen with FIFREEZE after the freeze hooks and
// thawed with FITHAW before the thaw hooks; a Coordinator thaws them all at
// start-up, in case fsrvpd died with one frozen. Only for backends whose
// snapshot does not write to the frozen file system (not dir, btrfs or zfs
// snapshots on that same file system: they would block until the freeze
// window thaws it).
package writers
