// Package samba is the shares.Exposer and shares.Resolver of a host where
// a running smbd serves the snapshot shares (base@{shadowcopyid}).
//
// # Mechanism
//
// The snapshot shares live in one file that fsrvpd owns, included from
// smb.conf's [global] section:
//
//	[global]
//		...
//		include = /etc/samba/fsrvpd-shares.conf   (last line of [global])
//
// Every change rewrites that file atomically (temporary file, fsync,
// rename, fsync of the directory), so a share exists exactly when the file
// says so, and then sends Samba's MSG_SMB_CONF_UPDATED to every Samba
// process (and MSG_SMB_FORCE_TDIS with the share name on removal) directly
// over Samba's messaging sockets, <lock dir>/msg.sock/<pid>, the way
// smbcontrol does but without starting a process (see messenger). New
// connections see a change even without the message (a forked smbd child
// re-reads changed config files); connections made earlier need it.
//
// A snapshot share copies every parameter its base share sets explicitly
// (testparm's view; "net conf list" for registry shares) except path,
// comment, read only and its synonyms, include, copy and the exec hooks;
// it is hidden (browseable = no) when its name ends in '$' unless the base
// says otherwise. Its share security descriptor is the base share's at
// Expose time, copied in <state dir>/share_info.tdb with tdbtool (the base
// having none, the snapshot share gets none: both get smbd's default), and
// deleted on Remove (Samba's own agent leaks these).
//
// Crash safety: the file is the record. Expose journals the share's name
// ("# fsrvpd-pending:") before it stores a security descriptor, and Remove
// before it withdraws one; New deletes the descriptors and closes the tree
// connects of journalled names that are not published, then tells smbd to
// reload. List returns exactly the file's shares, so the daemon's
// reconcile removes the ones it does not know.
//
// SetReadOnly(true) also closes the share's tree connects: smbd keeps the
// access mode a tree connect was made with.
//
// # Registry mirror (srvsvc)
//
// When smb.conf has "registry shares = yes" (detected at New; no option),
// each snapshot share is also copied into Samba's registry configuration
// (net conf import, same parameters plus "fsrvpd:include = <include
// file>"), updated by SetReadOnly (net conf setparm, first: smbd reads
// registry shares at reload too) and deleted by Remove (net conf delshare),
// always before the reload message. samba-dcerpcd's srvsvc loads smb.conf
// once and ignores reloads, but loads registry shares on demand, so only
// the copy makes NetShareGetInfo see a new snapshot share. New and List
// reconcile the marked copies with the include file (registry.go). Cost:
// one net process, about 55-70 ms, per Expose, SetReadOnly and Remove, and
// per New and List. Without "registry shares = yes" nothing changes.
//
// # Measurement
//
// Private smbd 4.17.12 (Debian 12) on 127.0.0.1, 2 cores, BenchmarkExpose
// with -benchtime 15x: median of 15, add→connectable is from the start of
// the add to a successful tree connect on an SMB2 session opened before it,
// remove→gone to a failing one.
//
//	mechanism                                   add→connectable  remove→gone
//	this package (include file + messages,       9.2 ms (8.3)     7.4 ms (6.8)
//	  SD copy with 2 tdbtool runs)
//	include file + smbcontrol reload-config     38.7 ms          75.6 ms (+ close-share)
//	net conf import / delshare (registry)       72.6 ms         146.6 ms (+ close-share, reload)
//	usershare file (no process at all)           1.7 ms          34.2 ms (+ close-share)
//
// Tool start-up alone (BenchmarkTools): tdbtool 1.5 ms, smbcontrol 25-45
// ms, testparm 22-54 ms, sharesec 35-70 ms, net conf 45-108 ms. Samba's own
// agent spends about 8 ms in ExposeShadowCopySet. Usershares are the
// cheapest but cannot carry the base share's parameters (one template
// share for all) nor an arbitrary security descriptor (usershare_acl is
// SID:R/F/D), so they do not qualify. Of the 9 ms, about 3 ms are the two
// tdbtool runs (read the base's descriptor, store or delete the copy).
//
// # smb.conf
//
// The daemon's host needs, in [global], the include line above as the last
// line of [global] (the file ends with "[global]" so that parameters after
// the include line stay global). "registry shares = yes" is only needed if
// base shares are defined in the registry.
//
// # Previous Versions
//
// With Config.PreviousVersionsDir set, each exposed snapshot share with a
// creation time is also a link <dir>/<base share in lower case>/@GMT-<UTC
// creation time, YYYY.MM.DD-HH.MM.SS> to its path (prevver.go). A base share
// opts in to listing them as Previous Versions (FSCTL_SRV_ENUM_SNAPS, @GMT
// paths) with:
//
//	vfs objects = shadow_copy2                 (plus its other modules)
//	shadow:snapdir = <dir>/<share name in lower case>
//	shadow:mountpoint = <the share's path>     (the share root is the snapshot root)
//
// Snapshot shares copy neither shadow:* nor shadow_copy2: with the base's
// absolute snapdir and mountpoint, writes to a writable snapshot share fail
// with NT_STATUS_OBJECT_NAME_NOT_FOUND. Tokens have one-second resolution:
// of two snapshots of one share created within the same second, the first
// is listed and the second is not (logged; its share works). The links are
// removed with their shares and reconciled with the include file by New and
// List.
package samba
