package goatdb_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/schema"
)

// GoatDB's two workload queries.
var (
	over50 = func(it goatdb.Item) bool { v, ok := it.Value("count"); return ok && v.Float() > 50 }
	band   = func(it goatdb.Item) bool {
		c, _ := it.Value("count")
		tags, _ := it.Value("tags")
		return 30 < c.Float() && c.Float() < 70 && tags.Has(item.String("tag50"))
	}
)

// queryDB opens a trusted, async database in dir with GoatDB's schema.
func queryDB(tb testing.TB, dir string) *goatdb.DB {
	tb.Helper()
	return dbtest.OpenDBIn(tb, dir, &goatdb.Options{Trusted: true, Durability: goatdb.Async, Schemas: benchSchemas(tb)})
}

// putItems writes items "i000".. with GoatDB's fields, count = i.
func putItems(tb testing.TB, db *goatdb.DB, from, to int) {
	tb.Helper()
	b := db.Batch()
	for i := from; i < to; i++ {
		b.Put(fmt.Sprintf("%s/i%06d", benchRepo, i), benchFields(i), withTest)
		if (i-from)%1000 == 999 || i == to-1 {
			if _, err := b.Commit(); err != nil {
				tb.Fatal(err)
			}
			b = db.Batch()
		}
	}
}

func paths(q *goatdb.Query) []string {
	var out []string
	for it := range q.Results() {
		out = append(out, it.Path())
	}
	return out
}

func itemPaths(from, to, step int) []string {
	var out []string
	for i := from; i != to; i += step {
		out = append(out, fmt.Sprintf("%s/i%06d", benchRepo, i))
	}
	return out
}

