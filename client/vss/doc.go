// Package vss is the document model of US patent 6,948,038 ("Backup and
// restore"): the writer metadata document, in which an application writer
// says who it is, which components (databases and file groups) it owns,
// which files to include or exclude and how each component must be
// restored, and the backup components document, in which a requestor
// records what it actually backed up, the writers' annotations
// (BACKUP_METADATA) and per-component success.
//
// The Go types follow the patent's XML-Data schemas (Appendix B for
// WRITER_METADATA, Appendix D for BACKUP_COMPONENTS) element for element
// and attribute for attribute; Marshal and the Parse functions read and write
// them, Validate checks what the schemas require. Spelling is the schema's
// ("RESTORE_IF_NONE_THERE"); ParseRestoreMethod also accepts the spellings
// used in the patent's prose and in fsrvpd's configuration
// ("RESTORE_IF_NOT_THERE", "RESTORE_IF_CAN_REPLACE",
// "RESTORE_TO_ALTERNATIVE_LOCATION").
//
// Two extensions, both allowed because the elements concerned are declared
// model="open": a RESTORE_METHOD may carry logicalPath and componentName
// attributes, which make it apply to one component instead of the whole
// writer (WriterMetadata.RestoreMethodFor resolves that); and fsrvpd
// publishes a WRITER_STATUS document (namespace StatusNamespace) saying how
// each writer fared around the snapshot, since a failed writer's components
// are only crash-consistent.
//
// # Where fsrvpd publishes the documents (the SMB location contract)
//
// For every shadow copy set whose context involves writers (BACKUP and
// APP_ROLLBACK without ATTR_NO_WRITERS) and for which at least one writer is
// configured, fsrvpd writes the documents into a directory of its own state
// directory, never into the shadow copies themselves, so reading them cannot
// alter a snapshot's data, whatever the storage backend:
//
//	<state_dir>/vss/<set id>/   ([writers] documents_dir replaces <state_dir>/vss)
//	    WRITER_METADATA/<writer instance id>.xml   one per writer
//	    BACKUP_COMPONENTS.xml                      every writer's components
//	    WRITER_STATUS.xml                          each writer's outcome
//
// When the set is exposed (ExposeShadowCopySet), that directory is exposed
// beside the snapshot shares as the hidden, read-only share named by
// ShareName(setID), "vss@{<set id>}$" (the set id in lower case, as in the
// snapshot shares' names), with the permissions of the set's first base
// share. A requestor reads it over SMB like any snapshot share:
// \\server\vss@{<set id>}$\BACKUP_COMPONENTS.xml. The share and the
// directory are removed with the set (DeleteShareMapping of its last share,
// AbortShadowCopySet, the message-sequence timer, start-up reconcile).
// Without Samba (TCP-only mode) the share is only recorded in fsrvpd's
// share registry; there, and wherever SMB access is inconvenient, the same
// files are read with fsrvpd's private writer-control RPC interface
// (package client/writerctl: ReadSetDocument(set id, name), name as above),
// served beside FSRVP on its TCP endpoint and on \PIPE\FssagentRpc with
// FSRVP's authorization. The same interface runs a writer's service stop and
// start hooks for STOP_RESTART_SERVICE restores (RunWriterService).
package vss
