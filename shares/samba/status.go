package samba

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/fsrvpd/fsrvpd/shares"
)

var _ shares.ConnectionLister = (*Exposer)(nil)

// statusTimeout bounds one smbstatus run.
const statusTimeout = 30 * time.Second

// Connections implements shares.ConnectionLister: the tree connects smbd
// holds on our shares, read with `smbstatus --shares --json` (Samba 4.16 and
// later), which reads smbd's connection tables without a lock. A tree
// connect made after the call returns is not seen, so a caller that then
// removes the share may still disconnect a client that arrived in between.
func (e *Exposer) Connections(ctx context.Context) ([]shares.Connection, error) {
	// smbstatus reads smbd's tables without locks and returns in tens of
	// milliseconds; the bound is for a wedged one.
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	out, err := e.res.sm.run(ctx, "smbstatus", "-s", e.cfg.SMBConf, "--shares", "--json")
	if err != nil {
		return nil, fmt.Errorf("samba: listing connections: %w", err)
	}
	all, err := parseStatus([]byte(out))
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var mine []shares.Connection
	for _, c := range all {
		if _, ok := e.byName[strings.ToLower(c.Share)]; ok {
			mine = append(mine, c)
		}
	}
	return mine, nil
}

// parseStatus reads smbstatus's JSON: {"tcons": {"<id>": {"service": name,
// "machine": address, "connected_at": RFC 3339}, ...}, ...}.
func parseStatus(data []byte) ([]shares.Connection, error) {
	var doc struct {
		Tcons *map[string]struct {
			Service     string `json:"service"`
			Machine     string `json:"machine"`
			ConnectedAt string `json:"connected_at"`
		} `json:"tcons"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("samba: smbstatus --json: %w", err)
	}
	if doc.Tcons == nil {
		return nil, fmt.Errorf("samba: smbstatus --json printed no \"tcons\" table")
	}
	var out []shares.Connection
	for id, t := range *doc.Tcons {
		if t.Service == "" {
			return nil, fmt.Errorf("samba: smbstatus --json: tree connect %s names no share", id)
		}
		c := shares.Connection{Share: t.Service, Machine: t.Machine}
		if at, err := time.Parse(time.RFC3339Nano, t.ConnectedAt); err == nil {
			c.Since = at
		}
		out = append(out, c)
	}
	return out, nil
}
