package goatdb_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/syncproto"
)

// The concurrent test's workload: writers edit raceShared items of
// raceRepo and create others, each making at most raceWrites writes,
// raceGap apart, for at most raceFor, so that several syncs run beside
// them and the test stays within a few seconds under -race on two cores.
const (
	raceRepo   = "/data/race"
	raceShared = 4
	raceWrites = 400
	raceGap    = 2 * time.Millisecond
	raceFor    = 1500 * time.Millisecond
)

// raceItem is the path of shared item k.
func raceItem(k int) string { return fmt.Sprintf("%s/s%d", raceRepo, k) }

// TestConcurrentReadsBesideWritersAndSyncs runs the reads of the embedding
// API on two databases while writers edit both and a goroutine keeps
// syncing them through a server, checking what each read promises; then,
// after a final sync both ways, the databases and the server must agree.
func TestConcurrentReadsBesideWritersAndSyncs(t *testing.T) {
	srv, url := syncServer(t)
	a := dbtest.OpenDB(t, &goatdb.Options{Durability: goatdb.Async})
	b := dbtest.OpenDB(t, &goatdb.Options{Durability: goatdb.Async})
	for k := range raceShared {
		if _, err := a.Put(raceItem(k), goatdb.Fields{"k": k}); err != nil {
			t.Fatal(err)
		}
	}
	syncOK(t, a, url, raceRepo)
	syncOK(t, b, url, raceRepo)

	watches := []*raceWatch{startWatch(t, a, raceItem(0)), startWatch(t, b, raceItem(0))}
	readers := []*raceReader{newRaceReader(t, a), newRaceReader(t, b)}
	writers := []*raceWriter{{db: a, field: "a0"}, {db: a, field: "a1"}, {db: b, field: "b0"}}
	runRace(t, url, writers, readers, a, b)
	for _, db := range []*goatdb.DB{a, b, a, b} {
		syncOK(t, db, url, raceRepo)
	}

	checkConverged(t, a, b, srv)
	checkWriters(t, writers, a, b)
	for _, r := range readers {
		r.checkFinal(writers)
	}
	for _, w := range watches {
		w.check(t)
	}
	for _, db := range []*goatdb.DB{a, b, srv} {
		dbtest.CheckDB(t, db)
	}
}

// runRace runs the writers to completion beside the readers and a
// goroutine syncing dbs, then stops those.
func runRace(t *testing.T, url string, writers []*raceWriter, readers []*raceReader, dbs ...*goatdb.DB) {
	t.Helper()
	stop := make(chan struct{})
	var writing, others sync.WaitGroup
	deadline := time.Now().Add(raceFor)
	for _, w := range writers {
		writing.Go(func() { w.run(t, deadline) })
	}
	var syncs, short int
	others.Go(func() { syncs, short = raceSync(t, url, stop, dbs...) })
	for _, r := range readers {
		others.Go(func() { r.run(stop) })
	}
	writing.Wait()
	close(stop)
	others.Wait()
	t.Logf("%d syncs beside the writers, %d of them out of rounds; reader rounds %d and %d", syncs, short, readers[0].rounds, readers[1].rounds)
}

// raceSync syncs each database with the server in turn until stop is
// closed, and returns the number of syncs and of those that ran out of
// rounds: with writers on both sides a sync may chase new commits until
// its round budget is spent, which is no failure.
func raceSync(t *testing.T, url string, stop <-chan struct{}, dbs ...*goatdb.DB) (syncs, short int) {
	for {
		for _, db := range dbs {
			syncs++
			_, err := db.Sync(context.Background(), url, raceRepo)
			switch {
			case errors.Is(err, syncproto.ErrNotConverged):
				short++
			case err != nil:
				t.Errorf("sync %s: %v", db.Dir(), err)
				return syncs, short
			}
		}
		select {
		case <-stop:
			return syncs, short
		default:
		}
	}
}

// raceWriter sets its own field on the shared items to increasing values,
// so that on any item the field only grows, whatever merges happen.
type raceWriter struct {
	db      *goatdb.DB
	field   string
	last    [raceShared]int // the last value written to each shared item
	created int             // items created
}

func (w *raceWriter) run(t *testing.T, deadline time.Time) {
	for i := 1; i <= raceWrites && time.Now().Before(deadline); i++ {
		if err := w.write(i); err != nil {
			t.Errorf("writer %s, write %d: %v", w.field, i, err)
			return
		}
		time.Sleep(raceGap)
	}
}

