package btrfs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Constants of linux/btrfs.h and linux/btrfs_tree.h.
const (
	superMagic       = 0x9123683e // statfs f_type of btrfs
	firstFreeObjects = 256        // BTRFS_FIRST_FREE_OBJECTID: inode of a subvolume root
	subvolNameMax    = 4039       // BTRFS_SUBVOL_NAME_MAX
	subvolRDOnly     = 1 << 1     // BTRFS_SUBVOL_RDONLY (SNAP_CREATE_V2 and SUBVOL_{GET,SET}FLAGS)
	rootSubvolRDOnly = 1 << 0     // BTRFS_ROOT_SUBVOL_RDONLY (root item flags, GET_SUBVOL_INFO)

	quotaTreeObjectID = 8   // BTRFS_QUOTA_TREE_OBJECTID
	qgroupStatusKey   = 240 // BTRFS_QGROUP_STATUS_KEY
	qgroupInfoKey     = 242 // BTRFS_QGROUP_INFO_KEY

	qgroupStatusOn           = 1 << 0 // BTRFS_QGROUP_STATUS_FLAG_ON
	qgroupStatusRescan       = 1 << 1 // BTRFS_QGROUP_STATUS_FLAG_RESCAN
	qgroupStatusInconsistent = 1 << 2 // BTRFS_QGROUP_STATUS_FLAG_INCONSISTENT
	qgroupStatusSimpleMode   = 1 << 3 // BTRFS_QGROUP_STATUS_FLAG_SIMPLE_MODE (kernel 6.7)
)

// ioctl request encoding of asm-generic/ioctl.h.
const (
	iocWrite   = 1
	iocRead    = 2
	ioctlMagic = 0x94 // BTRFS_IOCTL_MAGIC
)

func ioc(dir, nr, size uintptr) uintptr {
	return dir<<30 | size<<16 | ioctlMagic<<8 | nr
}

// Request numbers, checked against the kernel headers in ioctl_test.go.
var (
	iocSnapDestroy    = ioc(iocWrite, 15, unsafe.Sizeof(volArgs{}))
	iocTreeSearch     = ioc(iocRead|iocWrite, 17, unsafe.Sizeof(searchArgs{}))
	iocFSInfo         = ioc(iocRead, 31, unsafe.Sizeof(fsInfoArgs{}))
	iocSnapCreateV2   = ioc(iocWrite, 23, unsafe.Sizeof(volArgsV2{}))
	iocSubvolGetFlags = ioc(iocRead, 25, 8)
	iocSubvolSetFlags = ioc(iocWrite, 26, 8)
	iocGetSubvolInfo  = ioc(iocRead, 60, unsafe.Sizeof(subvolInfo{}))
	iocGetSubvolRoot  = ioc(iocRead|iocWrite, 61, unsafe.Sizeof(rootrefArgs{}))
	iocInoLookupUser  = ioc(iocRead|iocWrite, 62, unsafe.Sizeof(inoLookupUserArgs{}))
)

// volArgs is struct btrfs_ioctl_vol_args.
type volArgs struct {
	Fd   int64
	Name [4088]byte
}

// volArgsV2 is struct btrfs_ioctl_vol_args_v2 (the size/qgroup_inherit
// union left zero).
type volArgsV2 struct {
	Fd      int64
	Transid uint64
	Flags   uint64
	Unused  [4]uint64
	Name    [subvolNameMax + 1]byte
}

type ioctlTimespec struct {
	Sec  uint64
	Nsec uint32
	_    uint32
}

func (ts ioctlTimespec) time() time.Time { return time.Unix(int64(ts.Sec), int64(ts.Nsec)).UTC() }

// subvolInfo is struct btrfs_ioctl_get_subvol_info_args.
type subvolInfo struct {
	TreeID       uint64
	Name         [256]byte
	ParentID     uint64
	DirID        uint64
	Generation   uint64
	Flags        uint64
	UUID         [16]byte
	ParentUUID   [16]byte
	ReceivedUUID [16]byte
	Ctransid     uint64
	Otransid     uint64
	Stransid     uint64
	Rtransid     uint64
	Ctime        ioctlTimespec
	Otime        ioctlTimespec
	Stime        ioctlTimespec
	Rtime        ioctlTimespec
	Reserved     [8]uint64
}

// fsInfoArgs is struct btrfs_ioctl_fs_info_args.
type fsInfoArgs struct {
	MaxID      uint64
	NumDevices uint64
	FSID       [16]byte
	_          [1024 - 32]byte
}

// rootrefArgs is struct btrfs_ioctl_get_subvol_rootref_args.
type rootrefArgs struct {
	MinTreeID uint64
	Rootref   [255]struct{ TreeID, DirID uint64 }
	NumItems  uint8
	_         [7]uint8
}

// inoLookupUserArgs is struct btrfs_ioctl_ino_lookup_user_args.
type inoLookupUserArgs struct {
	DirID  uint64
	TreeID uint64
	Name   [256]byte        // BTRFS_VOL_NAME_MAX + 1
	Path   [4080 - 256]byte // BTRFS_INO_LOOKUP_USER_PATH_MAX
}

