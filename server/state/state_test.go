package state

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

type rec struct {
	A string `json:"a"`
	N int    `json:"n"`
}

func TestPutGetDeleteAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	db, err := Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *Tx) error {
		if err := tx.Put("sets", "x", rec{"x", 1}); err != nil {
			return err
		}
		return tx.Put("sets", "y", rec{"y", 2})
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db, err = Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var got []rec
	err = db.View(func(tx *Tx) error {
		return tx.ForEach("sets", func(k string, raw json.RawMessage) error {
			var r rec
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			got = append(got, r)
			return nil
		})
	})
	if err != nil || len(got) != 2 || got[0].A != "x" || got[1].N != 2 {
		t.Fatalf("got %v, %v", got, err)
	}
	if err := db.Update(func(tx *Tx) error { return tx.Delete("sets", "x") }); err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *Tx) error { var r rec; return tx.Get("sets", "x", &r) })
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted record: %v", err)
	}
}

func TestFailedUpdateWritesNothing(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "s.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	boom := errors.New("boom")
	err = db.Update(func(tx *Tx) error {
		if err := tx.Put("sets", "x", rec{"x", 1}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	err = db.View(func(tx *Tx) error { var r rec; return tx.Get("sets", "x", &r) })
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("rolled back record visible: %v", err)
	}
}

func TestSchemaVersionMismatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.Update(func(tx *bolt.Tx) error {
		m, _ := tx.CreateBucketIfNotExists(metaBucket)
		return m.Put(versionKey, []byte("99"))
	})
	b.Close()
	if _, err := Open(path, time.Second); err == nil {
		t.Fatal("opened a store with a future schema")
	}
}

func TestLockedByAnotherOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	db, err := Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := Open(path, 50*time.Millisecond); err == nil {
		t.Fatal("second open of a locked store succeeded")
	}
}
