// Package shares defines how fsrvpd finds the SMB shares that clients name
// and how it exposes a snapshot as a new share. Taking the snapshot is the
// storage package's job; this package only publishes a path under a name.
//
// Two roles:
//
//   - A Resolver answers "which directory does share X serve?" for base
//     shares named by clients (\\host\X). In TCP-only mode the shares come from
//     the daemon's configuration (Static); with Samba they come from smb.conf.
//   - An Exposer publishes and withdraws snapshot shares (share@{GUID}) and
//     lists the ones it owns, so that a restart can reconcile them against
//     the daemon's state.
package shares

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

var (
	// ErrNotFound: no share of that name.
	ErrNotFound = errors.New("share not found")
	// ErrExists: a share of that name exists already.
	ErrExists = errors.New("share exists")
	// ErrInvalidName: the name cannot be a share name.
	ErrInvalidName = errors.New("invalid share name")
)

// MaxNameLen is the longest share name, in characters (Windows NNLEN).
const MaxNameLen = 80

// ValidName checks that name can name an exposed share: 1 to MaxNameLen
// characters of valid UTF-8, none of them a control character or one of
// \ / : * ? " < > |, and not the reserved IPC$. The characters @ { } $ of
// snapshot share names (data@{GUID}, hidden$) are allowed. The error wraps
// ErrInvalidName.
func ValidName(name string) error {
	bad := func(why string) error { return fmt.Errorf("share %q: %s: %w", name, why, ErrInvalidName) }
	switch n := utf8.RuneCountInString(name); {
	case n == 0:
		return bad("empty")
	case n > MaxNameLen:
		return bad(fmt.Sprintf("%d characters, more than %d", n, MaxNameLen))
	case !utf8.ValidString(name):
		return bad("not UTF-8")
	case strings.EqualFold(name, "IPC$"):
		return bad("reserved")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(`\/:*?"<>|`, r) {
			return bad(fmt.Sprintf("contains %q", r))
		}
	}
	return nil
}

// BaseShare is a share a client may name in an FSRVP request.
type BaseShare struct {
	// Name as configured; lookups are case-insensitive.
	Name string
	// Path is the directory the share serves.
	Path string
}

// Hidden reports whether the share is hidden from browse lists (its name
// ends in '$', MS-FSRVP §3.1.4.6 note <9>).
func (b BaseShare) Hidden() bool { return strings.HasSuffix(b.Name, "$") }

// Resolver looks base shares up by name, case-insensitively.
type Resolver interface {
	// Lookup returns the share called name, or an error wrapping ErrNotFound.
	Lookup(ctx context.Context, name string) (BaseShare, error)
}

// Share is an exposed snapshot share.
type Share struct {
	// Name is the SMB share name, e.g. "data@{6f1c...}".
	Name string `json:"name"`
	// Base is the name of the share it is a copy of; its permissions are
	// copied at Expose time.
	Base string `json:"base"`
	// Path is the directory it serves.
	Path     string `json:"path"`
	ReadOnly bool   `json:"read_only"`
	Comment  string `json:"comment,omitempty"`
	// Created is the shadow copy's creation time (MS-FSRVP's
	// CreationTimestamp), e.g. for a Previous Versions @GMT token.
	Created time.Time `json:"created,omitzero"`
}

// Exposer publishes snapshot shares. Implementations are safe for
// concurrent use, and every successful call is durable when it returns.
type Exposer interface {
	// Expose publishes s. ErrExists if a share of that name exists.
	Expose(ctx context.Context, s Share) error
	// SetReadOnly changes the access mode of an exposed share. ErrNotFound if
	// absent.
	SetReadOnly(ctx context.Context, name string, readOnly bool) error
	// Remove withdraws the share and disconnects its users. ErrNotFound if
	// absent.
	Remove(ctx context.Context, name string) error
	// List returns every share this exposer published and has not removed.
	List(ctx context.Context) ([]Share, error)
}

// Connection is an SMB client's tree connect to an exposed share.
type Connection struct {
	// Share is the exposed share's name.
	Share string `json:"share"`
	// Machine is the client's address (or name, as the SMB server knows it).
	Machine string `json:"machine"`
	// Since is when the tree connect was made; zero if unknown.
	Since time.Time `json:"since,omitzero"`
}

// ConnectionLister is implemented by exposers that can tell which of their
// shares SMB clients have connected. Retention and administrative deletes
// use it so as not to withdraw a snapshot from under a reader: Remove
// disconnects them.
type ConnectionLister interface {
	// Connections returns the current tree connects to shares this exposer
	// published, in no particular order.
	Connections(ctx context.Context) ([]Connection, error)
}

// Lister is implemented by resolvers that can enumerate their base shares
// (SCMP lists the volumes behind them).
type Lister interface {
	List(ctx context.Context) ([]BaseShare, error)
}

// Static is a Resolver over a fixed list of shares (the daemon's config).
type Static struct {
	byName map[string]BaseShare
}

// NewStatic builds a Static resolver. Names must be unique ignoring case.
func NewStatic(list []BaseShare) (*Static, error) {
	s := &Static{byName: make(map[string]BaseShare, len(list))}
	for _, b := range list {
		k := strings.ToLower(b.Name)
		if _, dup := s.byName[k]; dup {
			return nil, fmt.Errorf("share %q: %w", b.Name, ErrExists)
		}
		s.byName[k] = b
	}
	return s, nil
}

// List implements Lister, sorted by name.
func (s *Static) List(context.Context) ([]BaseShare, error) {
	out := make([]BaseShare, 0, len(s.byName))
	for _, b := range s.byName {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Lookup implements Resolver.
func (s *Static) Lookup(_ context.Context, name string) (BaseShare, error) {
	b, ok := s.byName[strings.ToLower(name)]
	if !ok {
		return BaseShare{}, fmt.Errorf("share %q: %w", name, ErrNotFound)
	}
	return b, nil
}