// searchKey is struct btrfs_ioctl_search_key.
type searchKey struct {
	TreeID                   uint64
	MinObjectID, MaxObjectID uint64
	MinOffset, MaxOffset     uint64
	MinTransid, MaxTransid   uint64
	MinType, MaxType         uint32
	NrItems                  uint32
	_                        uint32
	_                        [4]uint64
}

// searchArgs is struct btrfs_ioctl_search_args.
type searchArgs struct {
	Key searchKey
	Buf [4096 - 104]byte
}

const searchHeaderSize = 32 // struct btrfs_ioctl_search_header

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
	if errno != 0 {
		return errno
	}
	return nil
}

// snapCreate snapshots the subvolume open as src into dir/name.
func snapCreate(dir, src int, name string, readOnly bool) error {
	var a volArgsV2
	a.Fd = int64(src)
	if readOnly {
		a.Flags = subvolRDOnly
	}
	copy(a.Name[:], name)
	return ioctl(dir, iocSnapCreateV2, unsafe.Pointer(&a))
}

// snapDestroy deletes the subvolume dir/name.
func snapDestroy(dir int, name string) error {
	var a volArgs
	copy(a.Name[:], name)
	return ioctl(dir, iocSnapDestroy, unsafe.Pointer(&a))
}

func getSubvolInfo(fd int) (subvolInfo, error) {
	var a subvolInfo
	err := ioctl(fd, iocGetSubvolInfo, unsafe.Pointer(&a))
	return a, err
}

func getFlags(fd int) (uint64, error) {
	var f uint64
	err := ioctl(fd, iocSubvolGetFlags, unsafe.Pointer(&f))
	return f, err
}

func setFlags(fd int, f uint64) error {
	return ioctl(fd, iocSubvolSetFlags, unsafe.Pointer(&f))
}

func fsID(fd int) ([16]byte, error) {
	var a fsInfoArgs
	err := ioctl(fd, iocFSInfo, unsafe.Pointer(&a))
	return a.FSID, err
}

// hasChildSubvolumes reports whether the subvolume that fd is in contains
// other subvolumes (BTRFS_IOC_GET_SUBVOL_ROOTREF, unprivileged).
func hasChildSubvolumes(fd int) (bool, error) {
	var a rootrefArgs
	err := ioctl(fd, iocGetSubvolRoot, unsafe.Pointer(&a))
	if err == unix.EOVERFLOW {
		return true, nil // more than 255 children
	}
	return a.NumItems > 0, err
}

// childSubvolumes returns the paths, relative to the root of the
// subvolume open as fd (which must be that root), of the subvolumes whose
// parent is that subvolume (GET_SUBVOL_ROOTREF and INO_LOOKUP_USER, both
// unprivileged). Grandchildren are not included.
func childSubvolumes(fd int) ([]string, error) {
	var paths []string
	var a rootrefArgs
	for {
		err := ioctl(fd, iocGetSubvolRoot, unsafe.Pointer(&a))
		if err != nil && err != unix.EOVERFLOW {
			return nil, fmt.Errorf("GET_SUBVOL_ROOTREF: %w", err)
		}
		for _, r := range a.Rootref[:a.NumItems] {
			l := inoLookupUserArgs{DirID: r.DirID, TreeID: r.TreeID}
			if e := ioctl(fd, iocInoLookupUser, unsafe.Pointer(&l)); e != nil {
				return nil, fmt.Errorf("INO_LOOKUP_USER of subvolume %d: %w", r.TreeID, e)
			}
			paths = append(paths, cString(l.Path[:])+cString(l.Name[:]))
		}
		if err == nil {
			return paths, nil
		}
		a.NumItems = 0 // EOVERFLOW: the kernel set MinTreeID to the next page
	}
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// searchItem returns the data of the item (objectid, typ, offset) of tree
// treeID, or nil if there is none. The tree missing is unix.ENOENT.
// TREE_SEARCH needs CAP_SYS_ADMIN.
func searchItem(fd int, treeID, objectID uint64, typ uint32, offset uint64) ([]byte, error) {
	var a searchArgs
	a.Key = searchKey{
		TreeID: treeID, MinObjectID: objectID, MaxObjectID: objectID,
		MinType: typ, MaxType: typ, MinOffset: offset, MaxOffset: offset,
		MaxTransid: ^uint64(0), NrItems: 1,
	}
	if err := ioctl(fd, iocTreeSearch, unsafe.Pointer(&a)); err != nil {
		return nil, err
	}
	if a.Key.NrItems == 0 {
		return nil, nil
	}
	h := a.Buf[:searchHeaderSize]
	le := binary.LittleEndian
	if le.Uint64(h[8:]) != objectID || le.Uint32(h[24:]) != typ || le.Uint64(h[16:]) != offset {
		return nil, nil
	}
	n := le.Uint32(h[28:])
	if int(n) > len(a.Buf)-searchHeaderSize {
		return nil, fmt.Errorf("tree search: item of %d bytes", n)
	}
	return append([]byte(nil), a.Buf[searchHeaderSize:searchHeaderSize+n]...), nil
}

// formatUUID writes u in the canonical 8-4-4-4-12 form.
func formatUUID(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
