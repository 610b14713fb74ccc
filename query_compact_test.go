package goatdb_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/gc"
	"github.com/goatdb/goatdb/internal/dbtest"
)

// The compaction tests' repository, and a collector's clock 100 days on:
// every commit written now is past its horizon.
const cqRepo = "/data/cq"

func cqLater() time.Time { return time.Now().Add(100 * 24 * time.Hour) }

// cqN is an item's field n.
func cqN(it goatdb.Item) int {
	v, _ := it.Value("n")
	return int(v.Float())
}

// cqPath is item i's path.
func cqPath(i int) string { return fmt.Sprintf("%s/k%03d", cqRepo, i) }

// cqHistory writes items 0..n-1 of cqRepo with rounds commits each (field
// n = i, field v = the round) and extra more on the first ten: long
// histories, nearly all of which a compaction collects (field pad changes
// every round, so that each commit is a snapshot, not a delta that keeps
// its base).
func cqHistory(t *testing.T, db *goatdb.DB, n, rounds, extra int) {
	t.Helper()
	for round := range rounds + extra {
		pad := strings.Repeat(string(rune('a'+round%26)), 100)
		b := db.Batch()
		for i := range n {
			if round < rounds || i < 10 {
				b.Put(cqPath(i), goatdb.Fields{"n": i, "v": round, "pad": pad})
			}
		}
		if _, err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

// cqLines lists a query's results in order, with their heads and values.
func cqLines(q *goatdb.Query) []string {
	var out []string
	for it := range q.Results() {
		out = append(out, cqLine(it))
	}
	return out
}

func cqLine(it goatdb.Item) string {
	return fmt.Sprintf("%s %s n=%v v=%v", it.Path(), it.Head().Short(), it.Get("n"), it.Get("v"))
}

// cqFresh runs spec from scratch (unnamed, so no state is resumed; a
// chained spec gets a fresh source too) and returns its results.
func cqFresh(t *testing.T, db *goatdb.DB, spec goatdb.QuerySpec, up *goatdb.QuerySpec) []string {
	t.Helper()
	spec.Name, spec.Version = "", ""
	if up != nil {
		u := *up
		u.Name, u.Version = "", ""
		src, err := db.Query(t.Context(), u)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		spec.Source = src
	}
	q, err := db.Query(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if q.Resumed() {
		t.Fatal("a fresh query resumed")
	}
	return cqLines(q)
}

// cqSame fails the test unless got and want are the same results, in
// the same order.
func cqSame(t *testing.T, what string, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	var extra, missing []string
	for _, g := range got {
		if !slices.Contains(want, g) {
			extra = append(extra, g)
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			missing = append(missing, w)
		}
	}
	t.Errorf("%s: %d results, a fresh query's %d (same set, other order if both lists are empty):\n extra %q\n missing %q", what, len(got), len(want), extra, missing)
}

// cqModel is a subscriber's view of a query: the results its events add
// up to, by path.
type cqModel struct {
	mu    sync.Mutex
	items map[string]string
	errs  []error
}

func (m *cqModel) apply(ev goatdb.QueryEvent) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch ev.Kind {
	case goatdb.QueryAdded:
		if _, ok := m.items[ev.Item.Path()]; ok {
			m.errs = append(m.errs, fmt.Errorf("added twice: %s", ev.Item.Path()))
		}
		m.items[ev.Item.Path()] = cqLine(ev.Item)
	case goatdb.QueryChanged:
		if m.items[ev.Old.Path()] != cqLine(ev.Old) {
			m.errs = append(m.errs, fmt.Errorf("changed from %s, the subscriber had %q", cqLine(ev.Old), m.items[ev.Old.Path()]))
		}
		m.items[ev.Item.Path()] = cqLine(ev.Item)
	case goatdb.QueryRemoved:
		if _, ok := m.items[ev.Item.Path()]; !ok {
			m.errs = append(m.errs, fmt.Errorf("removed without being there: %s", ev.Item.Path()))
		}
		delete(m.items, ev.Item.Path())
	case goatdb.QueryFailed:
		m.errs = append(m.errs, ev.Err)
	}
}

// check compares the subscriber's view with the query's results.
func (m *cqModel) check(t *testing.T, what string, q *goatdb.Query) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, err := range m.errs {
		t.Errorf("%s: subscriber: %v", what, err)
	}
	m.errs = nil
	got := slices.Sorted(maps.Values(m.items))
	want := cqLines(q)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: the subscriber's events add up to\n %q\nthe results are\n %q", what, got, want)
	}
}

