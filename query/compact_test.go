package query_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/query"
	"github.com/goatdb/goatdb/repo"
)

// compactClock stamps commits from a fixed day on, 1 ms apart; pass moves
// it past a horizon.
type compactClock struct{ ms atomic.Int64 }

var compactDay = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func (c *compactClock) now() time.Time {
	return compactDay.Add(time.Duration(c.ms.Add(1)) * time.Millisecond)
}

// horizon returns a horizon above every commit stamped so far, and moves
// the clock past it.
func (c *compactClock) horizon() int64 {
	h := c.now().Add(time.Minute)
	c.ms.Add(int64(2 * time.Minute / time.Millisecond))
	return h.UnixMilli()
}

// compactRepo opens a repository stamped by clock and writes n items
// with rounds commits each (count = (i+round)%100; pad changes every
// round, so that every commit is a snapshot and nearly all of them are
// collected by a compaction).
func compactRepo(t *testing.T, clock *compactClock, n, rounds int) *repo.Repo {
	t.Helper()
	_, sk, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	r := dbtest.OpenRepo(t, filepath.Join(t.TempDir(), "r.log"), &repo.Options{Key: sk, Trusted: true, Durability: repo.Async, Now: clock.now})
	for round := range rounds {
		pad := item.String(strings.Repeat(string(rune('a'+round)), 64))
		var ups []repo.Update
		for i := range n {
			ups = append(ups, put(key(i), "", map[string]item.Value{"count": item.Number(float64((i + round) % 100)), "pad": pad}))
		}
		write(t, r, ups...)
	}
	return r
}

// compact collects r's history below clock's horizon, under a new epoch.
func compact(t *testing.T, r *repo.Repo, clock *compactClock) {
	t.Helper()
	before, epoch := r.Seq(), r.Epoch()
	if _, err := r.Compact(clock.horizon(), nil); err != nil {
		t.Fatal(err)
	}
	if r.Epoch() == epoch {
		t.Fatal("the compaction kept the epoch")
	}
	t.Logf("compacted: log %d → %d bytes", before, r.Seq())
}

// afterCompact writes a few changes that move items in and out of over50
// results: fewer bytes than the compaction took, so that their positions
// are below the ones queries reached before it.
func afterCompact(t *testing.T, r *repo.Repo) {
	t.Helper()
	write(t, r, put(key(3), "", count(99)), put(key(60), "", count(1)), del(key(61)), del(key(7)), del(key(94)),
		put("new1", "", count(97)), put("new2", "", count(10)))
}

func checkOracle(t *testing.T, what string, q *query.Query, r *repo.Repo, o oracle) {
	t.Helper()
	if d := diffLines(results(q), o.results(repoItems(r))); d != "" {
		t.Errorf("%s: results differ from a full scan:\n%s", what, d)
	}
}

