package repo

// Tests of the head index (headindex.go): an open from the index, whole
// (the log ends where the index does) or with a tail replayed after it,
// must build the repository a replay of the whole log builds; an index
// that is damaged, stale, from another log or torn by a crash must be
// ignored (a replay, a warning with the reason, the file removed by a
// writable open); damage a lazy read meets in the indexed bytes must be
// reported and recovered from by the next open.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/vfs"
)

// ixPath is where the tests' logs live in their in-memory filesystems.
const ixPath = "/d/r.log"

// ixSetup makes every Close write an index, and no index damaged on
// purpose, for the test (whatever GOATDB_TEST_INDEX says).
func ixSetup(t testing.TB) {
	t.Helper()
	minCommits, written := indexMinCommits, indexWritten
	indexMinCommits, indexWritten = 0, nil
	t.Cleanup(func() { indexMinCommits, indexWritten = minCommits, written })
}

// ixKey returns a fixed session key per name.
func ixKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("goatdb head index test " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

// ixClock moves 1 ms per reading; a fixed one does not move.
type ixClock struct {
	mu    sync.Mutex
	ms    int64
	fixed bool
}

func newIxClock() *ixClock { return &ixClock{ms: 1_700_000_000_000} }

func (c *ixClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.fixed {
		c.ms++
	}
	return time.UnixMilli(c.ms)
}

func (c *ixClock) skip(ms int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ms += ms
}

func (c *ixClock) read() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ms
}

// ixLogs captures log records.
type ixLogs struct {
	mu   sync.Mutex
	recs []string
}

func (l *ixLogs) Enabled(context.Context, slog.Level) bool { return true }

func (l *ixLogs) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", rec.Level, rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	l.recs = append(l.recs, b.String())
	l.mu.Unlock()
	return nil
}

func (l *ixLogs) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *ixLogs) WithGroup(string) slog.Handler      { return l }

func (l *ixLogs) logger() *slog.Logger { return slog.New(l) }

// find returns the first record that starts with prefix, or "".
func (l *ixLogs) find(prefix string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.recs {
		if strings.HasPrefix(s, prefix) {
			return s
		}
	}
	return ""
}

func (l *ixLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.recs, "\n")
}

const ixUnused = "WARN head index not used: replaying the whole log"

// ixIndexed returns the log length the index read at open covered.
func ixIndexed(r *Repo) uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.indexed
}

