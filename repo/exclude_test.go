package repo_test

// Exclusion: a write a server refused is quarantined, never dropped; an
// item this peer may no longer read is forgotten. Both take the commits,
// and every commit that descends from them, out of the graph; these tests
// check what readers and sync see, that it lasts across reopen and crash,
// and that Restore, Discard and Reauthor undo or finish it.

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/vfs"
)

// exKey returns a fixed session key for a name.
func exKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("goatdb exclude test " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

func exSession(k ed25519.PrivateKey) commit.SessionID {
	var s commit.SessionID
	copy(s[:], k.Public().(ed25519.PublicKey))
	return s
}

// exClock is a clock shared by a test's peers that moves 1 ms per reading,
// so every commit has its own timestamp.
type exClock struct {
	mu sync.Mutex
	ms int64
}

func newExClock() *exClock { return &exClock{ms: 1_700_000_000_000} }

func (c *exClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ms++
	return time.UnixMilli(c.ms)
}

// exPeer opens a repository on its own in-memory filesystem.
func exPeer(t *testing.T, clock *exClock, name string) (*repo.Repo, *vfs.MemFS) {
	t.Helper()
	fs := vfs.NewMem()
	return exOpen(t, fs, clock, name, exKey(name), repo.Sync), fs
}

func exOpen(t *testing.T, fs vfs.FS, clock *exClock, name string, key ed25519.PrivateKey, d repo.Durability) *repo.Repo {
	t.Helper()
	return dbtest.OpenRepo(t, "/data/"+name+".log", &repo.Options{FS: fs, Key: key, Now: clock.now, Durability: d, FlushInterval: time.Hour})
}

// exSet writes fields of one item (a nil value removes the field) and
// returns its commit.
func exSet(t *testing.T, r *repo.Repo, key string, kv ...any) *commit.Commit {
	t.Helper()
	cs, err := r.Write(repo.Update{Key: key, Fn: func(c repo.Current) (item.Item, commit.Schema, error) {
		v := c.Value
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				v = v.Without(kv[i].(string))
			} else {
				v = v.With(kv[i].(string), item.String(kv[i+1].(string)))
			}
		}
		return v, c.Schema, nil
	}})
	if err != nil || len(cs) != 1 {
		t.Fatalf("write %s: %v (%d commits)", key, err, len(cs))
	}
	return cs[0]
}

// exDelete deletes an item and returns its commit.
func exDelete(t *testing.T, r *repo.Repo, key string) *commit.Commit {
	t.Helper()
	cs, err := r.Write(repo.Update{Key: key, Fn: func(c repo.Current) (item.Item, commit.Schema, error) {
		return c.Value.WithDeleted(true), c.Schema, nil
	}})
	if err != nil || len(cs) != 1 {
		t.Fatalf("delete %s: %v", key, err)
	}
	return cs[0]
}

// exItem builds an item from field, value pairs.
func exItem(kv ...string) item.Item {
	var v item.Item
	for i := 0; i < len(kv); i += 2 {
		v = v.With(kv[i], item.String(kv[i+1]))
	}
	return v
}

// exSend has to receive commits; none may be refused.
func exSend(t *testing.T, to *repo.Repo, cs ...*commit.Commit) {
	t.Helper()
	encs := make([][]byte, len(cs))
	for i, c := range cs {
		encs[i] = c.Encode()
	}
	if _, rej, err := to.Receive(encs); err != nil || len(rej) > 0 {
		t.Fatalf("receive: %v %v", err, rej)
	}
}

// exRequire fails unless key holds want.
func exRequire(t *testing.T, r *repo.Repo, key string, want item.Item) {
	t.Helper()
	got, _, ok := r.Get(key)
	if !ok || !item.ItemsEqual(got, want) {
		t.Fatalf("%s = %v (present %v), want %v", key, got, ok, want)
	}
}

// exRequireGone fails unless key has no value at all.
func exRequireGone(t *testing.T, r *repo.Repo, key string) {
	t.Helper()
	if v, _, ok := r.Get(key); ok {
		t.Fatalf("%s = %v, want no item", key, v)
	}
	if slices.Contains(r.Keys(true), key) {
		t.Fatalf("Keys lists %s", key)
	}
	for e := range r.All() {
		if e.Key == key {
			t.Fatalf("All yields %s", key)
		}
	}
}

func exIDs(cs ...*commit.Commit) []commit.ID {
	out := make([]commit.ID, len(cs))
	for i, c := range cs {
		out[i] = c.ID()
	}
	return out
}

// exOut fails unless the commits are excluded: held, but in none of IDs,
// CommitsSince and Commit.
func exOut(t *testing.T, r *repo.Repo, cs ...*commit.Commit) {
	t.Helper()
	ids := r.IDs()
	since, _ := r.CommitsSince(0)
	for _, c := range cs {
		if !r.Has(c.ID()) {
			t.Errorf("excluded commit %s no longer held", c.ID().Short())
		}
		if slices.Contains(ids, c.ID()) {
			t.Errorf("IDs lists excluded commit %s", c.ID().Short())
		}
		if slices.ContainsFunc(since, func(s *commit.Commit) bool { return s.ID() == c.ID() }) {
			t.Errorf("CommitsSince returns excluded commit %s", c.ID().Short())
		}
		if _, ok := r.Commit(c.ID()); ok {
			t.Errorf("Commit returns excluded commit %s", c.ID().Short())
		}
	}
}

// exIn fails unless the commits are in IDs and CommitsSince.
func exIn(t *testing.T, r *repo.Repo, cs ...*commit.Commit) {
	t.Helper()
	ids := r.IDs()
	since, _ := r.CommitsSince(0)
	for _, c := range cs {
		if !slices.Contains(ids, c.ID()) || !slices.ContainsFunc(since, func(s *commit.Commit) bool { return s.ID() == c.ID() }) {
			t.Errorf("commit %s missing from IDs or CommitsSince", c.ID().Short())
		}
	}
}

