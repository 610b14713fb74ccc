package goatdb_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/query"
)

// onceDB returns a database whose benchRepo holds n items of assorted
// fields, some of schema "test", some deleted: more than one chunk of a
// scan when n is above 256.
func onceDB(t *testing.T, n int, rng *rand.Rand) *goatdb.DB {
	t.Helper()
	db := queryDB(t, t.TempDir())
	b := db.Batch()
	var deleted []string
	for i := range n {
		path := fmt.Sprintf("%s/k%04d", benchRepo, rng.IntN(4*n)) // some written twice
		if rng.IntN(4) == 0 {                                     // an item keeps its schema: other keys
			path = fmt.Sprintf("%s/s%04d", benchRepo, rng.IntN(4*n))
			f := benchFields(rng.IntN(100))
			if rng.IntN(2) == 0 {
				f["count"] = float64(rng.IntN(100)) + 0.5
			}
			b.Put(path, f, withTest)
		} else {
			b.Put(path, randomFields(rng))
		}
		if rng.IntN(10) == 0 {
			deleted = append(deleted, path)
		}
		if i%500 == 499 {
			if _, err := b.Commit(); err != nil {
				t.Fatal(err)
			}
			b = db.Batch()
		}
	}
	if _, err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, p := range deleted {
		if err := db.Delete(p); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// randomFields returns fields of several types, each present or absent:
// "mixed" holds a different type from item to item.
func randomFields(rng *rand.Rand) goatdb.Fields {
	f := goatdb.Fields{}
	if rng.IntN(5) > 0 {
		f["count"] = rng.IntN(20)
	}
	if rng.IntN(3) > 0 {
		f["title"] = fmt.Sprintf("t%d", rng.IntN(10))
	}
	if rng.IntN(2) > 0 {
		f["done"] = rng.IntN(2) == 0
	}
	switch rng.IntN(6) {
	case 0:
		f["mixed"] = rng.IntN(5)
	case 1:
		f["mixed"] = float64(rng.IntN(5))
	case 2:
		f["mixed"] = fmt.Sprint(rng.IntN(5))
	case 3:
		f["mixed"] = rng.IntN(2) == 0
	case 4:
		f["mixed"] = time.UnixMilli(int64(rng.IntN(5)) * 1000).UTC()
	}
	return f
}

var (
	onceWheres = []func(goatdb.Item) bool{
		nil,
		over50,
		func(it goatdb.Item) bool { v, _ := it.Value("count"); return v.Float() < 10 },
		func(it goatdb.Item) bool { _, ok := it.Value("title"); return ok },
		func(it goatdb.Item) bool { v, _ := it.Value("done"); return !v.Bool() },
	}
	onceSorts = []string{"", "count", "title", "done", "mixed", "absent"}
)

// titleLen orders by the length of the title, absent first: many ties.
func titleLen(a, b goatdb.Item) bool {
	x, _ := a.Value("title")
	y, _ := b.Value("title")
	return len(x.Str()) < len(y.Str())
}

// TestQueryOnceMatchesQuery checks, for random specs, that QueryOnce
// returns exactly a Query's results.
func TestQueryOnceMatchesQuery(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 40, 700} {
		rng := rand.New(rand.NewPCG(uint64(n), 7))
		db := onceDB(t, n, rng)
		for i := range 120 {
			spec := goatdb.QuerySpec{
				Repo:  benchRepo,
				Where: onceWheres[rng.IntN(len(onceWheres))],
				Desc:  rng.IntN(2) == 0,
			}
			desc := fmt.Sprintf("n=%d #%d where=%d", n, i, slicesIndex(spec.Where))
			switch rng.IntN(4) {
			case 0:
				spec.Less = titleLen
				desc += " less"
			default:
				spec.SortBy = onceSorts[rng.IntN(len(onceSorts))]
			}
			if rng.IntN(4) == 0 {
				spec.Schema = "test"
			}
			if rng.IntN(2) == 0 {
				spec.Limit = []int{1, 2, 5, 50, 300, 2000}[rng.IntN(6)]
			}
			desc += fmt.Sprintf(" sort=%q desc=%v schema=%q limit=%d", spec.SortBy, spec.Desc, spec.Schema, spec.Limit)
			compareOnce(t, db, spec, desc)
		}
	}
}

// slicesIndex names a Where by its place in onceWheres.
func slicesIndex(f func(goatdb.Item) bool) int {
	for i, w := range onceWheres {
		if reflect.ValueOf(w).Pointer() == reflect.ValueOf(f).Pointer() {
			return i
		}
	}
	return -1
}

func compareOnce(t *testing.T, db *goatdb.DB, spec goatdb.QuerySpec, desc string) {
	t.Helper()
	q, err := db.Query(t.Context(), spec)
	if err != nil {
		t.Fatalf("%s: Query: %v", desc, err)
	}
	var want []goatdb.Item
	for it := range q.Results() {
		want = append(want, it)
	}
	q.Close()
	got, err := db.QueryOnce(t.Context(), spec)
	if err != nil {
		t.Fatalf("%s: QueryOnce: %v", desc, err)
	}
	if len(got) != len(want) {
		t.Fatalf("%s: QueryOnce returned %d items, Query %d", desc, len(got), len(want))
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("%s: result %d: QueryOnce %s %v, Query %s %v", desc, i, got[i].Path(), got[i].Fields(), want[i].Path(), want[i].Fields())
		}
	}
}

