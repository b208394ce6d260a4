package conformance

import (
	"slices"

	"github.com/fsrvpd/fsrvpd/client"
)

// Section references: MS-FSRVP rev 16.0. §10 of the project's spec digest
// is the state × method table derived from §3.1.4.4-§3.1.4.13.
const (
	secVersion     = "§3.1.4.1"
	secSetContext  = "§3.1.4.2"
	secStart       = "§3.1.4.3"
	secAdd         = "§3.1.4.4"
	secCommit      = "§3.1.4.5"
	secExpose      = "§3.1.4.6"
	secRecovery    = "§3.1.4.7"
	secAbort       = "§3.1.4.8"
	secSupported   = "§3.1.4.9"
	secShadowCopid = "§3.1.4.10"
	secMapping     = "§3.1.4.11"
	secDelete      = "§3.1.4.12"
	secPrepare     = "§3.1.4.13"
	secStates      = "§3.1.4.4-§3.1.4.13"
	secTimer       = "§3.1.2, §3.1.5"
	secSequence    = "§4, §3.2.4.2"
	secContexts    = "§2.2.2.2"
	secNullArgs    = "§3.1.4"
	secAccess      = "§3.1.4, §5"
)

// Checks is every conformance check, in run order.
var Checks = slices.Concat([]Check{
	{ID: "version/supported", Section: secVersion, Title: "GetSupportedVersion returns MinVersion 1, MaxVersion 1", Run: checkVersion},

	{ID: "context/valid-values", Section: secSetContext, Title: "SetContext accepts the 12 valid contexts", Run: checkContextValid},
	{ID: "context/invalid-values", Section: secSetContext, Title: "SetContext refuses other values with UNSUPPORTED_CONTEXT and sets no context", Run: checkContextInvalid},
	{ID: "context/invalid-keeps-running-set", Section: secSetContext, Title: "an invalid SetContext deletes no set (context checked before the purge)", Run: checkContextInvalidKeepsSet},
	{ID: "context/retry-purges-set", Section: secSetContext, Title: "SetContext again from the same client deletes the sets not Recovered", Run: checkContextRetryPurges},
	{ID: "context/retry-keeps-recovered-set", Section: secSetContext, Title: "the SetContext retry purge spares Recovered sets", Run: checkContextRetryKeepsRecovered},
	{ID: "context/retry-limit", Section: secSetContext, Title: "a retry over the limit is IN_PROGRESS with the state cleared; the next SetContext succeeds", Needs: NeedRetryLimit, Run: checkContextRetryLimit},
	{ID: "context/other-client-in-progress", Section: secSetContext, Title: "another client's SetContext and Start are IN_PROGRESS while a sequence runs", Needs: NeedSecondClient, Run: checkContextOtherClient},

	{ID: "start/without-context", Section: secStart, Title: "StartShadowCopySet without SetContext is BAD_STATE", Run: checkStartNoContext},
	{ID: "start/null-client-id", Section: secStart, Title: "StartShadowCopySet(GUID_NULL) is E_INVALIDARG, before the context check", Run: checkStartNullID},
	{ID: "start/in-progress-each-state", Section: secStart, Title: "a set Started, Added, Committed or Exposed makes Start IN_PROGRESS", Run: checkStartInProgress},
	{ID: "start/after-recovered", Section: secStart, Title: "RecoveryComplete ends the sequence; a Recovered set does not block Start", Run: checkStartAfterRecovered},

	{ID: "add/share-missing-before-set-id", Section: secAdd, Title: "missing share in an unknown set is OBJECT_NOT_FOUND (share checked first)", Run: checkAddMissingBeforeSetID},
	{ID: "add/share-missing", Section: secAdd, Title: "missing share is OBJECT_NOT_FOUND", Run: checkAddMissing},
	{ID: "add/unknown-set", Section: secAdd, Title: "unknown set is SHADOWCOPYSET_ID_MISMATCH", Run: checkAddUnknownSet},
	{ID: "add/null-arguments", Section: secNullArgs, Title: "GUID_NULL set id or empty ShareName is E_INVALIDARG", Run: checkAddNullArgs},
	{ID: "add/non-unc", Section: secAdd, Title: "a ShareName that is not \\\\host\\share is E_INVALIDARG", Run: checkAddNonUNC},
	{ID: "add/after-commit", Section: secAdd, Title: "Add to a Committed set is BAD_STATE", Run: checkAddAfterCommit},
	{ID: "add/same-share-twice", Section: secAdd, Title: "the same share twice (any spelling) is OBJECT_ALREADY_EXISTS", Run: checkAddTwice},
	{ID: "add/unc-trailing-backslash", Section: secAdd, Title: `\\host\share\ works end to end`, Run: uncVariant(uncTrailing)},
	{ID: "add/unc-no-trailing-backslash", Section: secAdd, Title: `\\host\share works end to end`, Run: uncVariant(uncNoTrailing)},
	{ID: "add/unc-foreign-host", Section: secAdd, Title: "any host name in the UNC is accepted", Run: uncVariant(uncForeignHost)},
	{ID: "add/unc-upper-case-share", Section: secAdd, Title: "share names are case-insensitive", Run: uncVariant(uncUpper)},
	{ID: "add/unc-extra-path", Section: secAdd, Title: "a path after the share name is ignored", Run: uncVariant(uncExtraPath)},
	{ID: "add/same-volume-share", Section: secAdd, Title: "a second share on a volume in the set joins its shadow copy or is OBJECT_ALREADY_EXISTS", Needs: NeedSameVolumeShare, Run: checkAddSameVolume},

	{ID: "prepare/unknown-set", Section: secPrepare, Title: "unknown set is SHADOWCOPYSET_ID_MISMATCH", Run: unknownSet(callPrepare, client.EShadowCopySetIDMismatch)},
	{ID: "prepare/repeat", Section: secPrepare, Title: "Prepare leaves the set Added and may be repeated", Run: checkPrepareRepeat},
	{ID: "commit/unknown-set", Section: secCommit, Title: "unknown set is SHADOWCOPYSET_ID_MISMATCH", Run: unknownSet(callCommit, client.EShadowCopySetIDMismatch)},
	{ID: "commit/repeat", Section: secCommit, Title: "Commit of a Committed set is BAD_STATE", Run: checkCommitRepeat},
	{ID: "commit/without-prepare", Section: secCommit, Title: "Commit works without Prepare", Run: checkCommitWithoutPrepare},
	{ID: "expose/unknown-set", Section: secExpose, Title: "unknown set is SHADOWCOPYSET_ID_MISMATCH", Run: unknownSet(callExpose, client.EShadowCopySetIDMismatch)},
	{ID: "recovery/unknown-set", Section: secRecovery, Title: "unknown set is SHADOWCOPYSET_ID_MISMATCH", Run: unknownSet(callRecovery, client.EShadowCopySetIDMismatch)},
	{ID: "abort/unknown-set", Section: secAbort, Title: "unknown set is SHADOWCOPYSET_ID_MISMATCH", Run: unknownSet(callAbort, client.EShadowCopySetIDMismatch)},
	{ID: "mapping/unknown-set", Section: secMapping, Title: "unknown set is SHADOWCOPYSET_ID_MISMATCH", Run: unknownSet(callGetMapping, client.EShadowCopySetIDMismatch)},
	{ID: "delete/unknown-set", Section: secDelete, Title: "unknown set is OBJECT_NOT_FOUND (not ID_MISMATCH)", Run: unknownSet(callDelete, client.EObjectNotFound)},
	{ID: "args/null-set-id", Section: secNullArgs, Title: "ShadowCopySetId GUID_NULL is E_INVALIDARG for every per-set method", Run: checkNullSetID},

	{ID: "state/started-refuses", Section: secStates, Title: "a Started set refuses Prepare, Commit, Expose, GetShareMapping, RecoveryComplete, DeleteShareMapping", Run: refusedIn(Started)},
	{ID: "state/added-refuses", Section: secStates, Title: "an Added set refuses Expose, GetShareMapping, RecoveryComplete, DeleteShareMapping", Run: refusedIn(Added)},
	{ID: "state/creation-in-progress-refuses", Section: secStates, Title: "a set CreationInProgress refuses all but Commit; Commit again finishes", Run: checkCreationInProgress},
	{ID: "state/committed-refuses", Section: secStates, Title: "a Committed set refuses Add, Prepare, Commit, GetShareMapping, RecoveryComplete, DeleteShareMapping", Run: refusedIn(Committed)},
	{ID: "state/exposed-refuses", Section: secStates, Title: "an Exposed set refuses Add, Prepare, Commit, Expose", Run: refusedIn(Exposed)},
	{ID: "state/recovered-refuses", Section: secStates, Title: "a Recovered set refuses Add, Prepare, Commit, Expose, GetShareMapping, RecoveryComplete", Run: refusedIn(Recovered)},

	{ID: "abort/started", Section: secAbort, Title: "Abort of a Started set deletes it and ends the sequence", Run: abortIn(Started)},
	{ID: "abort/added", Section: secAbort, Title: "Abort of an Added set deletes it", Run: abortIn(Added)},
	{ID: "abort/creation-in-progress", Section: secAbort, Title: "Abort of a set whose Commit timed out deletes it and its shadow copies", Run: checkAbortCreationInProgress},
	{ID: "abort/committed", Section: secAbort, Title: "Abort of a Committed set deletes it and its shadow copies", Run: abortIn(Committed)},
	{ID: "abort/exposed", Section: secAbort, Title: "Abort of an Exposed set deletes it, its shadow copies and shares", Run: abortIn(Exposed)},
	{ID: "abort/recovered", Section: secAbort, Title: "Abort of a Recovered set deletes it", Run: abortIn(Recovered)},

	{ID: "mapping/level-checked-first", Section: secMapping, Title: "Level other than 1 is E_INVALIDARG before any other check", Run: checkMappingLevel},
	{ID: "mapping/unknown-shadow-copy", Section: secMapping, Title: "a ShadowCopyId not in the set (or of another share) is E_INVALIDARG", Run: checkMappingUnknownSC},
	{ID: "mapping/share-not-in-set", Section: secMapping, Title: "a share not mapped in the shadow copy is E_INVALIDARG", Run: checkMappingShareNotInSet},
	{ID: "mapping/null-arguments", Section: secNullArgs, Title: "GUID_NULL ShadowCopyId or empty ShareName is E_INVALIDARG", Run: checkMappingNullArgs},
	{ID: "mapping/fields", Section: secMapping, Title: "FSSAGENT_SHARE_MAPPING_1 carries the ids, the client's UNC, share@{id} and the Add time", Run: checkMappingFields},

	{ID: "delete/unknown-shadow-copy", Section: secDelete, Title: "an unknown ShadowCopyId is OBJECT_NOT_FOUND", Run: checkDeleteUnknownSC},
	{ID: "delete/unmapped-share", Section: secDelete, Title: "a share not mapped is OBJECT_NOT_FOUND", Run: checkDeleteUnmapped},
	{ID: "delete/null-arguments", Section: secDelete, Title: "GUID_NULL ShadowCopyId or empty ShareName is E_INVALIDARG", Run: checkDeleteNullArgs},
	{ID: "delete/last-mapping-removes-set", Section: secDelete, Title: "the last mapping takes the set with it; a second delete is OBJECT_NOT_FOUND", Run: checkDeleteLast},
	{ID: "delete/one-of-two", Section: secDelete, Title: "deleting one volume's mapping keeps the set until the other goes", Run: checkDeleteOneOfTwo},
	{ID: "delete/exposed-set", Section: secDelete, Title: "DeleteShareMapping works on an Exposed set", Run: checkDeleteExposed},

	{ID: "path/supported", Section: secSupported, Title: "IsPathSupported is TRUE with an OwnerMachineName for every share", Run: checkPathSupported},
	{ID: "path/supported-missing", Section: secSupported, Title: "IsPathSupported of a missing share is OBJECT_NOT_FOUND", Run: checkPathSupportedMissing},
	{ID: "path/supported-foreign-host", Section: secSupported, Title: "IsPathSupported answers for our share whatever host is named, without contacting it", Run: checkPathSupportedForeignHost},
	{ID: "path/invalid-names", Section: secNullArgs, Title: "empty or non-UNC ShareName is E_INVALIDARG for IsPathSupported and IsPathShadowCopied", Run: checkPathInvalidNames},
	{ID: "path/shadow-copied-missing", Section: secShadowCopid, Title: "IsPathShadowCopied of a missing share is OBJECT_NOT_FOUND", Run: checkShadowCopiedMissing},
	{ID: "path/shadow-copied-lifecycle", Section: secShadowCopid, Title: "ShadowCopyPresent is TRUE exactly from Commit until the shadow copy is deleted", Run: checkShadowCopiedLifecycle},

	{ID: "happy/one-share", Section: secSequence, Title: "the whole client sequence for one share, then DeleteShareMapping", Run: checkHappyOneShare},
	{ID: "happy/two-volumes", Section: secSequence, Title: "one set with shares on two volumes", Run: checkHappyTwoVolumes},
	{ID: "happy/same-volume-shares", Section: secSequence, Title: "two shares of one volume share one shadow copy with two mappings", Needs: NeedSameVolumeShare, Run: checkHappySameVolume},
}, happyContextChecks(), []Check{

	{ID: "timer/context-expires", Section: secTimer, Title: "expiry after SetContext clears the context: Start is BAD_STATE", Needs: NeedTimer, Run: checkTimerContext},
	{ID: "timer/started-set-deleted", Section: secTimer, Title: "expiry deletes a Started set", Needs: NeedTimer, Run: timerDeletes(Started)},
	{ID: "timer/added-set-deleted", Section: secTimer, Title: "expiry deletes an Added set", Needs: NeedTimer, Run: timerDeletes(Added)},
	{ID: "timer/committed-set-deleted", Section: secTimer, Title: "expiry deletes a Committed set and its shadow copies", Needs: NeedTimer, Run: timerDeletes(Committed)},
	{ID: "timer/exposed-set-deleted", Section: secTimer, Title: "expiry deletes an Exposed (not Recovered) set", Needs: NeedTimer, Run: timerDeletes(Exposed)},
	{ID: "timer/recovered-survives", Section: secTimer, Title: "expiry keeps a Recovered set", Needs: NeedTimer, Run: checkTimerRecovered},
	{ID: "timer/restarted-by-calls", Section: secTimer, Title: "every call restarts the timer: a sequence may outlast one timer", Needs: NeedTimer, Run: checkTimerRestarted},

	{ID: "expose/point-in-time", Section: secCommit + ", " + secExpose, Title: "the exposed shares show both volumes as they were at Commit", Needs: NeedFiles, Run: checkExposePointInTime},
	{ID: "expose/read-only", Section: secExpose + ", " + secContexts, Title: "without ATTR_AUTO_RECOVERY the exposed share refuses writes, before and after RecoveryComplete", Needs: NeedFiles, Run: checkExposeReadOnly},
	{ID: "expose/auto-recovery-writable", Section: secExpose + ", " + secRecovery, Title: "with ATTR_AUTO_RECOVERY the exposed share is writable until RecoveryComplete, then read-only; the base share is untouched", Needs: NeedFiles, Run: checkExposeAutoRecovery},
	{ID: "expose/security-descriptor", Section: secExpose, Title: "the exposed share's security descriptor equals the base share's", Needs: NeedFiles, Run: checkExposeSD},
	{ID: "expose/hidden-share", Section: secExpose + " <9>", Title: "a hidden base share (name$) is exposed as name$@{GUID}$", Needs: NeedFiles | NeedHiddenShare, Run: checkExposeHidden},
	{ID: "expose/removed-on-delete", Section: secDelete, Title: "DeleteShareMapping removes the exposed share (no tree connect, not listed)", Needs: NeedFiles, Run: exposeRemoved("DeleteShareMapping", true, endByDelete)},
	{ID: "expose/removed-on-abort", Section: secAbort, Title: "AbortShadowCopySet removes the exposed share (of a Recovered set)", Needs: NeedFiles, Run: exposeRemoved("AbortShadowCopySet", true, endByAbort)},
	{ID: "expose/removed-on-retry", Section: secSetContext, Title: "a SetContext retry removes the exposed share of the purged set", Needs: NeedFiles, Run: exposeRemoved("a SetContext retry", false, endByRetry)},
	{ID: "expose/removed-on-expiry", Section: secTimer, Title: "the timer's expiry removes the exposed share of an Exposed set", Needs: NeedFiles | NeedTimer, Run: exposeRemoved("the timer expired", false, endByExpiry)},

	{ID: "security/non-admin-denied", Section: secAccess, Title: "a non-administrator gets E_ACCESSDENIED from every method and changes nothing", Needs: NeedNonAdmin, Run: checkNonAdmin},
	{ID: "security/unauthenticated-denied", Section: secAccess, Title: "a client bound at authentication level NONE gets E_ACCESSDENIED from every method", Needs: NeedUnauth, Run: checkUnauth},
	{ID: "security/auth-levels", Section: secAccess, Title: "binds at PKT_INTEGRITY and PKT_PRIVACY are served; at CONNECT every method is E_ACCESSDENIED", Needs: NeedAuthLevels, Run: checkAuthLevels},
	{ID: "security/no-contact-named-host", Section: secAdd + ", " + secSupported, Title: "the host named in ShareName is never contacted", Needs: NeedCanary, Run: checkNoContact},

	{ID: "robust/malformed-share-names", Section: secNullArgs + ", " + secAdd, Title: "malformed ShareNames are refused by Add, IsPathSupported and IsPathShadowCopied", Run: checkRobustMalformed},
	{ID: "robust/long-share-names", Section: secNullArgs + ", " + secAdd, Title: "very long share and host names get a return code, not a fault", Run: checkRobustLong},
	{ID: "robust/racing-clients", Section: secSetContext + ", " + secAdd + ", " + secDelete, Title: "two clients racing for the context, one share or one mapping: exactly one wins", Needs: NeedSecondClient, Run: checkRobustRace},
})

// happyContextChecks: the whole sequence once per valid context.
func happyContextChecks() []Check {
	var out []Check
	for _, v := range validContexts {
		out = append(out, Check{
			ID: "happy/context-" + contextID(v), Section: secContexts,
			Title: "the whole sequence on two volumes with context " + client.ContextName(v),
			Run:   happyContext(v),
		})
	}
	return out
}

// contextID is an ID-friendly context name, e.g. "nas-rollback-rw".
func contextID(v uint32) string {
	out := []byte(client.ContextName(v))
	for i, b := range out {
		if b == '_' || b == '+' {
			out[i] = '-'
		}
	}
	return string(out)
}
