package query

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/tidwall/btree"
	"github.com/zeebo/blake3"
)

// Spec defines a query.
type Spec struct {
	// Source is the repository the query reads. Exactly one of Source and
	// Up is set.
	Source Source
	// Up chains the query to another: it then sees only Up's visible
	// results (Up's Limit applies), with Up's values.
	Up *Query
	// Schema keeps only items of this schema namespace; "" keeps all.
	Schema string
	// Where keeps the items for which it returns true; nil keeps all.
	// Deleted items never match. It must be deterministic and must not
	// call the query.
	Where func(Item) bool
	// SortBy orders the results by this field (absent first, ints and
	// numbers by value, else item.Compare); Less orders them by a
	// function instead. Without either, results are ordered by key. Ties
	// are broken by key. Desc reverses the field's or function's order.
	SortBy string
	Less   func(a, b Item) bool
	Desc   bool
	// Limit is how many of the first results are visible; 0 means all.
	Limit int
	// Name names the query in the state file's definition hash and logs.
	Name string
	// Version is part of the definition hash: change it when Where or Less
	// change meaning, so that a saved state is not trusted.
	Version string
	// Salt is more of the definition (goatdb: the schema versions in use).
	Salt []byte
	// StateFile, if set, is where Save writes the query's state and where
	// New resumes it from. The root source must implement Log.
	StateFile string
	// Logger receives why a state file was not used; nil discards.
	Logger *slog.Logger
	// Chunk is how many items an update evaluates between checks of its
	// context (and yields of the processor); 0 means 1024.
	Chunk int
}

// Validate checks the spec.
func (s *Spec) Validate() error {
	switch {
	case (s.Source == nil) == (s.Up == nil):
		return errors.New("query: give exactly one of Source and Up")
	case s.SortBy != "" && s.Less != nil:
		return errors.New("query: give SortBy or Less, not both")
	case s.Limit < 0:
		return fmt.Errorf("query: negative limit %d", s.Limit)
	case s.Chunk < 0:
		return fmt.Errorf("query: negative chunk %d", s.Chunk)
	}
	return nil
}

// Query is an incremental query over a repository's commit sequence. See
// the package documentation for its invariants.
type Query struct {
	spec  Spec
	src   Source // the root source; shared along a chain
	up    *Query
	def   [32]byte // definition hash
	local bool     // visibility upstream depends only on each key's own commits
	log   *slog.Logger

	// sem is the update lock, taken with a context. Its holder owns the
	// fields up to mu; a chained query's update also holds its upstream's.
	sem   chan struct{}
	tree  *btree.BTreeG[*entry] // every matching item, in order
	byKey keyIndex
	seq   uint64                // the source position tree reflects
	epoch uint64                // the source epoch seq is a position of
	fresh bool                  // tree must be built by a full scan
	work  *batch                // the update in progress, if one was interrupted
	bound *entry                // the last visible entry, or nil when all are visible
	last  lastPass              // the last finished pass, for chained queries
	stamp uint64                // number of passes begun
	bulk  bool                  // loading a state file: order entries by position
	prior *btree.BTreeG[*entry] // results published before a reset: a rescan's changes are against them

	children atomic.Int32 // open queries chained to this one
	closing  atomic.Bool
	done     atomic.Int64 // Progress
	total    atomic.Int64

	// mu guards the published state and the subscriptions.
	mu          sync.Mutex
	snap        *btree.BTreeG[*entry] // the published results; never modified
	pubSeq      uint64
	pubEpoch    uint64
	subs        []*sub // receiving changes
	joining     []*sub // subscribed, waiting for their first snapshot
	failed      error  // the last update's error; nil after a success
	closed      bool
	watching    bool
	delivered   uint64        // every change up to this position was delivered
	delEpoch    uint64        // the epoch of delivered
	deliveredCh chan struct{} // closed and replaced when delivered grows
	resumed     bool

	saveMu sync.Mutex // serialises Save

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wake   chan struct{} // tells the watcher there is something to deliver
	wg     sync.WaitGroup
}

// batch is one pass over a set of changed keys, possibly interrupted and
// resumed.
type batch struct {
	keys    []string
	next    int
	from    uint64
	to      uint64
	epoch   uint64 // of from and to
	scan    bool
	bOld    *entry // the last visible entry when the pass began
	stamp   uint64
	changes []change // of the whole pass, except a scan's
	chunk   []change // of the chunk being applied
}

// change is one key's entry before and after: old is nil if the key had
// none, new if it has none now. A pass records one per key it changed
// (wasVis set); a change of the visible results (see kind) becomes an
// Event when delivered.
type change struct {
	old, new *entry
	wasVis   bool // in a pass: old was visible when the pass began
}

