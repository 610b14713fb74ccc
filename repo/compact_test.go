package repo_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/vfs"
)

const day = 24 * 60 * 60 * 1000 // ms

// ctClock is the exclusion tests' clock (1 ms per reading, so every
// commit has its own timestamp), which compaction tests also set.
type ctClock = exClock

func newCtClock() *ctClock { return newExClock() }

// at moves the clock to ms (never back).
func (c *ctClock) at(ms int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ms = max(c.ms, ms)
}

func (c *ctClock) ms0() int64 { return 1_700_000_000_000 }

func ctKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("goatdb compaction test " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

// ctOpen opens (or reopens) the repository name on fs, checked at cleanup.
func ctOpen(t testing.TB, fs vfs.FS, clock *ctClock, name string, d repo.Durability) *repo.Repo {
	t.Helper()
	return dbtest.OpenRepo(t, "/data/"+name+".log", &repo.Options{FS: fs, Key: ctKey(name), Now: clock.now, Durability: d, FlushInterval: time.Millisecond})
}

// ctSet writes field = value to an item and returns the commit.
func ctSet(t testing.TB, r *repo.Repo, key, field, value string) *commit.Commit {
	t.Helper()
	cs, err := r.Write(repo.Update{Key: key, Fn: func(c repo.Current) (item.Item, commit.Schema, error) {
		return c.Value.With(field, item.String(value)), c.Schema, nil
	}})
	if err != nil || len(cs) != 1 {
		t.Fatalf("write %s: %v (%d commits)", key, err, len(cs))
	}
	return cs[0]
}

// ctFull writes a value large and different enough that the commit is a
// full snapshot.
func ctFull(t testing.TB, r *repo.Repo, key string, i int) *commit.Commit {
	t.Helper()
	c := ctSet(t, r, key, "big", strings.Repeat(fmt.Sprintf("%s-%d;", key, i), 60))
	if !c.IsFull() {
		t.Fatalf("write %d of %s is a delta", i, key)
	}
	return c
}

// ctValues returns every item's value.
func ctValues(r *repo.Repo) map[string]item.Item {
	out := map[string]item.Item{}
	for e := range r.All() {
		out[e.Key] = e.Value
	}
	return out
}

func ctSameValues(t testing.TB, what string, got, want map[string]item.Item) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d items, want %d", what, len(got), len(want))
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || !item.ItemsEqual(g, v) {
			t.Errorf("%s: item %s = %v, want %v", what, k, g, v)
		}
	}
}

// ctCompact compacts at h and checks the repository before and after
// reopening: same values, same heads, a clean Check.
func ctCompact(t *testing.T, r *repo.Repo, reopen func() *repo.Repo, h int64, opts *repo.CompactOptions) (repo.CompactStats, *repo.Repo) {
	t.Helper()
	st, err := r.Compact(h, opts)
	if err != nil {
		t.Fatalf("compact: %v", err)
	}
	dbtest.RequireClean(t, r)
	if got := r.Horizon(); got < h {
		t.Errorf("horizon %d after compacting at %d", got, h)
	}
	values := ctValues(r)
	heads := map[string]commit.ID{}
	for e := range r.All() {
		heads[e.Key] = e.Head
	}
	ids := r.IDs()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r2 := reopen()
	dbtest.RequireClean(t, r2)
	ctSameValues(t, "reopened after compaction", ctValues(r2), values)
	for e := range r2.All() {
		if heads[e.Key] != e.Head {
			t.Errorf("item %s: head %s after reopening, %s before", e.Key, e.Head.Short(), heads[e.Key].Short())
		}
	}
	if got := r2.IDs(); len(got) != len(ids) {
		t.Errorf("%d commits after reopening, %d before", len(got), len(ids))
	}
	if r2.Horizon() != r.Horizon() {
		t.Errorf("horizon %d after reopening, %d before", r2.Horizon(), r.Horizon())
	}
	return st, r2
}

