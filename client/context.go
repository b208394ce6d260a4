package client

import (
	"fmt"
	"strconv"
	"strings"
)

// Shadow copy contexts (MS-FSRVP §2.2.2.2), passed to SetContext, and the
// attributes that may be OR-ed into them (§2.2.2.1).
const (
	CtxBackup          uint32 = 0x00000000 // FSRVP_CTX_BACKUP
	CtxFileShareBackup uint32 = 0x00000010 // FSRVP_CTX_FILE_SHARE_BACKUP
	CtxNASRollback     uint32 = 0x00000019 // FSRVP_CTX_NAS_ROLLBACK
	CtxAppRollback     uint32 = 0x00000009 // FSRVP_CTX_APP_ROLLBACK

	// AttrAutoRecovery makes the exposed shadow copy writable until
	// RecoveryCompleteShadowCopySet, then read-only for good.
	AttrAutoRecovery uint32 = 0x00400000 // ATTR_AUTO_RECOVERY
	// AttrNoAutoRecovery asks for a read-only shadow copy explicitly. Samba
	// rejects contexts that carry it; read-only is the default anyway.
	AttrNoAutoRecovery uint32 = 0x00000002 // ATTR_NO_AUTO_RECOVERY
)

var contextNames = []struct {
	name string
	ctx  uint32
}{
	{"backup", CtxBackup},
	{"file_share_backup", CtxFileShareBackup},
	{"nas_rollback", CtxNASRollback},
	{"app_rollback", CtxAppRollback},
}

// ParseContext turns a context name and an access mode into a SetContext
// value, using rpcclient's vocabulary: name is one of "backup",
// "file_share_backup", "nas_rollback", "app_rollback" (case-insensitive, "-"
// works as "_", an "fsrvp_ctx_" prefix is allowed) or a number such as
// "0x400010"; mode is "ro" (or "") for a read-only shadow copy, "rw" for a
// writable one: "rw" ORs ATTR_AUTO_RECOVERY into the context. "ro" adds
// nothing (read-only is the default, and Samba rejects ATTR_NO_AUTO_RECOVERY).
func ParseContext(name, mode string) (uint32, error) {
	var ctx uint32
	found := false
	n := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(name)), "-", "_")
	n = strings.TrimPrefix(n, "fsrvp_ctx_")
	for _, c := range contextNames {
		if n == c.name {
			ctx, found = c.ctx, true
			break
		}
	}
	if !found {
		v, err := strconv.ParseUint(n, 0, 32)
		if err != nil {
			return 0, fmt.Errorf("unknown context %q (want backup, file_share_backup, nas_rollback, app_rollback or a number)", name)
		}
		ctx = uint32(v)
	}
	switch strings.ToLower(strings.TrimSpace(mode)) {
	case "", "ro":
	case "rw":
		ctx |= AttrAutoRecovery
	default:
		return 0, fmt.Errorf("unknown access mode %q (want ro or rw)", mode)
	}
	return ctx, nil
}

// ContextName describes a SetContext value the way ParseContext reads it,
// e.g. "backup", "nas_rollback+rw", or "0x00000011" for unknown values.
func ContextName(ctx uint32) string {
	base, suffix := ctx, ""
	switch {
	case ctx&AttrAutoRecovery != 0 && ctx&AttrNoAutoRecovery == 0:
		base, suffix = ctx&^AttrAutoRecovery, "+rw"
	case ctx&AttrNoAutoRecovery != 0 && ctx&AttrAutoRecovery == 0:
		base, suffix = ctx&^AttrNoAutoRecovery, "+ro"
	}
	for _, c := range contextNames {
		if c.ctx == base {
			return c.name + suffix
		}
	}
	return fmt.Sprintf("0x%08x", ctx)
}
