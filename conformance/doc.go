// Package conformance is a black-box MS-FSRVP conformance harness: checks
// derived from the specification (with /work/shared/spec/FSRVP.md, the
// project's spec digest, as the authority for check order and return codes)
// that run against any FSRVP server reachable through a client connection.
//
// Checks is the one list of checks. Each Check drives the server over its
// own connection, starts from a clean server state (it clears any leftover
// creation sequence first) and cleans up whatever it creates, even when it
// fails, so a failing check cannot make another one fail. A check asserts
// exact return codes; a failure says what was expected and what was
// observed.
//
// Run runs the checks against a Target and returns a Report; RunCheck runs
// one (go test subtests use it). The command fsrvp-conformance is the CLI.
//
// Dialers: TCPDialer (ncacn_ip_tcp) and NPDialer (ncacn_np: an SMB2 session
// with NTLM, then \PIPE\FssagentRpc, e.g. fsrvpd behind smbd);
// TestbedTarget makes the Target of a conformance/testbed from its
// KEY=value description. RunSmbtorture runs Samba's smbtorture rpc.fsrvp and
// folds its tests into a Report (IDs smbtorture/<test>). WriteJUnit and
// WriteMarkdown render a Report.
//
// Requirements on the target: at least two shares on different volumes
// (file stores), no other client using the server while the checks run,
// and, for the timer checks, a message sequence timer shortened to a few
// seconds (Target.ServerTimer). Optional parts of a Target enable more
// checks; without them those checks are skipped with the reason: SMB
// access to the shares (Target.Files, SMBFiles: go-smb2 and srvsvc) for
// the exposure checks, a second client address, a non-administrator
// account, a hidden share, a canary address for "never contact the host
// named in ShareName", and a client bound without RPC authentication.
//
// Every check can fail: the package's tests run each one against fsrvpd's
// state machine served in-process with one deviation injected (a wrong
// return code, a skipped purge, a writable snapshot share...) and require
// a failure, and run all of them against the same server without a
// deviation and require a pass.
package conformance
