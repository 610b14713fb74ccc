package main

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"
)

// The compaction database's table.
const (
	sqliteCompactTable = "items"
	sqliteCompactSQL   = `UPDATE items SET title = ?, count = ?, tags = ? WHERE id = ?`
	sqliteCompactCheck = `SELECT COUNT(*), SUM(count) FROM items`
)

// sqliteSuffixes are a database's files: the database, its WAL and the
// WAL's index.
var sqliteSuffixes = []string{"", "-wal", "-shm"}

func sqliteFiles(path string) []string {
	out := make([]string, len(sqliteSuffixes))
	for i, s := range sqliteSuffixes {
		out[i] = path + s
	}
	return out
}

// compact builds the compaction database, then runs VACUUM and a
// checkpoint on a fresh copy of it per sample.
func (e *sqliteEngine) compact() (task, error) {
	src, err := sharedSource(e.dir, "sqlite-"+strconv.Itoa(e.n)+".db", e.buildCompact)
	if err != nil {
		return task{}, fmt.Errorf("build %d items written %d times: %w", e.n, compactRounds, err)
	}
	work := filepath.Join(e.dir, "compact.db")
	out := new(compaction)
	var db *sql.DB
	return task{
		gc:         true,
		compacted:  out,
		pauseWhole: true,
		before: func(int) error {
			if err := removeFiles(sqliteFiles(work)...); err != nil {
				return err
			}
			if err := copyFile(src, work); err != nil {
				return err
			}
			var err error
			if out.before, err = fileSizes(work, work+"-wal"); err != nil {
				return err
			}
			db, err = e.open(work)
			return err
		},
		run: func(int) error {
			start := time.Now()
			if _, err := db.Exec("VACUUM"); err != nil {
				return err
			}
			var busy, logged, done int
			if err := db.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logged, &done); err != nil {
				return err
			}
			if busy != 0 {
				return errors.New("checkpoint after VACUUM: busy")
			}
			out.pause = time.Since(start)
			return nil
		},
		after: func(int) error {
			var err error
			out.after, err = fileSizes(work, work+"-wal") // not -shm, an index in shared memory
			var n int
			var sum float64
			if qerr := db.QueryRow(sqliteCompactCheck).Scan(&n, &sum); qerr != nil {
				err = errors.Join(err, qerr)
			} else if n != e.n || sum != compactSum(e.n) {
				err = errors.Join(err, fmt.Errorf("after compaction: %d items with count sum %v, want %d and %v", n, sum, e.n, compactSum(e.n)))
			}
			return errors.Join(err, db.Close(), removeFiles(sqliteFiles(work)...))
		},
	}, nil
}

// buildCompact writes the compaction database at path: n rows inserted,
// then updated compactRounds-1 times, compactBatch rows per transaction;
// then checkpoints the WAL into the database file, which is all there is
// once it is closed. It writes with synchronous=OFF, whatever the
// engine's: the file is the same.
func (e *sqliteEngine) buildCompact(path string) (err error) {
	db, err := (&sqliteEngine{synchronous: "OFF"}).open(path)
	if err != nil {
		return err
	}
	defer func() {
		err = errors.Join(err, db.Close())
		if size, serr := fileSizes(path+"-wal", path+"-shm"); err == nil && (serr != nil || size > 0) {
			err = errors.Join(serr, fmt.Errorf("%s: a WAL is left after close", path))
		}
	}()
	if err := sqliteTable(db, sqliteCompactTable); err != nil {
		return err
	}
	var ids []string
	for lo := 0; lo < e.n; lo += compactBatch {
		got, err := sqliteInsert(db, sqliteCompactTable, lo, min(lo+compactBatch, e.n))
		if err != nil {
			return err
		}
		ids = append(ids, got...)
	}
	for r := 1; r < compactRounds; r++ {
		for lo := 0; lo < e.n; lo += compactBatch {
			if err := sqliteUpdateRange(db, ids, r, lo, min(lo+compactBatch, e.n)); err != nil {
				return err
			}
		}
	}
	_, err = db.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	return err
}

// sqliteUpdateRange writes version r of items lo..hi-1 in one
// transaction.
func sqliteUpdateRange(db *sql.DB, ids []string, r, lo, hi int) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	err = func() error {
		stmt, err := tx.Prepare(sqliteCompactSQL)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for i := lo; i < hi; i++ {
			v := compactVersion(len(ids), i, r)
			tags, err := json.Marshal(v.Tags)
			if err != nil {
				return err
			}
			if _, err := stmt.Exec(v.Title, v.Count, tags, ids[i]); err != nil {
				return err
			}
		}
		return nil
	}()
	if err != nil {
		return errors.Join(err, tx.Rollback())
	}
	return tx.Commit()
}
