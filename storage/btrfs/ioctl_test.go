package btrfs

import (
	"testing"
	"unsafe"
)

// The request numbers and sizes printed by a C program including
// linux/btrfs.h (linux-libc-dev 6.1, x86_64 and arm64 alike).
func TestIoctlNumbers(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"SNAP_DESTROY", iocSnapDestroy, 0x5000940f},
		{"TREE_SEARCH", iocTreeSearch, 0xd0009411},
		{"FS_INFO", iocFSInfo, 0x8400941f},
		{"SNAP_CREATE_V2", iocSnapCreateV2, 0x50009417},
		{"SUBVOL_GETFLAGS", iocSubvolGetFlags, 0x80089419},
		{"SUBVOL_SETFLAGS", iocSubvolSetFlags, 0x4008941a},
		{"GET_SUBVOL_INFO", iocGetSubvolInfo, 0x81f8943c},
		{"GET_SUBVOL_ROOTREF", iocGetSubvolRoot, 0xd000943d},
		{"INO_LOOKUP_USER", iocInoLookupUser, 0xd000943e},
		{"ino_lookup_user_args", unsafe.Sizeof(inoLookupUserArgs{}), 4096},
		{"vol_args", unsafe.Sizeof(volArgs{}), 4096},
		{"vol_args_v2", unsafe.Sizeof(volArgsV2{}), 4096},
		{"get_subvol_info_args", unsafe.Sizeof(subvolInfo{}), 504},
		{"get_subvol_info_args.flags", unsafe.Offsetof(subvolInfo{}.Flags), 288},
		{"get_subvol_info_args.uuid", unsafe.Offsetof(subvolInfo{}.UUID), 296},
		{"get_subvol_info_args.otime", unsafe.Offsetof(subvolInfo{}.Otime), 392},
		{"fs_info_args", unsafe.Sizeof(fsInfoArgs{}), 1024},
		{"get_subvol_rootref_args", unsafe.Sizeof(rootrefArgs{}), 4096},
		{"search_key", unsafe.Sizeof(searchKey{}), 104},
		{"search_args", unsafe.Sizeof(searchArgs{}), 4096},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
}

func TestFormatUUID(t *testing.T) {
	u := [16]byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 1, 2, 3, 4, 5, 6, 7, 8}
	if got, want := formatUUID(u), "12345678-9abc-def0-0102-030405060708"; got != want {
		t.Errorf("formatUUID = %s, want %s", got, want)
	}
}
