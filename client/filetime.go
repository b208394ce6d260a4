package client

import (
	"time"

	"github.com/fsrvpd/fsrvpd/rpc/msdtyp"
)

// FiletimeToTime converts a FILETIME (100 ns intervals since 1601-01-01 UTC),
// as found in FSSAGENT_SHARE_MAPPING_1.CreationTimestamp, to a UTC time.Time.
// Zero maps to the zero time.Time.
func FiletimeToTime(ft int64) time.Time { return msdtyp.Time(ft) }

// TimeToFiletime is the inverse of FiletimeToTime, truncating to 100 ns.
// The zero time.Time maps to 0.
func TimeToFiletime(t time.Time) int64 { return msdtyp.Filetime(t) }
