package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/gc"
)

// goatCompactRepo is the repository of the compaction database.
const goatCompactRepo = "/test/compact"

// gcLater is how far ahead of the clock the compaction's collector
// believes it is: past the default horizon (37 days) of every commit the
// run wrote, so that all but each item's current commit is collected.
const gcLater = 100 * 24 * time.Hour

// compact builds the compaction database, then compacts a fresh copy of
// it, open and with the repository loaded, per sample.
func (e *goatEngine) compact() (task, error) {
	name := "goatdb-signed-" + strconv.Itoa(e.n)
	if e.trusted {
		name = "goatdb-trusted-" + strconv.Itoa(e.n)
	}
	src, err := sharedSource(e.dir, name, e.buildCompact)
	if err != nil {
		return task{}, fmt.Errorf("build %d items written %d times: %w", e.n, compactRounds, err)
	}
	work := filepath.Join(e.dir, "compact")
	opts := &gc.Options{Force: true, Now: func() time.Time { return time.Now().Add(gcLater) }}
	out := new(compaction)
	var db *goatdb.DB
	return task{
		gc:        true,
		compacted: out,
		before: func(int) error {
			if err := os.RemoveAll(work); err != nil {
				return err
			}
			if err := copyDir(src, work); err != nil {
				return err
			}
			var err error
			if db, err = goatdb.Open(work, e.options()); err != nil {
				return err
			}
			_, err = db.LookupRepo(goatCompactRepo) // reads the log
			return err
		},
		run: func(int) error {
			res, err := gc.Collect(db, goatCompactRepo, opts)
			if err != nil {
				return err
			}
			if !res.Compacted {
				return fmt.Errorf("not compacted: %s", res)
			}
			*out = compaction{before: res.Stats.BytesBefore, after: res.Stats.BytesAfter, pause: res.Stats.Pause}
			return nil
		},
		after: func(int) error {
			err := goatCheckAll(db, goatCompactRepo, e.n, compactSum(e.n))
			if size, serr := db.LogSize(goatCompactRepo); serr != nil || size != out.after {
				err = errors.Join(err, serr, fmt.Errorf("log of %d bytes after compaction, reported %d", size, out.after))
			}
			return errors.Join(err, db.Close(), os.RemoveAll(work))
		},
	}, nil
}

// buildCompact writes the compaction database in dir: n items created,
// then updated compactRounds-1 times, compactBatch writes per batch,
// Async (how it is written does not change what is on disk). A writer per
// CPU writes its share of the batches, since goatdb builds and signs
// commits outside the repository's lock.
func (e *goatEngine) buildCompact(dir string) error {
	o := e.options()
	o.Durability = goatdb.Async
	db, err := goatdb.Open(dir, o)
	if err != nil {
		return err
	}
	paths := make([]string, e.n)
	workers := runtime.GOMAXPROCS(0)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := 0; r < compactRounds && errs[w] == nil; r++ {
				for lo := w * compactBatch; lo < e.n && errs[w] == nil; lo += workers * compactBatch {
					b := db.Batch()
					for i := lo; i < min(lo+compactBatch, e.n); i++ {
						f := fieldsOf(compactVersion(e.n, i, r))
						if r == 0 {
							paths[i] = b.Create(goatCompactRepo, f, withTest)
						} else {
							b.Put(paths[i], f, withTest)
						}
					}
					_, errs[w] = b.Commit()
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errors.Join(errs...), db.Close())
}