// lastPass is what a chained query needs of its upstream's last pass: the
// keys whose visible entry changed between from and to.
type lastPass struct {
	from, to uint64
	keys     []string
	usable   bool // keys were computed (a scan's or a pass without chained queries' are not)
}

// New returns a query. With a StateFile it resumes the saved state if the
// file is intact and still describes the same definition and log; otherwise
// the query starts empty and its first update scans. New does not run the
// query: call Update, or Subscribe.
func New(spec Spec) (*Query, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if spec.Chunk == 0 {
		spec.Chunk = 1024
	}
	q := &Query{spec: spec, src: spec.Source, up: spec.Up, log: spec.Logger, local: true,
		sem: make(chan struct{}, 1), fresh: true,
		deliveredCh: make(chan struct{}), wake: make(chan struct{}, 1)}
	if q.log == nil {
		q.log = slog.New(slog.DiscardHandler)
	}
	if q.up != nil {
		if q.up.closing.Load() {
			return nil, ErrClosed
		}
		q.src = q.up.src
		q.local = q.up.local && q.up.spec.Limit == 0
		q.up.children.Add(1)
	}
	if _, ok := q.src.(Log); spec.StateFile != "" && !ok {
		return nil, fmt.Errorf("%w: the source has no log file", ErrNotPersistent)
	}
	q.def = q.definition()
	q.tree = q.newTree()
	q.snap = q.tree.Copy()
	q.ctx, q.cancel = context.WithCancel(context.Background())
	if spec.StateFile != "" {
		q.resume()
	}
	return q, nil
}

// definition hashes everything a saved state depends on.
func (q *Query) definition() [32]byte {
	b := make([]byte, 0, 256)
	field := func(s string) {
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(append(append(b, ':'), s...), ';')
	}
	field("goatdb query v1")
	field(q.spec.Name)
	field(q.spec.Version)
	field(q.spec.Schema)
	field(q.spec.SortBy)
	b = strconv.AppendBool(b, q.spec.Desc)
	b = strconv.AppendBool(b, q.spec.Where != nil)
	b = strconv.AppendBool(b, q.spec.Less != nil)
	field(string(q.spec.Salt))
	if q.up != nil {
		field(string(q.up.def[:]))
		b = strconv.AppendInt(b, int64(q.up.spec.Limit), 10)
	}
	return blake3.Sum256(b)
}

// Definition returns the hash of the query's definition, which a saved
// state must match (it includes its upstream's, and that one's Limit).
func (q *Query) Definition() [32]byte { return q.def }

// Limit returns the spec's Limit.
func (q *Query) Limit() int { return q.spec.Limit }

func (q *Query) lock(ctx context.Context) error {
	select {
	case q.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-q.ctx.Done():
		return ErrClosed
	}
}

func (q *Query) unlock() { <-q.sem }

// Update processes the commits that arrived since the last update: the
// first update scans every item, later ones only the items with new
// commits. It evaluates Spec.Chunk items at a time, checking ctx and
// yielding the processor in between; an update ended by ctx keeps its
// progress, and the next one continues it. Results change only when an
// update completes.
func (q *Query) Update(ctx context.Context) error {
	if err := q.lock(ctx); err != nil {
		return err
	}
	err := q.update(ctx)
	q.unlock()
	q.record(ctx, err)
	return err
}

// update runs with the update lock held.
func (q *Query) update(ctx context.Context) error {
	if q.closing.Load() {
		return ErrClosed
	}
	if q.up != nil {
		if err := q.up.lock(ctx); err != nil {
			return err
		}
		defer q.up.unlock()
		if err := q.up.update(ctx); err != nil {
			return err
		}
	}
	// A pass that an earlier update left unfinished comes first (unless
	// the log was compacted since: it rescans); then one for what arrived
	// since.
	if q.work != nil && q.work.epoch != q.current() {
		q.reset()
	}
	if q.work != nil {
		if err := q.pass(ctx); err != nil {
			return err
		}
	}
	if !q.begin() {
		return nil
	}
	return q.pass(ctx)
}

// pass runs the pass begun and finishes it; a failure other than ctx's or
// closing resets the query.
func (q *Query) pass(ctx context.Context) error {
	if err := q.run(ctx); err != nil {
		if !errors.Is(err, ctx.Err()) && !errors.Is(err, ErrClosed) {
			q.reset()
		}
		return err
	}
	q.finish()
	return nil
}

// current returns the epoch the query's positions are compared in: its
// source's, or for a chained query its upstream's (updated first).
func (q *Query) current() uint64 {
	if q.up != nil {
		return q.up.epoch
	}
	return q.src.Epoch()
}

