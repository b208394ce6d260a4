//go:build !linux

package np

import (
	"errors"
	"net"
)

// peerCred is only implemented on Linux, where Samba's smbd runs; elsewhere
// every connection is refused.
func peerCred(*net.UnixConn) (uint32, int32, error) {
	return 0, 0, errors.New("SO_PEERCRED not supported on this platform")
}
