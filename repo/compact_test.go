package repo_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
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

// ctClock is a settable clock that moves 1 ms per reading, so every commit
// has its own timestamp.
type ctClock struct {
	mu sync.Mutex
	ms int64
}

func newCtClock() *ctClock { return &ctClock{ms: 1_700_000_000_000} }

func (c *ctClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ms++
	return time.UnixMilli(c.ms)
}

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