// begin starts a pass over the keys that may have changed, and reports
// whether there is one. After a compaction (a new epoch: positions start
// over, so the query's own means nothing) it rescans.
func (q *Query) begin() bool {
	if !q.fresh && q.epoch != q.current() {
		q.reset()
	}
	var keys []string
	var to, epoch uint64
	from := q.seq
	up := q.up
	switch {
	case up == nil && q.fresh:
		epoch = q.src.Epoch() // first: a compaction after it only rescans again
		to = q.src.Seq()
		keys = q.src.Keys()
	case up == nil:
		keys, to = q.src.Since(q.seq)
		if q.src.Epoch() != q.epoch { // compacted meanwhile: keys and to are the new log's
			q.reset()
			return q.begin() // a scan
		}
		if to == q.seq {
			return false
		}
		epoch = q.epoch
	case q.fresh:
		keys, to, epoch = up.visibleKeys(), up.seq, up.epoch
	case q.seq == up.seq:
		return false
	case up.last.usable && up.last.from == q.seq && up.last.to == up.seq:
		keys, to, epoch = up.last.keys, up.seq, up.epoch
	default:
		keys, _ = q.src.Since(q.seq)
		to, epoch = up.seq, up.epoch
		if !q.local { // a limit upstream: items may have crossed it without commits
			keys = union(keys, up.visibleKeys(), q.byKey.all())
		}
	}
	if q.fresh && q.byKey.overlay == nil {
		q.byKey.overlay = make(map[string]*entry, min(len(keys), 1024))
	}
	q.stamp++
	q.work = &batch{keys: keys, from: from, to: to, epoch: epoch, scan: q.fresh, bOld: q.bound, stamp: q.stamp}
	q.done.Store(0)
	q.total.Store(int64(len(keys)))
	return true
}

// union returns the distinct strings of lists.
func union(lists ...[]string) []string {
	var all []string
	for _, l := range lists {
		all = append(all, l...)
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// run evaluates the pass's remaining keys a chunk at a time.
func (q *Query) run(ctx context.Context) (err error) {
	defer func() {
		if p := recover(); p != nil {
			if lp, ok := p.(loadPanic); ok {
				err = lp.err
			} else {
				err = fmt.Errorf("%w: ordering %s: %v", ErrCallback, q.spec.Name, p)
			}
		}
	}()
	w := q.work
	for w.next < len(w.keys) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if q.closing.Load() {
			return ErrClosed
		}
		end := min(w.next+q.spec.Chunk, len(w.keys))
		if err := q.step(w.keys[w.next:end]); err != nil {
			return err
		}
		w.next = end
		q.done.Store(int64(end))
		if end < len(w.keys) {
			runtime.Gosched()
		}
	}
	return nil
}

// step evaluates keys and applies the changes to the index. Evaluation
// happens before any change, so a failing predicate leaves the index as
// it was.
func (q *Query) step(keys []string) error {
	w := q.work
	chunk := w.chunk[:0]
	for _, k := range keys {
		var old *entry
		if !w.scan { // a scan starts from an empty index
			old = q.byKey.get(k)
		}
		nu, err := q.eval(k, old)
		if err != nil {
			return err
		}
		if nu != old {
			chunk = append(chunk, change{old: old, new: nu})
		}
	}
	limited := q.spec.Limit > 0
	for i := range chunk {
		c := &chunk[i]
		if c.old != nil {
			c.wasVis = !limited || q.within(c.old, w.bOld)
			q.tree.Delete(c.old)
			q.byKey.del(c.old.it.Key)
		}
		switch {
		case c.new == nil:
		case w.scan:
			q.tree.Load(c.new) // appends when keys come in index order
		default:
			q.tree.Set(c.new)
		}
		if c.new != nil {
			q.byKey.set(c.new.it.Key, c.new)
		}
	}
	w.chunk = chunk
	if !w.scan { // a scan's changes are all its results, found in the index
		w.changes = append(w.changes, chunk...)
	}
	return nil
}

// eval returns key's entry after the pass: nil if it does not match, old
// if it did not change.
func (q *Query) eval(key string, old *entry) (*entry, error) {
	var it Item
	if q.up != nil {
		e := q.up.visible(key)
		if e == nil {
			return nil, nil
		}
		if old != nil && old.it.Head == e.it.Head {
			return old, nil
		}
		var err error
		if it, err = e.item(q.src); err != nil {
			return nil, err
		}
	} else {
		var ok bool
		var err error
		it, ok, err = q.src.Load(key)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", q.spec.Name, err)
		}
		if !ok {
			return nil, nil
		}
		if old != nil && old.it.Head == it.Head {
			return old, nil
		}
	}
	if it.Value.Deleted() || q.spec.Schema != "" && it.Schema.NS != q.spec.Schema {
		return nil, nil
	}
	match, err := q.where(it)
	if err != nil || !match {
		return nil, err
	}
	return newEntry(it, q.spec.SortBy, q.stamp), nil
}

