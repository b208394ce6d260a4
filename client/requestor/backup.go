package requestor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"
)

// BackupOptions configure Backup.
type BackupOptions struct {
	Snapshot SnapshotRequest
	// Dest is the backup directory; it must not exist or be empty.
	Dest string
	// SMB reaches the exposed shares.
	SMB SMB
	// Workers is the number of parallel transfers (each with its own SMB
	// connection); 0 means 4.
	Workers int
	// IncrementalFrom is an earlier backup directory: files whose size and
	// modification time are unchanged are hard-linked from it.
	IncrementalFrom string
	// Include and Exclude select writer components (see ParseComponentSpec);
	// without Include every component is selected.
	Include, Exclude []string
	// SharePaths, if not nil, gives the server path of each share instead
	// of asking the server's srvsvc (needed only when writers publish
	// metadata: it names files by server path).
	SharePaths SharePaths
	// Progress, if not nil, shows the copy's progress.
	Progress *Progress
	Log      *logrus.Entry
}

// BackupResult sums up a finished backup.
type BackupResult struct {
	Catalog  *Catalog
	Copied   int   // files copied over SMB
	Linked   int   // files hard-linked from the previous backup
	Bytes    int64 // bytes copied over SMB
	Duration time.Duration
	// CopyDuration is the part of Duration spent listing and copying the
	// snapshot shares.
	CopyDuration time.Duration
}

// Backup backs up shares of an FSRVP server into o.Dest: it takes a
// snapshot of all of them in one shadow copy set (TakeSnapshot), reads the
// VSS documents the server publishes for the set, copies the exposed
// snapshot shares over SMB with o.Workers parallel transfers, writes the
// documents (the backup components document with each component's
// outcome) and the catalog, and releases the set (Snapshot.Release).
//
// Whatever happens — an error, or ctx cancelled by Ctrl-C — the set is
// aborted or released on the server before Backup returns: nothing stays
// exposed. A failed backup leaves its directory marked incomplete
// (LoadCatalog and Verify refuse it).
func Backup(ctx context.Context, dial Dialer, o BackupOptions) (res *BackupResult, err error) {
	start := time.Now()
	log := o.Log
	if log == nil {
		log = discardLog()
	}
	var prev *Catalog
	if o.IncrementalFrom != "" {
		if prev, err = LoadCatalog(o.IncrementalFrom); err != nil {
			return nil, fmt.Errorf("-incremental-from: %w", err)
		}
	}
	if err := prepareDest(o.Dest); err != nil {
		return nil, err
	}
	cat := &Catalog{Version: CatalogVersion, Tool: "fsrvp backup", Started: start.UTC(), Context: o.Snapshot.Context}
	if prev != nil {
		if cat.IncrementalFrom, err = filepath.Abs(o.IncrementalFrom); err != nil {
			return nil, err
		}
	}

	snap, err := TakeSnapshot(ctx, dial, o.Snapshot, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if aerr := snap.Abort(ctx, err); aerr != nil {
				err = errors.Join(err, aerr)
			}
			return
		}
		if rerr := snap.Release(ctx); rerr != nil {
			log.WithError(rerr).Error("releasing the shadow copy set failed")
			err = errors.Join(err, rerr)
			res = nil
		}
	}()
	cat.Server, cat.ShadowCopySetID = snap.Target, snap.SetID
	log = log.WithField("set", snap.SetID)

	srcs := make([]*source, len(snap.Mappings))
	seen := map[string]bool{}
	for i, m := range snap.Mappings {
		exposed := shareName(m.ExposedName)
		name := baseName(exposed)
		if seen[strings.ToLower(name)] {
			return nil, fmt.Errorf("share %s given twice", name)
		}
		seen[strings.ToLower(name)] = true
		srcs[i] = &source{name: name, exposed: exposed, pool: newPool(o.SMB, exposed)}
		defer srcs[i].pool.close()
		cat.Shares = append(cat.Shares, CatalogShare{Name: name, ShareUNC: m.ShareUNC, ExposedName: m.ExposedName,
			ShadowCopyID: m.ShadowCopyID, CreationTime: m.CreationTime.UTC()})
	}

	docs, err := fetchDocuments(ctx, o.SMB, snap.SetID, o.Dest)
	if err != nil {
		return nil, err
	}
	paths := o.SharePaths
	if len(docs.writerMetadata) > 0 && paths == nil {
		// Writer metadata names files by server path.
		if paths, err = o.SMB.sharePaths(ctx); err != nil {
			return nil, fmt.Errorf("mapping the writers' files to shares: %w (give the share paths instead)", err)
		}
	}
	for i := range cat.Shares {
		cat.Shares[i].Path = paths[cat.Shares[i].Name]
	}
	plan, err := planComponents(docs, paths, cat.Shares, o.Include, o.Exclude)
	if err != nil {
		return nil, err
	}

	cp := &copier{smb: o.SMB, dest: o.Dest, workers: o.Workers, filter: plan.filter(), progress: o.Progress}
	if prev != nil {
		cp.prevDir = o.IncrementalFrom
		cp.prev = map[string]Entry{}
		for _, e := range prev.Entries {
			cp.prev[entryKey(e.Share, e.Path)] = e
		}
	}
	log.WithField("shares", len(srcs)).Info("copying the snapshot shares")
	copyStart := time.Now()
	copyErr := cp.run(ctx, srcs)
	copyTime := time.Since(copyStart)
	if copyErr != nil && ctx.Err() != nil {
		copyErr = fmt.Errorf("backup interrupted: %w", context.Cause(ctx))
	}
	if copyErr != nil {
		return nil, copyErr
	}
	cat.Entries = cp.entries
	cat.Components = plan.results(cp.entries)
	if cat.Documents, err = plan.write(o.Dest, prev != nil); err != nil {
		return nil, err
	}
	cat.Finished = time.Now().UTC()
	if err := cat.save(o.Dest); err != nil {
		return nil, err
	}
	if err := os.Remove(filepath.Join(o.Dest, partialMarker)); err != nil {
		return nil, err
	}
	return &BackupResult{Catalog: cat, Copied: cp.copied, Linked: cp.linked, Bytes: cp.bytes, Duration: time.Since(start), CopyDuration: copyTime}, nil
}

// prepareDest creates dir (or accepts an empty one) and marks it
// incomplete until the catalog is written.
func prepareDest(dir string) error {
	if dir == "" {
		return errors.New("no backup destination")
	}
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("backup destination %s exists and is not empty", dir)
	}
	if err := os.MkdirAll(filepath.Join(dir, DataDir), 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, partialMarker), []byte("fsrvp backup in progress or failed\n"), 0o644)
}

// DocumentsShare is the hidden read-only share on which fsrvpd publishes
// the VSS documents of an exposed set: "vss@{<set id>}$", lower case
// (client/vss, "Where fsrvpd publishes the documents").
func DocumentsShare(setID uuid.UUID) string {
	return "vss@{" + strings.ToLower(setID.String()) + "}$"
}