func TestQueryOnceErrors(t *testing.T) {
	t.Parallel()
	db := queryDB(t, t.TempDir())
	putItems(t, db, 0, 5)
	src, err := db.Query(t.Context(), goatdb.QuerySpec{Repo: benchRepo})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		spec goatdb.QuerySpec
		is   error  // errors.Is, if set
		has  string // in the message
	}{
		{"source", t.Context(), goatdb.QuerySpec{Source: src}, nil, "Source"},
		{"sort and less", t.Context(), goatdb.QuerySpec{Repo: benchRepo, SortBy: "count", Less: titleLen}, nil, "SortBy or Less"},
		{"negative limit", t.Context(), goatdb.QuerySpec{Repo: benchRepo, Limit: -1}, nil, "negative limit"},
		{"no repository", t.Context(), goatdb.QuerySpec{Repo: "/test/none"}, goatdb.ErrNotFound, "/test/none"},
		{"cancelled", cancelled, goatdb.QuerySpec{Repo: benchRepo}, context.Canceled, ""},
		{"panicking where", t.Context(), goatdb.QuerySpec{Repo: benchRepo, Where: func(goatdb.Item) bool { panic("oops") }}, query.ErrCallback, "oops"},
		{"panicking less", t.Context(), goatdb.QuerySpec{Repo: benchRepo, Less: func(a, b goatdb.Item) bool { panic("less") }}, query.ErrCallback, "less"},
		{"panicking less, limited", t.Context(), goatdb.QuerySpec{Repo: benchRepo, Limit: 2, Less: func(a, b goatdb.Item) bool { panic("less") }}, query.ErrCallback, "less"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.QueryOnce(tt.ctx, tt.spec)
			switch {
			case err == nil:
				t.Fatalf("no error, %d results", len(got))
			case tt.is != nil && !errors.Is(err, tt.is):
				t.Errorf("error %v, want one wrapping %v", err, tt.is)
			case !strings.Contains(err.Error(), tt.has):
				t.Errorf("error %v, want one that says %q", err, tt.has)
			}
		})
	}
}