// TestKeepsCurrentHeadOlderThanHorizon: an item untouched since long
// before the horizon keeps its head (and what its value needs), intact,
// while the history before it goes.
func TestKeepsCurrentHeadOlderThanHorizon(t *testing.T) {
	clock := newCtClock()
	fs := vfs.NewMem()
	r := ctOpen(t, fs, clock, "a", repo.Sync)
	var old []*commit.Commit
	for i := range 4 {
		old = append(old, ctFull(t, r, "old", i))
	}
	deltaHead := ctSet(t, r, "old", "small", "x")
	clock.at(clock.ms0() + 40*day)
	ctFull(t, r, "new", 0)
	before := ctValues(r)
	h := clock.ms0() + 30*day
	st, r2 := ctCompact(t, r, func() *repo.Repo { return ctOpen(t, fs, clock, "a", repo.Sync) }, h, nil)
	ctSameValues(t, "after compaction", ctValues(r2), before)
	if head, _ := r2.Head("old"); head != deltaHead.ID() {
		t.Errorf("head of old is %s, want %s", head.Short(), deltaHead.ID().Short())
	}
	// The head is a delta on old[3]: both stay, the rest goes.
	for i, c := range old {
		if want := i == 3; r2.Has(c.ID()) != want {
			t.Errorf("old[%d] held: %v, want %v", i, r2.Has(c.ID()), want)
		}
	}
	if st.CommitsAfter != 3 || st.CommitsBefore != 6 || st.Shallow != 1 {
		t.Errorf("stats %+v, want 6 commits before, 3 after, 1 shallow", st)
	}
	hist, err := r2.ItemHistory("old")
	if !errors.Is(err, repo.ErrCollected) || len(hist) != 2 || !hist[1].Shallow {
		t.Errorf("history of old: %d commits, %v", len(hist), err)
	}
}

// TestKeepsLeafOfTheWindow: an item whose head was replaced after the
// horizon keeps the head it replaced (an author offline since may build on
// it), and a commit built on it merges as on a peer with all of history.
func TestKeepsLeafOfTheWindow(t *testing.T) {
	clock := newCtClock()
	fs := vfs.NewMem()
	r := ctOpen(t, fs, clock, "a", repo.Sync)
	c1 := ctFull(t, r, "x", 1)
	c2 := ctFull(t, r, "x", 2)
	// A peer with the whole history, offline since c2.
	peer := ctOpen(t, vfs.NewMem(), clock, "b", repo.Sync)
	exSend(t, peer, c1, c2)
	clock.at(clock.ms0() + 40*day)
	ctFull(t, r, "x", 3)
	h := clock.ms0() + 30*day
	_, r2 := ctCompact(t, r, func() *repo.Repo { return ctOpen(t, fs, clock, "a", repo.Sync) }, h, nil)
	if r2.Has(c1.ID()) || !r2.Has(c2.ID()) {
		t.Fatalf("c1 held %v (want false), c2 held %v (want true)", r2.Has(c1.ID()), r2.Has(c2.ID()))
	}
	// The offline author writes on c2; both repositories merge alike.
	late := ctSet(t, peer, "x", "late", "yes")
	full := ctOpen(t, vfs.NewMem(), clock, "c", repo.Sync)
	exSend(t, full, c1, c2)
	var all []*commit.Commit
	for _, id := range r2.IDs() {
		c, _ := r2.Commit(id)
		if !full.Has(id) {
			all = append(all, c)
		}
	}
	exSend(t, full, all...)
	exSend(t, full, late)
	exSend(t, r2, late)
	h1, _ := r2.Head("x")
	h2, _ := full.Head("x")
	v1, _, _ := r2.Get("x")
	v2, _, _ := full.Get("x")
	if h1 != h2 || !item.ItemsEqual(v1, v2) {
		t.Errorf("collected peer: %s %v; full peer: %s %v", h1.Short(), v1, h2.Short(), v2)
	}
}