// write sets the writer's field to i on shared item i mod raceShared;
// every fifth write is a batch that sets it on the next shared item too
// and creates an item, and every seventh creates one more.
func (w *raceWriter) write(i int) error {
	k := i % raceShared
	if i%7 == 0 {
		if _, err := w.db.Create(raceRepo, goatdb.Fields{"n": i, "by": w.field}); err != nil {
			return err
		}
		w.created++
	}
	if i%5 != 0 {
		w.last[k] = i
		_, err := w.db.Put(raceItem(k), goatdb.Fields{w.field: i})
		return err
	}
	next := (k + 1) % raceShared
	b := w.db.Batch()
	b.Put(raceItem(k), goatdb.Fields{w.field: i})
	b.Put(raceItem(next), goatdb.Fields{w.field: i})
	b.Create(raceRepo, goatdb.Fields{"n": i, "by": w.field})
	w.last[k], w.last[next] = i, i
	w.created++
	_, err := b.Commit()
	return err
}

// checkWriters checks that every database holds each writer's last value
// of its field on every shared item.
func checkWriters(t *testing.T, writers []*raceWriter, dbs ...*goatdb.DB) {
	t.Helper()
	for _, db := range dbs {
		for k := range raceShared {
			it, err := db.Get(raceItem(k))
			if err != nil {
				t.Errorf("%s: %v", raceItem(k), err)
				continue
			}
			for _, w := range writers {
				if got := it.Get(w.field); w.last[k] != 0 && got != int64(w.last[k]) {
					t.Errorf("%s in %s: %s is %v, want %d", raceItem(k), db.Dir(), w.field, got, w.last[k])
				}
			}
		}
	}
}

