package server_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"weak"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/server"
)

// hubWatchers counts the goroutines that follow a repository for event
// streams.
func hubWatchers() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	return strings.Count(string(buf), "server.(*hub).follow(")
}

// TestEventsFollowReopenedRepos: with a bound on open repositories, New
// opens none, event-stream watchers end when their repository is closed
// for idleness (none is left per closed repository), a reopened
// repository is followed again and its changes announced, and a new
// stream lists the closed repositories at the positions they closed at.
func TestEventsFollowReopenedRepos(t *testing.T) {
	const bound = 2
	srvDB := dbtest.OpenDB(t, &goatdb.Options{MaxOpenRepos: bound})
	var mu sync.Mutex
	last := map[string]*repo.Repo{}
	t.Cleanup(srvDB.OnRepoOpen(func(p string, r *repo.Repo) {
		mu.Lock()
		last[p] = r
		mu.Unlock()
	}))
	open := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, r := range last {
			if !r.Closed() {
				n++
			}
		}
		return n
	}
	mustPut(t, srvDB, "/data/a/x", goatdb.Fields{"v": 1.0})
	mustPut(t, srvDB, "/data/b/x", goatdb.Fields{"v": 1.0})
	base := hubWatchers()
	srv := serve(t, srvDB, nil, "")
	if open() != 2 {
		t.Fatalf("%d open after New, want the 2 open before", open())
	}
	s := openStream(t, srv.url, "")
	readOpening(t, s, []string{"/data/a", "/data/b"})

	// Many repositories used: the watchers of those closed end.
	for i := range 20 {
		mustPut(t, srvDB, fmt.Sprintf("/data/r%02d/x", i), goatdb.Fields{"v": float64(i)})
	}
	follow(t, s, srvDB, positionOf(t, srvDB, "/data/r19"))
	eventually(t, 5*time.Second, "watchers of closed repositories end", func() bool {
		return hubWatchers()-base <= bound
	})

	// /data/a was closed: a write reopens it, and is announced.
	mustPut(t, srvDB, "/data/a/y", goatdb.Fields{"v": 2.0})
	follow(t, s, srvDB, positionOf(t, srvDB, "/data/a"))

	// A new stream lists the repositories closed since, at the positions
	// they had when they closed (a close ends the log with a mark, which
	// the position of the reopened repository counts).
	want := []string{"/data/a", "/data/b"}
	for i := range 20 {
		want = append(want, fmt.Sprintf("/data/r%02d", i))
	}
	for i, n := range readOpening(t, openStream(t, srv.url, ""), want) {
		if pos := positionOf(t, srvDB, want[i]); n.Epoch != pos.Epoch || n.Seq > pos.Seq || n.Seq+64 < pos.Seq {
			t.Errorf("opening notice %+v, want %+v or the position before its close mark", n, pos)
		}
	}
	if n := open(); n > bound {
		t.Errorf("%d repositories open, bound %d", n, bound)
	}
}

// TestSyncHoldsRepos: a sync request holds each repository only while it
// works on it, so that one request naming many more repositories than the
// bound never has more open; a client syncing through a bounded server
// gets every one of them.
func TestSyncHoldsRepos(t *testing.T) {
	const n, bound = 40, 3
	srvDB := dbtest.OpenDB(t, &goatdb.Options{MaxOpenRepos: bound})
	var mu sync.Mutex
	last := map[string]*repo.Repo{}
	most := 0
	t.Cleanup(srvDB.OnRepoOpen(func(p string, r *repo.Repo) {
		mu.Lock()
		defer mu.Unlock()
		last[p] = r
		open := 0
		for _, r := range last {
			if !r.Closed() {
				open++
			}
		}
		most = max(most, open)
	}))
	srv := serve(t, srvDB, nil, "")
	up := dbtest.OpenDB(t, nil) // unbounded: one request names every repository
	var paths []string
	for i := range n {
		p := fmt.Sprintf("/data/r%02d", i)
		paths = append(paths, p)
		mustPut(t, up, p+"/x", goatdb.Fields{"v": float64(i)})
	}
	if st := mustSync(t, up, srv.url); st.Converged != n {
		t.Fatalf("%d converged, want %d", st.Converged, n)
	}
	down := dbtest.OpenDB(t, nil)
	if st := mustSync(t, down, srv.url, paths...); st.Converged != n {
		t.Fatalf("%d converged, want %d", st.Converged, n)
	}
	sameValues(t, up, down)
	mu.Lock()
	defer mu.Unlock()
	// The bound, the one a request holds, and one that may be closing.
	if most > bound+2 {
		t.Errorf("at most %d repositories were open at once, bound %d", most, bound)
	}
}

// BenchmarkServerTouchesRepos measures the Go heap of a server after a
// client synced each of 10,000 repositories (20 items each) once: without
// a bound, with goatdb serve's defaults (1,000 open, 512 MiB), with a
// memory bound alone and with a tight count. Its metrics: heap-MiB after
// the round (after GC) and the repositories open then.
func BenchmarkServerTouchesRepos(b *testing.B) {
	const repos, items = 10_000, 20
	dir := b.TempDir()
	seed, err := goatdb.Open(dir, &goatdb.Options{Durability: goatdb.Async, Trusted: true, MaxOpenRepos: 64})
	if err != nil {
		b.Fatal(err)
	}
	for i := range repos {
		batch := seed.Batch()
		for j := range items {
			batch.Put(fmt.Sprintf("/data/r%05d/i%02d", i, j), goatdb.Fields{"title": fmt.Sprintf("item %d of %d", j, i), "n": float64(j)})
		}
		if _, err := batch.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	if err := seed.Close(); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		opts goatdb.Options
	}{
		{"unbounded", goatdb.Options{}},
		{"serve-default", goatdb.Options{MaxOpenRepos: 1000, MaxOpenRepoBytes: 512 << 20}},
		{"repo-memory=32MiB", goatdb.Options{MaxOpenRepoBytes: 32 << 20}},
		{"max-open=100", goatdb.Options{MaxOpenRepos: 100}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				opts := bc.opts
				opts.Trusted = true
				db, err := goatdb.Open(dir, &opts)
				if err != nil {
					b.Fatal(err)
				}
				var mu sync.Mutex
				var opened []weak.Pointer[repo.Repo] // not to keep closed ones in memory
				remove := db.OnRepoOpen(func(_ string, r *repo.Repo) { mu.Lock(); opened = append(opened, weak.Make(r)); mu.Unlock() })
				srv := serve(b, db, nil, "")
				cli, err := goatdb.Open(b.TempDir(), &goatdb.Options{Trusted: true, Durability: goatdb.Async, MaxOpenRepos: 200})
				if err != nil {
					b.Fatal(err)
				}
				paths := make([]string, repos)
				for i := range paths {
					paths[i] = fmt.Sprintf("/data/r%05d", i)
				}
				if st, err := cli.Sync(context.Background(), srv.url, paths...); err != nil || st.Converged != repos {
					b.Fatalf("sync: %v, %d converged", err, st.Converged)
				}
				cli.Close()
				runtime.GC()
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MiB")
				mu.Lock()
				open := 0
				for _, w := range opened {
					if r := w.Value(); r != nil && !r.Closed() {
						open++
					}
				}
				mu.Unlock()
				b.ReportMetric(float64(open), "open-repos")
				remove()
				srv.stop()
				db.Close()
			}
		})
	}
}

var _ = server.New