// TestDeltaBaseClosure: a kept delta keeps its base and the chain up to it;
// the compacted log checks clean and reopens with the same values.
func TestDeltaBaseClosure(t *testing.T) {
	clock := newCtClock()
	fs := vfs.NewMem()
	r := ctOpen(t, fs, clock, "a", repo.Sync)
	c0 := ctFull(t, r, "x", 0)
	base := ctFull(t, r, "x", 1)
	var chain []*commit.Commit
	for i := range 5 {
		c := ctSet(t, r, "x", "n", fmt.Sprint(i))
		if c.IsFull() || c.Base() != base.ID() {
			t.Fatalf("write %d is not a delta on the base", i)
		}
		chain = append(chain, c)
	}
	clock.at(clock.ms0() + 40*day)
	last := ctSet(t, r, "x", "n", "last")
	if last.IsFull() || last.Base() != base.ID() {
		t.Fatal("last write is not a delta on the base")
	}
	h := clock.ms0() + 30*day
	st, r2 := ctCompact(t, r, func() *repo.Repo { return ctOpen(t, fs, clock, "a", repo.Sync) }, h, nil)
	if r2.Has(c0.ID()) || !r2.Has(base.ID()) {
		t.Errorf("c0 held %v (want false), base held %v (want true)", r2.Has(c0.ID()), r2.Has(base.ID()))
	}
	for i, c := range chain {
		if !r2.Has(c.ID()) {
			t.Errorf("chain[%d] collected", i)
		}
	}
	if st.Shallow != 1 {
		t.Errorf("%d shallow commits, want 1 (the base)", st.Shallow)
	}
	for _, c := range append(chain, last, base) {
		if _, _, err := r2.ValueAt(c.ID()); err != nil {
			t.Errorf("value at %s: %v", c.ID().Short(), err)
		}
	}
	// And a second compaction, later, of the compacted log.
	clock.at(clock.ms0() + 50*day)
	c9 := ctFull(t, r2, "x", 9)
	clock.at(clock.ms0() + 80*day)
	ctFull(t, r2, "x", 10)
	_, r3 := ctCompact(t, r2, func() *repo.Repo { return ctOpen(t, fs, clock, "a", repo.Sync) }, clock.ms0()+70*day, nil)
	if r3.Has(base.ID()) || r3.Has(last.ID()) || !r3.Has(c9.ID()) {
		t.Errorf("after the second compaction: base held %v, last held %v (want neither), c9 held %v (want it)",
			r3.Has(base.ID()), r3.Has(last.ID()), r3.Has(c9.ID()))
	}
}

// TestCollectedHistoryErrors: reads of history that compaction collected
// say so (ErrCollected, with the time), rather than "not found"; reads of
// what is kept still work.
func TestCollectedHistoryErrors(t *testing.T) {
	clock := newCtClock()
	fs := vfs.NewMem()
	r := ctOpen(t, fs, clock, "a", repo.Sync)
	c1 := ctFull(t, r, "x", 1)
	c2 := ctFull(t, r, "x", 2)
	clock.at(clock.ms0() + 40*day)
	c3 := ctFull(t, r, "x", 3)
	h := clock.ms0() + 30*day
	_, r = ctCompact(t, r, func() *repo.Repo { return ctOpen(t, fs, clock, "a", repo.Sync) }, h, nil)
	fresh := ctSet(t, r, "fresh", "v", "1")

	if _, _, err := r.ValueAt(c1.ID()); !errors.Is(err, repo.ErrCollected) || !strings.Contains(err.Error(), "was collected") {
		t.Errorf("value at a collected commit: %v, want ErrCollected", err)
	}
	if _, _, err := r.ValueAt(c2.ID()); err != nil {
		t.Errorf("value at a kept commit: %v", err)
	}
	if _, err := r.ItemAsOf("x", c1.Time()); !errors.Is(err, repo.ErrCollected) {
		t.Errorf("x as of c1's time: %v, want ErrCollected", err)
	}
	if _, ok := r.AsOf("x", c1.Time()); ok {
		t.Error("AsOf answers for a time whose commit was collected")
	}
	for _, tc := range []struct {
		at   int64
		want commit.ID
	}{{c2.Time(), c2.ID()}, {h, c2.ID()}, {c3.Time(), c3.ID()}} {
		if id, err := r.ItemAsOf("x", tc.at); err != nil || id != tc.want {
			t.Errorf("x as of %d: %s %v, want %s", tc.at, id.Short(), err, tc.want.Short())
		}
	}
	if _, err := r.ItemAsOf("fresh", fresh.Time()-1); !errors.Is(err, repo.ErrNotFound) {
		t.Errorf("an item before its first commit, after the horizon: %v, want ErrNotFound", err)
	}
	if _, err := r.ItemAsOf("gone", c1.Time()); !errors.Is(err, repo.ErrCollected) {
		t.Errorf("an unknown item before the horizon: %v, want ErrCollected", err)
	}
	hist, err := r.ItemHistory("x")
	if !errors.Is(err, repo.ErrCollected) || len(hist) != 2 || hist[0].Commit.ID() != c3.ID() || !hist[1].Shallow {
		t.Errorf("history of x: %d commits, %v; want c3, then c2 shallow, and ErrCollected", len(hist), err)
	}
	if hist, err := r.ItemHistory("fresh"); err != nil || len(hist) != 1 {
		t.Errorf("history of an item never collected: %d commits, %v", len(hist), err)
	}
	if _, err := r.ItemHistory("nothing"); !errors.Is(err, repo.ErrNotFound) {
		t.Errorf("history of no item: %v, want ErrNotFound", err)
	}
}