// exListed returns the ids Excluded lists for an item, and fails unless
// each shows root, kind and reason.
func exListed(t *testing.T, r *repo.Repo, key string, root commit.ID, kind repo.ExcludeKind, reason string) []commit.ID {
	t.Helper()
	var out []commit.ID
	for _, e := range r.Excluded() {
		if e.Key != key {
			continue
		}
		if e.Root != root || e.Kind != kind || e.Reason != reason || e.At.IsZero() {
			t.Errorf("Excluded lists %+v, want root %s, kind %v, reason %q", e, root.Short(), kind, reason)
		}
		out = append(out, e.ID)
	}
	return out
}

func exSameIDs(t *testing.T, got, want []commit.ID) {
	t.Helper()
	got, want = slices.Clone(got), slices.Clone(want)
	slices.SortFunc(got, commit.CompareIDs)
	slices.SortFunc(want, commit.CompareIDs)
	if !slices.Equal(got, want) {
		t.Fatalf("ids %v, want %v", shorts(got), shorts(want))
	}
}

func shorts(ids []commit.ID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.Short()
	}
	return out
}

// TestExcludeQuarantinesLatestWrite quarantines an item's latest write: the
// item shows its previous value, the commit leaves sync, is listed with its
// reason, and the next write builds on the previous value.
func TestExcludeQuarantinesLatestWrite(t *testing.T) {
	clock := newExClock()
	r, _ := exPeer(t, clock, "a")
	c1 := exSet(t, r, "x", "v", "1")
	c2 := exSet(t, r, "x", "v", "2")
	y := exSet(t, r, "y", "v", "only")
	before, changed := r.Seq(), r.Changed()
	const why = "not allowed: owner changed"
	if err := r.Exclude(exIDs(c2), repo.ExcludeQuarantined, why); err != nil {
		t.Fatal(err)
	}
	exRequire(t, r, "x", exItem("v", "1"))
	exOut(t, r, c2)
	exIn(t, r, c1, y)
	if h, _ := r.Head("x"); h != c1.ID() {
		t.Errorf("head %s, want %s", h.Short(), c1.ID().Short())
	}
	if l := r.Leaves("x"); !slices.Equal(l, exIDs(c1)) {
		t.Errorf("leaves %v, want %s", shorts(l), c1.ID().Short())
	}
	exSameIDs(t, exListed(t, r, "x", c2.ID(), repo.ExcludeQuarantined, why), exIDs(c2))
	if st := r.Stats(); st.Excluded != 1 || st.Live != 2 {
		t.Errorf("stats %+v, want 1 excluded, 2 live", st)
	}
	if h := r.History("x"); len(h) != 2 || h[0].Commit.ID() != c2.ID() || h[0].Excluded != repo.ExcludeQuarantined || h[1].Excluded != 0 {
		t.Errorf("history %+v, want c2 quarantined then c1", h)
	}
	// Readers that resume from a sequence number see the change.
	if r.Seq() <= before || r.ExcludedSeq() != r.Seq() {
		t.Errorf("seq %d → %d, excluded seq %d", before, r.Seq(), r.ExcludedSeq())
	}
	if keys, _ := r.Since(before); !slices.Equal(keys, []string{"x"}) {
		t.Errorf("Since = %v, want [x]", keys)
	}
	select {
	case <-changed:
	default:
		t.Error("Changed not closed by the exclusion")
	}
	dbtest.RequireClean(t, r)

	c3 := exSet(t, r, "x", "w", "3")
	if !slices.Equal(c3.Parents(), exIDs(c1)) {
		t.Errorf("next write's parents %v, want %s", shorts(c3.Parents()), c1.ID().Short())
	}
	exRequire(t, r, "x", exItem("v", "1", "w", "3"))

	// An item whose only commit is quarantined is gone.
	if err := r.Exclude(exIDs(y), repo.ExcludeQuarantined, why); err != nil {
		t.Fatal(err)
	}
	exRequireGone(t, r, "y")
	if r.Count() != 1 {
		t.Errorf("Count = %d, want 1", r.Count())
	}
}

// TestExcludeDescendants excludes a write with a later write on it, a merge
// over it and a peer's commit built on it that arrives afterwards: all of
// them leave, the concurrent accepted write stays.
func TestExcludeDescendants(t *testing.T) {
	clock := newExClock()
	a, _ := exPeer(t, clock, "a")
	b, _ := exPeer(t, clock, "b")
	c, _ := exPeer(t, clock, "c")
	c1 := exSet(t, a, "x", "base", "1")
	exSend(t, b, c1)
	exSend(t, c, c1)
	q := exSet(t, a, "x", "v", "refused")
	later := exSet(t, a, "x", "w", "later")
	b1 := exSet(t, b, "x", "u", "accepted")
	exSend(t, a, b1)
	m, _ := a.Head("x")
	if mc, _ := a.Commit(m); !mc.IsMerge() {
		t.Fatalf("head %s is not the merge", m.Short())
	}
	mc, _ := a.Commit(m)
	exSend(t, c, q)
	onQ := exSet(t, c, "x", "z", "on refused")

	if err := a.Exclude(exIDs(q), repo.ExcludeQuarantined, "refused"); err != nil {
		t.Fatal(err)
	}
	exRequire(t, a, "x", exItem("base", "1", "u", "accepted"))
	exOut(t, a, q, later, mc)
	exIn(t, a, c1, b1)
	exSameIDs(t, a.Leaves("x"), exIDs(b1))
	exSameIDs(t, exListed(t, a, "x", q.ID(), repo.ExcludeQuarantined, "refused"), exIDs(q, later, mc))
	dbtest.RequireClean(t, a)

	// A commit that descends from q, arriving now, is excluded with it.
	exSend(t, a, onQ)
	exRequire(t, a, "x", exItem("base", "1", "u", "accepted"))
	exOut(t, a, onQ)
	exSameIDs(t, exListed(t, a, "x", q.ID(), repo.ExcludeQuarantined, "refused"), exIDs(q, later, mc, onQ))
	if m := a.Missing(); len(m) > 0 {
		t.Errorf("missing %v", shorts(m))
	}
	after := exSet(t, a, "x", "n", "next")
	exSameIDs(t, after.Parents(), exIDs(b1))
	dbtest.RequireClean(t, a)
}

