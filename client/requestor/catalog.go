package requestor

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Names in a backup destination. See the package documentation for the
// layout.
const (
	CatalogFile       = "catalog.json"
	DataDir           = "data"
	DocumentsDir      = "documents"
	WriterMetadataDir = "documents/writer-metadata"
	BackupComponents  = "documents/backup-components.xml"
	WriterStatus      = "documents/writer-status.xml"
	partialMarker     = ".fsrvp-backup-incomplete"
)

// CatalogVersion is the version of the catalog format.
const CatalogVersion = 1

// Catalog describes one backup: where it came from, and every file and
// directory with its size, modification time and, for files, SHA-256.
type Catalog struct {
	Version         int            `json:"version"`
	Tool            string         `json:"tool"`
	Started         time.Time      `json:"started"`
	Finished        time.Time      `json:"finished"`
	Server          string         `json:"server"`
	ShadowCopySetID uuid.UUID      `json:"shadow_copy_set_id"`
	Context         uint32         `json:"context"`
	IncrementalFrom string         `json:"incremental_from,omitempty"`
	Shares          []CatalogShare `json:"shares"`
	// Documents are the VSS documents in documents/, with their hashes.
	Documents []Entry `json:"documents,omitempty"`
	// Components are the writer components selected, with their outcome
	// (also recorded in the backup components document).
	Components []ComponentResult `json:"components,omitempty"`
	Entries    []Entry           `json:"entries"`
}

// CatalogShare is one backed-up share.
type CatalogShare struct {
	Name         string    `json:"name"` // base share name, the directory below data/
	ShareUNC     string    `json:"share_unc"`
	Path         string    `json:"path,omitempty"` // the share's directory on the server, when known
	ExposedName  string    `json:"exposed_name"`
	ShadowCopyID uuid.UUID `json:"shadow_copy_id"`
	CreationTime time.Time `json:"creation_time"`
}

// Entry is one file or directory. Path is relative to data/<Share>/ (or to
// the destination for documents), with forward slashes.
type Entry struct {
	Share   string      `json:"share,omitempty"`
	Path    string      `json:"path"`
	Dir     bool        `json:"dir,omitempty"`
	Size    int64       `json:"size"`
	ModTime time.Time   `json:"mtime"`
	Mode    os.FileMode `json:"mode,omitempty"`
	SHA256  string      `json:"sha256,omitempty"`
	// Linked is true when an incremental backup hard-linked the file from
	// the previous backup instead of copying it.
	Linked bool `json:"linked,omitempty"`
}

// ComponentResult is the outcome of one writer component in a backup or a
// restore.
type ComponentResult struct {
	WriterID      string `json:"writer_id,omitempty"`
	WriterName    string `json:"writer_name,omitempty"`
	LogicalPath   string `json:"logical_path,omitempty"`
	ComponentName string `json:"component_name"`
	Succeeded     bool   `json:"succeeded"`
	Files         int    `json:"files"`
	Message       string `json:"message,omitempty"`
}

// localPath is where e lives below the destination dir.
func (e Entry) localPath(dest string) string {
	if e.Share == "" {
		return filepath.Join(dest, filepath.FromSlash(e.Path))
	}
	return filepath.Join(dest, DataDir, e.Share, filepath.FromSlash(e.Path))
}

// LoadCatalog reads dir/catalog.json.
func LoadCatalog(dir string) (*Catalog, error) {
	data, err := os.ReadFile(filepath.Join(dir, CatalogFile))
	if err != nil {
		if _, serr := os.Stat(filepath.Join(dir, partialMarker)); serr == nil {
			return nil, fmt.Errorf("%s is an incomplete backup (it was interrupted or failed)", dir)
		}
		return nil, fmt.Errorf("%s is not a backup: %w", dir, err)
	}
	var c Catalog
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, CatalogFile), err)
	}
	if c.Version != CatalogVersion {
		return nil, fmt.Errorf("%s: catalog version %d, want %d", filepath.Join(dir, CatalogFile), c.Version, CatalogVersion)
	}
	return &c, nil
}

