package goatdb_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/gc"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/repo"
)

// rangeKeys collects what RangeKeys yields, failing the test on an error.
func rangeKeys(t *testing.T, db *goatdb.DB, rp string, o goatdb.RangeOptions) []string {
	t.Helper()
	var out []string
	for k, err := range db.RangeKeys(rp, o) {
		if err != nil {
			t.Fatalf("range %s %+v: %v", rp, o, err)
		}
		out = append(out, k)
	}
	return out
}

// pages reads every key of rp page by page, limit at a time, passing the
// last key of each page as After.
func pages(t *testing.T, db *goatdb.DB, rp string, o goatdb.RangeOptions) []string {
	t.Helper()
	var all []string
	for {
		page := rangeKeys(t, db, rp, o)
		all = append(all, page...)
		if len(page) < o.Limit {
			return all
		}
		o.After = page[len(page)-1]
	}
}

// liveKeys is what Range must yield: the sorted keys of the live items.
func liveKeys(t *testing.T, db *goatdb.DB, rp string) []string {
	t.Helper()
	keys, err := db.Keys(rp, false)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestRange: keys and items come in key order, deleted items left out,
// selected by prefix, start key (inclusive or after) and limit.
func TestRange(t *testing.T) {
	db := dbtest.OpenDB(t, nil)
	// Written out of order; "date" is deleted.
	for i, k := range []string{"cherry", "banana", "apricot", "date", "blueberry", "apple", "b"} {
		if _, err := db.Put("/data/fruit/"+k, goatdb.Fields{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Delete("/data/fruit/date"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		o    goatdb.RangeOptions
		want string
	}{
		{"all", goatdb.RangeOptions{}, "apple apricot b banana blueberry cherry"},
		{"prefix", goatdb.RangeOptions{Prefix: "ap"}, "apple apricot"},
		{"prefix is a key", goatdb.RangeOptions{Prefix: "b"}, "b banana blueberry"},
		{"prefix of none", goatdb.RangeOptions{Prefix: "ba0"}, ""},
		{"from a key", goatdb.RangeOptions{From: "banana"}, "banana blueberry cherry"},
		{"from between keys", goatdb.RangeOptions{From: "bb"}, "blueberry cherry"},
		{"after a key", goatdb.RangeOptions{After: "banana"}, "blueberry cherry"},
		{"after a deleted key", goatdb.RangeOptions{After: "cherry0"}, ""},
		{"after the last", goatdb.RangeOptions{After: "date"}, ""},
		{"limit", goatdb.RangeOptions{Limit: 2}, "apple apricot"},
		{"limit above count", goatdb.RangeOptions{Limit: 100}, "apple apricot b banana blueberry cherry"},
		{"prefix and after", goatdb.RangeOptions{Prefix: "b", After: "b"}, "banana blueberry"},
		{"prefix and from before it", goatdb.RangeOptions{Prefix: "b", From: "a"}, "b banana blueberry"},
		{"prefix and after past it", goatdb.RangeOptions{Prefix: "ap", After: "b"}, ""},
		{"prefix, after and limit", goatdb.RangeOptions{Prefix: "b", After: "b", Limit: 1}, "banana"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(rangeKeys(t, db, "/data/fruit", tc.o), " "); got != tc.want {
				t.Errorf("keys %q, want %q", got, tc.want)
			}
			var got []string
			for it, err := range db.Range("/data/fruit", tc.o) {
				if err != nil {
					t.Fatal(err)
				}
				want, err := db.Get(it.Path())
				if err != nil || it.Get("n") != want.Get("n") || it.Head() != want.Head() {
					t.Errorf("range yields %s n=%v head %v, get: n=%v head %v (%v)", it.Path(), it.Get("n"), it.Head(), want.Get("n"), want.Head(), err)
				}
				got = append(got, strings.TrimPrefix(it.Path(), "/data/fruit/"))
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("items %q, want %q", got, tc.want)
			}
		})
	}
}

// TestRangeErrors: a repository that does not exist and invalid options
// yield one error.
func TestRangeErrors(t *testing.T) {
	db := dbtest.OpenDB(t, nil)
	if _, err := db.Put("/data/r/a", goatdb.Fields{"n": 1}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rp     string
		o      goatdb.RangeOptions
		target error
	}{
		{"/data/none", goatdb.RangeOptions{}, goatdb.ErrNotFound},
		{"/data/r", goatdb.RangeOptions{Limit: -1}, nil},
		{"/data/r", goatdb.RangeOptions{From: "a", After: "a"}, nil},
		{"/bad", goatdb.RangeOptions{}, goatdb.ErrInvalidPath},
	} {
		var errs []error
		for _, err := range db.Range(tc.rp, tc.o) {
			errs = append(errs, err)
		}
		for _, err := range db.RangeKeys(tc.rp, tc.o) {
			errs = append(errs, err)
		}
		if len(errs) != 2 || errs[0] == nil || errs[1] == nil || tc.target != nil && !errors.Is(errs[0], tc.target) {
			t.Errorf("range %s %+v: %v, want one error each (%v)", tc.rp, tc.o, errs, tc.target)
		}
	}
}

// TestRangePages: paging with After covers every key exactly once, in
// order, for page sizes below and above the chunk a range reads under one
// lock, and an unlimited range crosses chunks.
func TestRangePages(t *testing.T) {
	db := dbtest.OpenDB(t, &goatdb.Options{Durability: goatdb.Async})
	rng := rand.New(rand.NewPCG(1, 2))
	b := db.Batch()
	for _, i := range rng.Perm(1000) {
		b.Put(fmt.Sprintf("/data/p/k%04d", i), goatdb.Fields{"n": i})
	}
	if _, err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	want := liveKeys(t, db, "/data/p")
	if len(want) != 1000 {
		t.Fatalf("%d keys", len(want))
	}
	for _, limit := range []int{1, 7, 256, 300, 999, 1000, 5000} {
		if got := pages(t, db, "/data/p", goatdb.RangeOptions{Limit: limit}); !slices.Equal(got, want) {
			t.Errorf("pages of %d: %d keys, want %d in order", limit, len(got), len(want))
		}
	}
	if got := rangeKeys(t, db, "/data/p", goatdb.RangeOptions{}); !slices.Equal(got, want) {
		t.Errorf("unlimited: %d keys, want %d in order", len(got), len(want))
	}
	if got := pages(t, db, "/data/p", goatdb.RangeOptions{Prefix: "k05", Limit: 30}); !slices.Equal(got, want[500:600]) {
		t.Errorf("prefix pages: %v", got)
	}
}

// TestRangeConcurrentWriters: while writers add keys and delete and
// restore others (a fixed number of writes each), readers paging through the repository (and looping
// slowly through unlimited ranges) see every key that stays live exactly
// once, in increasing order, and only keys that were live at some time.
// The loop body may itself write.
func TestRangeConcurrentWriters(t *testing.T) {
	db := dbtest.OpenDB(t, &goatdb.Options{Durability: goatdb.Async})
	const stable = 400
	b := db.Batch()
	for i := range stable {
		b.Put(fmt.Sprintf("/data/c/s%04d", i*2), goatdb.Fields{"n": i})
		b.Put(fmt.Sprintf("/data/c/s%04d", i*2+1), goatdb.Fields{"n": i}) // churned
	}
	if _, err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var writers, readers sync.WaitGroup
	for w := range 2 {
		writers.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			for i := range 1500 {
				k := fmt.Sprintf("/data/c/s%04d", rng.IntN(stable)*2+1)
				var err error
				switch i % 3 {
				case 0:
					err = db.Delete(k)
				case 1:
					_, err = db.Put(k, goatdb.Fields{"n": i})
				default:
					_, err = db.Put(fmt.Sprintf("/data/c/w%d-%06d", w, i), goatdb.Fields{"n": i})
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	check := func(name string, got []string) {
		if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Errorf("%s: keys out of order or repeated", name)
		}
		for i := range stable {
			if _, ok := slices.BinarySearch(got, fmt.Sprintf("s%04d", i*2)); !ok {
				t.Errorf("%s: stable key s%04d missing", name, i*2)
				return
			}
		}
	}
	for rd := range 2 {
		readers.Go(func() {
			for round := 0; round < 2 || !stop.Load(); round++ {
				if rd == 0 {
					check("pages", pages(t, db, "/data/c", goatdb.RangeOptions{Limit: 37}))
					continue
				}
				var got []string
				for it, err := range db.Range("/data/c", goatdb.RangeOptions{}) {
					if err != nil {
						t.Error(err)
						return
					}
					if len(got)%100 == 0 { // a slow body that writes
						time.Sleep(time.Millisecond)
						if _, err := db.Put(it.Path(), goatdb.Fields{"seen": true}); err != nil {
							t.Error(err)
						}
					}
					got = append(got, strings.TrimPrefix(it.Path(), "/data/c/"))
				}
				check("range", got)
			}
		})
	}
	writers.Wait()
	stop.Store(true)
	readers.Wait()
	if got, want := rangeKeys(t, db, "/data/c", goatdb.RangeOptions{}), liveKeys(t, db, "/data/c"); !slices.Equal(got, want) {
		t.Errorf("after the writers: %d keys, Keys has %d", len(got), len(want))
	}
}

// TestRangeDeletesAndReopen: deleted items leave the range and restored
// ones come back, and the index is rebuilt the same when the log is
// replayed.
func TestRangeDeletesAndReopen(t *testing.T) {
	dir := t.TempDir()
	db := dbtest.OpenDBIn(t, dir, nil)
	for i := range 20 {
		if _, err := db.Put(fmt.Sprintf("/data/d/k%02d", i), goatdb.Fields{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		if i%3 == 0 {
			if err := db.Delete(fmt.Sprintf("/data/d/k%02d", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := db.Put("/data/d/k03", goatdb.Fields{"n": 33}); err != nil { // restored
		t.Fatal(err)
	}
	const want = "k01 k02 k03 k04 k05 k07 k08 k10 k11 k13 k14 k16 k17 k19"
	if got := strings.Join(rangeKeys(t, db, "/data/d", goatdb.RangeOptions{}), " "); got != want {
		t.Errorf("before reopen: %q, want %q", got, want)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = dbtest.OpenDBIn(t, dir, nil)
	if got := strings.Join(rangeKeys(t, db, "/data/d", goatdb.RangeOptions{}), " "); got != want {
		t.Errorf("after reopen: %q, want %q", got, want)
	}
	if got := strings.Join(pages(t, db, "/data/d", goatdb.RangeOptions{After: "k05", Limit: 4}), " "); got != want[strings.Index(want, "k07"):] {
		t.Errorf("pages after reopen: %q", got)
	}
}

// TestRangeAfterCompaction: a collection that purges deleted items and
// rewrites the log leaves the range equal to the live items, before and
// after a reopen.
func TestRangeAfterCompaction(t *testing.T) {
	dir := t.TempDir()
	db := dbtest.OpenDBIn(t, dir, &goatdb.Options{Durability: goatdb.Async})
	for round := range 3 {
		for i := range 200 {
			if _, err := db.Put(fmt.Sprintf("/data/g/k%03d", i), goatdb.Fields{"n": round, "pad": strings.Repeat("x", 100)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 0; i < 200; i += 4 {
		if err := db.Delete(fmt.Sprintf("/data/g/k%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	want := liveKeys(t, db, "/data/g")
	res, err := gc.Collect(db, "/data/g", &gc.Options{Now: later, Force: true})
	if err != nil || !res.Compacted {
		t.Fatalf("collect: %+v, %v", res, err)
	}
	if _, err := db.Put("/data/g/k000", goatdb.Fields{"n": 9}); err != nil { // written again after its purge
		t.Fatal(err)
	}
	want = append([]string{"k000"}, want...)
	if got := rangeKeys(t, db, "/data/g", goatdb.RangeOptions{}); !slices.Equal(got, want) {
		t.Errorf("after compaction: %d keys, want %d", len(got), len(want))
	}
	dbtest.CheckDB(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = dbtest.OpenDBIn(t, dir, nil)
	if got := pages(t, db, "/data/g", goatdb.RangeOptions{Limit: 16}); !slices.Equal(got, want) {
		t.Errorf("after reopen: %d keys, want %d", len(got), len(want))
	}
}

// later is a clock 100 days on: every commit written now is past a
// collection's horizon.
func later() time.Time { return time.Now().Add(100 * 24 * time.Hour) }

// TestRangeExcluded: an item whose every commit is excluded leaves the
// range as it leaves Get, and comes back when restored; an item with only
// its last write excluded stays, at its previous value.
func TestRangeExcluded(t *testing.T) {
	db := dbtest.OpenDB(t, nil)
	for _, k := range []string{"a", "b", "c"} {
		if _, err := db.Put("/data/x/"+k, goatdb.Fields{"n": 1}); err != nil {
			t.Fatal(err)
		}
	}
	idB, _ := db.Get("/data/x/b")
	idC, err := db.Put("/data/x/c", goatdb.Fields{"n": 2})
	if err != nil {
		t.Fatal(err)
	}
	r, release, err := db.AcquireExisting("/data/x")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if err := r.Exclude([]commit.ID{idB.Head(), idC}, repo.ExcludeForgotten, "test"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for it, err := range db.Range("/data/x", goatdb.RangeOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprint(strings.TrimPrefix(it.Path(), "/data/x/"), "=", it.Get("n")))
	}
	if strings.Join(got, " ") != "a=1 c=1" {
		t.Errorf("excluded: %q, want a=1 c=1", got)
	}
	if _, err := db.Get("/data/x/b"); !errors.Is(err, goatdb.ErrNotFound) {
		t.Errorf("get b: %v", err)
	}
	if err := r.Restore([]commit.ID{idB.Head(), idC}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rangeKeys(t, db, "/data/x", goatdb.RangeOptions{}), " "); got != "a b c" {
		t.Errorf("restored: %q", got)
	}
}

// TestREADMERange keeps the README's range example identical to
// ExampleDB_Range, which runs.
func TestREADMERange(t *testing.T) {
	if n := readmeBlocksIn(t, "### Range reads", "range_example_test.go", "ExampleDB_Range"); n != 1 {
		t.Fatalf("%d Go blocks in the Range reads section, want 1", n)
	}
}