// cqWatch watches an item, passing on what it yields.
func cqWatch(t *testing.T, db *goatdb.DB, path string) <-chan string {
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan string, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for it, err := range db.Watch(ctx, path) {
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				out <- "error " + err.Error()
			case it.Deleted():
				out <- "deleted"
			default:
				out <- fmt.Sprintf("n=%v v=%v", it.Get("n"), it.Get("v"))
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return out
}

// cqNext returns the watch's next yield.
func cqNext(t *testing.T, w <-chan string) string {
	t.Helper()
	select {
	case s := <-w:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("the watch yielded nothing")
		return ""
	}
}

// TestQueryRescansAfterCompaction: live queries (plain, limited, chained,
// named), their subscribers and item watches stay right across a
// compaction that collects nearly all of the repository's history and so
// moves every log position: the results equal a fresh query's, and the
// updates, new items and deletions written after it show up. A query left
// idle across the compaction, whose position points into the collected
// log, catches up on its next update without missing those writes.
func TestQueryRescansAfterCompaction(t *testing.T) {
	db := dbtest.OpenDB(t, &goatdb.Options{Durability: goatdb.Async})
	cqHistory(t, db, 200, 6, 30)
	ctx := t.Context()

	even := goatdb.QuerySpec{Repo: cqRepo, Where: func(it goatdb.Item) bool { return cqN(it)%2 == 0 }, SortBy: "n", Desc: true, Limit: 25}
	specs := map[string]*goatdb.QuerySpec{
		"all":   {Repo: cqRepo, SortBy: "n"},
		"even":  &even,
		"fifth": {Repo: cqRepo, Name: "fifth", Version: "1", Where: func(it goatdb.Item) bool { return cqN(it)%5 == 0 }},
		"idle":  {Repo: cqRepo, Where: func(it goatdb.Item) bool { return cqN(it)%3 == 0 }, Less: func(a, b goatdb.Item) bool { return cqN(a)%7 < cqN(b)%7 }},
	}
	chained := goatdb.QuerySpec{Where: func(it goatdb.Item) bool { return cqN(it)%4 == 0 }}
	qs := map[string]*goatdb.Query{}
	for _, name := range slices.Sorted(maps.Keys(specs)) {
		q, err := db.Query(ctx, *specs[name])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		qs[name] = q
	}
	chained.Source = qs["even"]
	qc, err := db.Query(ctx, chained)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { qc.Close() })
	models := map[string]*cqModel{}
	for _, name := range []string{"all", "even", "fifth"} {
		m := &cqModel{items: map[string]string{}}
		models[name] = m
		cancel := qs[name].Subscribe(m.apply)
		t.Cleanup(cancel)
	}
	mc := &cqModel{items: map[string]string{}}
	t.Cleanup(qc.Subscribe(mc.apply))
	watched, gone := cqWatch(t, db, cqPath(1)), cqWatch(t, db, cqPath(4))
	for _, w := range []<-chan string{watched, gone} {
		if s := cqNext(t, w); !strings.HasPrefix(s, "n=") {
			t.Fatalf("a watch began with %q", s)
		}
	}

	// check waits for every query and compares it with a fresh one; the
	// idle query is compared as it is, without an update, unless skipped.
	check := func(stage string, idle bool) {
		t.Helper()
		for name, q := range qs {
			if name == "idle" && !idle {
				continue
			}
			if name != "idle" {
				if err := q.Wait(ctx); err != nil {
					t.Fatalf("%s: %s: Wait: %v", stage, name, err)
				}
			}
			cqSame(t, stage+": "+name, cqLines(q), cqFresh(t, db, *specs[name], nil))
			if m := models[name]; m != nil {
				m.check(t, stage+": "+name, q)
			}
		}
		if err := qc.Wait(ctx); err != nil {
			t.Fatalf("%s: chained: Wait: %v", stage, err)
		}
		cqSame(t, stage+": chained", cqLines(qc), cqFresh(t, db, chained, &even))
		mc.check(t, stage+": chained", qc)
	}
	check("before the compaction", true)
	idleSeq := qs["idle"].Seq()
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	before, err := db.LogSize(cqRepo)
	if err != nil {
		t.Fatal(err)
	}

	res, err := gc.Collect(db, cqRepo, &gc.Options{Now: cqLater, Force: true})
	if err != nil || !res.Compacted {
		t.Fatalf("collect: %v, %+v", err, res)
	}
	after, err := db.LogSize(cqRepo)
	if err != nil {
		t.Fatal(err)
	}
	if after > before/4 {
		t.Fatalf("the log went from %d to %d bytes: too little was collected for positions to move far", before, after)
	}
	check("after the compaction", true)

	// Writes after the compaction: fewer than the log shrank by, so that
	// they all sit before the positions the queries had reached.
	if _, err := db.Put(cqPath(1), goatdb.Fields{"n": 1, "v": 100}); err != nil { // watched
		t.Fatal(err)
	}
	if _, err := db.Put(cqPath(2), goatdb.Fields{"n": 1002, "v": 100}); err != nil { // moves to the top
		t.Fatal(err)
	}
	if _, err := db.Put(cqPath(198), goatdb.Fields{"n": 197, "v": 100}); err != nil { // leaves even
		t.Fatal(err)
	}
	for i := 200; i < 205; i++ {
		if _, err := db.Put(cqPath(i), goatdb.Fields{"n": i, "v": 0}); err != nil {
			t.Fatal(err)
		}
	}
	for _, i := range []int{4, 9, 15, 60, 196} {
		if err := db.Delete(cqPath(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	if now, _ := db.LogSize(cqRepo); uint64(now) >= idleSeq {
		t.Fatalf("the log is %d bytes after the writes, past the idle query's position %d", now, idleSeq)
	}
	check("after writes, before the idle query's update", false)
	if err := qs["idle"].Update(ctx); err != nil {
		t.Fatal(err)
	}
	check("after writes", true)
	if s := cqNext(t, watched); s != "n=1 v=100" {
		t.Errorf("the watch of %s yielded %q after the compaction and a write, want n=1 v=100", cqPath(1), s)
	}
	if s := cqNext(t, gone); s != "deleted" {
		t.Errorf("the watch of %s yielded %q after the compaction and a delete, want deleted", cqPath(4), s)
	}

	// A second compaction, with writes racing it.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := db.Put(cqPath(20+i%50), goatdb.Fields{"n": 20 + i%50, "v": 1000 + i}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	res, err = gc.Collect(db, cqRepo, &gc.Options{Now: func() time.Time { return cqLater().Add(24 * time.Hour) }, Force: true})
	close(stop)
	wg.Wait()
	if err != nil || !res.Compacted {
		t.Fatalf("second collect: %v, %+v", err, res)
	}
	if err := qs["idle"].Update(ctx); err != nil {
		t.Fatal(err)
	}
	check("after a second compaction with writes racing it", true)
}

// TestQueryStateAcrossCompaction: a named query's saved state outlives a
// compaction of its repository only as a rescan. A state saved before the
// compaction is not resumed, and a query left open across it (closed with
// its results from before) saves no state: either would resume positions
// of the old log and miss the writes made since. A state saved once the
// query caught up resumes, and sees the writes after it.
func TestQueryStateAcrossCompaction(t *testing.T) {
	dir := t.TempDir()
	opts := &goatdb.Options{Durability: goatdb.Async}
	spec := goatdb.QuerySpec{Repo: cqRepo, Name: "even", Version: "1", Where: func(it goatdb.Item) bool { return cqN(it)%2 == 0 }, SortBy: "v"}
	state := filepath.Join(dir, "data", "cq.queries", "even.state")
	// open reopens the database and the query, checks whether it resumed,
	// and compares it with a fresh query; the database is left open.
	open := func(stage string, resumed bool) (*goatdb.DB, *goatdb.Query) {
		t.Helper()
		db := dbtest.OpenDBIn(t, dir, opts)
		q, err := db.Query(t.Context(), spec)
		if err != nil {
			t.Fatal(err)
		}
		if q.Resumed() != resumed {
			t.Errorf("%s: Resumed %v, want %v", stage, q.Resumed(), resumed)
		}
		cqSame(t, stage, cqLines(q), cqFresh(t, db, spec, nil))
		return db, q
	}
	closeDB := func(db *goatdb.DB) {
		t.Helper()
		dbtest.CheckDB(t, db)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	collect := func(db *goatdb.DB, days int) { // a collector's clock days later than cqLater
		t.Helper()
		now := func() time.Time { return cqLater().Add(time.Duration(days) * 24 * time.Hour) }
		if res, err := gc.Collect(db, cqRepo, &gc.Options{Now: now, Force: true}); err != nil || !res.Compacted {
			t.Fatalf("collect: %v, %+v", err, res)
		}
	}
	writes := func(db *goatdb.DB, round int) {
		t.Helper()
		for _, i := range []int{2, 8, 40} {
			if _, err := db.Put(cqPath(i+round), goatdb.Fields{"n": i + round, "v": 1000 + round}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.Put(cqPath(300+round), goatdb.Fields{"n": 2 * round, "v": -1}); err != nil {
			t.Fatal(err)
		}
		if err := db.Delete(cqPath(50 + 2*round)); err != nil {
			t.Fatal(err)
		}
	}

	db := dbtest.OpenDBIn(t, dir, opts)
	cqHistory(t, db, 100, 6, 10)
	if _, err := db.Query(t.Context(), spec); err != nil { // left open: Close saves it
		t.Fatal(err)
	}
	closeDB(db)
	if _, err := os.Stat(state); err != nil {
		t.Fatalf("no state file: %v", err)
	}

	// Compacted, and written to, by a process that does not run the
	// query: the state saved before the compaction is not resumed.
	db = dbtest.OpenDBIn(t, dir, opts)
	collect(db, 0)
	writes(db, 0)
	closeDB(db)
	db, _ = open("a state saved before the compaction", false)
	closeDB(db) // saves a state of the compacted log
	db, _ = open("a state saved after the compaction", true)
	writes(db, 1)
	closeDB(db)
	db, _ = open("a state saved after the compaction, then writes", true)

	// Compacted, and written to, while the query is open and idle: it
	// is closed with results from before the compaction.
	collect(db, 1)
	writes(db, 2)
	closeDB(db)
	db, q := open("a query closed with results from before the compaction", false)
	writes(db, 3)
	if err := q.Update(t.Context()); err != nil {
		t.Fatal(err)
	}
	cqSame(t, "after writes", cqLines(q), cqFresh(t, db, spec, nil))
	closeDB(db)
}