// checkConverged checks that every database holds the same items, with the
// same heads and values, as the first.
func checkConverged(t *testing.T, dbs ...*goatdb.DB) {
	t.Helper()
	want, err := dbs[0].Keys(raceRepo, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, db := range dbs[1:] {
		keys, err := db.Keys(raceRepo, true)
		if err != nil || !slices.Equal(keys, want) {
			t.Errorf("%s holds %v (%v), %s holds %v", db.Dir(), keys, err, dbs[0].Dir(), want)
			continue
		}
		for _, k := range keys {
			path := raceRepo + "/" + k
			x, xerr := dbs[0].Get(path)
			y, yerr := db.Get(path)
			if xerr != nil || yerr != nil || x.Head() != y.Head() || !item.ItemsEqual(x.Data(), y.Data()) {
				t.Errorf("%s differs: %s %v %v (%v), %s %v %v (%v)", path,
					dbs[0].Dir(), x.Head().Short(), x.Fields(), xerr, db.Dir(), y.Head().Short(), y.Fields(), yerr)
			}
		}
	}
}

// raceReader reads one database in rounds and checks what each read
// promises. No item is ever deleted, so counts never shrink.
type raceReader struct {
	t      *testing.T
	db     *goatdb.DB
	q      *goatdb.Query // created items (those with n), by n
	shown  int           // the query's last count
	live   int           // the last Count
	rounds int
}

func newRaceReader(t *testing.T, db *goatdb.DB) *raceReader {
	t.Helper()
	q, err := db.Query(context.Background(), goatdb.QuerySpec{Repo: raceRepo, SortBy: "n", Where: func(it goatdb.Item) bool {
		_, ok := it.Value("n")
		return ok
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return &raceReader{t: t, db: db, q: q}
}

// run reads in rounds until stop is closed, at least once, or until the
// test has failed.
func (r *raceReader) run(stop <-chan struct{}) {
	for !r.t.Failed() {
		r.round()
		select {
		case <-stop:
			return
		default:
		}
	}
}

func (r *raceReader) round() {
	r.rounds++
	path := raceItem(r.rounds % raceShared)
	checkHistory(r.t, r.db, path)
	checkAsOf(r.t, r.db, path)
	r.checkListings()
	r.checkQuery()
}

// checkListings reads Count, Keys, All and Count again: each sees at least
// as many items as the read before.
func (r *raceReader) checkListings() {
	t := r.t
	before, err := r.db.Count(raceRepo)
	if err != nil {
		t.Errorf("count: %v", err)
		return
	}
	keys, err := r.db.Keys(raceRepo, false)
	if err != nil {
		t.Errorf("keys: %v", err)
		return
	}
	all := r.all()
	after, err := r.db.Count(raceRepo)
	if err != nil {
		t.Errorf("count: %v", err)
		return
	}
	for i := 1; i < len(keys); i++ {
		if keys[i-1] >= keys[i] {
			t.Errorf("Keys lists %s before %s", keys[i-1], keys[i])
		}
	}
	for _, k := range keys {
		if !all[raceRepo+"/"+k] {
			t.Errorf("Keys lists %s, the All that followed did not", k)
		}
	}
	if r.live > before || before > len(keys) || len(keys) > len(all) || len(all) > after {
		t.Errorf("in turn: Count %d, Count %d, %d Keys, %d from All, Count %d", r.live, before, len(keys), len(all), after)
	}
	r.live = after
}

// all returns the paths All yields, checking that it yields each once and
// none deleted.
func (r *raceReader) all() map[string]bool {
	seen := map[string]bool{}
	for it, err := range r.db.All(raceRepo) {
		if err != nil {
			r.t.Errorf("all: %v", err)
			return seen
		}
		if seen[it.Path()] || it.Deleted() {
			r.t.Errorf("All yields %s again or deleted (deleted %v)", it.Path(), it.Deleted())
		}
		seen[it.Path()] = true
	}
	return seen
}

// checkQuery updates the query and checks its results: each matches,
// once, in order, and there are never fewer than before.
func (r *raceReader) checkQuery() []goatdb.Item {
	t := r.t
	if err := r.q.Update(context.Background()); err != nil {
		t.Errorf("query update: %v", err)
		return nil
	}
	var res []goatdb.Item
	for it := range r.q.Results() {
		if _, ok := it.Value("n"); !ok || it.Deleted() {
			t.Errorf("query result %s %v does not match", it.Path(), it.Fields())
		}
		if len(res) > 0 && byN(res[len(res)-1], it) >= 0 {
			t.Errorf("query results out of order or repeated: %s %v, then %s %v",
				res[len(res)-1].Path(), res[len(res)-1].Get("n"), it.Path(), it.Get("n"))
		}
		res = append(res, it)
	}
	if len(res) != r.q.Count() || len(res) != r.q.Total() || len(res) < r.shown {
		t.Errorf("query: %d results, Count %d, Total %d, %d before", len(res), r.q.Count(), r.q.Total(), r.shown)
	}
	r.shown = len(res)
	return res
}

// byN is the query's order: by n, then by path.
func byN(x, y goatdb.Item) int {
	xn, _ := x.Value("n")
	yn, _ := y.Value("n")
	return cmp.Or(cmp.Compare(xn.Int64(), yn.Int64()), cmp.Compare(x.Path(), y.Path()))
}

// checkFinal checks the query once everything is synced: it shows every
// item created, by either database, the same items All yields.
func (r *raceReader) checkFinal(writers []*raceWriter) {
	created := 0
	for _, w := range writers {
		created += w.created
	}
	res := r.checkQuery()
	all := r.all()
	if len(res) != created || len(all) != created+raceShared {
		r.t.Errorf("%s: query shows %d items, All yields %d; %d were created beside %d shared", r.db.Dir(), len(res), len(all), created, raceShared)
	}
	for _, it := range res {
		if !all[it.Path()] {
			r.t.Errorf("query shows %s, All does not yield it", it.Path())
		}
	}
}

// checkHistory reads an item's history and checks its order: no commit
// twice, each before its parents and not older than them, every parent of
// a complete commit listed, merges exactly the commits with several
// parents.
func checkHistory(t *testing.T, db *goatdb.DB, path string) []goatdb.CommitInfo {
	t.Helper()
	hist, err := db.History(path)
	if err != nil {
		t.Errorf("history %s: %v", path, err)
		return nil
	}
	at := make(map[commit.ID]int, len(hist))
	for i, c := range hist {
		if _, dup := at[c.ID]; dup {
			t.Errorf("history %s lists %s twice", path, c.ID.Short())
		}
		at[c.ID] = i
	}
	for i, c := range hist {
		if (c.Kind == goatdb.KindMerge) != (len(c.Parents) >= 2) {
			t.Errorf("history %s: %s commit %s has %d parents", path, c.Kind, c.ID.Short(), len(c.Parents))
		}
		for _, p := range c.Parents {
			j, ok := at[p]
			switch {
			case !ok && !c.Pending:
				t.Errorf("history %s: parent %s of complete commit %s is not listed", path, p.Short(), c.ID.Short())
			case ok && j <= i:
				t.Errorf("history %s: commit %s (#%d) does not come before its parent %s (#%d)", path, c.ID.Short(), i, p.Short(), j)
			case ok && hist[j].Time.After(c.Time):
				t.Errorf("history %s: commit %s is older than its parent %s", path, c.ID.Short(), p.Short())
			}
		}
	}
	return hist
}

// checkAsOf reads an item's head, its value as of now and its head again.
// GetAsOf finds the newest commit at or before now, which is no older than
// the first head, and is the first head itself if the head did not move.
func checkAsOf(t *testing.T, db *goatdb.DB, path string) {
	t.Helper()
	before, err := db.Get(path)
	now := time.Now()
	asOf, err2 := db.GetAsOf(path, now)
	after, err3 := db.Get(path)
	if err := errors.Join(err, err2, err3); err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	times := map[commit.ID]time.Time{}
	for _, c := range checkHistory(t, db, path) {
		if !c.Pending {
			times[c.ID] = c.Time
		}
	}
	when, ok := times[asOf.Head()]
	switch {
	case !ok:
		t.Errorf("%s as of now is %s, not a complete commit of its history", path, asOf.Head().Short())
	case when.UnixMilli() > now.UnixMilli():
		t.Errorf("%s as of now (%v) is %s, of %v", path, now, asOf.Head().Short(), when)
	case when.Before(times[before.Head()]):
		t.Errorf("%s as of now is %s, older than the head %s read before", path, asOf.Head().Short(), before.Head().Short())
	case before.Head() == after.Head() && (asOf.Head() != before.Head() || !item.ItemsEqual(asOf.Data(), before.Data())):
		t.Errorf("%s: head %s %v, as of now %s %v", path, before.Head().Short(), before.Fields(), asOf.Head().Short(), asOf.Fields())
	}
	at, err := db.GetAt(path, asOf.Head())
	if err != nil || at.Head() != asOf.Head() || !item.ItemsEqual(at.Data(), asOf.Data()) {
		t.Errorf("%s at %s: %v %v (%v), as of now %v", path, asOf.Head().Short(), at.Head().Short(), at.Fields(), err, asOf.Fields())
	}
}

// raceWatch watches an item and records what it yields.
type raceWatch struct {
	db     *goatdb.DB
	path   string
	cancel context.CancelFunc // ends the watch
	done   chan struct{}      // closed when the watch has ended

	mu   sync.Mutex    // guards seen and err
	seen []goatdb.Item // the values yielded, in order
	err  error         // the error that ended the watch
}

// startWatch starts watching path and returns once the watch has yielded
// the item's current value. The watch ends by check, or on cleanup.
func startWatch(t *testing.T, db *goatdb.DB, path string) *raceWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &raceWatch{db: db, path: path, cancel: cancel, done: make(chan struct{})}
	t.Cleanup(func() { cancel(); <-w.done })
	first := make(chan struct{})
	go func() {
		defer close(w.done)
		for it, err := range db.Watch(ctx, path) {
			w.mu.Lock()
			w.seen, w.err = append(w.seen, it), err
			w.mu.Unlock()
			if len(w.seen) == 1 {
				close(first)
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-first:
	case <-time.After(5 * time.Second):
		t.Fatalf("watch of %s yielded nothing in 5s", path)
	}
	return w
}

// last returns the head of the last value yielded.
func (w *raceWatch) last() commit.ID {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen[len(w.seen)-1].Head()
}

// check waits until the watch yields the item's head, ends it, and checks
// that it yielded the item's heads in the order of its history: each a
// descendant of the one before, and no field smaller than before.
func (w *raceWatch) check(t *testing.T) {
	t.Helper()
	head, err := w.db.Get(w.path)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for w.last() != head.Head() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	w.cancel()
	<-w.done
	seen := w.seen[:len(w.seen)-1] // the last holds the error
	if !errors.Is(w.err, context.Canceled) || len(seen) < 2 || seen[len(seen)-1].Head() != head.Head() {
		t.Errorf("watch of %s ended with %v after %d values, the last %v, want head %s", w.path, w.err, len(seen), w.seen[len(w.seen)-1].Head().Short(), head.Head().Short())
	}
	t.Logf("watch of %s in %s: %d values", w.path, w.db.Dir(), len(seen))
	parents := map[commit.ID][]commit.ID{}
	for _, c := range checkHistory(t, w.db, w.path) {
		parents[c.ID] = c.Parents
	}
	for i := 1; i < len(seen); i++ {
		prev, cur := seen[i-1], seen[i]
		if cur.Head() == prev.Head() {
			t.Errorf("watch of %s yielded %s twice in a row", w.path, cur.Head().Short())
			continue
		}
		if !descends(parents, cur.Head(), prev.Head()) {
			t.Errorf("watch of %s yielded %s after %s, not a descendant", w.path, cur.Head().Short(), prev.Head().Short())
		}
		for name, v := range prev.Data().All() {
			if nv, ok := cur.Value(name); !ok || nv.Int64() < v.Int64() {
				t.Errorf("watch of %s: %s went from %v to %v", w.path, name, prev.Get(name), cur.Get(name))
			}
		}
	}
}

// descends reports whether id is anc or reaches it through parents.
func descends(parents map[commit.ID][]commit.ID, id, anc commit.ID) bool {
	seen := map[commit.ID]bool{}
	for stack := []commit.ID{id}; len(stack) > 0; {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if x == anc {
			return true
		}
		if !seen[x] {
			seen[x] = true
			stack = append(stack, parents[x]...)
		}
	}
	return false
}

// TestHistoryParentsAreCopies overwrites the Parents of every CommitInfo
// that History returns, and appends to them: later histories, writes and
// merges must not see it.
func TestHistoryParentsAreCopies(t *testing.T) {
	_, url := syncServer(t)
	a, b := dbtest.OpenDB(t, nil), dbtest.OpenDB(t, nil)
	const repoPath, path = "/data/hist", "/data/hist/x"
	want := map[commit.ID][]commit.ID{} // every commit's true parents
	put := func(db *goatdb.DB, f goatdb.Fields, parents ...commit.ID) commit.ID {
		t.Helper()
		id, err := db.Put(path, f)
		if err != nil {
			t.Fatal(err)
		}
		want[id] = parents
		return id
	}
	id1 := put(a, goatdb.Fields{"v": 1})
	id2 := put(a, goatdb.Fields{"v": 2}, id1)
	scribbleHistory(t, a, path, want, id1, id2)
	id3 := put(a, goatdb.Fields{"v": 3}, id2)
	scribbleHistory(t, a, path, want, id1, id2, id3)
	syncOK(t, a, url, repoPath)
	syncOK(t, b, url, repoPath)
	scribbleHistory(t, b, path, want, id1, id2, id3)

	// Concurrent edits on both sides: the sync merges them.
	ida := put(a, goatdb.Fields{"a": 1}, id3)
	scribbleHistory(t, a, path, want, id1, id2, id3, ida)
	idb := put(b, goatdb.Fields{"b": 1}, id3)
	scribbleHistory(t, b, path, want, id1, id2, id3, idb)
	for _, db := range []*goatdb.DB{a, b, a, b} {
		syncOK(t, db, url, repoPath)
	}
	merge := sortedIDs(ida, idb)
	for _, db := range []*goatdb.DB{a, b} {
		head, err := db.Get(path)
		if err != nil {
			t.Fatal(err)
		}
		if head.Get("v") != int64(3) || head.Get("a") != int64(1) || head.Get("b") != int64(1) {
			t.Errorf("%s: merged item %v", db.Dir(), head.Fields())
		}
		want[head.Head()] = merge
		scribbleHistory(t, db, path, want, id1, id2, id3, ida, idb, head.Head())
		scribbleHistory(t, db, path, want, id1, id2, id3, ida, idb, head.Head())
		dbtest.CheckDB(t, db)
	}
}

// scribbleHistory checks that the item's history lists exactly the commits
// ids, with the parents want gives, then overwrites every parent of the
// CommitInfos with the zero id and appends one, and checks again.
func scribbleHistory(t *testing.T, db *goatdb.DB, path string, want map[commit.ID][]commit.ID, ids ...commit.ID) {
	t.Helper()
	hist := historyParents(t, db, path, want, ids)
	for i := range hist {
		for j := range hist[i].Parents {
			hist[i].Parents[j] = commit.ID{}
		}
		hist[i].Parents = append(hist[i].Parents, commit.ID{})
	}
	historyParents(t, db, path, want, ids)
}

// historyParents reads the item's history and checks that it lists exactly
// the commits ids, with the parents want gives.
func historyParents(t *testing.T, db *goatdb.DB, path string, want map[commit.ID][]commit.ID, ids []commit.ID) []goatdb.CommitInfo {
	t.Helper()
	hist := checkHistory(t, db, path)
	got := make([]commit.ID, len(hist))
	for i, c := range hist {
		got[i] = c.ID
		if !slices.Equal(c.Parents, sortedIDs(want[c.ID]...)) {
			t.Errorf("history %s: commit %s has parents %v, want %v", path, c.ID.Short(), shortIDs(c.Parents), shortIDs(want[c.ID]))
		}
	}
	if got, ids := sortedIDs(got...), sortedIDs(ids...); !slices.Equal(got, ids) {
		t.Fatalf("history %s lists %v, want %v", path, shortIDs(got), shortIDs(ids))
	}
	return hist
}

func sortedIDs(ids ...commit.ID) []commit.ID {
	ids = slices.Clone(ids)
	slices.SortFunc(ids, commit.CompareIDs)
	return ids
}

func shortIDs(ids []commit.ID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.Short()
	}
	return out
}