// TestQueryOnceLatePanic checks that a panic of Where or Less in a later
// chunk fails the query with the callback and item named, and that the
// next query runs as if none had.
func TestQueryOnceLatePanic(t *testing.T) {
	t.Parallel()
	db := queryDB(t, t.TempDir())
	putItems(t, db, 0, 600) // three chunks
	var calls atomic.Int64
	tests := []struct {
		name string
		spec goatdb.QuerySpec
		has  string
	}{
		{"where", goatdb.QuerySpec{Repo: benchRepo, Where: func(it goatdb.Item) bool {
			if it.Path() == benchRepo+"/i000400" {
				panic("late where")
			}
			return true
		}}, "where on i000400: late where"},
		{"where, ordered and limited", goatdb.QuerySpec{Repo: benchRepo, SortBy: "count", Limit: 3, Where: func(it goatdb.Item) bool {
			if it.Path() == benchRepo+"/i000599" {
				panic("last where")
			}
			return true
		}}, "where on i000599: last where"},
		{"less, limited", goatdb.QuerySpec{Repo: benchRepo, Limit: 3, Less: func(a, b goatdb.Item) bool {
			if calls.Add(1) > 500 {
				panic("late less")
			}
			return titleLen(a, b)
		}}, "ordering: late less"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.QueryOnce(t.Context(), tt.spec)
			switch {
			case err == nil:
				t.Fatalf("no error, %d results", len(got))
			case !errors.Is(err, query.ErrCallback):
				t.Errorf("error %v, want one wrapping %v", err, query.ErrCallback)
			case !strings.Contains(err.Error(), tt.has):
				t.Errorf("error %v, want one that says %q", err, tt.has)
			}
			got, err = db.QueryOnce(t.Context(), goatdb.QuerySpec{Repo: benchRepo, Where: over50, SortBy: "count", Desc: true, Limit: 3})
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{benchRepo + "/i000599", benchRepo + "/i000598", benchRepo + "/i000597"}; !reflect.DeepEqual(pathsOf(got), want) {
				t.Errorf("the next query: %v, want %v", pathsOf(got), want)
			}
		})
	}
}

// TestQueryOnceWhereMayWrite checks that Where runs with no lock held.
func TestQueryOnceWhereMayWrite(t *testing.T) {
	t.Parallel()
	db := queryDB(t, t.TempDir())
	putItems(t, db, 0, 300)
	got, err := db.QueryOnce(t.Context(), goatdb.QuerySpec{Repo: benchRepo, Where: func(it goatdb.Item) bool {
		if it.Path() == benchRepo+"/i000010" {
			if _, err := db.Put(benchRepo+"/j", goatdb.Fields{"count": 1}); err != nil {
				t.Error(err)
			}
		}
		return over50(it)
	}, SortBy: "count", Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if want := itemPaths(51, 54, 1); !reflect.DeepEqual(pathsOf(got), want) {
		t.Errorf("results %v, want %v", pathsOf(got), want)
	}
}

func pathsOf(items []goatdb.Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.Path()
	}
	return out
}

// The workload's one-shot queries, as bench/ runs them.
var oneShotQueries = []struct {
	name string
	spec goatdb.QuerySpec
}{
	{"simple", goatdb.QuerySpec{Repo: benchRepo, Where: over50}},
	{"complex", goatdb.QuerySpec{Repo: benchRepo, Where: band, SortBy: "count", Desc: true}},
}

// benchOneShot runs run on each one-shot query over 100 and 10,000
// items.
func benchOneShot(b *testing.B, run func(b *testing.B, db *goatdb.DB, spec goatdb.QuerySpec) int) {
	for _, n := range []int{100, 10_000} {
		for _, oq := range oneShotQueries {
			b.Run(fmt.Sprintf("%s/%d", oq.name, n), func(b *testing.B) {
				db := queryDB(b, b.TempDir())
				putItems(b, db, 0, n)
				if _, err := db.Count(benchRepo); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if run(b, db, oq.spec) == 0 {
						b.Fatal("no results")
					}
				}
			})
		}
	}
}

// BenchmarkQueryOnce evaluates each query once with QueryOnce.
func BenchmarkQueryOnce(b *testing.B) {
	benchOneShot(b, func(b *testing.B, db *goatdb.DB, spec goatdb.QuerySpec) int {
		items, err := db.QueryOnce(b.Context(), spec)
		if err != nil {
			b.Fatal(err)
		}
		return len(items)
	})
}

// BenchmarkQuery evaluates each query once with Query: open, scan, read
// the results, close.
func BenchmarkQuery(b *testing.B) {
	benchOneShot(b, func(b *testing.B, db *goatdb.DB, spec goatdb.QuerySpec) int {
		q, err := db.Query(b.Context(), spec)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for range q.Results() {
			n++
		}
		if err := q.Close(); err != nil {
			b.Fatal(err)
		}
		return n
	})
}
