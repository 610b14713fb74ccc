package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/goatdb/goatdb"
	bolt "go.etcd.io/bbolt"
)

// The bbolt engine's buckets: the workload's repository, and one for
// writes so that the workload's keeps exactly smallN items.
var (
	boltBasic = []byte("basic")
	boltWrite = []byte("writes")
)

// boltEngine runs the workload on bbolt: a repository is a bucket, an item
// the JSON of its record under its key. Queries scan the bucket and
// filter and sort in Go.
type boltEngine struct {
	noSync bool

	dir     string
	db      *bolt.DB // the main instance
	ids     []string // ids[i] is item i of basic
	updates []string // items of writes that updates change
	n       int      // items of the big instance
	bigID   string   // item n/2 of the big instance
}

func (e *boltEngine) open(path string) (*bolt.DB, error) {
	return bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoSync: e.noSync})
}

func (e *boltEngine) setup(dir string, n int, big bool) error {
	e.dir, e.n = dir, n
	if big {
		if err := e.buildBig(); err != nil {
			return fmt.Errorf("build %d items: %w", n, err)
		}
	}
	var err error
	if e.db, err = e.open(filepath.Join(dir, "main.db")); err != nil {
		return err
	}
	if e.ids, err = boltInsert(e.db, boltBasic, 0, smallN); err != nil {
		return err
	}
	e.updates, err = boltInsert(e.db, boltWrite, 0, updateN)
	return err
}

func (e *boltEngine) bigPath() string { return filepath.Join(e.dir, "big.db") }

// buildBig writes the big instance in transactions of 1000 items.
func (e *boltEngine) buildBig() error {
	db, err := e.open(e.bigPath())
	if err != nil {
		return err
	}
	for i := 0; i < e.n && err == nil; i += 1000 {
		var ids []string
		ids, err = boltInsert(db, boltBasic, i, min(i+1000, e.n))
		if lo := e.n / 2; err == nil && lo >= i && lo < i+len(ids) {
			e.bigID = ids[lo-i]
		}
	}
	return errors.Join(err, db.Close())
}

// boltInsert puts items lo..hi-1 in one transaction, creating the bucket
// if needed, and returns their keys.
func boltInsert(db *bolt.DB, bucket []byte, lo, hi int) ([]string, error) {
	ids := make([]string, 0, hi-lo)
	err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		for i := lo; i < hi; i++ {
			id := goatdb.NewKey()
			if err := boltPut(b, id, recordOf(i)); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	return ids, err
}

func boltPut(b *bolt.Bucket, id string, r record) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return b.Put([]byte(id), v)
}

func (e *boltEngine) close() error {
	if e.db == nil {
		return nil
	}
	return e.db.Close()
}

func (e *boltEngine) task(op opID) (task, error) {
	switch op {
	case opCreateInstance:
		return e.createInstance(), nil
	case opOpenEmptyRepo:
		return task{run: func(k int) error {
			return e.db.Update(func(tx *bolt.Tx) error {
				_, err := tx.CreateBucket([]byte("empty" + strconv.Itoa(k)))
				return err
			})
		}}, nil
	case opOpenBig:
		return e.openBig(), nil
	case opReadAll:
		return e.readAll(), nil
	case opCreate:
		return task{run: func(k int) error { return e.put(goatdb.NewKey(), recordOf(k)) }}, nil
	case opUpdate:
		return task{run: func(k int) error { return e.put(e.updates[k%updateN], recordOf(updateN+k)) }}, nil
	case opBulkCreate:
		return task{run: func(k int) error {
			_, err := boltInsert(e.db, boltWrite, k*bulkN, (k+1)*bulkN)
			return err
		}}, nil
	case opReadByPath:
		return task{batch: true, run: func(k int) error { return e.read(k%smallN, 1) }}, nil
	case opBulkRead:
		return task{batch: true, run: func(int) error { return e.read(0, bulkN) }}, nil
	case opQuerySimple:
		return e.query(simpleQuery), nil
	case opQueryComplex:
		return e.query(complexQuery), nil
	case opCount:
		return task{batch: true, run: func(int) error { return e.count() }}, nil
	case opKeys:
		return task{batch: true, run: func(int) error { return e.keys() }}, nil
	case opCompact:
		return e.compact()
	}
	return task{}, errUnknownOp(op)
}