// TestExcludeRemerges excludes one of three concurrent writes merged
// together: the two that remain are merged again, into the commit a peer
// that never held the excluded one computes, with nothing of it; Restore
// brings it back into the value.
func TestExcludeRemerges(t *testing.T) {
	clock := newExClock()
	a, _ := exPeer(t, clock, "a")
	b, _ := exPeer(t, clock, "b")
	c, _ := exPeer(t, clock, "c")
	d, _ := exPeer(t, clock, "d")
	base := exSet(t, a, "x", "base", "1")
	exSend(t, b, base)
	exSend(t, c, base)
	xa := exSet(t, a, "x", "fa", "a")
	yb := exSet(t, b, "x", "fb", "b")
	zc := exSet(t, c, "x", "fc", "c")
	exSend(t, a, yb, zc)
	h3, _ := a.Head("x")
	m3, _ := a.Commit(h3)
	if len(m3.Parents()) != 3 {
		t.Fatalf("head %s has %d parents, want a merge of the three writes", h3.Short(), len(m3.Parents()))
	}
	all := exItem("base", "1", "fa", "a", "fb", "b", "fc", "c")
	exRequire(t, a, "x", all)

	if err := a.Exclude(exIDs(xa), repo.ExcludeQuarantined, "refused"); err != nil {
		t.Fatal(err)
	}
	exRequire(t, a, "x", exItem("base", "1", "fb", "b", "fc", "c"))
	exOut(t, a, xa, m3)
	h2, _ := a.Head("x")
	m2, _ := a.Commit(h2)
	exSameIDs(t, m2.Parents(), exIDs(yb, zc))
	exSend(t, d, base, yb, zc)
	if hd, _ := d.Head("x"); hd != h2 {
		t.Errorf("peer without the excluded write merges into %s, this one %s", hd.Short(), h2.Short())
	}
	exSameIDs(t, exListed(t, a, "x", xa.ID(), repo.ExcludeQuarantined, "refused"), exIDs(xa, m3))
	dbtest.RequireClean(t, a)

	if err := a.Restore(exIDs(xa)); err != nil {
		t.Fatal(err)
	}
	exRequire(t, a, "x", all)
	exIn(t, a, xa, m3, m2)
	if ex := a.Excluded(); len(ex) > 0 {
		t.Errorf("Excluded after Restore: %v", ex)
	}
	dbtest.RequireClean(t, a)
}

// TestExcludeRefuses checks the errors of Exclude, Restore, Discard and
// Reauthor.
func TestExcludeRefuses(t *testing.T) {
	clock := newExClock()
	a, _ := exPeer(t, clock, "a")
	b, _ := exPeer(t, clock, "b")
	c1 := exSet(t, a, "x", "v", "1")
	exSend(t, b, c1)
	c2 := exSet(t, a, "x", "v", "2")
	exSend(t, a, exSet(t, b, "x", "w", "b"))
	m, _ := a.Head("x")
	f := exSet(t, a, "f", "v", "1")
	var unknown commit.ID
	unknown[0] = 1
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"exclude unknown", a.Exclude([]commit.ID{unknown}, repo.ExcludeQuarantined, ""), repo.ErrNotFound},
		{"exclude merge alone", a.Exclude([]commit.ID{m}, repo.ExcludeQuarantined, ""), repo.ErrExcludeMerge},
		{"restore not excluded", a.Restore(exIDs(c2)), repo.ErrNotExcluded},
		{"discard not excluded", a.Discard(exIDs(c2)), repo.ErrNotExcluded},
		{"reauthor not excluded", func() error { _, err := a.Reauthor(exIDs(c2)); return err }(), repo.ErrNotExcluded},
		{"reauthor forgotten", func() error {
			if err := a.Exclude(exIDs(f), repo.ExcludeForgotten, "hidden"); err != nil {
				return err
			}
			_, err := a.Reauthor(exIDs(f))
			return err
		}(), repo.ErrNotExcluded},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	if err := a.Exclude(exIDs(c1), 9, ""); err == nil {
		t.Error("Exclude with an unknown kind succeeded")
	}
	// A merge named with one of its parents goes with it.
	if err := a.Exclude([]commit.ID{m, c2.ID()}, repo.ExcludeQuarantined, "refused"); err != nil {
		t.Fatal(err)
	}
	exSameIDs(t, exListed(t, a, "x", c2.ID(), repo.ExcludeQuarantined, "refused"), []commit.ID{c2.ID(), m})
	if h, _ := a.Head("x"); h == m {
		t.Error("merge still the head")
	}
	dbtest.RequireClean(t, a)
}

