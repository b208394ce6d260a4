package requestor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/fsrvpd/fsrvpd/client/vss"
)

// documents are the VSS documents the server published for a set, as read
// from its documents share.
type documents struct {
	// writerMetadata holds each WRITER_METADATA/<instance>.xml by file
	// name, parsed and as published.
	writerMetadata    map[string]*vss.WriterMetadata
	writerMetadataRaw map[string][]byte
	// backupComponents is the server's BACKUP_COMPONENTS.xml (the writers'
	// components and BACKUP_METADATA), writerStatus WRITER_STATUS.xml.
	backupComponents, writerStatus []byte
}

// Names on the documents share (client/vss).
const (
	shareWriterMetadataDir = vss.WriterMetadataDir
	shareBackupComponents  = vss.BackupComponentsFile
	shareWriterStatus      = vss.WriterStatusFile
)

// fetchDocuments reads the documents share of the set. A server without
// writers (or one that does not publish documents) has no such share: the
// result is then empty, not an error.
func fetchDocuments(ctx context.Context, cfg SMB, setID uuid.UUID, _ string) (*documents, error) {
	d := &documents{writerMetadata: map[string]*vss.WriterMetadata{}, writerMetadataRaw: map[string][]byte{}}
	ss, err := cfg.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer ss.close()
	name := DocumentsShare(setID)
	fs, err := ss.mount(cfg.host(), name)
	if err != nil {
		if isNoShare(err) {
			return d, nil
		}
		return nil, err
	}
	defer fs.Umount()
	fis, err := fs.WithContext(ctx).ReadDir(shareWriterMetadataDir)
	if err != nil && !isNotExist(err) {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for _, fi := range fis {
		if fi.IsDir() || !strings.HasSuffix(strings.ToLower(fi.Name()), ".xml") {
			continue
		}
		data, err := readSMBFile(ctx, fs, path.Join(shareWriterMetadataDir, fi.Name()))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		wm, err := vss.ParseWriterMetadata(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", name, fi.Name(), err)
		}
		d.writerMetadata[fi.Name()] = wm
		d.writerMetadataRaw[fi.Name()] = data
	}
	for _, f := range []struct {
		name string
		dst  *[]byte
	}{{shareBackupComponents, &d.backupComponents}, {shareWriterStatus, &d.writerStatus}} {
		data, err := readSMBFile(ctx, fs, f.name)
		switch {
		case err == nil:
			*f.dst = data
		case isNotExist(err):
		default:
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return d, nil
}

// writeDoc writes data to dest/rel and returns its catalog entry.
func writeDoc(dest, rel string, data []byte) (Entry, error) {
	p := filepath.Join(dest, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return Entry{}, err
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return Entry{}, err
	}
	sum := sha256.Sum256(data)
	return Entry{Path: rel, Size: int64(len(data)), ModTime: time.Now().UTC(), SHA256: hex.EncodeToString(sum[:])}, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
