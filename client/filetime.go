package client

import "time"

// filetimeUnixOffset is the number of 100 ns intervals between 1601-01-01 and
// 1970-01-01 (UTC).
const filetimeUnixOffset = 116444736000000000

// FiletimeToTime converts a FILETIME (100 ns intervals since 1601-01-01 UTC),
// as found in FSSAGENT_SHARE_MAPPING_1.CreationTimestamp, to a UTC time.Time.
// Zero maps to the zero time.Time.
func FiletimeToTime(ft int64) time.Time {
	if ft == 0 {
		return time.Time{}
	}
	d := ft - filetimeUnixOffset
	return time.Unix(d/1e7, (d%1e7)*100).UTC()
}

// TimeToFiletime is the inverse of FiletimeToTime, truncating to 100 ns.
// The zero time.Time maps to 0.
func TimeToFiletime(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()*1e7 + int64(t.Nanosecond()/100) + filetimeUnixOffset
}
