package writers

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// The ioctls of linux/fs.h, _IOWR('X', 119, int) and _IOWR('X', 120, int);
// golang.org/x/sys/unix does not define them.
const (
	fiFreeze = 0xC0045877
	fiThaw   = 0xC0045878
)

// Freeze freezes the file system mounted at mountPoint (FIFREEZE): writes
// block until Thaw. The caller must guarantee the Thaw.
func Freeze(mountPoint string) error { return fsIoctl(mountPoint, fiFreeze, "FIFREEZE") }

// Thaw thaws the file system mounted at mountPoint (FITHAW).
func Thaw(mountPoint string) error { return fsIoctl(mountPoint, fiThaw, "FITHAW") }

func fsIoctl(mountPoint string, req uint, name string) error {
	f, err := os.Open(mountPoint)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.IoctlSetInt(int(f.Fd()), req, 0); err != nil {
		return fmt.Errorf("%s %s: %w", name, mountPoint, err)
	}
	return nil
}