// TestExcludeSurvivesReopen closes and reopens a repository after Exclude
// and Discard, under both durabilities: the same commits are out, the same
// are listed, and Since from before still names the item.
func TestExcludeSurvivesReopen(t *testing.T) {
	for _, d := range []repo.Durability{repo.Sync, repo.Async} {
		t.Run(d.String(), func(t *testing.T) {
			clock := newExClock()
			fs := vfs.NewMem()
			key := exKey("a")
			r := exOpen(t, fs, clock, "a", key, d)
			c1 := exSet(t, r, "x", "v", "1")
			c2 := exSet(t, r, "x", "v", "2")
			y1 := exSet(t, r, "y", "v", "1")
			y2 := exSet(t, r, "y", "v", "2")
			start := r.Seq()
			if err := r.Exclude(exIDs(c2, y2), repo.ExcludeQuarantined, "refused"); err != nil {
				t.Fatal(err)
			}
			if err := r.Discard(exIDs(y2)); err != nil {
				t.Fatal(err)
			}
			check := func(r *repo.Repo) {
				t.Helper()
				exRequire(t, r, "x", exItem("v", "1"))
				exRequire(t, r, "y", exItem("v", "1"))
				exOut(t, r, c2, y2)
				exIn(t, r, c1, y1)
				exSameIDs(t, exListed(t, r, "x", c2.ID(), repo.ExcludeQuarantined, "refused"), exIDs(c2))
				if ex := r.Excluded(); len(ex) != 1 {
					t.Errorf("Excluded lists %d commits, want c2 alone (y2 discarded)", len(ex))
				}
				if keys, _ := r.Since(start); !slices.Equal(keys, []string{"x", "y"}) {
					t.Errorf("Since = %v, want [x y]", keys)
				}
				if r.ExcludedSeq() == 0 {
					t.Error("ExcludedSeq is 0")
				}
				dbtest.RequireClean(t, r)
			}
			check(r)
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			check(exOpen(t, fs, clock, "a", key, d))
		})
	}
}

