package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/schema"
)

// The goatdb engine's repositories: the workload's, and one for writes so
// that the workload's keeps exactly smallN items.
const (
	goatRepo  = "/test/basic"
	goatWrite = "/test/write"
)

var (
	withTest = goatdb.WithSchema("test")
	tag50    = item.String("tag50")
)

// goatEngine runs the workload on goatdb.
type goatEngine struct {
	durability goatdb.Durability
	trusted    bool

	schemas *schema.Registry
	dir     string
	db      *goatdb.DB // the main instance
	paths   []string   // paths[i] is item i of goatRepo
	updates []string   // items of goatWrite that updates change
	n       int        // items of the big instance
	bigPath string     // item n/2 of the big instance
}

// testSchema registers the workload's schema: test/1 = {title string,
// count number (default 0), tags set (default empty)}.
func testSchema() (*schema.Registry, error) {
	reg := schema.NewRegistry()
	err := reg.Register(schema.Schema{NS: "test", Version: 1, Fields: []schema.Field{
		{Name: "title", Type: item.TypeString},
		{Name: "count", Type: item.TypeNumber, Default: item.Number(0)},
		{Name: "tags", Type: item.TypeSet, Default: item.StringSet()},
	}})
	return reg, err
}

func fieldsOf(r record) goatdb.Fields {
	return goatdb.Fields{"title": r.Title, "count": r.Count, "tags": r.Tags}
}

func (e *goatEngine) options() *goatdb.Options {
	return &goatdb.Options{Durability: e.durability, Trusted: e.trusted, Schemas: e.schemas}
}

func (e *goatEngine) setup(dir string, n int, big bool) error {
	var err error
	if e.schemas, err = testSchema(); err != nil {
		return err
	}
	e.dir, e.n = dir, n
	if big {
		if err := e.buildBig(); err != nil {
			return fmt.Errorf("build %d items: %w", n, err)
		}
	}
	if e.db, err = goatdb.Open(filepath.Join(dir, "main"), e.options()); err != nil {
		return err
	}
	if e.paths, err = goatCreate(e.db, goatRepo, 0, smallN); err != nil {
		return err
	}
	e.updates, err = goatCreate(e.db, goatWrite, 0, updateN)
	return err
}

// buildBig writes the big instance, Async and in batches of 1000 (how it
// is written does not change what is on disk).
func (e *goatEngine) buildBig() error {
	o := e.options()
	o.Durability = goatdb.Async
	db, err := goatdb.Open(e.bigDir(), o)
	if err != nil {
		return err
	}
	for i := 0; i < e.n && err == nil; i += 1000 {
		var paths []string
		paths, err = goatCreate(db, goatRepo, i, min(i+1000, e.n))
		if lo := e.n / 2; err == nil && lo >= i && lo < i+len(paths) {
			e.bigPath = paths[lo-i]
		}
	}
	return errors.Join(err, db.Close())
}

func (e *goatEngine) bigDir() string { return filepath.Join(e.dir, "big") }

// goatCreate creates items lo..hi-1 in one batch and returns their paths.
func goatCreate(db *goatdb.DB, repo string, lo, hi int) ([]string, error) {
	b := db.Batch()
	paths := make([]string, 0, hi-lo)
	for i := lo; i < hi; i++ {
		paths = append(paths, b.Create(repo, fieldsOf(recordOf(i)), withTest))
	}
	_, err := b.Commit()
	return paths, err
}

func (e *goatEngine) close() error {
	if e.db == nil {
		return nil
	}
	return e.db.Close()
}

func (e *goatEngine) task(op opID) (task, error) {
	switch op {
	case opCreateInstance:
		return e.createInstance(), nil
	case opOpenEmptyRepo:
		return task{run: func(k int) error {
			_, err := e.db.Repo("/test/empty" + strconv.Itoa(k))
			return err
		}}, nil
	case opOpenBig:
		return e.openBig(), nil
	case opReadAll:
		return e.readAll(), nil
	case opCreate:
		return task{run: func(k int) error {
			_, err := e.db.Create(goatWrite, fieldsOf(recordOf(k)), withTest)
			return err
		}}, nil
	case opUpdate:
		return task{run: func(k int) error {
			_, err := e.db.Put(e.updates[k%updateN], fieldsOf(recordOf(updateN+k)), withTest)
			return err
		}}, nil
	case opBulkCreate:
		return task{run: func(k int) error {
			_, err := goatCreate(e.db, goatWrite, k*bulkN, (k+1)*bulkN)
			return err
		}}, nil
	case opReadByPath:
		return task{batch: true, run: func(k int) error { return e.read(k % smallN) }}, nil
	case opBulkRead:
		return task{batch: true, run: func(int) error {
			for i := range bulkN {
				if err := e.read(i); err != nil {
					return err
				}
			}
			return nil
		}}, nil
	case opQuerySimple:
		return e.query(simpleQuery, goatSimple), nil
	case opQueryComplex:
		return e.query(complexQuery, goatComplex), nil
	case opCount:
		return task{batch: true, run: func(int) error { return e.count() }}, nil
	case opKeys:
		return task{batch: true, run: func(int) error { return e.keys() }}, nil
	case opCompact:
		return e.compact()
	}
	return task{}, errUnknownOp(op)
}

