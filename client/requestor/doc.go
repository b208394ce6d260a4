// Package requestor is a backup application ("requestor" in VSS terms) on
// top of MS-FSRVP: it snapshots shares of a file server in one shadow copy
// set, copies the exposed snapshot shares over SMB (go-smb2) into a local
// backup directory with the server's VSS documents and a catalog, verifies
// such a backup, and restores it per writer component. cmd/fsrvp's backup,
// verify and restore commands are thin wrappers around it.
//
// # The FSRVP sequence
//
// TakeSnapshot runs the client side of MS-FSRVP §4 up to
// RecoveryCompleteShadowCopySet, and aborts the set on any failure or
// cancellation; Snapshot.Release deletes its mappings afterwards. Backup
// always releases (or aborts) the set before it returns, also after Ctrl-C:
// nothing stays exposed on the server.
//
// # Backup directory layout
//
//	catalog.json                          Catalog: server, set, shares, components,
//	                                      every file and directory (size, mtime,
//	                                      mode, SHA-256), the documents' hashes
//	data/<share>/...                      the snapshot of each share (base share name)
//	documents/writer-metadata/<id>.xml    each writer's WRITER_METADATA, as published
//	documents/backup-components.xml       BACKUP_COMPONENTS: the backup type and the writers' components
//	                                      with backupSucceeded set by the backup
//	documents/writer-status.xml           how each writer fared around the snapshot
//	.fsrvp-backup-incomplete              present until the backup has finished
//
// The catalog is written last; a directory without it (or with the
// incomplete marker) is refused by LoadCatalog, Verify and Restore.
// An incremental backup (BackupOptions.IncrementalFrom) hard-links every
// file whose size and modification time match the previous catalog, so each
// backup directory is complete on its own.
//
// # Components
//
// When the server's writers publish documents for the set (the hidden
// share vss@{<set id>}$, see client/vss), Backup maps the writers' files,
// which they name by server path, to the backed-up shares through the
// server's share paths (srvsvc NetrShareEnum level 2, or
// BackupOptions.SharePaths), leaves out the writers' EXCLUDE_FILES and the
// files of components not selected (BackupOptions.Include/Exclude), and
// records each selected component's outcome (backupSucceeded; "no" when
// its writer failed around the snapshot) in the backup components
// document. Files of no component are always backed up.
//
// # Restore
//
// Restore applies each component's restore method (see Restore); whether
// a file can be replaced is probed over SMB with an open for DELETE access
// (a rename onto itself): an application holding the file without
// FILE_SHARE_DELETE makes it fail with STATUS_SHARING_VIOLATION.
package requestor