func (c *Catalog) save(dir string) error {
	sort.Slice(c.Entries, func(i, j int) bool {
		a, b := c.Entries[i], c.Entries[j]
		if a.Share != b.Share {
			return a.Share < b.Share
		}
		return a.Path < b.Path
	})
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, CatalogFile+".tmp")
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, CatalogFile))
}

// Problem is one mismatch found by Verify.
type Problem struct {
	Path   string `json:"path"` // relative to the backup directory
	Reason string `json:"reason"`
}

func (p Problem) String() string { return p.Path + ": " + p.Reason }

// VerifyResult is what Verify found.
type VerifyResult struct {
	Files, Dirs int
	Bytes       int64
	Problems    []Problem
}

// ErrVerify is returned (wrapped) by Verify when the backup does not match
// its catalog.
var ErrVerify = errors.New("backup does not match its catalog")

// Verify checks the backup in dir against its catalog: every file and
// document must exist with the recorded size and SHA-256, every directory
// must exist, and no file may be in data/ that the catalog does not list.
// It returns ErrVerify (wrapped, with the first problems) when anything
// differs; the result lists all of them.
func Verify(dir string, progress *Progress) (*VerifyResult, error) {
	c, err := LoadCatalog(dir)
	if err != nil {
		return nil, err
	}
	res := &VerifyResult{}
	known := map[string]bool{}
	var total int64
	for _, e := range append(append([]Entry(nil), c.Documents...), c.Entries...) {
		total += e.Size
	}
	progress.start(len(c.Entries)+len(c.Documents), total)
	defer progress.stop()
	check := func(e Entry) {
		p := e.localPath(dir)
		rel, _ := filepath.Rel(dir, p)
		known[rel] = true
		fi, err := os.Lstat(p)
		switch {
		case err != nil:
			res.Problems = append(res.Problems, Problem{rel, "missing"})
			return
		case e.Dir:
			res.Dirs++
			if !fi.IsDir() {
				res.Problems = append(res.Problems, Problem{rel, "not a directory"})
			}
			return
		case !fi.Mode().IsRegular():
			res.Problems = append(res.Problems, Problem{rel, "not a regular file"})
			return
		}
		res.Files++
		if fi.Size() != e.Size {
			res.Problems = append(res.Problems, Problem{rel, fmt.Sprintf("size %d, catalog says %d", fi.Size(), e.Size)})
		}
		sum, n, err := hashFile(p, progress)
		res.Bytes += n
		switch {
		case err != nil:
			res.Problems = append(res.Problems, Problem{rel, err.Error()})
		case sum != e.SHA256:
			res.Problems = append(res.Problems, Problem{rel, "SHA-256 " + sum + ", catalog says " + e.SHA256})
		}
		progress.fileDone()
	}
	for _, e := range c.Documents {
		check(e)
	}
	for _, e := range c.Entries {
		check(e)
	}
	data := filepath.Join(dir, DataDir)
	filepath.WalkDir(data, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == data {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if !known[rel] && !isShareRoot(dir, rel, c) {
			res.Problems = append(res.Problems, Problem{rel, "not in the catalog"})
		}
		return nil
	})
	if len(res.Problems) > 0 {
		var first []string
		for i, p := range res.Problems {
			if i == 3 {
				first = append(first, fmt.Sprintf("and %d more", len(res.Problems)-3))
				break
			}
			first = append(first, p.String())
		}
		return res, fmt.Errorf("%w: %s", ErrVerify, strings.Join(first, "; "))
	}
	return res, nil
}

func isShareRoot(dir, rel string, c *Catalog) bool {
	for _, s := range c.Shares {
		if rel == filepath.Join(DataDir, s.Name) {
			return true
		}
	}
	return false
}

func hashFile(p string, progress *Progress) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, progress.reader(f))
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
