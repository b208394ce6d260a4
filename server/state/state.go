// Package state is fsrvpd's durable store: a bbolt file holding JSON records
// in named buckets, changed only through explicit transactions.
//
// MS-FSRVP §3.1.4 requires the server to persist its whole state whenever a
// method returns success, and §3.1.3 to reload it at start-up. The store
// records protocol state only; whether snapshots and shares really exist is
// decided by the backends, and the server reconciles the two at start-up.
//
// The schema of the records belongs to the caller. The store adds one thing:
// a schema version, checked at Open, so that an old binary refuses a newer
// file instead of misreading it.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is the version of the record layout this binary writes.
const SchemaVersion = 1

var (
	metaBucket = []byte("meta")
	versionKey = []byte("schema_version")
)

// ErrNotFound is returned by Tx.Get for a missing key.
var ErrNotFound = errors.New("record not found")

// DB is an open store.
type DB struct {
	bolt *bolt.DB
	path string
}

// Open opens or creates the store at path. It fails if another process holds
// the file (bbolt's flock), after waiting at most timeout.
func Open(path string, timeout time.Duration) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("state %s: locked by another process", path)
		}
		return nil, fmt.Errorf("state %s: %w", path, err)
	}
	db := &DB{bolt: b, path: path}
	if err := db.checkVersion(); err != nil {
		b.Close()
		return nil, err
	}
	return db, nil
}

func (db *DB) checkVersion() error {
	return db.bolt.Update(func(tx *bolt.Tx) error {
		m, err := tx.CreateBucketIfNotExists(metaBucket)
		if err != nil {
			return err
		}
		v := m.Get(versionKey)
		if v == nil {
			return m.Put(versionKey, []byte(fmt.Sprint(SchemaVersion)))
		}
		if string(v) != fmt.Sprint(SchemaVersion) {
			return fmt.Errorf("state %s: schema version %s, this binary understands %d", db.path, v, SchemaVersion)
		}
		return nil
	})
}

// Path is the file the store lives in.
func (db *DB) Path() string { return db.path }

// Close closes the store.
func (db *DB) Close() error { return db.bolt.Close() }

// Update runs fn in a read-write transaction. The transaction commits, and is
// on disk, when Update returns nil; if fn fails nothing is written.
func (db *DB) Update(fn func(*Tx) error) error {
	return db.bolt.Update(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) })
}

// View runs fn in a read-only transaction.
func (db *DB) View(fn func(*Tx) error) error {
	return db.bolt.View(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) })
}

// Tx is a transaction.
type Tx struct{ tx *bolt.Tx }

// Put stores v, encoded as JSON, under bucket/key.
func (t *Tx) Put(bucket, key string, v any) error {
	b, err := t.tx.CreateBucketIfNotExists([]byte(bucket))
	if err != nil {
		return err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s/%s: %w", bucket, key, err)
	}
	return b.Put([]byte(key), data)
}

// Get decodes bucket/key into v, or returns ErrNotFound.
func (t *Tx) Get(bucket, key string, v any) error {
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return fmt.Errorf("%s/%s: %w", bucket, key, ErrNotFound)
	}
	data := b.Get([]byte(key))
	if data == nil {
		return fmt.Errorf("%s/%s: %w", bucket, key, ErrNotFound)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s/%s: %w", bucket, key, err)
	}
	return nil
}

// Delete removes bucket/key; a missing key is not an error.
func (t *Tx) Delete(bucket, key string) error {
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	return b.Delete([]byte(key))
}

// ForEach calls fn with every key and raw JSON value of bucket, in key order.
func (t *Tx) ForEach(bucket string, fn func(key string, raw json.RawMessage) error) error {
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error { return fn(string(k), json.RawMessage(v)) })
}

// DeleteAll empties bucket.
func (t *Tx) DeleteAll(bucket string) error {
	if t.tx.Bucket([]byte(bucket)) == nil {
		return nil
	}
	return t.tx.DeleteBucket([]byte(bucket))
}
