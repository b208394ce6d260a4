package requestor

import "errors"

// componentPlan is the selection of writer components for a backup.
type componentPlan struct{}

func planComponents(docs *documents, shares []CatalogShare, include, exclude []string) (*componentPlan, error) {
	if len(include)+len(exclude) > 0 {
		return nil, errors.New("component selection is not available yet")
	}
	return &componentPlan{}, nil
}

func (p *componentPlan) filter() Filter { return nil }

func (p *componentPlan) results([]Entry) []ComponentResult { return nil }

// write stores the documents below dest/documents.
func (d *documents) write(dest string, _ any, _ []ComponentResult) ([]Entry, error) {
	var out []Entry
	for _, n := range sortedKeys(d.writerMetadata) {
		e, err := writeDoc(dest, WriterMetadataDir+"/"+n, d.writerMetadata[n])
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if d.backupComponents != nil {
		e, err := writeDoc(dest, BackupComponents, d.backupComponents)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if d.writerStatus != nil {
		e, err := writeDoc(dest, WriterStatus, d.writerStatus)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}
