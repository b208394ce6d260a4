package samba

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// shareSec reads and writes share security descriptors in Samba's
// share_info.tdb (key "SECDESC/<lower-case share name>\0", value the NDR
// security descriptor) with tdbtool, which takes the tdb's fcntl locks like
// smbd does. One tdbtool run costs about 3 ms; sharesec, which needs the
// share to exist and loads the whole configuration, about 35 ms.
type shareSec struct {
	db string // <state directory>/share_info.tdb
}

func sdKey(share string) string {
	var b strings.Builder
	for _, c := range []byte("SECDESC/" + strings.ToLower(share) + "\x00") {
		fmt.Fprintf(&b, `\%02x`, c)
	}
	return b.String()
}

func escapeBytes(data []byte) string {
	var b strings.Builder
	for _, c := range data {
		fmt.Fprintf(&b, `\%02x`, c)
	}
	return b.String()
}

func (s shareSec) tdbtool(ctx context.Context, args ...string) (string, error) {
	if _, err := os.Stat(s.db); err != nil {
		return "", err
	}
	return samba{}.run(ctx, "tdbtool", append([]string{s.db}, args...)...)
}

// get returns the share's explicit security descriptor, or nil if it has
// none (smbd then applies its default: Everyone full control).
func (s shareSec) get(ctx context.Context, share string) ([]byte, error) {
	out, err := s.tdbtool(ctx, "show", sdKey(share))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return parseShow(out)
}

// parseShow parses tdbtool's "show" output: "data N bytes" then hex dump
// lines "[000] 01 00 ... 16 bytes  ascii".
func parseShow(out string) ([]byte, error) {
	if strings.Contains(out, "fetch failed") {
		return nil, nil
	}
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) != 3 || f[0] != "data" || f[2] != "bytes" {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			break
		}
		data := make([]byte, 0, n)
		for _, l := range lines[i+1:] {
			if len(data) == n || !strings.HasPrefix(l, "[") {
				break
			}
			_, rest, _ := strings.Cut(l, "] ")
			f := strings.Fields(rest)
			for j := 0; j < len(f) && j < 16 && len(data) < n; j++ {
				v, err := strconv.ParseUint(f[j], 16, 8)
				if err != nil || len(f[j]) != 2 {
					return nil, fmt.Errorf("tdbtool show: bad hex dump line %q", l)
				}
				data = append(data, byte(v))
			}
		}
		if len(data) != n {
			return nil, fmt.Errorf("tdbtool show: %d of %d bytes", len(data), n)
		}
		return data, nil
	}
	return nil, fmt.Errorf("tdbtool show: unexpected output %q", out)
}

// put stores sd as the share's security descriptor and flushes the tdb.
func (s shareSec) put(ctx context.Context, share string, sd []byte) error {
	out, err := s.tdbtool(ctx, "store", sdKey(share), escapeBytes(sd))
	if err != nil {
		return err
	}
	if strings.Contains(out, "failed") {
		return fmt.Errorf("tdbtool store %s: %s", share, strings.TrimSpace(out))
	}
	return s.sync()
}

// del removes the share's security descriptor, if any.
func (s shareSec) del(ctx context.Context, share string) error {
	_, err := s.tdbtool(ctx, "delete", sdKey(share))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.sync()
}

func (s shareSec) sync() error {
	f, err := os.OpenFile(s.db, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