// TestBelowHorizonRefused: a commit stamped before the horizon that the
// repository does not hold is refused for good, with a reason saying so; a
// commit it holds is a duplicate as ever, and new commits are taken.
func TestBelowHorizonRefused(t *testing.T) {
	clock := newCtClock()
	fs := vfs.NewMem()
	r := ctOpen(t, fs, clock, "a", repo.Sync)
	peer := ctOpen(t, vfs.NewMem(), clock, "b", repo.Sync)
	c1 := ctFull(t, r, "x", 1)
	c2 := ctFull(t, r, "x", 2)
	old := ctFull(t, peer, "y", 1) // never sent to r
	clock.at(clock.ms0() + 40*day)
	ctFull(t, r, "x", 3)
	h := clock.ms0() + 30*day
	_, r = ctCompact(t, r, func() *repo.Repo { return ctOpen(t, fs, clock, "a", repo.Sync) }, h, nil)

	for name, receive := range map[string]func([][]byte) ([]commit.ID, []repo.Rejection, error){
		"Receive": r.Receive, "ReceiveComplete": r.ReceiveComplete,
	} {
		for _, c := range []*commit.Commit{c1, old} {
			stored, rej, err := receive([][]byte{c.Encode()})
			if err != nil || len(stored) != 0 || len(rej) != 1 || !strings.HasPrefix(rej[0].Reason, repo.BelowHorizon) {
				t.Errorf("%s of a commit below the horizon: stored %v, rejected %v, %v", name, stored, rej, err)
			}
		}
		if stored, rej, err := receive([][]byte{c2.Encode()}); err != nil || len(stored) != 0 || len(rej) != 0 {
			t.Errorf("%s of a kept commit below the horizon: stored %v, rejected %v, %v", name, stored, rej, err)
		}
	}
	if r.Has(c1.ID()) || r.Has(old.ID()) {
		t.Error("a commit below the horizon was stored")
	}
	late := ctFull(t, peer, "y", 2)
	if stored, rej, err := r.Receive([][]byte{late.Encode()}); err != nil || len(stored) != 1 || len(rej) != 0 {
		t.Errorf("a new commit: stored %v, rejected %v, %v", stored, rej, err)
	}
}