// ixCopy returns a new filesystem holding src's log and, if index, its
// index (if there is one), both durable.
func ixCopy(t testing.TB, src vfs.FS, index bool) *vfs.MemFS {
	t.Helper()
	dst := vfs.NewMem()
	if err := vfs.MkdirAllSync(dst, filepath.Dir(ixPath), 0o755); err != nil {
		t.Fatal(err)
	}
	names := []string{ixPath}
	if index {
		names = append(names, ixPath+IndexSuffix)
	}
	for _, name := range names {
		b, err := src.ReadFile(name)
		if os.IsNotExist(err) && name != ixPath {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := vfs.WriteFileAtomic(dst, name, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// ixWithIndex returns a copy of src's log with index as its index.
func ixWithIndex(t testing.TB, src vfs.FS, index []byte) *vfs.MemFS {
	t.Helper()
	dst := ixCopy(t, src, false)
	if err := vfs.WriteFileAtomic(dst, ixPath+IndexSuffix, index, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

func ixExists(fsys vfs.FS, name string) bool {
	_, err := fsys.Stat(name)
	return err == nil
}

// ixOpen opens the log on fsys.
func ixOpen(t testing.TB, fsys vfs.FS, opts Options) *Repo {
	t.Helper()
	opts.FS = fsys
	if opts.Key == nil && !opts.ReadOnly {
		opts.Key = ixKey("r")
	}
	if opts.Now == nil {
		c := newIxClock()
		c.ms += 1 << 40 // after every commit written
		c.fixed = true
		opts.Now = c.now
	}
	r, err := Open(ixPath, &opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// ixState describes everything a repository shows, one line per fact.
// withEpoch leaves out the epoch (and the quarantine), which differ between
// two recoveries of the same damaged log (each rebuild draws an epoch).
func ixState(t testing.TB, r *Repo, withEpoch bool) []string {
	t.Helper()
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	add("seq %d count %d horizon %d", r.Seq(), r.Count(), r.Horizon())
	if withEpoch {
		add("epoch %d previous %d", r.Epoch(), r.PreviousEpoch())
		h := r.Health()
		add("health %v %d %d", h.Failure, h.Quarantined, h.Damaged)
	}
	add("stats %+v", r.Stats())
	for _, with := range []bool{true, false} {
		ks := r.Keys(with)
		slices.Sort(ks)
		add("keys %v: %q", with, ks)
	}
	since, seq := r.Since(0)
	add("since %q %d", since, seq)
	add("missing %v", r.Missing())
	// All yields items in order of their first commit in the log.
	var all []string
	for e := range r.All() {
		v, err := item.AppendItem(nil, e.Value)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, fmt.Sprintf("all %q %x %v %s", e.Key, v, e.Schema, e.Head.Short()))
	}
	out = append(out, all...)
	keys := map[string]bool{}
	for _, k := range r.Keys(true) {
		keys[k] = true
	}
	cs, seq := r.CommitsSince(0)
	add("commits %d %d", len(cs), seq)
	for _, c := range cs {
		keys[c.Key()] = true
		add("commit %s %x", c.ID().Short(), sha256.Sum256(c.Encode()))
	}
	for _, id := range r.IDs() {
		add("id %s", id.Short())
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	slices.Sort(sorted)
	for _, k := range sorted {
		v, s, ok := r.Get(k)
		enc, err := item.AppendItem(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		add("get %q %v %x %v", k, ok, enc, s)
		e, ok := r.Lookup(k)
		add("lookup %q %v %s %v", k, ok, e.Head.Short(), e.Schema)
		h, ok := r.Head(k)
		add("head %q %v %s", k, ok, h.Short())
		add("leaves %q %v", k, r.Leaves(k))
		for _, in := range r.History(k) {
			add("history %q %s seq %d pending %v bad %q excluded %v shallow %v %x", k, in.Commit.ID().Short(), in.Seq,
				in.Pending, in.Bad, in.Excluded, in.Shallow, sha256.Sum256(in.Commit.Encode()))
		}
	}
	return out
}

// ixSame fails unless a and b show the same.
func ixSame(t testing.TB, what string, a, b *Repo, withEpoch bool) {
	t.Helper()
	sa, sb := ixState(t, a, withEpoch), ixState(t, b, withEpoch)
	for i := range max(len(sa), len(sb)) {
		var x, y string
		if i < len(sa) {
			x = sa[i]
		}
		if i < len(sb) {
			y = sb[i]
		}
		if x != y {
			t.Fatalf("%s: line %d differs:\n  %s\nwant\n  %s", what, i, x, y)
		}
	}
}

// ixClean fails unless Check finds nothing.
func ixClean(t testing.TB, r *Repo) {
	t.Helper()
	for _, p := range r.Check() {
		t.Errorf("check: %+v", p)
	}
	if t.Failed() {
		t.FailNow()
	}
}

// ixWorld is a random workload on a repository (on fs at ixPath) and a
// peer it exchanges commits with.
type ixWorld struct {
	t       testing.TB
	rng     *rand.Rand
	clock   *ixClock
	fs      *vfs.MemFS
	r       *Repo
	d       Durability
	peer    *Repo
	sent    map[commit.ID]bool  // sent to the peer, or received from it
	acked   map[commit.ID]int64 // commits Write returned on r, and their times
	hot     int                 // writes of the item "hot"
	opened  int                 // opens that used the index
	pending int                 // exchanges that left commits pending for a while
}

func newIxWorld(t testing.TB, seed uint64, d Durability) *ixWorld {
	t.Helper()
	w := &ixWorld{t: t, rng: rand.New(rand.NewPCG(seed, 0x1d3)), clock: newIxClock(), fs: vfs.NewMem(), d: d,
		sent: map[commit.ID]bool{}, acked: map[commit.ID]int64{}}
	var err error
	if w.r, err = Open(ixPath, w.opts(d)); err != nil {
		t.Fatal(err)
	}
	if w.peer, err = Open(ixPath, &Options{FS: vfs.NewMem(), Key: ixKey("peer"), Now: w.clock.now}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		w.r.Close()
		w.peer.Close()
	})
	return w
}

func (w *ixWorld) opts(d Durability) *Options {
	return &Options{FS: w.fs, Key: ixKey("r"), Now: w.clock.now, Durability: d, FlushInterval: time.Millisecond}
}

var ixBody = strings.Repeat("a body long enough that a delta is smaller than a snapshot; ", 4)

// write writes one commit per key to r in one Write; some delete or
// undelete their item.
func (w *ixWorld) write(r *Repo, keys ...string) []*commit.Commit {
	w.t.Helper()
	ups := make([]Update, 0, len(keys))
	for _, k := range keys {
		field, val := fmt.Sprint("f", w.rng.IntN(5)), fmt.Sprint(k, "=", w.rng.IntN(1e6))
		toggle := w.rng.IntN(10) == 0
		s := commit.Schema{NS: []string{"note", "task"}[w.rng.IntN(2)], Version: uint32(1 + w.rng.IntN(2))}
		ups = append(ups, Update{Key: k, Fn: func(c Current) (item.Item, commit.Schema, error) {
			if c.Exists {
				s = c.Schema
			}
			v := c.Value
			if toggle {
				return v.WithDeleted(!v.Deleted()), s, nil
			}
			return v.With("body", item.String(ixBody)).With(field, item.String(val)), s, nil
		}})
	}
	cs, err := r.Write(ups...)
	if err != nil {
		w.t.Fatalf("write %v: %v", keys, err)
	}
	if r == w.r {
		for _, c := range cs {
			w.acked[c.ID()] = c.Time()
		}
	}
	return cs
}

func (w *ixWorld) keys(n int) []string {
	ks := make([]string, n)
	for i := range ks {
		ks[i] = fmt.Sprint("k", w.rng.IntN(30))
	}
	return ks
}

func (w *ixWorld) hotWrites(n int) {
	for range n {
		w.write(w.r, "hot")
		w.hot++
	}
}

func (w *ixWorld) receive(to *Repo, encs [][]byte) {
	w.t.Helper()
	if len(encs) == 0 {
		return
	}
	if _, rej, err := to.Receive(encs); err != nil || len(rej) > 0 {
		w.t.Fatalf("receive: %v %v", err, rej)
	}
}

// exchange sends the peer what it lacks, in order, and r what it lacks,
// out of order: the later commits first (pending until the earlier ones
// arrive), each part reversed some of the time, with a write of r between
// the two.
func (w *ixWorld) exchange() {
	w.t.Helper()
	var encs [][]byte
	cs, _ := w.r.CommitsSince(0)
	for _, c := range cs {
		if !w.sent[c.ID()] && !w.peer.Has(c.ID()) {
			w.sent[c.ID()] = true
			encs = append(encs, c.Encode())
		}
	}
	w.receive(w.peer, encs)
	encs = nil
	cs, _ = w.peer.CommitsSince(0)
	for _, c := range cs {
		if !w.sent[c.ID()] && !w.r.Has(c.ID()) {
			w.sent[c.ID()] = true
			encs = append(encs, c.Encode())
		}
	}
	m := 0
	if len(encs) > 0 {
		m = w.rng.IntN(len(encs))
	}
	late, early := slices.Clone(encs[m:]), slices.Clone(encs[:m])
	if w.rng.IntN(2) == 0 {
		slices.Reverse(late)
	}
	if w.rng.IntN(2) == 0 {
		slices.Reverse(early)
	}
	w.receive(w.r, late)
	if len(early) > 0 && w.r.Stats().Pending > 0 {
		w.pending++
	}
	w.write(w.r, w.keys(1)...)
	w.receive(w.r, early)
	if st := w.r.Stats(); st.Pending > 0 {
		w.t.Fatalf("%d commits still pending after an exchange: %v", st.Pending, w.r.Missing())
	}
}

// reopen closes r and opens it again (from its index) with the other
// durability.
func (w *ixWorld) reopen() {
	w.t.Helper()
	if err := w.r.Close(); err != nil {
		w.t.Fatal(err)
	}
	if !ixExists(w.fs, ixPath+IndexSuffix) {
		w.t.Fatal("Close wrote no index")
	}
	w.d = Sync + Async - w.d
	var err error
	if w.r, err = Open(ixPath, w.opts(w.d)); err != nil {
		w.t.Fatal(err)
	}
	if n := ixIndexed(w.r); n == 0 || n != w.r.Seq() {
		w.t.Fatalf("reopened from the index covering %d bytes of %d", n, w.r.Seq())
	}
	w.opened++
}

// compact compacts r at a horizon that collects most of its history.
func (w *ixWorld) compact() {
	w.t.Helper()
	w.exchange()
	w.clock.skip(24 * 3600 * 1000)
	h := w.clock.read() - 3600*1000
	epoch := w.r.Epoch()
	if _, err := w.r.Compact(h, nil); err != nil {
		w.t.Fatalf("compact: %v", err)
	}
	if w.r.Epoch() == epoch || w.r.Horizon() < h {
		w.t.Fatalf("compaction left epoch %d (was %d) and horizon %d (want %d)", w.r.Epoch(), epoch, w.r.Horizon(), h)
	}
	// The history written after the horizon, and the delta chains on the
	// kept snapshots.
	w.hotWrites(3)
}

// run runs steps random steps, compacting halfway if compact.
func (w *ixWorld) run(steps int, compact bool) {
	w.t.Helper()
	w.hotWrites(25)
	for i := range steps {
		switch op := w.rng.IntN(20); {
		case op < 7:
			w.write(w.r, w.keys(1+w.rng.IntN(4))...)
		case op < 9:
			w.hotWrites(1 + w.rng.IntN(4))
		case op < 13:
			w.write(w.peer, w.keys(1+w.rng.IntN(3))...)
		case op < 17:
			w.exchange()
		case op < 18:
			if w.rng.IntN(2) == 0 {
				if err := w.r.Flush(); err != nil {
					w.t.Fatal(err)
				}
			}
			w.exchange()
			w.reopen()
		default:
			// Concurrent edits of the same items on both sides: merges.
			ks := w.keys(2)
			w.write(w.r, ks...)
			w.write(w.peer, ks...)
			w.exchange()
		}
		if compact && i == steps/2 {
			w.compact()
		}
	}
	w.exchange()
	w.exchange()
}

// close closes r, which writes its index.
func (w *ixWorld) close() {
	w.t.Helper()
	if err := w.r.Close(); err != nil {
		w.t.Fatal(err)
	}
	if !ixExists(w.fs, ixPath+IndexSuffix) {
		w.t.Fatal("Close wrote no index")
	}
}

// ixSeeds returns the seeds of the randomized tests.
func ixSeeds() []uint64 {
	if testing.Short() {
		return []uint64{1, 2, 3}
	}
	return []uint64{1, 2, 3, 4, 5, 6}
}

// ixFinal writes the same commits to a and b (at the same fixed time).
func ixFinal(t testing.TB, a, b *Repo) {
	t.Helper()
	for _, r := range []*Repo{a, b} {
		_, err := r.Write(
			Update{Key: "k1", Fn: func(c Current) (item.Item, commit.Schema, error) {
				return c.Value.With("final", item.String("yes")), c.Schema, nil
			}},
			Update{Key: "hot", Fn: func(c Current) (item.Item, commit.Schema, error) {
				return c.Value.With("final", item.Int(1)), c.Schema, nil
			}},
			Update{Key: "brand-new", Fn: func(c Current) (item.Item, commit.Schema, error) {
				return item.New(map[string]item.Value{"n": item.Number(1)}), commit.Schema{NS: "note", Version: 1}, nil
			}})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestIndexEquivalence: after random workloads (writes, deletions, delta
// chains, commits received out of order from a peer, merges, both
// durabilities, reopens from the index, a compaction in some runs), the
// repository opened from its index shows exactly what a replay of the
// whole log shows, before and after one more write, and after reopening.
func TestIndexEquivalence(t *testing.T) {
	ixSetup(t)
	for _, seed := range ixSeeds() {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			w := newIxWorld(t, seed, Durability(seed%2))
			w.run(150, seed%3 != 1)
			w.close()
			if w.hot <= 20 {
				t.Fatalf("only %d writes of the hot item", w.hot)
			}
			a := ixOpen(t, ixCopy(t, w.fs, true), Options{})
			b := ixOpen(t, ixCopy(t, w.fs, false), Options{})
			if n := ixIndexed(a); n == 0 || n != a.Seq() {
				t.Fatalf("opened from an index covering %d bytes of %d", n, a.Seq())
			}
			if n := ixIndexed(b); n != 0 {
				t.Fatalf("opened without an index, yet indexed %d bytes", n)
			}
			for id, ms := range w.acked {
				if ms >= a.Horizon() && !a.Has(id) {
					t.Fatalf("acknowledged commit %s lost", id.Short())
				}
			}
			if w.r.Horizon() > 0 && a.Horizon() != w.r.Horizon() {
				t.Fatalf("horizon %d, want %d", a.Horizon(), w.r.Horizon())
			}
			merges := 0
			cs, _ := a.CommitsSince(0)
			for _, c := range cs {
				if c.IsMerge() {
					merges++
				}
			}
			t.Logf("%d commits, %d merges, %d reopens from the index, %d exchanges with pending commits, horizon %d",
				len(cs), merges, w.opened, w.pending, a.Horizon())
			if merges == 0 || w.pending == 0 || w.opened == 0 {
				t.Fatal("the workload wrote no merge, left no commit pending or never reopened")
			}
			ixSame(t, "opened from the index", a, b, true)
			ixClean(t, a)
			ixFinal(t, a, b)
			ixSame(t, "after one more write", a, b, true)
			fsA, fsB := a.opts.FS, b.opts.FS
			if err := errors.Join(a.Close(), b.Close()); err != nil {
				t.Fatal(err)
			}
			if err := fsB.Remove(ixPath + IndexSuffix); err != nil {
				t.Fatal(err)
			}
			a = ixOpen(t, fsA, Options{Durability: Async})
			b = ixOpen(t, fsB, Options{})
			if n := ixIndexed(a); n == 0 || n != a.Seq() {
				t.Fatalf("reopened from an index covering %d bytes of %d", n, a.Seq())
			}
			ixSame(t, "reopened", a, b, true)
			ixClean(t, a)
		})
	}
}

// ixAllOrder returns the keys All yields, in its order.
func ixAllOrder(r *Repo) []string {
	var out []string
	for e := range r.All() {
		out = append(out, e.Key)
	}
	return out
}

// TestIndexAllOrderAfterCompaction: All yields items in order of their
// first commit; after a compaction collected the first commits of an item,
// a replay of the new log orders it by its first kept commit, and an open
// from the index must do the same.
func TestIndexAllOrderAfterCompaction(t *testing.T) {
	ixSetup(t)
	clock := newIxClock()
	fsys := vfs.NewMem()
	r, err := Open(ixPath, &Options{FS: fsys, Key: ixKey("r"), Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	set := func(key string, i int) {
		t.Helper()
		v := item.New(map[string]item.Value{"v": item.String(strings.Repeat(fmt.Sprint(key, i, ";"), 50))})
		if _, err := r.Write(Update{Key: key, Fn: func(Current) (item.Item, commit.Schema, error) {
			return v, commit.Schema{NS: "note", Version: 1}, nil
		}}); err != nil {
			t.Fatal(err)
		}
	}
	set("a", 0)
	set("b", 0)
	clock.skip(48 * 3600 * 1000)
	set("a", 1)
	set("a", 2)
	clock.skip(48 * 3600 * 1000)
	set("a", 3)
	if _, err := r.Compact(clock.read()-3600*1000, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	a := ixOpen(t, ixCopy(t, fsys, true), Options{})
	b := ixOpen(t, ixCopy(t, fsys, false), Options{})
	if ixIndexed(a) == 0 {
		t.Fatal("the index was not used")
	}
	if got, want := ixAllOrder(a), ixAllOrder(b); !slices.Equal(got, want) {
		t.Fatalf("All from the index yields %q, a replay %q", got, want)
	}
}

// ixTailCheck opens crashed, a filesystem holding a log that goes on after
// its index, checks the open replayed only the tail and shows what a
// replay of the whole log shows, and that every commit in acked is there.
// A torn tail may leave no record after the index (whole bytes == false).
func ixTailCheck(t *testing.T, crashed *vfs.MemFS, acked map[commit.ID]int64, whole bool) {
	t.Helper()
	logs := &ixLogs{}
	a := ixOpen(t, ixCopy(t, crashed, true), Options{Logger: logs.logger()})
	b := ixOpen(t, ixCopy(t, crashed, false), Options{})
	if n := ixIndexed(a); n == 0 || n > a.Seq() || whole && n == a.Seq() {
		t.Fatalf("opened from an index covering %d bytes of %d, want the tail replayed\n%s", n, a.Seq(), logs)
	}
	if s := logs.find(ixUnused); s != "" {
		t.Fatalf("logged %s", s)
	}
	if !whole && logs.find("WARN cut torn tail") == "" {
		t.Fatalf("no torn tail cut:\n%s", logs)
	}
	for id, ms := range acked {
		if ms >= a.Horizon() && !a.Has(id) {
			t.Fatalf("acknowledged commit %s lost", id.Short())
		}
	}
	ixSame(t, "opened from the index and the tail", a, b, true)
	ixClean(t, a)
	ixFinal(t, a, b)
	ixSame(t, "after one more write", a, b, true)
}

// TestIndexTail: a repository opened from its index, written to under
// either durability (writes, received commits, merges) and flushed, then
// crashed without Close (its index now covers a prefix of the log), opens
// from the index and replays only the records after it, with or without a
// torn tail after the flushed writes, and shows what a replay of the
// whole log shows.
func TestIndexTail(t *testing.T) {
	ixSetup(t)
	for _, d := range []Durability{Sync, Async} {
		t.Run(d.String(), func(t *testing.T) {
			w := newIxWorld(t, 10+uint64(d), d)
			w.run(60, d == Async)
			w.close()
			var err error
			opts := w.opts(d)
			opts.FlushInterval = time.Hour
			if w.r, err = Open(ixPath, opts); err != nil {
				t.Fatal(err)
			}
			if n := ixIndexed(w.r); n == 0 || n != w.r.Seq() {
				t.Fatalf("opened from an index covering %d bytes of %d", n, w.r.Seq())
			}
			for range 20 {
				w.write(w.r, w.keys(1+w.rng.IntN(3))...)
				w.write(w.peer, w.keys(1)...)
				if w.rng.IntN(4) == 0 {
					w.exchange()
				}
			}
			w.hotWrites(22)
			w.exchange()
			if err := w.r.Flush(); err != nil {
				t.Fatal(err)
			}
			t.Run("crash", func(t *testing.T) { ixTailCheck(t, w.fs.Crash(nil), w.acked, true) })
			if d == Sync {
				return
			}
			// Writes reach the file, but their flush fails to sync them,
			// and the crash tears them.
			durable := maps.Clone(w.acked)
			for range 10 {
				w.write(w.r, w.keys(2)...)
			}
			w.fs.SetHook(func(op, name string) error {
				if op == "sync" && name == ixPath {
					return vfs.ErrInjected
				}
				return nil
			})
			if err := w.r.Flush(); err == nil {
				t.Fatal("flush succeeded without its sync")
			}
			w.fs.SetHook(nil)
			for _, keep := range []int{1, 600, 2000, 1 << 20} {
				t.Run(fmt.Sprint("torn", keep), func(t *testing.T) {
					crashed := w.fs.Crash(func(_ string, unsynced []byte) int { return min(keep, len(unsynced)-1) })
					ixTailCheck(t, crashed, durable, keep > 1)
				})
			}
		})
	}
}

// ixRecrc returns b with its checksum made right again.
func ixRecrc(b []byte) []byte {
	b = slices.Clone(b)
	binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b[:len(b)-4], castagnoli))
	return b
}

// ixBaseline is what a replay of a log shows.
type ixBaseline struct {
	fs        *vfs.MemFS // the log, and an index
	state     []string   // a writable replay's
	roState   []string   // a read-only replay's
	withEpoch bool
}

func newIxBaseline(t *testing.T, fsys *vfs.MemFS) *ixBaseline {
	t.Helper()
	b := &ixBaseline{fs: fsys, withEpoch: true}
	r := ixOpen(t, ixCopy(t, fsys, false), Options{})
	b.state = ixState(t, r, true)
	r.Close()
	r = ixOpen(t, ixCopy(t, fsys, false), Options{ReadOnly: true})
	b.roState = ixState(t, r, true)
	r.Close()
	return b
}

// fallback opens the log of b with index as its index and checks the open
// did not use it, said why (with a reason holding want), removed it unless
// read-only, and shows what a replay shows (if compare).
func (b *ixBaseline) fallback(t *testing.T, index []byte, want string, readOnly, compare bool) {
	t.Helper()
	fsys := ixWithIndex(t, b.fs, index)
	logs := &ixLogs{}
	r := ixOpen(t, fsys, Options{ReadOnly: readOnly, Logger: logs.logger()})
	defer r.Close()
	if n := ixIndexed(r); n != 0 {
		t.Fatalf("%s: the index was used (%d bytes)", want, n)
	}
	s := logs.find(ixUnused)
	if s == "" || !strings.Contains(s, want) {
		t.Fatalf("no warning that the index is not used because %q:\n%s", want, logs)
	}
	if ixExists(fsys, ixPath+IndexSuffix) != readOnly {
		t.Fatalf("%s: after a read-only (%v) open, the index exists: %v", want, readOnly, !readOnly)
	}
	if !compare {
		return
	}
	got, state := ixState(t, r, b.withEpoch), b.state
	if readOnly {
		state = b.roState
	}
	if !slices.Equal(got, state) {
		for i := range min(len(got), len(state)) {
			if got[i] != state[i] {
				t.Fatalf("%s: line %d differs from a replay's:\n  %s\nwant\n  %s", want, i, got[i], state[i])
			}
		}
		t.Fatalf("%s: %d lines, a replay shows %d", want, len(got), len(state))
	}
}

// ixSmall runs a short workload and closes it: a log with its index.
func ixSmall(t testing.TB, seed uint64, steps int) *ixWorld {
	t.Helper()
	w := newIxWorld(t, seed, Sync)
	w.run(steps, false)
	w.close()
	return w
}

// TestIndexDamaged: an index with any byte flipped, cut short, empty, or
// whose header does not fit the log (with a right checksum) is not used:
// the open replays the whole log, warns with the reason, removes the index
// (a read-only open leaves it), and shows what a replay shows.
func TestIndexDamaged(t *testing.T) {
	ixSetup(t)
	w := ixSmall(t, 20, 4)
	index, err := w.fs.ReadFile(ixPath + IndexSuffix)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("index of %d bytes, %d commits", len(index), w.r.Stats().Commits)
	b := newIxBaseline(t, w.fs)
	// The index as written is used.
	if r := ixOpen(t, ixCopy(t, w.fs, true), Options{}); ixIndexed(r) != r.Seq() {
		t.Fatal("the index as written is not used")
	} else {
		r.Close()
	}
	stride := 1
	if testing.Short() {
		stride = 7
	}
	for i := 0; i < len(index); i += stride {
		bad := slices.Clone(index)
		bad[i] ^= byte(1 << (i % 8))
		want := "checksum mismatch"
		if i < 8 {
			want = "bad magic"
		}
		b.fallback(t, bad, want, i%5 == 3, i%13 == 0 || i < indexHeaderSize)
	}
	for _, n := range []int{0, 1, 8, indexHeaderSize + 3, len(index) / 2, len(index) - 4, len(index) - 1} {
		want := "checksum mismatch"
		if n < indexHeaderSize+4 {
			want = "too short"
		}
		b.fallback(t, index[:n], want, n == 8, true)
	}
	b.fallback(t, append(slices.Clone(index), 0), "checksum mismatch", false, true)
	le := binary.LittleEndian
	header := []struct {
		want string
		edit func(b []byte)
	}{
		{fmt.Sprintf("version %d, want %d", indexVersion+1, indexVersion), func(b []byte) { le.PutUint32(b[8:], indexVersion+1) }},
		{"another epoch", func(b []byte) { le.PutUint64(b[12:], le.Uint64(b[12:])+1) }},
		{"shorter than the", func(b []byte) { le.PutUint64(b[20:], le.Uint64(b[20:])+1) }},
		{"does not end by", func(b []byte) { le.PutUint64(b[20:], le.Uint64(b[28:])) }},
		{"does not end by", func(b []byte) { le.PutUint64(b[28:], 3) }},
		{"where the index says", func(b []byte) { le.PutUint64(b[28:], le.Uint64(b[28:])-1) }},
		{"where the index says", func(b []byte) { b[40] ^= 1 }},
		{"does not end by", func(b []byte) { le.PutUint64(b[20:], le.Uint64(b[20:])-1) }},
		{"version changed", func(b []byte) { le.PutUint32(b[59:], le.Uint32(b[59:])+1) }},
		{"bytes after the items", nil},
	}
	for _, h := range header {
		bad := slices.Clone(index)
		if h.edit != nil {
			h.edit(bad)
		} else {
			bad = append(bad[:len(bad)-4], "junk...."...)
		}
		for _, ro := range []bool{false, true} {
			b.fallback(t, ixRecrc(bad), h.want, ro, true)
		}
	}
}

// ixRead returns a file's bytes.
func ixRead(t testing.TB, fsys vfs.FS, name string) []byte {
	t.Helper()
	b, err := fsys.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestIndexStale: an index that is sound but not the log's (another log's,
// one from before a compaction, one newer than the log) is not used; one
// from an earlier state of the same log is, with the records after it
// replayed; one whose tail holds an exclusion or damage is not.
func TestIndexStale(t *testing.T) {
	ixSetup(t)
	w := ixSmall(t, 30, 20)
	early := ixCopy(t, w.fs, true)
	earlyIndex := ixRead(t, early, ixPath+IndexSuffix)

	// More writes and a Close: the early index is valid for the longer log.
	var err error
	if w.r, err = Open(ixPath, w.opts(Async)); err != nil {
		t.Fatal(err)
	}
	w.run(10, false)
	w.close()
	t.Run("earlier", func(t *testing.T) {
		fsys := ixWithIndex(t, w.fs, earlyIndex)
		ixTailCheck(t, fsys, w.acked, true)
	})
	t.Run("another log", func(t *testing.T) {
		other := ixSmall(t, 31, 4)
		newIxBaseline(t, w.fs).fallback(t, ixRead(t, other.fs, ixPath+IndexSuffix), "another epoch", false, true)
	})
	t.Run("newer than the log", func(t *testing.T) {
		b := newIxBaseline(t, early)
		for _, ro := range []bool{false, true} {
			b.fallback(t, ixRead(t, w.fs, ixPath+IndexSuffix), "shorter than the", ro, true)
		}
	})
	t.Run("before a compaction", func(t *testing.T) {
		before := ixRead(t, w.fs, ixPath+IndexSuffix)
		fsys := ixCopy(t, w.fs, true)
		r := ixOpen(t, fsys, Options{Now: w.clock.now})
		w.clock.skip(24 * 3600 * 1000)
		if _, err := r.Compact(w.clock.read()-3600*1000, nil); err != nil {
			t.Fatal(err)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		b := newIxBaseline(t, fsys)
		if b.state[1] == newIxBaseline(t, w.fs).state[1] {
			t.Fatal("the compaction kept the epoch")
		}
		for _, ro := range []bool{false, true} {
			b.fallback(t, before, "another epoch", ro, true)
		}
	})
	t.Run("exclusion in the tail", func(t *testing.T) {
		fsys := ixCopy(t, w.fs, true)
		r := ixOpen(t, fsys, Options{})
		id, _ := r.Head("hot")
		if err := r.Exclude([]commit.ID{id}, ExcludeQuarantined, "refused"); err != nil {
			t.Fatal(err)
		}
		crashed := fsys.Crash(nil)
		b := newIxBaseline(t, crashed)
		if !slices.ContainsFunc(b.state, func(s string) bool { return strings.Contains(s, "Excluded:1 ") }) {
			t.Fatal("nothing excluded")
		}
		b.fallback(t, ixRead(t, fsys, ixPath+IndexSuffix), "the log holds exclusions", false, true)
		// Close removes the index of a graph with exclusions.
		r.Close()
		if ixExists(fsys, ixPath+IndexSuffix) {
			t.Fatal("Close left an index of a graph with exclusions")
		}
	})
	t.Run("damage in the tail", func(t *testing.T) {
		log := ixRead(t, w.fs, ixPath)
		covered := binary.LittleEndian.Uint64(earlyIndex[20:])
		// A byte of the data of the first record after the early index,
		// which later records claim: corruption, quarantined.
		log[covered+recHeadSize+2] ^= 0x10
		fsys := ixCopy(t, w.fs, false)
		if err := vfs.WriteFileAtomic(fsys, ixPath, log, 0o644); err != nil {
			t.Fatal(err)
		}
		b := newIxBaseline(t, fsys)
		b.withEpoch = false
		b.state = ixState(t, ixOpen(t, ixCopy(t, fsys, false), Options{}), false)
		b.roState = ixState(t, ixOpen(t, ixCopy(t, fsys, false), Options{ReadOnly: true}), false)
		for _, ro := range []bool{false, true} {
			b.fallback(t, earlyIndex, "the log has damage", ro, true)
		}
		r := ixOpen(t, ixWithIndex(t, fsys, earlyIndex), Options{})
		if h := r.Health(); h.Quarantined == 0 {
			t.Fatalf("damage in the tail not quarantined: %+v", h)
		}
	})
}

// TestIndexCrashAtClose: Close (its mark, then the index: a temporary
// file written, synced, renamed, the directory synced) fails at each of
// its filesystem operations in turn, and the machine crashes then (keeping
// only what was synced, or at random what was not): the log opens, loses
// no acknowledged commit, and shows what a replay of it shows, whether it
// had an index before or not.
func TestIndexCrashAtClose(t *testing.T) {
	ixSetup(t)
	// build returns a world ready to close: its writes acknowledged (and
	// flushed under Async), with an index from its last open if reopened.
	build := func(t *testing.T, d Durability, reopened bool) *ixWorld {
		w := newIxWorld(t, 40, d)
		w.run(12, false)
		w.exchange()
		if reopened {
			w.close()
			var err error
			if w.r, err = Open(ixPath, w.opts(d)); err != nil {
				t.Fatal(err)
			}
			if ixIndexed(w.r) == 0 {
				t.Fatal("not reopened from the index")
			}
			w.write(w.r, "k1", "k2")
			w.hotWrites(3)
		} else if err := w.fs.Remove(ixPath + IndexSuffix); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if err := w.r.Flush(); err != nil {
			t.Fatal(err)
		}
		return w
	}
	for _, d := range []Durability{Sync, Async} {
		for _, reopened := range []bool{false, true} {
			t.Run(fmt.Sprint(d, "/reopened=", reopened), func(t *testing.T) {
				w := build(t, d, reopened)
				ops := w.fs.Ops()
				if err := w.r.Close(); err != nil {
					t.Fatal(err)
				}
				n := w.fs.Ops() - ops
				if n < 5 {
					t.Fatalf("Close did %d filesystem operations", n)
				}
				rng := rand.New(rand.NewPCG(uint64(d), 7))
				used, unused, tail := 0, 0, 0
				for k := range n {
					w := build(t, d, reopened)
					w.fs.FailAfter(k)
					w.r.Close()
					w.fs.FailAfter(-1)
					crashes := []*vfs.MemFS{w.fs, w.fs.Crash(nil)}
					for range 3 {
						crashes = append(crashes, w.fs.CrashWith(vfs.CrashRandom(rng)))
					}
					for i, crashed := range crashes {
						a := ixOpen(t, ixCopy(t, crashed, true), Options{})
						b := ixOpen(t, ixCopy(t, crashed, false), Options{})
						for id := range w.acked {
							if !a.Has(id) {
								t.Fatalf("fault at operation %d of Close, crash %d: acknowledged commit %s lost", k, i, id.Short())
							}
						}
						if n := ixIndexed(a); n > 0 {
							used++
							if n < a.Seq() {
								tail++
							}
						} else {
							unused++
						}
						ixSame(t, fmt.Sprintf("fault at operation %d of Close, crash %d", k, i), a, b, true)
						a.Close()
						b.Close()
					}
				}
				t.Logf("Close does %d operations; %d opens used an index (%d with a tail), %d replayed", n, used, tail, unused)
				if used == 0 || reopened && tail == 0 {
					t.Fatal("no crash left an index to use, or the one the repository opened with")
				}
			})
		}
	}
}

// ixLazy opens, from its index, a copy on disk of a log with its index,
// and corrupts (in place, after the open) the record of the first commit
// of the item "hot", neither its head nor its head's delta base.
func ixLazy(t *testing.T, logs *ixLogs) (r *Repo, path string, damaged commit.ID) {
	t.Helper()
	w := ixSmall(t, 50, 10)
	path = filepath.Join(t.TempDir(), "r.log")
	for _, suffix := range []string{"", IndexSuffix} {
		if err := os.WriteFile(path+suffix, ixRead(t, w.fs, ixPath+suffix), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r, err := Open(path, &Options{Key: ixKey("r"), Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if n := ixIndexed(r); n == 0 || n != r.Seq() {
		t.Fatalf("opened from an index covering %d bytes of %d", n, r.Seq())
	}
	r.mu.RLock()
	st := r.items.get("hot")
	i := slices.IndexFunc(r.entries, func(n *node) bool { return n.c.Key() == "hot" })
	n := r.entries[i]
	if n == st.head || n == st.head.base || n.encoding() != nil {
		t.Fatal("the first commit of hot is its head, its base, or held in memory")
	}
	off := int64(n.seq) - int64(n.size) + recHeadSize + int64(n.size-recHeadSize)/2
	damaged = n.c.id
	r.mu.RUnlock()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x20
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return r, path, damaged
}

// ixLazyCheck reads the damaged commit through History, CommitsSince and
// Commit: each leaves it out and logs the damage, and the index is gone.
func ixLazyCheck(t *testing.T, r *Repo, path string, damaged commit.ID, logs *ixLogs) {
	t.Helper()
	for _, in := range r.History("hot") {
		if in.Commit.ID() == damaged {
			t.Fatal("History holds the damaged commit")
		}
	}
	if logs.find("ERROR damaged log") == "" {
		t.Fatalf("no error logged for the damage:\n%s", logs)
	}
	if _, err := os.Stat(path + IndexSuffix); !os.IsNotExist(err) {
		t.Fatalf("the index is still there after a read met damage (%v)", err)
	}
	cs, _ := r.CommitsSince(0)
	if len(cs) != len(r.IDs())-1 || slices.ContainsFunc(cs, func(c *commit.Commit) bool { return c.ID() == damaged }) {
		t.Fatalf("CommitsSince returned %d commits of %d, with the damaged one", len(cs), len(r.IDs()))
	}
	if _, ok := r.Commit(damaged); ok {
		t.Fatal("Commit returned the damaged commit")
	}
}

// ixLazyReopen reopens the log: a replay, which quarantines the damage.
func ixLazyReopen(t *testing.T, path string) {
	t.Helper()
	r, err := Open(path, &Options{Key: ixKey("r")})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if n := ixIndexed(r); n != 0 {
		t.Fatalf("reopened from an index (%d bytes) after a read met damage", n)
	}
	if h := r.Health(); h.Quarantined == 0 {
		t.Fatalf("the damage a read met was not quarantined at the next open: %+v", h)
	}
	if len(r.Quarantine()) == 0 {
		t.Fatal("Quarantine lists nothing")
	}
}

// TestIndexLazyDamage: damage in the indexed bytes of the log, which an
// open from the index does not look for, is met by a read: the commit is
// left out, the damage logged, the index removed, and the next open
// replays the log and quarantines the damage.
func TestIndexLazyDamage(t *testing.T) {
	ixSetup(t)
	logs := &ixLogs{}
	r, path, damaged := ixLazy(t, logs)
	ixLazyCheck(t, r, path, damaged, logs)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	ixLazyReopen(t, path)
}

// TestIndexLazyDamageThenWrite: as TestIndexLazyDamage, with a write after
// the read that met the damage: Close must not write an index over the
// damage, or the next open would not look for it.
func TestIndexLazyDamageThenWrite(t *testing.T) {
	ixSetup(t)
	logs := &ixLogs{}
	r, path, damaged := ixLazy(t, logs)
	ixLazyCheck(t, r, path, damaged, logs)
	if _, err := r.Write(Update{Key: "k1", Fn: func(c Current) (item.Item, commit.Schema, error) {
		return c.Value.With("after", item.String("damage")), c.Schema, nil
	}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	ixLazyReopen(t, path)
}

// FuzzDecodeIndex: decodeIndex takes any bytes without panicking, and
// loadIndexed any index it accepts; a graph loaded from an index encodes
// again to an index that decodes and loads to the same graph (a fixed
// point). Each input is tried as it is and with its checksum made right,
// so that mutations reach past the checksum.
func FuzzDecodeIndex(f *testing.F) {
	ixSetup(f)
	for seed := range uint64(3) {
		w := ixSmall(f, 60+seed, 3+int(seed)*4)
		f.Add(ixRead(f, w.fs, ixPath+IndexSuffix))
	}
	// A compacted log's: a horizon, shallow commits.
	w := newIxWorld(f, 63, Sync)
	w.run(8, true)
	w.close()
	index := ixRead(f, w.fs, ixPath+IndexSuffix)
	f.Add(index)
	f.Add(index[:len(index)/2])
	f.Add(ixRecrc(append(slices.Clone(index[:indexHeaderSize]), 0, 0, 0, 0, 0)))
	f.Fuzz(func(t *testing.T, b []byte) {
		inputs := [][]byte{b}
		if len(b) >= 4 {
			inputs = append(inputs, ixRecrc(b))
		}
		for _, in := range inputs {
			x, err := ixDecodeKnownBug(t, in)
			ixSameThroughWindows(t, in, x, err)
			if err != nil {
				continue
			}
			r := &Repo{opts: Options{FS: vfs.NewMem()}.withDefaults()}
			if err := r.loadIndexed(x); err != nil {
				continue
			}
			// A head value that does not decode is read from the log (of
			// which there is none here) when first read: no round trip.
			undecodable := false
			for i := range x.lazies {
				if v := x.lazies[i].enc; v != nil {
					if _, err := item.DecodeItem(v); err != nil {
						undecodable = true
					} else if it, _ := item.DecodeItem(v); it.Deleted() != x.lazies[i].deleted {
						undecodable = true // the index lies about the deletion: it is a cache
					}
				}
			}
			if undecodable {
				continue
			}
			enc, err := r.encodeIndexLocked(x.h)
			if err != nil {
				t.Fatalf("a graph loaded from an index does not encode: %v", err)
			}
			x2, err := decodeIndex(enc)
			if err != nil {
				t.Fatalf("an index encoded from a loaded graph does not decode: %v", err)
			}
			r2 := &Repo{opts: Options{FS: vfs.NewMem()}.withDefaults()}
			if err := r2.loadIndexed(x2); err != nil {
				t.Fatalf("an index encoded from a loaded graph does not load: %v", err)
			}
			enc2, err := r2.encodeIndexLocked(x2.h)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(enc, enc2) {
				t.Fatal("an index encoded from a loaded graph encodes differently once loaded again")
			}
			if x2.h != x.h {
				t.Fatalf("re-encoded header %+v, was %+v", x2.h, x.h)
			}
			// Encoding lists items in order of their first commit, which a
			// crafted index need not: compare the graphs in any order.
			g, g2 := ixGraph(t, r), ixGraph(t, r2)
			slices.Sort(g)
			slices.Sort(g2)
			if !slices.Equal(g, g2) {
				t.Fatalf("a graph loaded from an index loads differently once encoded again:\n%q\n%q", g, g2)
			}
		}
	})
}

// ixGraph describes the graph a repository holds, one line per commit and
// per item.
func ixGraph(t *testing.T, r *Repo) []string {
	t.Helper()
	var out []string
	for _, n := range r.entries {
		var base commit.ID
		if n.base != nil {
			base = n.base.c.id
		}
		c := n.c
		c.ord = 0            // scratch of the index encoding
		c.base = nil         // a pointer: its id is printed
		c.par, c.np = nil, 0 // likewise
		c.key = nil          // likewise
		out = append(out, fmt.Sprintf("commit %+v key %q base id %s parents %x seq %d size %d idx %d gen %d depth %d shallow %v base %s schema %v",
			c, n.c.Key(), n.c.Base(), n.c.Parents(), n.seq, n.size, n.idx, n.gen, n.depth, n.shallow, base, n.schemaOf()))
	}
	for _, st := range r.list {
		var head commit.ID
		var v []byte
		if st.head != nil {
			head = st.head.c.id
			var err error
			if v, err = item.AppendItem(nil, st.val(r)); err != nil {
				t.Fatal(err)
			}
		}
		leaves := make([]commit.ID, len(st.leaves()))
		for i, l := range st.leaves() {
			leaves[i] = l.c.id
		}
		out = append(out, fmt.Sprintf("item %q leaves %v head %s value %x", st.key, leaves, head, v))
	}
	return out
}

// ixSameThroughWindows checks that in decodes as x, err (decodeIndex's)
// when read a few bytes at a time, through windows of several sizes.
func ixSameThroughWindows(t *testing.T, in []byte, x *headIndex, err error) {
	t.Helper()
	for _, win := range []int{1, 7, 61} {
		y, yerr := decodeIndexWindow(iotest.HalfReader(bytes.NewReader(in)), int64(len(in)), win)
		if fmt.Sprint(err) != fmt.Sprint(yerr) {
			t.Fatalf("window %d: error %v, want %v", win, yerr, err)
		}
		if err != nil {
			continue
		}
		if x.h != y.h || len(x.nodes) != len(y.nodes) || len(x.states) != len(y.states) || !slices.Equal(x.byKey, y.byKey) {
			t.Fatalf("window %d: decodes another index", win)
		}
		for i := range x.nodes {
			a, b := &x.nodes[i], &y.nodes[i]
			if a.c.id != b.c.id || a.c.Key() != b.c.Key() || !slices.Equal(a.c.Parents(), b.c.Parents()) || a.seq != b.seq || a.schemaOf() != b.schemaOf() {
				t.Fatalf("window %d: commit %d differs", win, i)
			}
		}
		for i := range x.states {
			if x.states[i].key != y.states[i].key || !bytes.Equal(x.lazies[i].enc, y.lazies[i].enc) || x.lazies[i].deleted != y.lazies[i].deleted {
				t.Fatalf("window %d: item %d differs", win, i)
			}
		}
	}
}

// decodeIndex decodes an index held in memory, as an open decodes one
// read from its file.
func decodeIndex(b []byte) (*headIndex, error) {
	return decodeIndexFrom(bytes.NewReader(b), int64(len(b)))
}

// ixDecodeKnownBug is decodeIndex.
func ixDecodeKnownBug(_ *testing.T, b []byte) (*headIndex, error) { return decodeIndex(b) }

// TestIndexLazyDamageCompact: a compaction that meets damage in the
// indexed bytes fails; the next open must replay the log and quarantine
// the damage, as it would have without the index.
func TestIndexLazyDamageCompact(t *testing.T) {
	ixSetup(t)
	logs := &ixLogs{}
	r, path, _ := ixLazy(t, logs)
	if _, err := r.Compact(time.Now().UnixMilli(), nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("compaction over damage: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	ixLazyReopen(t, path)
}

// TestIndexPendingAtClose: a repository opened from its index that closes
// with commits pending removes its index (an index holds no pending
// commit), and the next open replays the log.
func TestIndexPendingAtClose(t *testing.T) {
	ixSetup(t)
	w := ixSmall(t, 70, 10)
	r := ixOpen(t, w.fs, Options{Now: w.clock.now})
	if ixIndexed(r) == 0 {
		t.Fatal("not opened from the index")
	}
	w.write(w.peer, "k1")
	cs := w.write(w.peer, "k1")
	if _, rej, err := r.Receive([][]byte{cs[0].Encode()}); err != nil || len(rej) > 0 {
		t.Fatal(err, rej)
	}
	if len(r.Missing()) == 0 {
		t.Fatal("nothing pending")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if ixExists(w.fs, ixPath+IndexSuffix) {
		t.Fatal("Close left an index with commits pending")
	}
	a := ixOpen(t, w.fs, Options{})
	if ixIndexed(a) != 0 || len(a.Missing()) == 0 {
		t.Fatalf("reopened with %d bytes indexed, %d missing", ixIndexed(a), len(a.Missing()))
	}
}

// TestIndexReadOnly: a read-only open uses the index (whole, or with a
// tail) and shows what a read-only replay shows, and changes no file.
func TestIndexReadOnly(t *testing.T) {
	ixSetup(t)
	w := ixSmall(t, 80, 10)
	early := ixRead(t, w.fs, ixPath+IndexSuffix)
	var err error
	if w.r, err = Open(ixPath, w.opts(Sync)); err != nil {
		t.Fatal(err)
	}
	w.run(5, false)
	w.close()
	for _, index := range [][]byte{ixRead(t, w.fs, ixPath+IndexSuffix), early} {
		fsys := ixWithIndex(t, w.fs, index)
		log := ixRead(t, fsys, ixPath)
		a := ixOpen(t, fsys, Options{ReadOnly: true})
		b := ixOpen(t, ixCopy(t, fsys, false), Options{ReadOnly: true})
		if n := ixIndexed(a); n == 0 || n != binary.LittleEndian.Uint64(index[20:]) {
			t.Fatalf("read-only open indexed %d bytes, want the index's", n)
		}
		ixSame(t, "read-only", a, b, true)
		ixClean(t, a)
		a.Close()
		if !bytes.Equal(ixRead(t, fsys, ixPath), log) || !bytes.Equal(ixRead(t, fsys, ixPath+IndexSuffix), index) {
			t.Fatal("a read-only open changed the log or the index")
		}
	}
}

// TestIndexParentsBounded: an index that gives a commit more parents than
// a commit may have (commit.MaxParents) is refused, and one at the bound
// decodes with every parent.
func TestIndexParentsBounded(t *testing.T) {
	build := func(parents int) []byte {
		b := make([]byte, indexHeaderSize)
		copy(b, indexMagic[:])
		le := binary.LittleEndian
		le.PutUint32(b[8:], indexVersion)
		le.PutUint64(b[20:], HeaderSize+recHeadSize+100) // covered
		le.PutUint64(b[28:], HeaderSize+100)             // anchor
		str := func(s string) { b = binary.AppendUvarint(b, uint64(len(s))); b = append(b, s...) }
		b = binary.AppendUvarint(b, 1)
		str("note")
		b = binary.AppendUvarint(b, 1) // items
		b = binary.AppendUvarint(b, 1) // commits
		b = binary.AppendUvarint(b, 0) // its item
		b = append(b, bytes.Repeat([]byte{7}, 32)...)
		b = append(b, 1) // full
		b = binary.AppendVarint(b, 1700000000000)
		b = binary.AppendUvarint(b, uint64(parents))
		for i := range parents {
			b = append(b, 0) // not here: the id follows
			b = append(b, byte(i), byte(i>>8), 9)
			b = append(b, make([]byte, 29)...)
		}
		b = binary.AppendUvarint(b, 0) // namespace
		b = binary.AppendUvarint(b, 1) // version
		b = binary.AppendUvarint(b, HeaderSize+100)
		b = binary.AppendUvarint(b, 100) // record length
		b = binary.AppendUvarint(b, 0)   // place
		b = binary.AppendUvarint(b, 2)   // generation
		b = binary.AppendUvarint(b, 0)   // depth
		v, err := item.AppendItem(nil, item.New(map[string]item.Value{"t": item.String("x")}))
		if err != nil {
			t.Fatal(err)
		}
		b = le.AppendUint64(b, 1)              // key bytes
		b = le.AppendUint64(b, uint64(len(v))) // value bytes
		str("k")
		b = binary.AppendUvarint(b, 1) // leaves
		b = binary.AppendUvarint(b, 1)
		b = binary.AppendUvarint(b, 1) // head
		b = append(b, 0)
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
		b = binary.AppendUvarint(b, 1) // live
		b = binary.AppendUvarint(b, 0)
		return le.AppendUint32(b, crc32.Checksum(b, castagnoli))
	}
	x, err := decodeIndex(build(commit.MaxParents))
	if err != nil {
		t.Fatalf("%d parents: %v", commit.MaxParents, err)
	}
	last := commit.MaxParents - 1
	if ps := x.nodes[0].c.Parents(); len(ps) != commit.MaxParents || ps[last][0] != byte(last) || ps[last][1] != byte(last>>8) {
		t.Fatalf("%d parents decoded as %d", commit.MaxParents, len(ps))
	}
	if _, err := decodeIndex(build(commit.MaxParents + 1)); err == nil || !strings.Contains(err.Error(), "parents") {
		t.Fatalf("%d parents: %v, want refused", commit.MaxParents+1, err)
	}
}

// TestIndexDeclaredSizes: an index whose declared bytes of keys or of
// head values are not those its items hold is refused, before or after
// its items are read, whatever the checksum; and an open reads an index
// through a window of any size as it reads it whole.
func TestIndexDeclaredSizes(t *testing.T) {
	ixSetup(t)
	w := ixSmall(t, 20, 4)
	index := ixRead(t, w.fs, ixPath+IndexSuffix)
	x, err := decodeIndex(index)
	if err != nil {
		t.Fatal(err)
	}
	ixSameThroughWindows(t, index, x, nil)
	var nKeys, nVals int
	for i := range x.states {
		nKeys += len(x.states[i].key)
		nVals += len(x.lazies[i].enc)
	}
	le := binary.LittleEndian
	sizes := le.AppendUint64(le.AppendUint64(nil, uint64(nKeys)), uint64(nVals))
	at := bytes.Index(index, sizes)
	if at < 0 || bytes.Contains(index[at+1:], sizes) {
		t.Fatalf("the declared sizes (%d, %d) are not found once in the index", nKeys, nVals)
	}
	for _, tc := range []struct {
		keys, vals uint64
		want       string
	}{
		{uint64(nKeys) + 1, uint64(nVals), "declared"},
		{uint64(nKeys) - 1, uint64(nVals), "more key bytes than"},
		{uint64(nKeys), uint64(nVals) + 1, "declared"},
		{uint64(nKeys), uint64(nVals) - 1, "more value bytes than"},
		{1 << 40, 0, "more than the index holds"},
		{uint64(nKeys), 1<<64 - 1, "more than the index holds"},
	} {
		bad := slices.Clone(index)
		le.PutUint64(bad[at:], tc.keys)
		le.PutUint64(bad[at+8:], tc.vals)
		if _, err := decodeIndex(bad); err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
			t.Errorf("keys %d values %d, old checksum: %v, want a checksum mismatch", tc.keys, tc.vals, err)
		}
		bad = ixRecrc(bad)
		_, err := decodeIndex(bad)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("keys %d values %d: %v, want %q", tc.keys, tc.vals, err, tc.want)
		}
		ixSameThroughWindows(t, bad, nil, err)
	}
}