// put writes one item to the writes bucket in its own transaction.
func (e *boltEngine) put(id string, r record) error {
	return e.db.Update(func(tx *bolt.Tx) error { return boltPut(tx.Bucket(boltWrite), id, r) })
}

func (e *boltEngine) createInstance() task {
	var db *bolt.DB
	path := func(k int) string { return filepath.Join(e.dir, "instance"+strconv.Itoa(k)+".db") }
	return task{
		run: func(k int) (err error) {
			db, err = e.open(path(k))
			return err
		},
		after: func(k int) error { return errors.Join(db.Close(), os.Remove(path(k))) },
	}
}

// openBig opens the big instance and reads one item.
func (e *boltEngine) openBig() task {
	var db *bolt.DB
	return task{
		gc: true,
		run: func(int) (err error) {
			if db, err = e.open(e.bigPath()); err != nil {
				return err
			}
			return db.View(func(tx *bolt.Tx) error {
				_, err := boltGet(tx.Bucket(boltBasic), e.bigID)
				return err
			})
		},
		after: func(int) error { return db.Close() },
	}
}

// readAll reads every item of the big instance, opened and read once
// before each sample, untimed.
func (e *boltEngine) readAll() task {
	var db *bolt.DB
	return task{
		gc: true,
		before: func(int) (err error) {
			if db, err = e.open(e.bigPath()); err != nil {
				return err
			}
			return boltReadAll(db, e.n)
		},
		run:   func(int) error { return boltReadAll(db, e.n) },
		after: func(int) error { return db.Close() },
	}
}

func boltReadAll(db *bolt.DB, n int) error {
	var got int
	var sum float64
	err := db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(boltBasic).ForEach(func(k, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			if r.Title == "" || len(r.Tags) != 2 {
				return fmt.Errorf("read all: bad item %s", k)
			}
			sum += r.Count
			got++
			return nil
		})
	})
	if err == nil && (got != n || sum != countSum(n)) {
		err = fmt.Errorf("read all: %d items with count sum %v, want %d and %v", got, sum, n, countSum(n))
	}
	return err
}

func boltGet(b *bolt.Bucket, id string) (record, error) {
	var r record
	v := b.Get([]byte(id))
	if v == nil {
		return r, fmt.Errorf("get %s: not found", id)
	}
	return r, json.Unmarshal(v, &r)
}

// read reads items lo..lo+n-1 of basic in one transaction.
func (e *boltEngine) read(lo, n int) error {
	return e.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(boltBasic)
		for i := lo; i < lo+n; i++ {
			r, err := boltGet(b, e.ids[i])
			if err != nil {
				return err
			}
			if err := checkRead(i, r.Count); err != nil {
				return err
			}
		}
		return nil
	})
}

func (e *boltEngine) query(q *queryDef) task {
	var matches []record
	counts := make([]float64, 0, smallN)
	return task{batch: true, run: func(int) error {
		matches, counts = matches[:0], counts[:0]
		err := e.db.View(func(tx *bolt.Tx) error {
			return tx.Bucket(boltBasic).ForEach(func(_, v []byte) error {
				var r record
				if err := json.Unmarshal(v, &r); err != nil {
					return err
				}
				if q.match(r) {
					matches = append(matches, r)
				}
				return nil
			})
		})
		if err != nil {
			return err
		}
		if q.sorted {
			slices.SortStableFunc(matches, func(a, b record) int { return cmp.Compare(b.Count, a.Count) })
		}
		for _, r := range matches {
			counts = append(counts, r.Count)
		}
		return q.check(counts)
	}}
}

func (e *boltEngine) count() error {
	return e.db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket(boltBasic).Stats().KeyN; n != smallN {
			return fmt.Errorf("count: %d, want %d", n, smallN)
		}
		return nil
	})
}

func (e *boltEngine) keys() error {
	keys := make([]string, 0, smallN)
	err := e.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(boltBasic).ForEach(func(k, _ []byte) error {
			keys = append(keys, string(k))
			return nil
		})
	})
	if err == nil && len(keys) != smallN {
		err = fmt.Errorf("keys: %d, want %d", len(keys), smallN)
	}
	return err
}
