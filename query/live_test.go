package query_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goatdb/goatdb/query"
	"github.com/goatdb/goatdb/repo"
)

// TestScanYields: a first scan runs in chunks, stops when its context
// ends without publishing anything, shows its progress, and a later
// update continues where it stopped.
func TestScanYields(t *testing.T) {
	r := newRepo(t)
	fill(t, r, 2000)
	ctx, cancel := context.WithCancel(t.Context())
	var calls atomic.Int64
	where := func(it query.Item) bool {
		if calls.Add(1) == 700 {
			cancel()
		}
		return over50(it)
	}
	q, err := query.New(query.Spec{Source: query.FromRepo(r, nil, nil), Where: where, SortBy: "count", Chunk: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.Update(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Update = %v, want context.Canceled", err)
	}
	if done, total := q.Progress(); done != 700 || total != 2000 {
		t.Errorf("Progress = %d/%d after cancelling at 700, want 700/2000", done, total)
	}
	if q.Total() != 0 || q.Err() != nil {
		t.Errorf("an interrupted scan published %d results (err %v)", q.Total(), q.Err())
	}
	if err := q.Update(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 2000 {
		t.Errorf("Where ran %d times, want 2000: the second update should continue the scan", n)
	}
	o := oracle{where: over50, sortBy: "count"}
	if d := diffLines(results(q), o.results(repoItems(r))); d != "" {
		t.Fatal(d)
	}
}

// TestProgressObservable watches a scan's progress from another goroutine.
func TestProgressObservable(t *testing.T) {
	r := newRepo(t)
	fill(t, r, 3000)
	step := make(chan struct{})
	var calls atomic.Int64
	where := func(it query.Item) bool {
		if calls.Add(1) == 1500 {
			step <- struct{}{} // let the test look at the halfway point
			<-step
		}
		return true
	}
	q, err := query.New(query.Spec{Source: query.FromRepo(r, nil, nil), Where: where, Chunk: 500})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	errc := make(chan error, 1)
	go func() { errc <- q.Update(t.Context()) }()
	<-step
	if done, total := q.Progress(); done != 1000 || total != 3000 {
		t.Errorf("Progress halfway = %d/%d, want 1000/3000 (two chunks done)", done, total)
	}
	if n := q.Total(); n != 0 {
		t.Errorf("results visible during the scan: %d", n)
	}
	step <- struct{}{}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if done, total := q.Progress(); done != 3000 || total != 3000 || q.Total() != 3000 {
		t.Errorf("after: %d/%d, %d results", done, total, q.Total())
	}
}

// TestCallbackPanics: a panicking Where or Less is an error; the results
// stay as they were, and the query recovers by rescanning.
func TestCallbackPanics(t *testing.T) {
	for _, which := range []string{"where", "less"} {
		t.Run(which, func(t *testing.T) {
			r := newRepo(t)
			fill(t, r, 50)
			var boom atomic.Bool
			spec := query.Spec{Source: query.FromRepo(r, nil, nil), Name: which}
			if which == "where" {
				spec.Where = func(it query.Item) bool {
					if boom.Load() && it.Key == "bad" {
						panic("boom")
					}
					return true
				}
			} else {
				spec.Less = func(a, b query.Item) bool {
					if boom.Load() && (a.Key == "bad" || b.Key == "bad") {
						panic("boom")
					}
					return a.Key < b.Key
				}
			}
			q, err := query.New(spec)
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			// A rescan re-adds every result: the buffer holds them all, and
			// the callback never blocks the query's Close.
			events := make(chan query.Event, 1000)
			cancel := q.Subscribe(func(ev query.Event) {
				select {
				case events <- ev:
				default:
				}
			})
			defer cancel()
			if err := q.Wait(t.Context()); err != nil {
				t.Fatal(err)
			}
			before := results(q)
			boom.Store(true)
			write(t, r, put("bad", "", count(1)))
			err = q.Update(t.Context())
			if !errors.Is(err, query.ErrCallback) {
				t.Fatalf("Update = %v, want ErrCallback", err)
			}
			if d := diffLines(results(q), before); d != "" {
				t.Errorf("a failed update changed the results:\n%s", d)
			}
			if !errors.Is(q.Err(), query.ErrCallback) {
				t.Errorf("Err = %v", q.Err())
			}
			if !waitFor(events, query.Failed) {
				t.Error("subscriber not told of the failure")
			}
			boom.Store(false)
			if err := q.Update(t.Context()); err != nil {
				t.Fatal(err)
			}
			if q.Total() != 51 || q.Err() != nil {
				t.Errorf("after recovery: %d results, err %v", q.Total(), q.Err())
			}
		})
	}
}

func waitFor(events chan query.Event, kind query.Kind) bool {
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Kind == kind {
				return true
			}
		case <-timeout:
			return false
		}
	}
}

// TestLive: commits, local or received, reach subscribers without any
// call; cancel stops them; Close stops the watcher.
func TestLive(t *testing.T) {
	base := runtime.NumGoroutine()
	r := openRepo(t, t.TempDir()+"/r.log")
	peer := openRepo(t, t.TempDir()+"/peer.log")
	fill(t, r, 10)
	q, err := query.New(query.Spec{Source: query.FromRepo(r, nil, nil), Where: over50})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	events := make(chan query.Event, 100)
	cancel := q.Subscribe(func(ev query.Event) {
		mu.Lock()
		got = append(got, ev.Kind.String()+" "+ev.Item.Key)
		mu.Unlock()
		events <- ev
	})
	write(t, r, put("x", "", count(70)))
	if !waitFor(events, query.Added) {
		t.Fatal("no event for a local write")
	}
	write(t, peer, put("y", "", count(90)))
	exchange(t, peer, r) // a commit that arrives by sync
	if !waitFor(events, query.Added) {
		t.Fatal("no event for a received commit")
	}
	cancel()
	write(t, r, put("z", "", count(60)))
	if err := q.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(got) != 2 || got[0] != "added x" || got[1] != "added y" {
		t.Errorf("events %q, want added x, added y and nothing after cancel", got)
	}
	mu.Unlock()
	if q.Total() != 3 {
		t.Errorf("%d results, want 3", q.Total())
	}
	q.Subscribe(func(query.Event) {})
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Update(t.Context()); !errors.Is(err, query.ErrClosed) {
		t.Errorf("Update after Close = %v", err)
	}
	r.Close()
	peer.Close()
	checkGoroutines(t, base)
}

// checkGoroutines fails if goroutines started since base are still running
// after a short grace period.
func checkGoroutines(t *testing.T, base int) {
	t.Helper()
	for range 100 {
		if runtime.NumGoroutine() <= base {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	buf := make([]byte, 1<<16)
	t.Errorf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
}

// TestUpstreamClosed: a chained query fails once its upstream is closed.
func TestUpstreamClosed(t *testing.T) {
	r := newRepo(t)
	fill(t, r, 10)
	up, _ := query.New(query.Spec{Source: query.FromRepo(r, nil, nil)})
	down, err := query.New(query.Spec{Up: up, Where: over50})
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	if err := down.Update(t.Context()); err != nil {
		t.Fatal(err)
	}
	up.Close()
	write(t, r, put("x", "", count(70)))
	if err := down.Update(t.Context()); !errors.Is(err, query.ErrClosed) {
		t.Errorf("Update = %v, want ErrClosed", err)
	}
	if _, err := query.New(query.Spec{Up: up}); !errors.Is(err, query.ErrClosed) {
		t.Errorf("New on a closed upstream = %v", err)
	}
}

// TestSpecValidate lists the specs New refuses.
func TestSpecValidate(t *testing.T) {
	r := newRepo(t)
	src := query.FromRepo(r, nil, nil)
	less := func(a, b query.Item) bool { return false }
	for _, s := range []query.Spec{
		{},
		{Source: src, Up: &query.Query{}},
		{Source: src, SortBy: "n", Less: less},
		{Source: src, Limit: -1},
		{Source: fakeSource{src}, StateFile: "x"},
	} {
		if _, err := query.New(s); err == nil {
			t.Errorf("New(%+v) succeeded", s)
		}
	}
}

// fakeSource hides RepoSource's Log methods.
type fakeSource struct{ query.Source }

// TestSlowSubscriberCoalesces: changes queued while a subscriber is busy
// are coalesced to one per item, and still add up to the results.
func TestSlowSubscriberCoalesces(t *testing.T) {
	r := newRepo(t)
	var ups []repo.Update
	for i := range 20 {
		ups = append(ups, put(key(i), "", count(45+i))) // 14 over 50
	}
	write(t, r, ups...)
	q, err := query.New(query.Spec{Source: query.FromRepo(r, nil, nil), Where: over50, SortBy: "count", Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.Update(t.Context()); err != nil {
		t.Fatal(err)
	}
	m := newMirror()
	block := make(chan struct{})
	first := make(chan struct{})
	var n atomic.Int64
	q.Subscribe(func(ev query.Event) {
		if n.Add(1) == 1 {
			close(first)
			<-block // busy while the writes below happen
		}
		m.apply(ev)
	})
	<-first
	// Every item over and under the threshold several times, an item added
	// and deleted, one changed back and forth.
	for round := range 6 {
		var ups []repo.Update
		for i := range 20 {
			ups = append(ups, put(key(i), "", count(40+(i*7+round*13)%30)))
		}
		ups = append(ups, put("tmp", "", count(99)))
		write(t, r, ups...)
		if err := q.Update(t.Context()); err != nil { // queues changes for the busy subscriber
			t.Fatal(err)
		}
		write(t, r, del("tmp"))
		if err := q.Update(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	close(block)
	if err := q.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := results(q)
	if d := diffLines(m.sorted(), sortedCopy(got)); d != "" || len(m.errs) > 0 {
		t.Fatalf("subscriber's view differs: %v\n%s", m.errs, d)
	}
	// The initial results, then at most one change per item.
	if n.Load() > int64(5+21) {
		t.Errorf("%d events: changes were not coalesced", n.Load())
	}
}