// TestDropPurgesItem: Drop removes an item's whole history, heads
// included, at once and for good (the key can be written again, with a
// fresh history); a dropped commit in the middle of an item takes its
// descendants with it and leaves the item as it was before.
func TestDropPurgesItem(t *testing.T) {
	clock := newCtClock()
	fs := vfs.NewMem()
	r := ctOpen(t, fs, clock, "a", repo.Sync)
	var secret []*commit.Commit
	for i := range 3 {
		secret = append(secret, ctFull(t, r, "secret", i))
		ctSet(t, r, "kept", "n", fmt.Sprint(i))
	}
	mid := ctSet(t, r, "mixed", "v", "1")
	bad := ctSet(t, r, "mixed", "v", "2")
	ctSet(t, r, "mixed", "w", "3")
	clock.at(clock.ms0() + 40*day)
	secret = append(secret, ctSet(t, r, "secret", "recent", "yes"))
	keptBefore, _, _ := r.Get("kept")
	drop := func(c *commit.Commit) bool { return c.Key() == "secret" || c.ID() == bad.ID() }
	plan, err := r.PlanCompact(0, &repo.CompactOptions{Drop: drop})
	if err != nil || plan.CommitsAfter != plan.CommitsBefore-6 {
		t.Fatalf("plan: %+v, %v; want 6 commits dropped", plan, err)
	}
	st, r2 := ctCompact(t, r, func() *repo.Repo { return ctOpen(t, fs, clock, "a", repo.Sync) }, 0,
		&repo.CompactOptions{Drop: drop})
	if st.CommitsAfter != st.CommitsBefore-6 {
		t.Errorf("stats %+v: want 6 commits dropped", st)
	}
	for _, c := range secret {
		if r2.Has(c.ID()) {
			t.Errorf("dropped commit %s still held", c.ID().Short())
		}
	}
	if _, _, ok := r2.Get("secret"); ok || len(r2.History("secret")) != 0 {
		t.Error("the dropped item is still there")
	}
	for _, k := range r2.Keys(true) {
		if k == "secret" {
			t.Error("the dropped item is still listed")
		}
	}
	if v, _, _ := r2.Get("kept"); !item.ItemsEqual(v, keptBefore) {
		t.Errorf("kept = %v, want %v", v, keptBefore)
	}
	if v, _, _ := r2.Get("mixed"); !item.ItemsEqual(v, item.Item{}.With("v", item.String("1"))) {
		t.Errorf("mixed = %v, want it as of before the dropped commit", v)
	}
	if head, _ := r2.Head("mixed"); head != mid.ID() {
		t.Errorf("head of mixed is %s, want %s", head.Short(), mid.ID().Short())
	}
	if r2.Horizon() != 0 {
		t.Errorf("a purge moved the horizon to %d", r2.Horizon())
	}
	again := ctSet(t, r2, "secret", "v", "new")
	if len(again.Parents()) != 0 || len(r2.History("secret")) != 1 {
		t.Errorf("the key written again has %d parents and %d commits of history", len(again.Parents()), len(r2.History("secret")))
	}
	dbtest.RequireClean(t, r2)
}

