package goatdb_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
)

const counter = "/data/counters/c"

// increment is an Update function adding 1 to the field n.
func increment(it goatdb.Item) (goatdb.Fields, error) {
	n, _ := it.Value("n")
	return goatdb.Fields{"n": n.Float() + 1}, nil
}

func counterValue(t *testing.T, db *goatdb.DB, path string) float64 {
	t.Helper()
	it, err := db.Get(path)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := it.Value("n")
	return n.Float()
}

func historyLen(t *testing.T, db *goatdb.DB, path string) int {
	t.Helper()
	h, err := db.History(path)
	if errors.Is(err, goatdb.ErrNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(h)
}

var durabilities = []struct {
	name string
	d    goatdb.Durability
}{{"sync", goatdb.Sync}, {"async", goatdb.Async}}

// TestUpdateConcurrentIncrements: ten goroutines each increment one field
// twenty times; not one increment is lost (Get then Put loses most).
func TestUpdateConcurrentIncrements(t *testing.T) {
	for _, d := range durabilities {
		t.Run(d.name, func(t *testing.T) {
			db := dbtest.OpenDB(t, &goatdb.Options{Durability: d.d})
			var wg sync.WaitGroup
			for range 10 {
				wg.Go(func() {
					for range 20 {
						if _, err := db.Update(t.Context(), counter, increment); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			if n := counterValue(t, db, counter); n != 200 {
				t.Fatalf("n = %v, want 200", n)
			}
		})
	}
}

// TestPutIfHeadIncrements: the same increments as Get, then Put
// conditional on the head read, retried on ErrConflict.
func TestPutIfHeadIncrements(t *testing.T) {
	db := dbtest.OpenDB(t, nil)
	if _, err := db.Put(counter, goatdb.Fields{"n": 0}, goatdb.IfAbsent()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var conflicts atomic.Int64
	for range 10 {
		wg.Go(func() {
			for i := 0; i < 20; {
				it, err := db.Get(counter)
				if err != nil {
					t.Error(err)
					return
				}
				n, _ := it.Value("n")
				_, err = db.Put(counter, goatdb.Fields{"n": n.Float() + 1}, goatdb.IfHead(it.Head()))
				switch {
				case errors.Is(err, goatdb.ErrConflict):
					conflicts.Add(1)
				case err != nil:
					t.Error(err)
					return
				default:
					i++
				}
			}
		})
	}
	wg.Wait()
	if n := counterValue(t, db, counter); n != 200 {
		t.Fatalf("n = %v, want 200", n)
	}
	t.Logf("%d conflicts", conflicts.Load())
}

func TestUpdateMissingDeletedAndNoChange(t *testing.T) {
	db := dbtest.OpenDB(t, nil)
	path := "/data/tasks/u"
	var seen goatdb.Item
	id, err := db.Update(t.Context(), path, func(it goatdb.Item) (goatdb.Fields, error) {
		seen = it
		return goatdb.Fields{"title": "new"}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen.Exists() || seen.Deleted() || seen.Path() != path || seen.Head() != (commit.ID{}) || len(seen.Fields()) != 0 {
		t.Fatalf("a missing item was given as %+v", seen)
	}
	if it, err := db.Get(path); err != nil || it.Head() != id || it.Get("title") != "new" || !it.Exists() {
		t.Fatal(it, err)
	}

	// No fields: nothing written, the head returned.
	got, err := db.Update(t.Context(), path, func(goatdb.Item) (goatdb.Fields, error) { return nil, nil })
	if err != nil || got != id || historyLen(t, db, path) != 1 {
		t.Fatal(got, id, err, historyLen(t, db, path))
	}

	// DeleteItem deletes; the next Update sees the deleted item and
	// restores it.
	if _, err := db.Update(t.Context(), path, func(goatdb.Item) (goatdb.Fields, error) { return nil, goatdb.DeleteItem }); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Get(path); !errors.Is(err, goatdb.ErrDeleted) {
		t.Fatal(err)
	}
	if _, err := db.Update(t.Context(), path, func(it goatdb.Item) (goatdb.Fields, error) {
		if !it.Exists() || !it.Deleted() || it.Get("title") != "new" {
			t.Errorf("a deleted item was given as %v", it)
		}
		return goatdb.Fields{"done": true}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if it, err := db.Get(path); err != nil || it.Get("title") != "new" || it.Get("done") != true {
		t.Fatal(it, err)
	}

	// Deleting a missing item fails as Delete does.
	_, err = db.Update(t.Context(), "/data/tasks/none", func(goatdb.Item) (goatdb.Fields, error) { return nil, goatdb.DeleteItem })
	if !errors.Is(err, goatdb.ErrNotFound) {
		t.Fatal(err)
	}
}

func TestUpdateErrorWritesNothing(t *testing.T) {
	db := dbtest.OpenDB(t, nil)
	path := "/data/tasks/e"
	if _, err := db.Put(path, goatdb.Fields{"n": 1}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	for _, fn := range []func(goatdb.Item) (goatdb.Fields, error){
		func(goatdb.Item) (goatdb.Fields, error) { return goatdb.Fields{"n": 2}, boom },
		func(goatdb.Item) (goatdb.Fields, error) { panic("boom") },
		func(goatdb.Item) (goatdb.Fields, error) { return goatdb.Fields{"": 2}, nil }, // bad input
	} {
		if _, err := db.Update(t.Context(), path, fn); err == nil {
			t.Fatal("no error")
		}
	}
	if _, err := db.Update(t.Context(), path, func(goatdb.Item) (goatdb.Fields, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if _, err := db.Update(t.Context(), "/data/fresh/x", func(goatdb.Item) (goatdb.Fields, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if n := counterValue(t, db, path); n != 1 || historyLen(t, db, path) != 1 {
		t.Fatal(n, historyLen(t, db, path))
	}
	if ok, _ := db.HasRepo("/data/fresh"); ok {
		t.Fatal("a failed Update created its repository")
	}
}

// TestUpdateContextStopsRetries: the first run of fn has another write
// move the item and cancels ctx; Update does not run fn again and writes
// nothing.
func TestUpdateContextStopsRetries(t *testing.T) {
	db := dbtest.OpenDB(t, nil)
	if _, err := db.Put(counter, goatdb.Fields{"n": 0}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	runs := 0
	_, err := db.Update(ctx, counter, func(it goatdb.Item) (goatdb.Fields, error) {
		runs++
		if runs == 1 {
			// The first run is outside the repository's lock.
			done := make(chan error)
			go func() { _, err := db.Put(counter, goatdb.Fields{"n": 10}); done <- err }()
			if err := <-done; err != nil {
				t.Error(err)
			}
			cancel()
		}
		return increment(it)
	})
	if !errors.Is(err, context.Canceled) || runs != 1 {
		t.Fatal(err, runs)
	}
	if n := counterValue(t, db, counter); n != 10 {
		t.Fatalf("n = %v, want 10", n)
	}
	if _, err := db.Update(ctx, counter, increment); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

func TestUpdateRetriesOnMove(t *testing.T) {
	db := dbtest.OpenDB(t, nil)
	if _, err := db.Put(counter, goatdb.Fields{"n": 0}); err != nil {
		t.Fatal(err)
	}
	var saw []float64
	_, err := db.Update(t.Context(), counter, func(it goatdb.Item) (goatdb.Fields, error) {
		n, _ := it.Value("n")
		saw = append(saw, n.Float())
		if len(saw) == 1 {
			done := make(chan error)
			go func() { _, err := db.Put(counter, goatdb.Fields{"n": 10}); done <- err }()
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
		return increment(it)
	})
	if err != nil || len(saw) != 2 || saw[0] != 0 || saw[1] != 10 {
		t.Fatal(err, saw)
	}
	if n := counterValue(t, db, counter); n != 11 {
		t.Fatalf("n = %v, want 11", n)
	}
}

func TestConditionalWrites(t *testing.T) {
	db := dbtest.OpenDB(t, nil)
	path := "/data/tasks/c"
	first, err := db.Put(path, goatdb.Fields{"n": 1}, goatdb.IfAbsent())
	if err != nil {
		t.Fatal(err)
	}
	second, err := db.Put(path, goatdb.Fields{"n": 2}, goatdb.IfHead(first))
	if err != nil {
		t.Fatal(err)
	}
	conflict := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, goatdb.ErrConflict) || !strings.Contains(err.Error(), "/data/") || !strings.Contains(err.Error(), "read it again") {
			t.Errorf("%s: %v, want ErrConflict naming the item and what to do", what, err)
		}
	}
	_, err = db.Put(path, goatdb.Fields{"n": 3}, goatdb.IfHead(first))
	conflict("put on a stale head", err)
	if !strings.Contains(err.Error(), first.Short()) || !strings.Contains(err.Error(), second.Short()) {
		t.Errorf("%v does not name both heads", err)
	}
	_, err = db.Put(path, goatdb.Fields{"n": 3}, goatdb.IfAbsent())
	conflict("create of an existing item", err)
	conflict("delete on a stale head", db.Delete(path, goatdb.IfHead(first)))
	_, err = db.Put("/data/tasks/none", goatdb.Fields{"n": 3}, goatdb.IfHead(first))
	conflict("put on a missing item", err)
	_, err = db.Put("/data/norepo/x", goatdb.Fields{"n": 3}, goatdb.IfHead(first))
	conflict("put in a missing repository", err)
	_, err = db.Update(t.Context(), path, increment, goatdb.IfHead(first))
	conflict("update on a stale head", err)
	if n := counterValue(t, db, path); n != 2 || historyLen(t, db, path) != 2 {
		t.Fatalf("n = %v after conflicts, %d commits", n, historyLen(t, db, path))
	}
	if ok, _ := db.HasRepo("/data/norepo"); ok {
		t.Fatal("a conflicting Put created its repository")
	}
	if err := db.Delete(path, goatdb.IfHead(second)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Get(path); !errors.Is(err, goatdb.ErrDeleted) {
		t.Fatal(err)
	}
}

// TestBatchConflict: a batch whose conditional write finds its item moved
// writes none of that repository's writes.
func TestBatchConflict(t *testing.T) {
	db := dbtest.OpenDB(t, nil)
	a, b := "/data/acct/a", "/data/acct/b"
	ha, _ := db.Put(a, goatdb.Fields{"n": 50})
	hb, _ := db.Put(b, goatdb.Fields{"n": 50})
	moved, _ := db.Put(b, goatdb.Fields{"n": 60})

	batch := db.Batch()
	batch.Put(a, goatdb.Fields{"n": 40}, goatdb.IfHead(ha))
	batch.Put(b, goatdb.Fields{"n": 60}, goatdb.IfHead(hb))
	batch.Create("/data/acct", goatdb.Fields{"n": 0})
	if _, err := batch.Commit(); !errors.Is(err, goatdb.ErrConflict) {
		t.Fatal(err)
	}
	if counterValue(t, db, a) != 50 || historyLen(t, db, a) != 1 {
		t.Fatal("a written by a conflicting batch")
	}
	if n, _ := db.Count("/data/acct"); n != 2 {
		t.Fatalf("%d items after a conflicting batch", n)
	}

	batch = db.Batch()
	batch.Put(a, goatdb.Fields{"n": 40}, goatdb.IfHead(ha))
	batch.Put(b, goatdb.Fields{"n": 70}, goatdb.IfHead(moved))
	if _, err := batch.Commit(); err != nil {
		t.Fatal(err)
	}
	if counterValue(t, db, a) != 40 || counterValue(t, db, b) != 70 {
		t.Fatal("batch not written")
	}
}

// TestBatchTwoWritesOfNewItem: the writes of one batch to a new item see
// each other (the second kept only its own fields before).
func TestBatchTwoWritesOfNewItem(t *testing.T) {
	db := dbtest.OpenDB(t, nil)
	b := db.Batch()
	b.Put("/data/x/a", goatdb.Fields{"x": 1})
	b.Put("/data/x/a", goatdb.Fields{"y": 2})
	b.Put("/data/x/d", goatdb.Fields{"x": 1})
	b.Delete("/data/x/d")
	if _, err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if it, err := db.Get("/data/x/a"); err != nil || it.Get("x") != int64(1) || it.Get("y") != int64(2) {
		t.Fatal(it, err)
	}
	if _, err := db.Get("/data/x/d"); !errors.Is(err, goatdb.ErrDeleted) {
		t.Fatal(err)
	}
}