func TestQuery(t *testing.T) {
	t.Parallel()
	db := queryDB(t, t.TempDir())
	putItems(t, db, 0, 100)
	ctx := t.Context()

	q, err := db.Query(ctx, goatdb.QuerySpec{Repo: benchRepo, Schema: "test", Where: over50, SortBy: "count", Desc: true, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if got, want := paths(q), itemPaths(99, 89, -1); !slices.Equal(got, want) {
		t.Errorf("top 10 over 50:\n got %v\nwant %v", got, want)
	}
	if q.Count() != 10 || q.Total() != 49 {
		t.Errorf("Count %d Total %d, want 10 and 49", q.Count(), q.Total())
	}
	for it := range q.Results() {
		if it.Get("title") != "Item 99" || it.Schema().NS != "test" {
			t.Errorf("first result %v %v", it.Fields(), it.Schema())
		}
		break
	}

	// More than the results: all of them (GoatDB returns none).
	b, err := db.Query(ctx, goatdb.QuerySpec{Repo: benchRepo, Where: band, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := paths(b); !slices.Equal(got, []string{benchRepo + "/i000050"}) {
		t.Errorf("band: %v", got)
	}

	// An update after a write moves one entry.
	if _, err := db.Put(benchRepo+"/i000010", goatdb.Fields{"count": 1000}); err != nil {
		t.Fatal(err)
	}
	if err := db.Delete(benchRepo + "/i000099"); err != nil {
		t.Fatal(err)
	}
	if err := q.Update(ctx); err != nil {
		t.Fatal(err)
	}
	want := append([]string{benchRepo + "/i000010"}, itemPaths(98, 89, -1)...)
	if got := paths(q); !slices.Equal(got, want) {
		t.Errorf("after writes:\n got %v\nwant %v", got, want)
	}
}

func TestQueryChained(t *testing.T) {
	t.Parallel()
	db := queryDB(t, t.TempDir())
	putItems(t, db, 0, 100)
	ctx := t.Context()
	top, err := db.Query(ctx, goatdb.QuerySpec{Repo: benchRepo, SortBy: "count", Desc: true, Limit: 20})
	if err != nil {
		t.Fatal(err)
	}
	defer top.Close()
	even := func(it goatdb.Item) bool { v, _ := it.Value("count"); return int(v.Float())%2 == 0 }
	q, err := db.Query(ctx, goatdb.QuerySpec{Source: top, Where: even, SortBy: "count"})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if got, want := paths(q), itemPaths(80, 100, 2); !slices.Equal(got, want) {
		t.Errorf("even of the top 20:\n got %v\nwant %v", got, want)
	}
	if q.Repo() != benchRepo {
		t.Errorf("Repo %q", q.Repo())
	}
	if err := db.Delete(benchRepo + "/i000099"); err != nil { // i000079 enters top
		t.Fatal(err)
	}
	if _, err := db.Put(benchRepo+"/i000098", goatdb.Fields{"count": 1}); err != nil {
		t.Fatal(err)
	}
	if err := q.Update(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := paths(q), itemPaths(78, 98, 2); !slices.Equal(got, want) {
		t.Errorf("after writes:\n got %v\nwant %v", got, want)
	}
	if _, err := db.Query(ctx, goatdb.QuerySpec{Repo: "/other/repo", Source: top}); err == nil {
		t.Error("a chain across repositories was accepted")
	}
}

func TestQuerySubscribe(t *testing.T) {
	t.Parallel()
	db := queryDB(t, t.TempDir())
	putItems(t, db, 0, 10)
	q, err := db.Query(t.Context(), goatdb.QuerySpec{Repo: benchRepo, Where: func(it goatdb.Item) bool { return it.Get("count").(float64) >= 8 }})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var mu sync.Mutex
	var got []string
	cancel := q.Subscribe(func(ev goatdb.QueryEvent) {
		mu.Lock()
		defer mu.Unlock()
		s := ev.Kind.String() + " " + ev.Item.Path()
		if ev.Kind == goatdb.QueryChanged {
			s += fmt.Sprintf(" %v->%v", ev.Old.Get("count"), ev.Item.Get("count"))
		}
		got = append(got, s)
	})
	defer cancel()
	if err := q.Wait(t.Context()); err != nil { // the current results are delivered
		t.Fatal(err)
	}
	db.Put(benchRepo+"/i000008", goatdb.Fields{"count": 80})
	db.Put(benchRepo+"/i000001", goatdb.Fields{"count": 10})
	db.Delete(benchRepo + "/i000009")
	if err := q.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	// The changes may arrive in one delivery or several, coalesced either
	// way into the same net effect per item.
	slices.Sort(got[2:])
	want := []string{"added " + benchRepo + "/i000008", "added " + benchRepo + "/i000009",
		"added " + benchRepo + "/i000001", "changed " + benchRepo + "/i000008 8->80", "removed " + benchRepo + "/i000009"}
	if !slices.Equal(got, want) {
		t.Errorf("events:\n got %q\nwant %q", got, want)
	}
}

func TestQueryNamed(t *testing.T) {
	t.Parallel()
	db := queryDB(t, t.TempDir())
	putItems(t, db, 0, 10)
	spec := goatdb.QuerySpec{Repo: benchRepo, Name: "open-tasks", Where: over50, SortBy: "count", Version: "1"}
	q1, err := db.Query(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	q2, err := db.Query(t.Context(), spec)
	if err != nil || q2 != q1 {
		t.Fatalf("reopening a named query: %p %v, want the same %p", q2, err, q1)
	}
	other := spec
	other.Version = "2"
	if _, err := db.Query(t.Context(), other); !errors.Is(err, goatdb.ErrQueryConflict) {
		t.Errorf("a different definition under the same name: %v", err)
	}
	other = spec
	other.Limit = 3
	if _, err := db.OpenQuery(other); !errors.Is(err, goatdb.ErrQueryConflict) {
		t.Errorf("a different limit under the same name: %v", err)
	}
	if _, err := db.OpenQuery(goatdb.QuerySpec{Repo: benchRepo, Name: "bad/name"}); !errors.Is(err, goatdb.ErrInvalidPath) {
		t.Errorf("bad name: %v", err)
	}
	if err := q1.Close(); err != nil { // still open through q2
		t.Fatal(err)
	}
	if err := q2.Update(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := q2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q2.Close(); !errors.Is(err, goatdb.ErrClosed) {
		t.Errorf("third Close: %v", err)
	}
	q3, err := db.OpenQuery(spec)
	if err != nil || q3 == q1 || !q3.Resumed() {
		t.Fatalf("open after the last close: %p %v resumed %v", q3, err, q3.Resumed())
	}
	q3.Close()
}

// TestQueryPersistence restarts a database around a named query: it
// resumes, sees the writes made in between, and rescans when its state
// or log was spoiled.
func TestQueryPersistence(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	spec := goatdb.QuerySpec{Repo: benchRepo, Name: "top", Where: over50, SortBy: "count", Desc: true, Limit: 5}
	db := queryDB(t, dir)
	putItems(t, db, 0, 200)
	if _, err := db.Query(t.Context(), spec); err != nil { // left open: DB.Close saves it
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "test", "basic.queries", "top.state")
	if _, err := os.Stat(state); err != nil {
		t.Fatalf("no state file: %v", err)
	}
	// Writes from a process that does not run the query.
	db = queryDB(t, dir)
	db.Put(benchRepo+"/i000003", goatdb.Fields{"count": 5000})
	db.Delete(benchRepo + "/i000199")
	db.Close()

	reopen := func(resumed bool, want []string) {
		t.Helper()
		db := queryDB(t, dir)
		defer db.Close()
		q, err := db.Query(t.Context(), spec)
		if err != nil {
			t.Fatal(err)
		}
		if q.Resumed() != resumed {
			t.Errorf("Resumed %v, want %v", q.Resumed(), resumed)
		}
		if got := paths(q); !slices.Equal(got, want) {
			t.Errorf("results:\n got %v\nwant %v", got, want)
		}
	}
	want := append([]string{benchRepo + "/i000003"}, itemPaths(198, 194, -1)...)
	reopen(true, want)
	reopen(true, want)
	data, _ := os.ReadFile(state)
	data[100] ^= 1
	os.WriteFile(state, data, 0o644)
	reopen(false, want)
	// A new schema version changes what Where sees: the state is stale.
	db = queryDB(t, dir)
	db.Close()
	reg := benchSchemas(t)
	if err := reg.Register(schema.Schema{NS: "test", Version: 2, Fields: []schema.Field{
		{Name: "title", Type: item.TypeString}, {Name: "count", Type: item.TypeNumber, Default: item.Number(0)},
		{Name: "tags", Type: item.TypeSet}}}); err != nil {
		t.Fatal(err)
	}
	db2, err := goatdb.Open(dir, &goatdb.Options{Trusted: true, Schemas: reg})
	if err != nil {
		t.Fatal(err)
	}
	q, err := db2.Query(t.Context(), spec)
	if err != nil || q.Resumed() {
		t.Errorf("query after a schema change: %v, resumed %v", err, q.Resumed())
	}
	db2.Close()
}

// TestQueryCloseStopsGoroutines: DB.Close stops every query's watcher.
func TestQueryCloseStopsGoroutines(t *testing.T) {
	base := runtime.NumGoroutine()
	db := queryDB(t, t.TempDir())
	putItems(t, db, 0, 50)
	var qs []*goatdb.Query
	for i := range 4 {
		spec := goatdb.QuerySpec{Repo: benchRepo, Where: over50, Name: "q" + strconv.Itoa(i)}
		if i > 1 {
			spec = goatdb.QuerySpec{Source: qs[i-2], SortBy: "count", Limit: 3}
		}
		q, err := db.Query(t.Context(), spec)
		if err != nil {
			t.Fatal(err)
		}
		q.Subscribe(func(goatdb.QueryEvent) {})
		qs = append(qs, q)
	}
	db.Put(benchRepo+"/i000001", goatdb.Fields{"count": 99})
	for _, q := range qs {
		if err := q.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.OpenQuery(goatdb.QuerySpec{Repo: benchRepo}); !errors.Is(err, goatdb.ErrClosed) {
		t.Errorf("OpenQuery after Close: %v", err)
	}
	for range 200 {
		if runtime.NumGoroutine() <= base {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	buf := make([]byte, 1<<16)
	t.Errorf("%d goroutines after Close, want at most %d:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
}

func TestQueryPanics(t *testing.T) {
	t.Parallel()
	db := queryDB(t, t.TempDir())
	putItems(t, db, 0, 5)
	_, err := db.Query(t.Context(), goatdb.QuerySpec{Repo: benchRepo, Where: func(goatdb.Item) bool { panic("oops") }})
	if err == nil || !strings.Contains(err.Error(), "oops") {
		t.Errorf("panicking Where: %v", err)
	}
	_, err = db.Query(t.Context(), goatdb.QuerySpec{Repo: benchRepo, Less: func(a, b goatdb.Item) bool { panic("less") }})
	if err == nil || !strings.Contains(err.Error(), "less") {
		t.Errorf("panicking Less: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := db.Query(ctx, goatdb.QuerySpec{Repo: benchRepo}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

// TestREADMEQueries keeps the README's Queries example identical to
// ExampleDB_Query.
func TestREADMEQueries(t *testing.T) {
	if n := readmeBlocksIn(t, "## Queries", "query_test.go", "ExampleDB_Query"); n != 1 {
		t.Fatalf("%d Go blocks in the Queries section, want 1", n)
	}
}

func ExampleDB_Query() {
	dir, _ := os.MkdirTemp("", "goatdb-query-example")
	defer os.RemoveAll(dir)
	db, _ := goatdb.Open(dir, nil)
	defer db.Close()
	for i, title := range []string{"Write docs", "Fix bug", "Ship it"} {
		db.Put(fmt.Sprintf("/data/tasks/t%d", i), goatdb.Fields{"title": title, "count": 20 * i, "tags": []string{"docs"}})
	}

	ctx := context.Background()
	q, err := db.Query(ctx, goatdb.QuerySpec{
		Repo:   "/data/tasks",
		Where:  func(it goatdb.Item) bool { c, _ := it.Value("count"); return c.Float() > 10 },
		SortBy: "count", Desc: true, Limit: 10,
		Name: "busy", // reopening resumes from DIR/data/tasks.queries/busy.state
	})
	if err != nil {
		log.Fatal(err)
	}
	for task := range q.Results() {
		fmt.Println(task.Path(), task.Get("title"), task.Get("count"))
	}
	cancel := q.Subscribe(func(ev goatdb.QueryEvent) { fmt.Println(ev.Kind, ev.Item.Path()) })
	defer cancel()
	q.Wait(ctx)                                          // the subscriber has the current results
	db.Put("/data/tasks/t0", goatdb.Fields{"count": 90}) // and hears of this
	q.Wait(ctx)
	// Output:
	// /data/tasks/t2 Ship it 40
	// /data/tasks/t1 Fix bug 20
	// added /data/tasks/t2
	// added /data/tasks/t1
	// added /data/tasks/t0
}

// Benchmarks. GoatDB's workload (schema "test", item i = {title "Item i",
// count i, tags {"tag"+i, "category"+i%5}}) and its two queries, over=50
// and band. Run:
//
//	go test -run='^$' -bench=Query -benchmem .
//
// The 100,000-item directory is built once per process.

var queryBig struct {
	once sync.Once
	dir  string
	err  error
}

// queryBigDir returns a data directory with 100,000 items in benchRepo.
func queryBigDir(b *testing.B) string {
	benchTmpOnce.Do(func() { benchTmp, benchTmpErr = os.MkdirTemp("", "goatdb-bench-") })
	if benchTmpErr != nil {
		b.Fatal(benchTmpErr)
	}
	queryBig.once.Do(func() {
		queryBig.dir = filepath.Join(benchTmp, "query")
		db := queryDB(b, queryBig.dir)
		putItems(b, db, 0, bigN)
		queryBig.err = db.Close()
	})
	if queryBig.err != nil {
		b.Fatal(queryBig.err)
	}
	return queryBig.dir
}

// benchDB opens a database with n items: a fresh one for small n, the
// shared 100,000-item one otherwise.
func benchDB(b *testing.B, n int) *goatdb.DB {
	if n == bigN {
		return queryDB(b, queryBigDir(b))
	}
	db := queryDB(b, b.TempDir())
	putItems(b, db, 0, n)
	return db
}

// openedDB is benchDB with the repository open, so that timings leave
// out reading its log.
func openedDB(b *testing.B, n int) *goatdb.DB {
	db := benchDB(b, n)
	if _, err := db.Count(benchRepo); err != nil {
		b.Fatal(err)
	}
	return db
}

var goatQueries = []struct {
	name  string
	where func(goatdb.Item) bool
}{{"over50", over50}, {"band", band}}

// BenchmarkQueryFirstRun opens each query and reads its results: a full
// scan.
func BenchmarkQueryFirstRun(b *testing.B) {
	for _, n := range []int{100, bigN} {
		for _, gq := range goatQueries {
			b.Run(fmt.Sprintf("%s/%d", gq.name, n), func(b *testing.B) {
				db := openedDB(b, n)
				defer db.Close()
				b.ReportAllocs()
				for b.Loop() {
					q, err := db.Query(b.Context(), goatdb.QuerySpec{Repo: benchRepo, Where: gq.where})
					if err != nil {
						b.Fatal(err)
					}
					for it := range q.Results() {
						_ = it
					}
					q.Close()
				}
			})
		}
	}
}

// BenchmarkQueryRerun re-runs each query after one write: an incremental
// update. ns/update times Update alone; ns/op includes the write.
func BenchmarkQueryRerun(b *testing.B) {
	for _, n := range []int{100, bigN} {
		for _, gq := range goatQueries {
			b.Run(fmt.Sprintf("%s/%d", gq.name, n), func(b *testing.B) {
				db := openedDB(b, n)
				defer db.Close()
				q, err := db.Query(b.Context(), goatdb.QuerySpec{Repo: benchRepo, Where: gq.where, SortBy: "count"})
				if err != nil {
					b.Fatal(err)
				}
				defer q.Close()
				var spent time.Duration
				i := 0
				b.ReportAllocs()
				for b.Loop() {
					i++
					// Items 0..99 in turn (so that other benchmarks see
					// about the same data), each time with a new count.
					if _, err := db.Put(fmt.Sprintf("%s/i%06d", benchRepo, i%100), goatdb.Fields{"count": (i/100 + i) % 100}); err != nil {
						b.Fatal(err)
					}
					start := time.Now()
					if err := q.Update(b.Context()); err != nil {
						b.Fatal(err)
					}
					spent += time.Since(start)
				}
				b.ReportMetric(float64(spent.Nanoseconds())/float64(i), "ns/update")
			})
		}
	}
}

// BenchmarkQuerySubscribedWrite writes one item per op to a repository a
// subscribed query watches, and waits for its event. ns/update is the time
// from the write's return to the event.
func BenchmarkQuerySubscribedWrite(b *testing.B) {
	for _, n := range []int{1000, bigN} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			db := openedDB(b, n)
			defer db.Close()
			q, err := db.Query(b.Context(), goatdb.QuerySpec{Repo: benchRepo, Where: over50, SortBy: "count", Desc: true})
			if err != nil {
				b.Fatal(err)
			}
			defer q.Close()
			events := make(chan time.Time, 1)
			var armed atomic.Bool // past the current results, delivered as added events
			cancel := q.Subscribe(func(ev goatdb.QueryEvent) {
				if armed.Load() {
					events <- time.Now()
				}
			})
			defer cancel()
			if err := q.Wait(b.Context()); err != nil {
				b.Fatal(err)
			}
			armed.Store(true)
			var spent time.Duration
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				i++
				// Alternate an item in and out of the results: one event each.
				count := 10
				if i%2 == 1 {
					count = 90
				}
				if _, err := db.Put(benchRepo+"/i000007", goatdb.Fields{"count": count}); err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				spent += (<-events).Sub(start)
			}
			b.ReportMetric(float64(spent.Nanoseconds())/float64(i), "ns/update")
		})
	}
}

// BenchmarkQueryReopen100k opens a named query over 100,000 items whose
// state was saved (resume) and an unnamed one (rescan), and updates it;
// the repository is already open in both.
func BenchmarkQueryReopen100k(b *testing.B) {
	db := openedDB(b, bigN)
	defer db.Close()
	spec := goatdb.QuerySpec{Repo: benchRepo, Where: over50, SortBy: "count", Desc: true, Limit: 10, Name: "bench-resume"}
	q, err := db.Query(b.Context(), spec)
	if err != nil {
		b.Fatal(err)
	}
	if err := q.Close(); err != nil { // saves the state
		b.Fatal(err)
	}
	for _, mode := range []string{"resume", "rescan"} {
		b.Run(mode, func(b *testing.B) {
			s := spec
			if mode == "rescan" {
				s.Name = ""
			}
			b.ReportAllocs()
			for b.Loop() {
				q, err := db.Query(b.Context(), s)
				if err != nil {
					b.Fatal(err)
				}
				if q.Resumed() != (mode == "resume") || q.Count() != 10 {
					b.Fatalf("resumed %v, %d results", q.Resumed(), q.Count())
				}
				b.StopTimer()
				if err := q.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