// TestCompactWhileWriting compacts, three times over, a repository that 8
// writers keep writing to, under both durabilities: every write
// acknowledged is there after, in memory and after reopening, with its
// value, and writers wait only for the swaps.
func TestCompactWhileWriting(t *testing.T) {
	for _, d := range []repo.Durability{repo.Sync, repo.Async} {
		t.Run(d.String(), func(t *testing.T) {
			clock := newCtClock()
			path := t.TempDir() + "/w.log"
			open := func() *repo.Repo {
				return dbtest.OpenRepo(t, path, &repo.Options{Key: ctKey("w"), Now: clock.now, Durability: d})
			}
			r := open()
			for i := range 5 {
				var ups []repo.Update
				for k := range 40 {
					key := fmt.Sprint("old", k)
					ups = append(ups, ctUpdate(key, "big", strings.Repeat(fmt.Sprintf("%s-%d;", key, i), 60)))
				}
				if _, err := r.Write(ups...); err != nil {
					t.Fatal(err)
				}
			}
			clock.at(clock.ms0() + 40*day)
			h := clock.ms0() + 30*day

			const writers = 8
			var mu sync.Mutex
			acked := map[commit.ID]bool{}
			last := map[string]string{}
			var slowest time.Duration
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for g := range writers {
				wg.Go(func() {
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						key, v := fmt.Sprint("w", g), fmt.Sprint(i)
						shared := fmt.Sprint("shared", g%2)
						start := time.Now()
						cs, err := r.Write(
							repo.Update{Key: key, Fn: func(c repo.Current) (item.Item, commit.Schema, error) {
								return c.Value.With("v", item.String(v)), c.Schema, nil
							}},
							repo.Update{Key: shared, Fn: func(c repo.Current) (item.Item, commit.Schema, error) {
								return c.Value.With(key, item.String(v)), c.Schema, nil
							}})
						took := time.Since(start)
						if err != nil {
							t.Errorf("writer %d: %v", g, err)
							return
						}
						mu.Lock()
						for _, c := range cs {
							acked[c.ID()] = true
						}
						last[key] = v
						slowest = max(slowest, took)
						mu.Unlock()
						if d == repo.Async {
							time.Sleep(200 * time.Microsecond) // a write does not wait for the disk
						}
					}
				})
			}
			var pauses []time.Duration
			for range 3 {
				time.Sleep(20 * time.Millisecond)
				st, err := r.Compact(h, nil)
				if err != nil {
					t.Fatalf("compact: %v", err)
				}
				pauses = append(pauses, st.Pause)
			}
			time.Sleep(10 * time.Millisecond)
			close(stop)
			wg.Wait()
			t.Logf("%d writes acknowledged; pauses %v; slowest write %v", len(acked), pauses, slowest)
			check := func(r *repo.Repo, when string) {
				t.Helper()
				for id := range acked {
					if !r.Has(id) {
						t.Fatalf("%s: acknowledged commit %s lost", when, id.Short())
					}
				}
				for k, v := range last {
					got, _, _ := r.Get(k)
					if s, _ := got.Get("v"); !item.Equal(s, item.String(v)) {
						t.Errorf("%s: %s = %v, acknowledged %s", when, k, s, v)
					}
				}
			}
			check(r, "in memory")
			dbtest.RequireClean(t, r)
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			r = open()
			dbtest.RequireClean(t, r)
			check(r, "after reopening")
			if r.Horizon() != h {
				t.Errorf("horizon %d, want %d", r.Horizon(), h)
			}
			if _, err := os.Stat(path + ".compact"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the compaction's copy is left: %v", err)
			}
		})
	}
}

// TestPinHoldsSwap: a compaction ready to swap waits for a pin held, while
// writers and readers go on; once released it swaps, and the pinned reader
// saw one state throughout (the log's epoch and horizon before the swap).
func TestPinHoldsSwap(t *testing.T) {
	clock := newCtClock()
	r := ctOpen(t, vfs.NewMem(), clock, "a", repo.Sync)
	for i := range 4 {
		ctFull(t, r, "old", i)
	}
	clock.at(clock.ms0() + 40*day)
	ctFull(t, r, "new", 0)
	epoch, horizon := r.Epoch(), r.Horizon()

	release := r.Pin()
	done := make(chan error, 1)
	go func() {
		_, err := r.Compact(clock.ms0()+30*day, nil)
		done <- err
	}()
	// Writes and reads go on while the compaction waits for the pin.
	for i := range 3 {
		ctSet(t, r, "new", "n", fmt.Sprint(i))
		if _, _, ok := r.Get("old"); !ok {
			t.Fatal("old unreadable while pinned")
		}
	}
	select {
	case err := <-done:
		t.Fatalf("compaction swapped under a pin (err %v)", err)
	case <-time.After(50 * time.Millisecond):
	}
	if r.Epoch() != epoch || r.Horizon() != horizon {
		t.Fatalf("under a pin the epoch and horizon moved: %d %d, were %d %d", r.Epoch(), r.Horizon(), epoch, horizon)
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r.Epoch() == epoch || r.Horizon() != clock.ms0()+30*day {
		t.Fatalf("after release: epoch %d (was %d), horizon %d, want a new epoch and horizon %d", r.Epoch(), epoch, r.Horizon(), clock.ms0()+30*day)
	}
	// A pin taken after the swap does not wait.
	r.Pin()()
}
