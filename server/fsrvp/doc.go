// Package fsrvp implements the server side of MS-FSRVP, the File Server
// Remote VSS Protocol, as a plain Go state machine (Service) with a thin
// adapter (Handler) to go-msrpc's generated FileServerVSSAgentServer
// interface.
//
// # Two error channels
//
// Every protocol outcome, success or failure, is an HRESULT in the method's
// return value, exactly as MS-FSRVP §3.1.4 prescribes ("methods MUST NOT
// throw exceptions"). The Service therefore returns an HResult, never a Go
// error, from its protocol methods. A Go error reaches the RPC runtime (and
// becomes a fault PDU) only when a call cannot be served at all, for
// example when its arguments cannot be decoded.
//
// # Model
//
// The abstract data model is that of §3.1.1: a global ContextSet /
// CurrentContext / ShadowCopyClientAddress / retry count, one global message
// sequence timer, and a table of shadow copy sets, each holding shadow copies
// (one per volume) which hold share mappings. It lives in memory, guarded by
// one mutex, and every successful change is written to the state store
// before the call returns (§3.1.4). Snapshots are taken by a storage.Backend
// and exposed as shares by a shares.Exposer; the two are independent.
//
// # Durability and crash recovery
//
// Physical effects (snapshots, shares) and records are ordered so that a
// crash at any instant leaves a state that Reconcile can repair:
//
//   - Commit records CreationInProgress before taking any snapshot, so an
//     interrupted commit is found and rolled back at start-up.
//   - Expose creates shares before recording them, so a crash leaves at worst
//     an orphan share, which Reconcile removes.
//   - Deletions remove shares and snapshots first and records last; a crash
//     in between leaves a record whose snapshot is gone (dropped at start-up)
//     or whose share is gone (re-exposed, so the client's retried delete
//     succeeds).
//
// Snapshot and share names carry the shadow copy id, so anything a backend
// or exposer holds that no record claims is an orphan and is removed.
package fsrvp