// TestUpdateAcrossCompaction: a compaction starts positions over (a new
// epoch). A query whose position is from before it, idle, interrupted
// mid-pass, chained, or subscribed, rescans on its next update and so
// sees exactly the writes made after it, however low their new positions.
func TestUpdateAcrossCompaction(t *testing.T) {
	o := oracle{where: over50, sortBy: "count"}
	spec := query.Spec{Where: over50, SortBy: "count"}

	t.Run("idle", func(t *testing.T) {
		var clock compactClock
		r := compactRepo(t, &clock, 300, 6)
		s := spec
		s.Source = query.FromRepo(r, nil, nil)
		q, err := query.New(s)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		if err := q.Update(t.Context()); err != nil {
			t.Fatal(err)
		}
		old := q.Seq()
		compact(t, r, &clock)
		afterCompact(t, r)
		if r.Seq() >= old {
			t.Fatalf("the log ends at %d, past the query's position %d", r.Seq(), old)
		}
		if err := q.Update(t.Context()); err != nil {
			t.Fatal(err)
		}
		checkOracle(t, "idle", q, r, o)
		if q.Seq() != r.Seq() {
			t.Errorf("Seq %d, want the compacted log's %d", q.Seq(), r.Seq())
		}
		write(t, r, put(key(100), "", count(98)))
		if err := q.Update(t.Context()); err != nil {
			t.Fatal(err)
		}
		checkOracle(t, "after one more write", q, r, o)
		if done, total := q.Progress(); done != 1 || total != 1 {
			t.Errorf("the update after the rescan evaluated %d of %d items, want 1 of 1", done, total)
		}
	})

	t.Run("interrupted", func(t *testing.T) {
		var clock compactClock
		r := compactRepo(t, &clock, 300, 6)
		ctx, cancel := context.WithCancel(t.Context())
		var calls atomic.Int64
		s := spec
		s.Source, s.Chunk = query.FromRepo(r, nil, nil), 10
		s.Where = func(it query.Item) bool {
			if calls.Add(1) == 350 { // in the pass over the second batch
				cancel()
			}
			return over50(it)
		}
		q, err := query.New(s)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		if err := q.Update(t.Context()); err != nil {
			t.Fatal(err)
		}
		var ups []repo.Update
		for i := range 200 {
			ups = append(ups, put(key(i), "", count(100-i%100)))
		}
		write(t, r, ups...)
		if err := q.Update(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Update = %v, want context.Canceled", err)
		}
		compact(t, r, &clock)
		afterCompact(t, r)
		if err := q.Update(t.Context()); err != nil {
			t.Fatal(err)
		}
		checkOracle(t, "interrupted", q, r, o)
	})

	t.Run("chained", func(t *testing.T) {
		var clock compactClock
		r := compactRepo(t, &clock, 300, 6)
		up, err := query.New(query.Spec{Source: query.FromRepo(r, nil, nil), Where: over50, SortBy: "count", Desc: true, Limit: 40})
		if err != nil {
			t.Fatal(err)
		}
		defer up.Close()
		even := func(it query.Item) bool { v, _ := it.Value.Get("count"); return int(v.Float())%2 == 0 }
		down, err := query.New(query.Spec{Up: up, Where: even})
		if err != nil {
			t.Fatal(err)
		}
		defer down.Close()
		if err := down.Update(t.Context()); err != nil {
			t.Fatal(err)
		}
		compact(t, r, &clock)
		afterCompact(t, r)
		if err := up.Update(t.Context()); err != nil { // the upstream first, alone
			t.Fatal(err)
		}
		if err := down.Update(t.Context()); err != nil {
			t.Fatal(err)
		}
		checkOracle(t, "upstream", up, r, oracle{where: over50, sortBy: "count", desc: true, limit: 40})
		var want []query.Item
		for it := range up.Results() {
			if even(it) {
				want = append(want, it)
			}
		}
		if d := diffLines(results(down), oracle{}.results(want)); d != "" {
			t.Errorf("chained: results differ from its upstream's, filtered:\n%s", d)
		}
	})

	t.Run("subscribed", func(t *testing.T) {
		var clock compactClock
		r := compactRepo(t, &clock, 300, 6)
		s := spec
		s.Source, s.Desc, s.Limit = query.FromRepo(r, nil, nil), true, 30
		lo := oracle{where: over50, sortBy: "count", desc: true, limit: 30}
		q, err := query.New(s)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		var mu sync.Mutex
		m := newMirror()
		// A subscriber that blocks while gate is set: the watcher is held
		// in a delivery across the compaction and the writes after it.
		var gate atomic.Pointer[chan struct{}]
		entered := make(chan struct{}, 1)
		cancel := q.Subscribe(func(ev query.Event) {
			if g := gate.Load(); g != nil {
				select {
				case entered <- struct{}{}:
				default:
				}
				<-*g
			}
			mu.Lock()
			m.apply(ev)
			mu.Unlock()
		})
		defer cancel()
		if err := q.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			g := make(chan struct{})
			gate.Store(&g)
			write(t, r, put(key(200+i), "", map[string]item.Value{"count": item.Number(98), "i": item.Int(int64(i))}))
			<-entered
			compact(t, r, &clock)
			afterCompact(t, r)
			gate.Store(nil)
			close(g)
			if err := q.Wait(t.Context()); err != nil {
				t.Fatal(err)
			}
			checkOracle(t, "subscribed", q, r, lo)
			mu.Lock()
			if d := diffLines(m.sorted(), sortedCopy(results(q))); d != "" || len(m.errs) > 0 {
				t.Errorf("the subscriber's events %v add up to other results than the query's:\n%s", m.errs, d)
			}
			mu.Unlock()
		}
	})
}

// TestSaveAcrossCompaction: a query saved while its results are from
// before a compaction has no position in the new log to save: it writes
// no state (and removes an older one), so that a reopened query rescans
// instead of resuming results that miss the writes made since. A state
// saved after the query caught up resumes.
func TestSaveAcrossCompaction(t *testing.T) {
	var clock compactClock
	r := compactRepo(t, &clock, 300, 6)
	state := filepath.Join(t.TempDir(), "q.state")
	spec := query.Spec{Source: query.FromRepo(r, nil, nil), Name: "q", Where: over50, SortBy: "count", StateFile: state}
	o := oracle{where: over50, sortBy: "count"}
	q, err := query.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Update(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := q.Save(); err != nil {
		t.Fatal(err)
	}
	old := q.Seq()
	compact(t, r, &clock)
	afterCompact(t, r)
	// More writes, past the old position, touching none of the items
	// afterCompact changed: a state claiming the old position in the new
	// log would be readable, and wrong.
	for round := 0; r.Seq() <= old+1000; round++ {
		var ups []repo.Update
		for i := 100; i < 300; i++ {
			ups = append(ups, put(key(i), "", map[string]item.Value{"r": item.Int(int64(round))}))
		}
		write(t, r, ups...)
	}
	if err := q.Close(); err != nil { // saves, as of before the compaction
		t.Fatal(err)
	}
	q, err = query.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	if q.Resumed() {
		t.Error("resumed a state saved before the compaction")
	}
	if err := q.Update(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkOracle(t, "reopened after the compaction", q, r, o)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	write(t, r, put(key(150), "", count(96)), del(key(3)))
	q, err = query.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if !q.Resumed() {
		t.Error("a state saved after the compaction was not resumed")
	}
	if err := q.Update(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkOracle(t, "resumed after the compaction", q, r, o)
}