// TestExcludeCrash crashes a repository at every filesystem operation of
// an Exclude, a Restore and an Exclude that empties an item, with every
// tearing pattern: what recovery shows is the state after some of the
// calls, every acknowledged one included, never an exclusion nobody made.
func TestExcludeCrash(t *testing.T) {
	const path = "/data/crash.log"
	key := crashKey(t)
	for _, d := range []repo.Durability{repo.Sync, repo.Async} {
		t.Run(d.String(), func(t *testing.T) {
			opts := func(fs vfs.FS) *repo.Options {
				return &repo.Options{FS: fs, Key: key, Durability: d, FlushInterval: time.Hour}
			}
			base := vfs.NewMem()
			r, err := repo.Open(path, opts(base))
			if err != nil {
				t.Fatal(err)
			}
			c1 := exSet(t, r, "x", "v", "1")
			c2 := exSet(t, r, "x", "v", "2")
			exSet(t, r, "z", "v", "z")
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			calls := []func(*repo.Repo) error{
				func(r *repo.Repo) error { return r.Exclude(exIDs(c2), repo.ExcludeQuarantined, "refused") },
				func(r *repo.Repo) error { return r.Restore(exIDs(c2)) },
				func(r *repo.Repo) error { return r.Exclude(exIDs(c1), repo.ExcludeForgotten, "hidden") },
			}
			// states[i]: x after the first i calls (nil: no item).
			states := []*item.Item{ptr(exItem("v", "2")), ptr(exItem("v", "1")), ptr(exItem("v", "2")), nil}
			// run opens the repository, lets k more filesystem operations
			// succeed (all, if k < 0) and makes the calls until one fails.
			run := func(fs *vfs.MemFS, k int) (r *repo.Repo, acked, tried, ops int) {
				r, err := repo.Open(path, opts(fs))
				if err != nil {
					t.Fatal(err)
				}
				fs.FailAfter(k)
				start := fs.Ops()
				defer func() { ops = fs.Ops() - start }()
				for i, call := range calls {
					tried = i + 1
					if err := call(r); err != nil {
						if !errors.Is(err, vfs.ErrInjected) {
							t.Errorf("call %d fails with %v, not the injected fault", i, err)
						}
						break
					}
					acked = i + 1
				}
				return r, acked, tried, 0
			}
			r, acked, _, total := run(base.Crash(nil), -1)
			r.Close()
			if acked != len(calls) {
				t.Fatalf("fault-free run acknowledged %d calls", acked)
			}
			for k := 0; k <= total; k++ {
				for _, tear := range crashTears {
					t.Run(fmt.Sprintf("k=%d/%s", k, tear.name), func(t *testing.T) {
						fs := base.Crash(nil)
						r, acked, tried, _ := run(fs, k)
						crashed := tear.crash(fs, uint64(k))
						r.Close()
						r2 := dbtest.OpenRepo(t, path, &repo.Options{FS: crashed, Key: key})
						dbtest.RequireClean(t, r2)
						got, _, ok := r2.Get("x")
						match := -1
						for i := acked; i <= tried; i++ {
							if s := states[i]; s == nil && !ok || s != nil && ok && item.ItemsEqual(got, *s) {
								match = i
							}
						}
						if match < 0 {
							t.Fatalf("recovered x = %v (present %v) after %d acknowledged of %d calls", got, ok, acked, tried)
						}
						exRequire(t, r2, "z", exItem("v", "z"))
						// The recovered repository takes exclusions, and they
						// survive another crash.
						if err := r2.Exclude(exIDs(c1), repo.ExcludeQuarantined, "again"); err != nil {
							t.Fatal(err)
						}
						r3 := dbtest.OpenRepo(t, path, &repo.Options{FS: crashed.Crash(nil), Key: key})
						exRequireGone(t, r3, "x")
					})
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestExcludeRecordDamage damages the record of an acknowledged exclusion
// (later records claim it) and tears one that was never acknowledged: the
// log opens either way; the damage is quarantined and reported, the torn
// record is cut, and neither excludes anything.
func TestExcludeRecordDamage(t *testing.T) {
	key := crashKey(t)
	write := func(t *testing.T, path string, after bool) (c2 *commit.Commit, rec [2]int64) {
		r, err := repo.Open(path, &repo.Options{Key: key})
		if err != nil {
			t.Fatal(err)
		}
		exSet(t, r, "x", "v", "1")
		c2 = exSet(t, r, "x", "v", "2")
		rec[0] = int64(r.Seq())
		if err := r.Exclude(exIDs(c2), repo.ExcludeQuarantined, "refused"); err != nil {
			t.Fatal(err)
		}
		rec[1] = int64(r.Seq())
		if after {
			exSet(t, r, "y", "v", "after")
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		return c2, rec
	}
	t.Run("corrupt", func(t *testing.T) {
		for _, ro := range []bool{false, true} {
			t.Run(fmt.Sprintf("readonly=%v", ro), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "a.log")
				c2, rec := write(t, path, true)
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				data[rec[1]-1] ^= 0x40 // the last byte of an id: the data checksum fails
				if err := os.WriteFile(path, data, 0o644); err != nil {
					t.Fatal(err)
				}
				r := dbtest.OpenRepoUnchecked(t, path, &repo.Options{Key: key, ReadOnly: ro}) // damaged on purpose
				exRequire(t, r, "x", exItem("v", "2"))
				exRequire(t, r, "y", exItem("v", "after"))
				exIn(t, r, c2)
				h := r.Health()
				if ro && h.Damaged != 1 || !ro && h.Quarantined != 1 {
					t.Errorf("health %+v, want the damaged record reported", h)
				}
				faultRequireOnlyDamage(t, r, rec[0])
				if ex := r.Excluded(); len(ex) > 0 {
					t.Errorf("Excluded lists %v from a damaged record", ex)
				}
			})
		}
	})
	t.Run("torn", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "a.log")
		c2, rec := write(t, path, false)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for cut := rec[0] + 1; cut < rec[1]; cut += 7 {
			if err := os.WriteFile(path, data[:cut], 0o644); err != nil {
				t.Fatal(err)
			}
			r := dbtest.OpenRepo(t, path, &repo.Options{Key: key})
			exRequire(t, r, "x", exItem("v", "2"))
			exIn(t, r, c2)
			if h := r.Health(); !h.OK() {
				t.Errorf("cut at %d: health %+v, want a torn tail cut quietly", cut, h)
			}
			dbtest.RequireClean(t, r)
			r.Close()
		}
	})
}

// TestExcludeRestore restores a descendant of an excluded write: the write
// comes back with it, and so does every commit excluded with it, so the
// item is as before, head included.
func TestExcludeRestore(t *testing.T) {
	clock := newExClock()
	a, _ := exPeer(t, clock, "a")
	b, _ := exPeer(t, clock, "b")
	c1 := exSet(t, a, "x", "base", "1")
	exSend(t, b, c1)
	q := exSet(t, a, "x", "v", "refused")
	later := exSet(t, a, "x", "w", "later")
	exSend(t, a, exSet(t, b, "x", "u", "accepted"))
	head, _ := a.Head("x")
	want, _, _ := a.Get("x")
	if err := a.Exclude(exIDs(q), repo.ExcludeQuarantined, "refused"); err != nil {
		t.Fatal(err)
	}
	if err := a.Restore(exIDs(later)); err != nil {
		t.Fatal(err)
	}
	exRequire(t, a, "x", want)
	if h, _ := a.Head("x"); h != head {
		t.Errorf("head %s after Restore, want %s", h.Short(), head.Short())
	}
	exIn(t, a, q, later)
	if ex := a.Excluded(); len(ex) > 0 {
		t.Errorf("Excluded after Restore: %v", ex)
	}
	if err := a.Restore(exIDs(q)); !errors.Is(err, repo.ErrNotExcluded) {
		t.Errorf("second Restore: %v, want ErrNotExcluded", err)
	}
	dbtest.RequireClean(t, a)
}

// TestExcludeDiscard discards a quarantined write: no longer listed, still
// excluded, after reopen too, and Restore still brings it back.
func TestExcludeDiscard(t *testing.T) {
	clock := newExClock()
	fs := vfs.NewMem()
	key := exKey("a")
	r := exOpen(t, fs, clock, "a", key, repo.Sync)
	exSet(t, r, "x", "v", "1")
	q := exSet(t, r, "x", "v", "2")
	later := exSet(t, r, "x", "w", "3")
	if err := r.Exclude(exIDs(q), repo.ExcludeQuarantined, "refused"); err != nil {
		t.Fatal(err)
	}
	if err := r.Discard(exIDs(later)); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if ex := r.Excluded(); len(ex) > 0 {
			t.Errorf("Excluded after Discard: %v", ex)
		}
		exRequire(t, r, "x", exItem("v", "1"))
		exOut(t, r, q, later)
		r.Close()
		r = exOpen(t, fs, clock, "a", key, repo.Sync)
	}
	if err := r.Restore(exIDs(q)); err != nil {
		t.Fatal(err)
	}
	exRequire(t, r, "x", exItem("v", "2", "w", "3"))
	dbtest.RequireClean(t, r)
}

// TestReauthor quarantines writes a server refused (a session that
// expired) while the server accepted other changes to the same items;
// after a re-login with a new key, Reauthor writes the same changes on the
// current heads: fields set, changed and removed, a deletion, and a later
// write on a quarantined one, with the concurrent changes kept. The server
// accepts the new commits and ends up with the same commits and values.
func TestReauthor(t *testing.T) {
	clock := newExClock()
	fs := vfs.NewMem()
	a := exOpen(t, fs, clock, "a", exKey("old session"), repo.Sync)
	s, _ := exPeer(t, clock, "server")
	bx := exSet(t, a, "x", "a", "1", "b", "1", "d", "1")
	by := exSet(t, a, "y", "n", "1")
	exSend(t, s, bx, by)
	q := exSet(t, a, "x", "a", "2", "c", "3", "d", nil)
	q2 := exSet(t, a, "x", "e", "4")
	qy := exDelete(t, a, "y")
	sx := exSet(t, s, "x", "b", "5")
	sy := exSet(t, s, "y", "m", "7")
	exSend(t, a, sx, sy)
	if err := a.Exclude(exIDs(q, qy), repo.ExcludeQuarantined, "session expired"); err != nil {
		t.Fatal(err)
	}
	exRequire(t, a, "x", exItem("a", "1", "b", "5", "d", "1"))
	exRequire(t, a, "y", exItem("n", "1", "m", "7"))
	a.Close()

	newKey := exKey("new session")
	a = exOpen(t, fs, clock, "a", newKey, repo.Sync)
	cs, err := a.Reauthor(exIDs(q))
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].Key() != "x" || cs[0].Session() != exSession(newKey) || cs[0].VerifySignature(true) != nil {
		t.Fatalf("Reauthor wrote %v, want one commit of x signed by the new session", cs)
	}
	exSameIDs(t, cs[0].Parents(), exIDs(sx))
	exRequire(t, a, "x", exItem("a", "2", "b", "5", "c", "3", "e", "4"))
	if cs, err = a.Reauthor(exIDs(qy)); err != nil || len(cs) != 1 || cs[0].Session() != exSession(newKey) {
		t.Fatalf("Reauthor of the deletion: %v %v", cs, err)
	}
	if v, _, ok := a.Get("y"); !ok || !v.Deleted() || !item.ItemsEqual(v.WithDeleted(false), exItem("n", "1", "m", "7")) {
		t.Errorf("y = %v, want deleted with the server's change kept", v)
	}
	if ex := a.Excluded(); len(ex) > 0 {
		t.Errorf("Excluded after Reauthor: %v", ex)
	}
	exOut(t, a, q, q2, qy)
	dbtest.RequireClean(t, a)

	// The server takes the new commits and converges.
	since, _ := a.CommitsSince(0)
	exSend(t, s, since...)
	exSameIDs(t, s.IDs(), a.IDs())
	for _, k := range []string{"x", "y"} {
		want, _, _ := a.Get(k)
		exRequire(t, s, k, want)
	}
}

// TestExcludeReceivedAgain receives excluded commits again, and commits
// built on them: they stay excluded until Restore, forgotten or
// quarantined.
func TestExcludeReceivedAgain(t *testing.T) {
	clock := newExClock()
	a, _ := exPeer(t, clock, "a")
	b, _ := exPeer(t, clock, "b")
	c1 := exSet(t, a, "x", "v", "1")
	c2 := exSet(t, a, "x", "v", "2")
	exSend(t, b, c1, c2)
	if err := a.Exclude(exIDs(c2), repo.ExcludeQuarantined, "refused"); err != nil {
		t.Fatal(err)
	}
	exSend(t, a, c2)
	c3 := exSet(t, b, "x", "w", "3")
	exSend(t, a, c3)
	exRequire(t, a, "x", exItem("v", "1"))
	exOut(t, a, c2, c3)

	if err := a.Exclude(exIDs(c1), repo.ExcludeForgotten, "no longer readable"); err != nil {
		t.Fatal(err)
	}
	exSend(t, a, c1, c2, c3)
	exRequireGone(t, a, "x")
	exOut(t, a, c1, c2, c3)
	for _, e := range a.Excluded() {
		if e.Kind != repo.ExcludeForgotten || e.Root != c1.ID() {
			t.Errorf("Excluded lists %+v, want every commit forgotten with c1", e)
		}
	}
	// Restoring c1 lifts its exclusion only: c2's own quarantine stays.
	if err := a.Restore(exIDs(c1)); err != nil {
		t.Fatal(err)
	}
	exRequire(t, a, "x", exItem("v", "1"))
	exOut(t, a, c2, c3)
	dbtest.RequireClean(t, a)
}

// TestExcludeForgetsItem forgets an item with a merge in its history: it
// leaves every read and sync, its content is no longer served, other items
// stay; it lasts across reopen, and Restore brings it back.
func TestExcludeForgetsItem(t *testing.T) {
	clock := newExClock()
	fs := vfs.NewMem()
	key := exKey("a")
	a := exOpen(t, fs, clock, "a", key, repo.Sync)
	b, _ := exPeer(t, clock, "b")
	c1 := exSet(t, a, "x", "secret", "1")
	exSend(t, b, c1)
	exSet(t, a, "x", "secret", "2")
	exSend(t, a, exSet(t, b, "x", "other", "b"))
	keep := exSet(t, a, "k", "v", "kept")
	want, _, _ := a.Get("x")
	var ids []commit.ID
	var cs []*commit.Commit
	for _, h := range a.History("x") {
		ids = append(ids, h.Commit.ID())
		cs = append(cs, h.Commit)
	}
	if len(ids) != 4 {
		t.Fatalf("x has %d commits, want 4 with a merge", len(ids))
	}
	count := a.Count()
	if err := a.Exclude(ids, repo.ExcludeForgotten, "read access removed"); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		exRequireGone(t, a, "x")
		if _, ok := a.Lookup("x"); ok {
			t.Error("Lookup finds the forgotten item")
		}
		if a.Count() != count-1 {
			t.Errorf("Count = %d, want %d", a.Count(), count-1)
		}
		exOut(t, a, cs...)
		exIn(t, a, keep)
		if h := a.History("x"); len(h) > 0 {
			t.Errorf("History shows %d forgotten commits", len(h))
		}
		if _, _, err := a.ValueAt(c1.ID()); !errors.Is(err, repo.ErrNotFound) {
			t.Errorf("ValueAt of a forgotten commit: %v, want ErrNotFound", err)
		}
		exSameIDs(t, exListed(t, a, "x", c1.ID(), repo.ExcludeForgotten, "read access removed"), ids)
		exRequire(t, a, "k", exItem("v", "kept"))
		dbtest.RequireClean(t, a)
		if i == 0 {
			a.Close()
			a = exOpen(t, fs, clock, "a", key, repo.Sync)
		}
	}
	if err := a.Restore(ids); err != nil {
		t.Fatal(err)
	}
	exRequire(t, a, "x", want)
	dbtest.RequireClean(t, a)
}