func (e *goatEngine) createInstance() task {
	var db *goatdb.DB
	dir := func(k int) string { return filepath.Join(e.dir, "instance"+strconv.Itoa(k)) }
	return task{
		run: func(k int) (err error) {
			db, err = goatdb.Open(dir(k), e.options())
			return err
		},
		after: func(k int) error { return errors.Join(db.Close(), os.RemoveAll(dir(k))) },
	}
}

// openBig opens the big instance and reads one item, which loads the
// repository (goatdb opens a repository on first use).
func (e *goatEngine) openBig() task {
	var db *goatdb.DB
	return task{
		gc: true,
		run: func(int) (err error) {
			if db, err = goatdb.Open(e.bigDir(), e.options()); err != nil {
				return err
			}
			_, err = db.Get(e.bigPath)
			return err
		},
		after: func(int) error { return db.Close() },
	}
}

// readAll reads every item of the big instance, opened and read once
// before each sample, untimed.
func (e *goatEngine) readAll() task {
	var db *goatdb.DB
	return task{
		gc: true,
		before: func(int) (err error) {
			if db, err = goatdb.Open(e.bigDir(), e.options()); err != nil {
				return err
			}
			return goatReadAll(db, e.n)
		},
		run:   func(int) error { return goatReadAll(db, e.n) },
		after: func(int) error { return db.Close() },
	}
}

func goatReadAll(db *goatdb.DB, n int) error { return goatCheckAll(db, goatRepo, n, countSum(n)) }

// goatCheckAll reads and decodes every item of repo, which must be n
// items with counts summing to want.
func goatCheckAll(db *goatdb.DB, repo string, n int, want float64) error {
	var got int
	var sum float64
	for it, err := range db.All(repo) {
		if err != nil {
			return err
		}
		title, _ := it.Value("title")
		count, _ := it.Value("count")
		tags, _ := it.Value("tags")
		if title.Str() == "" || tags.Len() != 2 {
			return fmt.Errorf("read all: bad item %s", it.Path())
		}
		sum += count.Float()
		got++
	}
	if got != n || sum != want {
		return fmt.Errorf("read all: %d items with count sum %v, want %d and %v", got, sum, n, want)
	}
	return nil
}

func (e *goatEngine) read(i int) error {
	it, err := e.db.Get(e.paths[i])
	if err != nil {
		return err
	}
	count, _ := it.Value("count")
	return checkRead(i, count.Float())
}

// The workload's queries as goatdb queries.
var (
	goatSimple = goatdb.QuerySpec{Repo: goatRepo, Where: func(it goatdb.Item) bool {
		c, _ := it.Value("count")
		return c.Float() > 50
	}}
	goatComplex = goatdb.QuerySpec{Repo: goatRepo, Where: func(it goatdb.Item) bool {
		c, _ := it.Value("count")
		tags, _ := it.Value("tags")
		return c.Float() > 30 && c.Float() < 70 && tags.Has(tag50)
	}, SortBy: "count", Desc: true}
)

// query evaluates a query once (DB.QueryOnce) and reads its results:
// every sample evaluates the query from scratch, as the other engines do.
func (e *goatEngine) query(q *queryDef, spec goatdb.QuerySpec) task {
	counts := make([]float64, 0, smallN)
	return task{batch: true, run: func(int) error {
		items, err := e.db.QueryOnce(context.Background(), spec)
		if err != nil {
			return err
		}
		counts = counts[:0]
		for _, it := range items {
			c, _ := it.Value("count")
			counts = append(counts, c.Float())
		}
		return q.check(counts)
	}}
}

func (e *goatEngine) count() error {
	n, err := e.db.Count(goatRepo)
	if err == nil && n != smallN {
		err = fmt.Errorf("count: %d, want %d", n, smallN)
	}
	return err
}

func (e *goatEngine) keys() error {
	keys, err := e.db.Keys(goatRepo, false)
	if err == nil && len(keys) != smallN {
		err = fmt.Errorf("keys: %d, want %d", len(keys), smallN)
	}
	return err
}
