package samba

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Samba message types (librpc/idl/messaging.idl).
const (
	msgSMBConfUpdated = 0x0021 // MSG_SMB_CONF_UPDATED: reload smb.conf
	msgSMBForceTdis   = 0x0302 // MSG_SMB_FORCE_TDIS: close every tree connect of a share
)

// messenger sends Samba messages the way smbcontrol does, without starting
// a process: one datagram to <lock dir>/msg.sock/<pid>, made of an 8-byte
// zero cookie (an unfragmented message, messages_dgm.c), the 52-byte
// message header (dst server_id, src server_id, uint32 type; a server_id is
// pid u64, task_id u32, vnn u32, unique_id u64, all little-endian) and the
// payload. The destination's unique_id is read from
// <lock dir>/msg.lock/<pid>, as smbcontrol does.
type messenger struct {
	lockDir string
	src     [24]byte
}

func newMessenger(lockDir string) *messenger {
	m := &messenger{lockDir: lockDir}
	binary.LittleEndian.PutUint64(m.src[0:], uint64(os.Getpid()))
	binary.LittleEndian.PutUint32(m.src[12:], 0xffffffff) // NONCLUSTER_VNN
	var u [8]byte
	rand.Read(u[:])
	copy(m.src[16:], u[:])
	return m
}

// broadcast sends a message to every Samba process that has a messaging
// socket (what Samba's messaging_send_all does), and returns how many got
// it. Processes that have died since (stale sockets) are skipped.
func (m *messenger) broadcast(msgType uint32, payload []byte) (int, error) {
	ents, err := os.ReadDir(filepath.Join(m.lockDir, "msg.sock"))
	if err != nil {
		return 0, fmt.Errorf("samba messaging: %w", err)
	}
	n := 0
	var firstErr error
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		switch err := m.send(pid, msgType, payload); {
		case err == nil:
			n++
		case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOENT), errors.Is(err, os.ErrNotExist):
			// a process that exited
		case firstErr == nil:
			firstErr = err
		}
	}
	if n == 0 && firstErr == nil {
		firstErr = errors.New("no Samba process is running")
	}
	if n == 0 {
		return 0, fmt.Errorf("samba messaging: %w", firstErr)
	}
	return n, nil
}

// send sends one message to the Samba process pid.
func (m *messenger) send(pid int, msgType uint32, payload []byte) error {
	uniq, err := os.ReadFile(filepath.Join(m.lockDir, "msg.lock", strconv.Itoa(pid)))
	if err != nil {
		return err
	}
	unique, err := strconv.ParseUint(strings.TrimSpace(string(uniq)), 10, 64)
	if err != nil {
		return fmt.Errorf("lock file of pid %d: %w", pid, err)
	}
	buf := make([]byte, 8+52+len(payload))
	h := buf[8:]
	binary.LittleEndian.PutUint64(h[0:], uint64(pid))
	binary.LittleEndian.PutUint32(h[12:], 0xffffffff)
	binary.LittleEndian.PutUint64(h[16:], unique)
	copy(h[24:48], m.src[:])
	binary.LittleEndian.PutUint32(h[48:], msgType)
	copy(h[52:], payload)
	addr := &net.UnixAddr{Net: "unixgram", Name: filepath.Join(m.lockDir, "msg.sock", strconv.Itoa(pid))}
	c, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write(buf)
	return err
}

// reloadConfig tells every Samba process to re-read its configuration.
func (m *messenger) reloadConfig() error {
	_, err := m.broadcast(msgSMBConfUpdated, nil)
	return err
}

// closeShare tells every smbd to close the tree connects of share.
func (m *messenger) closeShare(share string) error {
	_, err := m.broadcast(msgSMBForceTdis, append([]byte(share), 0))
	return err
}