// TestExcludeReadOnly opens a log with exclusions read-only, beside its
// writer and after it closed: the exclusions apply, nothing is written,
// and the read-only repository refuses to change them.
func TestExcludeReadOnly(t *testing.T) {
	clock := newExClock()
	fs := vfs.NewMem()
	key := exKey("a")
	w := exOpen(t, fs, clock, "a", key, repo.Sync)
	exSet(t, w, "x", "v", "1")
	q := exSet(t, w, "x", "v", "2")
	y := exSet(t, w, "y", "v", "1")
	if err := w.Exclude(exIDs(q), repo.ExcludeQuarantined, "refused"); err != nil {
		t.Fatal(err)
	}
	if err := w.Exclude(exIDs(y), repo.ExcludeForgotten, "hidden"); err != nil {
		t.Fatal(err)
	}
	for _, closed := range []bool{false, true} {
		if closed {
			w.Close()
		}
		before, err := fs.ReadFile("/data/a.log")
		if err != nil {
			t.Fatal(err)
		}
		ops := fs.Ops()
		r := dbtest.OpenRepo(t, "/data/a.log", &repo.Options{FS: fs, ReadOnly: true})
		exRequire(t, r, "x", exItem("v", "1"))
		exRequireGone(t, r, "y")
		exOut(t, r, q, y)
		if len(r.Excluded()) != 2 {
			t.Errorf("Excluded = %v, want q and y", r.Excluded())
		}
		if err := r.Restore(exIDs(q)); err == nil {
			t.Error("read-only Restore succeeded")
		}
		if err := r.Exclude(exIDs(q), repo.ExcludeQuarantined, ""); err == nil {
			t.Error("read-only Exclude succeeded")
		}
		r.Close()
		after, _ := fs.ReadFile("/data/a.log")
		if !slices.Equal(before, after) || fs.Ops() != ops {
			t.Errorf("read-only open changed the filesystem (%d operations)", fs.Ops()-ops)
		}
	}
}