func (q *Query) where(it Item) (match bool, err error) {
	if q.spec.Where == nil {
		return true, nil
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: where %s on %s: %v", ErrCallback, q.spec.Name, it.Key, p)
		}
	}()
	return q.spec.Where(it), nil
}

// reset drops the index after a failed pass or a compaction: the next
// pass rescans. The published results stay, and the rescan's changes are
// computed against them.
func (q *Query) reset() {
	q.mu.Lock()
	q.prior = q.snap
	q.mu.Unlock()
	q.tree = q.newTree()
	q.byKey = keyIndex{}
	q.fresh, q.work, q.bound, q.seq = true, nil, nil, 0
	q.last = lastPass{}
}

// finish completes the pass: the new visible boundary, the visible
// changes, and the published results.
func (q *Query) finish() {
	w := q.work
	q.bound = q.boundary()
	q.mu.Lock()
	want := len(q.subs) > 0
	q.mu.Unlock()
	var vis []change
	usable := !w.scan && q.prior == nil && q.children.Load() > 0
	switch {
	case q.prior != nil && want:
		vis = q.diff(q.prior)
	case w.scan && want:
		q.scanVisible(q.tree, func(e *entry) { vis = append(vis, change{new: e}) })
	case want || usable:
		vis = q.visibleChanges(w)
	}
	q.prior = nil
	q.seq, q.epoch, q.fresh, q.work = w.to, w.epoch, false, nil
	q.last = lastPass{from: w.from, to: w.to, usable: usable}
	if usable {
		q.last.keys = make([]string, len(vis))
		for i, v := range vis {
			q.last.keys[i] = v.key()
		}
	}
	q.publish(vis, len(w.changes) > 0 || w.scan)
}

// publish makes the index the visible results (if it changed) and queues
// the visible changes for the subscribers.
func (q *Query) publish(vis []change, changed bool) {
	var snap *btree.BTreeG[*entry]
	if changed {
		snap = q.tree.Copy()
	}
	q.mu.Lock()
	if snap != nil {
		q.snap = snap
	}
	q.pubSeq, q.pubEpoch = q.seq, q.epoch
	for _, s := range q.subs {
		s.queue(vis)
	}
	q.mu.Unlock()
	if len(vis) > 0 {
		q.signal()
	}
}

func (q *Query) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Results iterates over the visible results in order, as of the last
// completed update. It reads a snapshot: updates do not disturb it, and
// the loop may call anything.
func (q *Query) Results() iter.Seq[Item] {
	return func(yield func(Item) bool) {
		q.mu.Lock()
		snap := q.snap
		q.mu.Unlock()
		n := 0
		snap.Scan(func(e *entry) bool {
			if q.spec.Limit > 0 && n >= q.spec.Limit {
				return false
			}
			n++
			it, err := e.item(q.src)
			if err != nil {
				q.log.Error("query result unreadable", "query", q.spec.Name, "err", err)
				return true
			}
			return yield(it)
		})
	}
}

// Count returns how many results are visible (at most Limit).
func (q *Query) Count() int {
	n := q.Total()
	if q.spec.Limit > 0 {
		n = min(n, q.spec.Limit)
	}
	return n
}

// Total returns how many items match, Limit aside.
func (q *Query) Total() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.snap.Len()
}

// Seq returns the source position the results reflect.
func (q *Query) Seq() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pubSeq
}

// Progress reports how many of the items of the current (or last) update
// pass have been evaluated, and how many it has.
func (q *Query) Progress() (done, total int) {
	return int(q.done.Load()), int(q.total.Load())
}

// Err returns the error of the last update, nil if it succeeded.
func (q *Query) Err() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.failed
}

// Resumed reports whether New resumed the query from its state file.
func (q *Query) Resumed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.resumed
}

// Close stops the query's watcher, saves its state if it has a state file,
// and releases it. Chained queries still open fail with ErrClosed. Close
// waits for a subscriber's function that is running: do not call it from
// one.
func (q *Query) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	q.closed = true
	q.subs, q.joining = nil, nil
	q.mu.Unlock()
	q.closing.Store(true)
	q.cancel()
	q.wg.Wait()
	var err error
	if q.spec.StateFile != "" {
		err = q.save()
	}
	if q.up != nil {
		q.up.children.Add(-1)
	}
	return err
}
