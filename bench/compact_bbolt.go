package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// boltCompactBucket is the compaction database's bucket.
var boltCompactBucket = []byte("items")

// compact builds the compaction database, then copies a fresh copy of it
// into a new file with bolt.Compact per sample.
func (e *boltEngine) compact() (task, error) {
	src, err := sharedSource(e.dir, "bbolt-"+strconv.Itoa(e.n)+".db", e.buildCompact)
	if err != nil {
		return task{}, fmt.Errorf("build %d items written %d times: %w", e.n, compactRounds, err)
	}
	from, to := filepath.Join(e.dir, "compact-from.db"), filepath.Join(e.dir, "compact-to.db")
	out := new(compaction)
	var db *bolt.DB
	return task{
		gc:         true,
		compacted:  out,
		pauseWhole: true,
		before: func(int) error {
			if err := removeFiles(from, to); err != nil {
				return err
			}
			if err := copyFile(src, from); err != nil {
				return err
			}
			var err error
			if out.before, err = fileSizes(from); err != nil {
				return err
			}
			db, err = e.open(from)
			return err
		},
		run: func(int) error {
			start := time.Now()
			dst, err := e.open(to)
			if err != nil {
				return err
			}
			// 0: one transaction.
			if err := errors.Join(bolt.Compact(dst, db, 0), dst.Close()); err != nil {
				return err
			}
			out.pause = time.Since(start)
			return nil
		},
		after: func(int) error {
			var err error
			out.after, err = fileSizes(to)
			return errors.Join(err, boltCheckCompacted(to, e.n), db.Close(), removeFiles(from, to))
		},
	}, nil
}

// boltCheckCompacted reads every item of the compacted file at path,
// which must be n items with the counts of their last versions.
func boltCheckCompacted(path string, n int) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return err
	}
	var got int
	var sum float64
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(boltCompactBucket)
		if b == nil {
			return errors.New("no bucket after compaction")
		}
		return b.ForEach(func(_, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			sum += r.Count
			got++
			return nil
		})
	})
	if err == nil && (got != n || sum != compactSum(n)) {
		err = fmt.Errorf("after compaction: %d items with count sum %v, want %d and %v", got, sum, n, compactSum(n))
	}
	return errors.Join(err, db.Close())
}

// buildCompact writes the compaction database at path: n items put, then
// put again compactRounds-1 times, compactBatch per transaction. It
// writes with NoSync, whatever the engine's: the file is the same.
func (e *boltEngine) buildCompact(path string) error {
	db, err := (&boltEngine{noSync: true}).open(path)
	if err != nil {
		return err
	}
	var ids []string
	for lo := 0; lo < e.n && err == nil; lo += compactBatch {
		var got []string
		got, err = boltInsert(db, boltCompactBucket, lo, min(lo+compactBatch, e.n))
		ids = append(ids, got...)
	}
	for r := 1; r < compactRounds && err == nil; r++ {
		for lo := 0; lo < e.n && err == nil; lo += compactBatch {
			err = db.Update(func(tx *bolt.Tx) error {
				b := tx.Bucket(boltCompactBucket)
				for i := lo; i < min(lo+compactBatch, e.n); i++ {
					if err := boltPut(b, ids[i], compactVersion(e.n, i, r)); err != nil {
						return err
					}
				}
				return nil
			})
		}
	}
	return errors.Join(err, db.Close())
}