// TestExcludeConcurrentWrites excludes and restores commits of an item
// while writers write it and another item: nothing deadlocks, every write
// not built on an excluded commit is visible, and Check agrees.
func TestExcludeConcurrentWrites(t *testing.T) {
	for _, d := range []repo.Durability{repo.Sync, repo.Async} {
		t.Run(d.String(), func(t *testing.T) {
			clock := newExClock()
			r := exOpen(t, vfs.NewMem(), clock, "a", exKey("a"), d)
			old := exSet(t, r, "x", "v", "old")
			exSet(t, r, "x", "v", "base")
			var wg sync.WaitGroup
			for g := range 3 {
				wg.Go(func() {
					for i := range 30 {
						k := []string{"x", "y"}[i%2]
						if _, err := r.Write(repo.Update{Key: k, Fn: func(c repo.Current) (item.Item, commit.Schema, error) {
							return c.Value.With(fmt.Sprintf("g%d", g), item.Int(int64(i))), c.Schema, nil
						}}); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Go(func() {
				for range 10 {
					if err := r.Exclude(exIDs(old), repo.ExcludeQuarantined, "toggle"); err != nil {
						t.Error(err)
						return
					}
					if err := r.Restore(exIDs(old)); err != nil {
						t.Error(err)
						return
					}
				}
			})
			wg.Wait()
			dbtest.RequireClean(t, r)
			v, _, _ := r.Get("y")
			for g := range 3 {
				if x, ok := v.Get(fmt.Sprintf("g%d", g)); !ok || x.Int64() != 29 {
					t.Errorf("y lost writer %d's last write: %v", g, v)
				}
			}
			if ex := r.Excluded(); len(ex) > 0 {
				t.Errorf("Excluded after the last Restore: %v", ex)
			}
		})
	}
}

// FuzzExcludeRestore builds a random history (one writer's, or a
// concurrent one on several replicas: the convergence workload), excludes
// random commits of the first replica in a few calls, then restores them
// in random groups.
//
// After the exclusions every commit that descends from an excluded one is
// out and every other is in, and every item holds exactly what a peer
// given only the commits that remain computes (same head), which a
// read-only open of the log agrees with.
//
// After the restores every commit is back. An item that excluding left
// with a single leaf gets no new commit, and holds its original value and
// head again. One that excluding left with several leaves got their merge,
// which stays in its history (a server that never held the excluded
// commits holds that merge too); its value is then the merge of the whole
// history, the value any peer holding these commits computes, which can
// differ from the original one: three-way merges depend on the shape of
// the history (a field written back to its value at the merge base counts
// as unchanged; schema upgrades apply per leaf).
func FuzzExcludeRestore(f *testing.F) {
	for _, seed := range dbtest.Seeds(12, 200) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		dbtest.LogSeed(t, seed)
		s := newConvSim(t, seed)
		subject := s.reps[0]
		r := subject.r
		linear := seed%3 == 0 // one writer: every item's history is a chain
		if linear {
			for range 30 + s.rng.IntN(40) {
				s.clock++
				subject.now = s.clock
				if _, err := r.Write(s.randomUpdate(s.keys[s.rng.IntN(len(s.keys))])); err != nil {
					t.Fatal(err)
				}
			}
		} else {
			s.run(30 + s.rng.IntN(40))
			s.settle()
		}
		rng := rand.New(rand.NewPCG(seed, 0xe8c1))
		original := exState(r, s.keys)
		history := allCommits(r) // parents first within each item
		before := map[string][]commit.ID{}
		for _, c := range history {
			before[c.Key()] = append(before[c.Key()], c.ID())
		}
		// Pick commits to exclude, and the closure they exclude.
		named, out := map[commit.ID]bool{}, map[commit.ID]bool{}
		var pick []commit.ID
		for _, c := range history {
			parentOut := slices.ContainsFunc(c.Parents(), func(p commit.ID) bool { return out[p] })
			if (!c.IsMerge() || parentOut) && rng.IntN(6) == 0 {
				named[c.ID()] = true
				pick = append(pick, c.ID())
			}
			out[c.ID()] = named[c.ID()] || parentOut
		}
		rng.Shuffle(len(pick), func(i, j int) { pick[i], pick[j] = pick[j], pick[i] })
		for rest := pick; len(rest) > 0; {
			n := 1 + rng.IntN(len(rest))
			kind := []repo.ExcludeKind{repo.ExcludeQuarantined, repo.ExcludeForgotten}[rng.IntN(2)]
			err := r.Exclude(rest[:n], kind, "fuzz")
			switch {
			case errors.Is(err, repo.ErrExcludeMerge):
				// A merge was picked for a later call than the commit it
				// descends from: a merge goes with a parent, so name all
				// that is left at once.
				if err := r.Exclude(rest, kind, "fuzz"); err != nil {
					t.Fatal(err)
				}
				n = len(rest)
			case err != nil:
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		dbtest.RequireClean(t, r)

		ids := r.IDs()
		var remain [][]byte
		for _, c := range history {
			if got := slices.Contains(ids, c.ID()); got == out[c.ID()] {
				t.Errorf("commit %s: in IDs %v, excluded %v", c.ID().Short(), got, out[c.ID()])
			}
			if !out[c.ID()] {
				remain = append(remain, c.Encode())
			}
		}
		ro := dbtest.OpenRepo(t, subject.path, &repo.Options{FS: subject.fs, ReadOnly: true,
			Trusted: subject.opts.Trusted, Schemas: subject.opts.Schemas})
		want := exState(exPeerOf(t, s, "without", remain), s.keys)
		exSameState(t, "the commits that remain", want, exState(r, s.keys), exState(ro, s.keys))

		// Restore in random groups of what is still listed.
		for {
			var listed []commit.ID
			for _, e := range r.Excluded() {
				listed = append(listed, e.ID)
			}
			if len(listed) == 0 {
				break
			}
			rng.Shuffle(len(listed), func(i, j int) { listed[i], listed[j] = listed[j], listed[i] })
			if err := r.Restore(listed[:1+rng.IntN(len(listed))]); err != nil {
				t.Fatal(err)
			}
		}
		dbtest.RequireClean(t, r)
		for _, c := range history {
			if _, ok := r.Commit(c.ID()); !ok {
				t.Errorf("commit %s still out after every Restore", c.ID().Short())
			}
		}
		now := exState(r, s.keys)
		all, _ := r.CommitsSince(0)
		var encs [][]byte
		after := map[string][]commit.ID{}
		for _, c := range all {
			encs = append(encs, c.Encode())
			after[c.Key()] = append(after[c.Key()], c.ID())
		}
		exSameState(t, "a peer holding the same commits", exState(exPeerOf(t, s, "all", encs), s.keys), now)
		touched := map[string]bool{}
		for _, c := range history {
			touched[c.Key()] = touched[c.Key()] || out[c.ID()]
		}
		same, merged := 0, 0
		for _, k := range s.keys {
			if len(after[k]) != len(before[k]) {
				if linear {
					t.Errorf("%s: a merge was written, yet its history is a chain", k)
				}
				merged++
				continue
			}
			if touched[k] {
				same++
			}
			if g, w := now[k], original[k]; g.ok != w.ok || !item.ItemsEqual(g.v, w.v) || g.head != w.head {
				t.Errorf("%s = %v at %s after the restores, was %v at %s", k, g.v, g.head.Short(), w.v, w.head.Short())
			}
		}
		t.Logf("%d commits, %d named, %d excluded; of %d items, %d back to their original commits and value, %d merged while excluded",
			len(history), len(pick), countTrue(out), len(s.keys), same, merged)
	})
}

// exEntry is an item as a test reads it.
type exEntry struct {
	v    item.Item
	head commit.ID
	ok   bool
}

func exState(r *repo.Repo, keys []string) map[string]exEntry {
	out := map[string]exEntry{}
	for _, k := range keys {
		v, _, ok := r.Get(k)
		h, _ := r.Head(k)
		out[k] = exEntry{v, h, ok}
	}
	return out
}

// exPeerOf returns a new replica of the simulation that received encs.
func exPeerOf(t *testing.T, s *convSim, name string, encs [][]byte) *repo.Repo {
	t.Helper()
	rep := s.open(name, nil)
	s.receive(rep, encs)
	return rep.r
}

// exSameState fails unless every state holds want.
func exSameState(t *testing.T, what string, want map[string]exEntry, states ...map[string]exEntry) {
	t.Helper()
	for i, st := range states {
		for k, w := range want {
			if g := st[k]; g.ok != w.ok || !item.ItemsEqual(g.v, w.v) || g.head != w.head {
				t.Errorf("state %d: %s = %v at %s (present %v); %s give %v at %s (present %v)",
					i, k, g.v, g.head.Short(), g.ok, what, w.v, w.head.Short(), w.ok)
			}
		}
	}
}

func countTrue(m map[commit.ID]bool) int {
	n := 0
	for _, v := range m {
		if v {
			n++
		}
	}
	return n
}
