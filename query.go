package goatdb

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"path/filepath"
	"strings"
	"sync"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/query"
	"github.com/goatdb/goatdb/repo"
)

// ErrQueryConflict is returned by Query and OpenQuery when a query of the
// same name is open on the repository with a different definition.
var ErrQueryConflict = errors.New("goatdb: a query of that name is open with another definition")

// QuerySpec defines a query; see package query for how queries run.
type QuerySpec struct {
	// Repo is the repository /type/repo the query reads. With Source it
	// may be empty (it must otherwise name Source's repository).
	Repo string
	// Source chains this query to another: it sees only the items visible
	// in Source's results (Source's Limit applies), and updates when
	// Source does.
	Source *Query
	// Schema keeps only the items of this schema namespace; "" keeps all.
	Schema string
	// Where keeps the items for which it returns true; nil keeps all.
	// Deleted items never match. It must be deterministic and must not
	// call the query. A panic becomes an error of the update.
	Where func(Item) bool
	// SortBy orders the results by a field: absent first, ints and
	// numbers by value, others by item.Compare. Less orders them by a
	// function instead. Ties, and results without either, are ordered by
	// path. Desc reverses the field's or the function's order.
	SortBy string
	Less   func(a, b Item) bool
	Desc   bool
	// Limit is how many of the first results are visible; 0 means all.
	// Fewer matches than Limit show all of them.
	Limit int
	// Name identifies the query: opening a name already open on the
	// repository returns the same *Query, and a named query's state is
	// saved next to the repository's log (DIR/type/repo.queries/NAME.state)
	// on Close, so that reopening it resumes instead of rescanning. Names
	// are 1–128 characters of A-Z a-z 0-9 . _ -.
	Name string
	// Version is part of the definition a saved state must match: Go
	// functions cannot be compared, so change it whenever Where or Less
	// change meaning.
	Version string
}

// Query is an open query: results kept up to date incrementally, in
// order. It is safe for concurrent use.
type Query struct {
	db      *DB
	q       *query.Query
	repo    string
	r       *repo.Repo // the repository, held open while the query is
	release func()     // gives back the lease on r
	key     string     // registry key of a named query
	refs    int        // opens of a named query; guarded by db.queries.mu
}

// QueryEventKind says what happened to a query's visible results.
type QueryEventKind = query.Kind

// The query event kinds.
const (
	QueryAdded   = query.Added   // an item entered the visible results
	QueryRemoved = query.Removed // an item left them
	QueryChanged = query.Changed // a visible item has a new value
	QueryFailed  = query.Failed  // an update failed: see Err
)

// QueryEvent is a change of a query's visible results.
type QueryEvent struct {
	Kind QueryEventKind
	Item Item  // the new value (Added, Changed), or the value removed
	Old  Item  // the value before (Changed)
	Err  error // why an update failed (Failed)
	// AccessRemoved is set on a QueryRemoved event when the item left the
	// database because a server no longer lets this session read it (a
	// sync forgot its commits; see DB.Sync and ErrAccessRemoved), rather
	// than because it changed, was deleted or fell past Limit. It says
	// what holds when the event is delivered.
	AccessRemoved bool
}

// queryRegistry holds a DB's open queries so that Close stops them.
type queryRegistry struct {
	mu     sync.Mutex        // guards the fields below and Query.refs
	named  map[string]*Query // by repository and name
	open   []*Query          // in order of opening
	closed bool
}

// Query opens a query (see OpenQuery) and brings it up to date: the first
// time, by scanning the repository, yielding between chunks and ending
// early if ctx does. On error the query is closed. A query whose results
// are read once is cheaper with QueryOnce, which builds no state to update.
func (db *DB) Query(ctx context.Context, spec QuerySpec) (*Query, error) {
	q, err := db.OpenQuery(spec)
	if err != nil {
		return nil, err
	}
	if err := q.Update(ctx); err != nil {
		return nil, errors.Join(err, q.Close())
	}
	return q, nil
}

// OpenQuery opens a query without running it: a named query resumes from
// its saved state if that is still valid (Resumed says so), else its first
// Update (or Subscribe) scans. A name already open on the repository
// returns the same *Query if the definition matches (each open needs its
// own Close), or fails with ErrQueryConflict. A repository that does not
// exist is an error wrapping ErrNotFound: a query creates nothing.
//
// An open query holds a lease on its repository (see Acquire): it is not
// closed for idleness until the query is closed.
func (db *DB) OpenQuery(spec QuerySpec) (*Query, error) {
	rp, r, release, src, err := db.querySource(spec)
	if err != nil {
		return nil, err
	}
	q, held, err := db.openQuery(spec, rp, r, release, src)
	if !held {
		release() // failed, or an open query of that name holds its own
	}
	return q, err
}

// openQuery is OpenQuery once its repository is held; held reports
// whether the new query holds the lease (release).
func (db *DB) openQuery(spec QuerySpec, rp string, r *repo.Repo, release func(), src query.Source) (q *Query, held bool, err error) {
	db.queries.mu.Lock()
	defer db.queries.mu.Unlock()
	if db.queries.closed {
		return nil, false, ErrClosed
	}
	q = &Query{db: db, repo: rp, r: r, release: release, refs: 1}
	qs := query.Spec{
		Source: src, Schema: spec.Schema, SortBy: spec.SortBy, Desc: spec.Desc, Limit: spec.Limit,
		Name: spec.Name, Version: spec.Version, Salt: db.schemaSalt(spec.Schema),
		Logger: db.opts.Logger.With("repo", rp),
	}
	if spec.Source != nil {
		qs.Source, qs.Up = nil, spec.Source.q
	}
	if spec.Where != nil {
		qs.Where = func(it query.Item) bool { return spec.Where(q.item(it)) }
	}
	if spec.Less != nil {
		qs.Less = func(a, b query.Item) bool { return spec.Less(q.item(a), q.item(b)) }
	}
	if spec.Name != "" {
		if err := checkPart(spec.Name, "query name", spec.Name); err != nil {
			return nil, false, err
		}
		q.key = rp + "/" + spec.Name
		if !db.opts.ReadOnly {
			qs.StateFile = strings.TrimSuffix(db.logPath(rp), ".log") + ".queries" + string(filepath.Separator) + spec.Name + ".state"
		}
		if open := db.queries.named[q.key]; open != nil {
			q, err := open.reuse(qs)
			return q, false, err
		}
	}
	if q.q, err = query.New(qs); err != nil {
		return nil, false, fmt.Errorf("goatdb: query %s: %w", q.key, err)
	}
	if q.key != "" {
		if db.queries.named == nil {
			db.queries.named = map[string]*Query{}
		}
		db.queries.named[q.key] = q
	}
	db.queries.open = append(db.queries.open, q)
	return q, true, nil
}

// reuse returns an open named query for a new open of the same name.
func (q *Query) reuse(spec query.Spec) (*Query, error) {
	probe := spec
	probe.StateFile = ""
	p, err := query.New(probe)
	if err != nil {
		return nil, err
	}
	same := p.Definition() == q.q.Definition() && spec.Limit == q.q.Limit()
	p.Close()
	if !same {
		return nil, fmt.Errorf("%w: %s", ErrQueryConflict, q.key)
	}
	q.refs++
	return q, nil
}

// querySource returns the repository path, the repository with a lease
// on it and, for a query that is not chained, the source.
func (db *DB) querySource(spec QuerySpec) (string, *repo.Repo, func(), query.Source, error) {
	if spec.Source != nil {
		if spec.Source.db != db {
			return "", nil, nop, nil, errors.New("goatdb: a query's Source must be a query of the same DB")
		}
		if spec.Repo != "" && spec.Repo != spec.Source.repo {
			return "", nil, nop, nil, fmt.Errorf("goatdb: query of %s chained to a query of %s", spec.Repo, spec.Source.repo)
		}
		spec.Repo = spec.Source.repo
	}
	r, release, err := db.AcquireExisting(spec.Repo)
	if err != nil {
		return "", nil, nop, nil, fmt.Errorf("goatdb: query %s: %w", spec.Repo, err)
	}
	rp := spec.Repo
	if spec.Source != nil {
		return rp, r, release, nil, nil
	}
	upgrade := func(key string, v item.Item, s commit.Schema) (item.Item, commit.Schema, error) {
		it, err := db.view(rp, key, v, s, commit.ID{})
		return it.data, it.schema, err
	}
	return rp, r, release, query.FromRepo(r, db.fs, upgrade), nil
}

// schemaSalt describes the registered schema versions a query's values
// depend on (they decide upgrades), for its definition hash.
func (db *DB) schemaSalt(ns string) []byte {
	var b strings.Builder
	for _, s := range db.opts.Schemas.All() {
		if ns == "" || s.NS == ns {
			fmt.Fprintf(&b, "%s/%d;", s.NS, s.Version)
		}
	}
	return []byte(b.String())
}

// item converts the query package's item.
func (q *Query) item(it query.Item) Item {
	return Item{repo: q.repo, key: it.Key, data: it.Value, schema: it.Schema, head: it.Head}
}

// Repo returns the repository the query reads.
func (q *Query) Repo() string { return q.repo }

// Results iterates over the visible results in order, as of the last
// completed update. The loop may do anything, updates included: it reads
// a snapshot.
func (q *Query) Results() iter.Seq[Item] {
	return func(yield func(Item) bool) {
		for it := range q.q.Results() {
			if !yield(q.item(it)) {
				return
			}
		}
	}
}

// Count returns the number of visible results (at most Limit).
func (q *Query) Count() int { return q.q.Count() }

// Total returns the number of matching items, Limit aside.
func (q *Query) Total() int { return q.q.Total() }

// Update processes the commits that arrived since the last update, local
// or received by sync; the first update scans the repository. Its cost
// follows the number of items changed, not the repository's size.
func (q *Query) Update(ctx context.Context) error { return q.q.Update(ctx) }

// Wait returns once the query reflects every commit made before the call
// and, if it has subscribers, they have received the changes.
func (q *Query) Wait(ctx context.Context) error { return q.q.Wait(ctx) }

// Subscribe calls fn with the visible results as QueryAdded events, in
// order, and then with every change of them, from a goroutine that keeps
// the query up to date as commits arrive (local writes and sync alike).
// fn runs on that goroutine, one call at a time; it may call the query
// but not Close it (nor the DB). Cancel stops the calls; DB.Close and
// Close stop the goroutine.
func (q *Query) Subscribe(fn func(QueryEvent)) (cancel func()) {
	return q.q.Subscribe(func(ev query.Event) {
		e := QueryEvent{Kind: ev.Kind, Item: q.item(ev.Item), Old: q.item(ev.Old), Err: ev.Err}
		if ev.Kind == QueryRemoved {
			e.AccessRemoved = q.forgotten(ev.Item.Key)
		}
		fn(e)
	})
}

// forgotten reports whether item key left the query's repository because
// a sync forgot it.
func (q *Query) forgotten(key string) bool {
	_, ok := forgottenBy(q.r, key)
	return ok
}

// Progress reports how far the current (or last) update is: items
// evaluated, of how many. A first scan of a large repository advances it
// chunk by chunk.
func (q *Query) Progress() (done, total int) { return q.q.Progress() }

// Seq returns the repository position (log offset) the results reflect.
func (q *Query) Seq() uint64 { return q.q.Seq() }

// Resumed reports whether the query resumed from a saved state.
func (q *Query) Resumed() bool { return q.q.Resumed() }

// Err returns the error of the last update, nil if it succeeded.
func (q *Query) Err() error { return q.q.Err() }

// Save writes a named query's state now (Close does it too). On a
// read-only database it fails with ErrReadOnly (and Close saves nothing).
func (q *Query) Save() error {
	if q.db.opts.ReadOnly {
		return fmt.Errorf("goatdb: save query %s: %w", q.key, ErrReadOnly)
	}
	if q.key == "" {
		return fmt.Errorf("goatdb: save query: %w: only named queries are saved", query.ErrNotPersistent)
	}
	return q.q.Save()
}

// Close releases the query; a named query opened several times is closed
// by its last Close, which saves its state. Close waits for a subscriber
// call in progress, so do not call it from one.
func (q *Query) Close() error {
	reg := &q.db.queries
	reg.mu.Lock()
	if q.refs == 0 {
		reg.mu.Unlock()
		return ErrClosed
	}
	if q.refs--; q.refs > 0 {
		reg.mu.Unlock()
		return nil
	}
	reg.forget(q)
	reg.mu.Unlock()
	defer q.release()
	return q.q.Close()
}

// forget removes a query; mu must be held.
func (r *queryRegistry) forget(q *Query) {
	if q.key != "" && r.named[q.key] == q {
		delete(r.named, q.key)
	}
	for i, o := range r.open {
		if o == q {
			r.open = append(r.open[:i], r.open[i+1:]...)
			break
		}
	}
}

// closeAll closes every open query, newest first so chained queries close
// before their sources, saving the named ones. DB.Close calls it first.
func (r *queryRegistry) closeAll() error {
	r.mu.Lock()
	r.closed = true
	open := r.open
	r.open, r.named = nil, nil
	for _, q := range open {
		q.refs = 0
	}
	r.mu.Unlock()
	var errs []error
	for i := len(open) - 1; i >= 0; i-- {
		if err := open[i].q.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close query %s: %w", open[i].key, err))
		}
		open[i].release()
	}
	return errors.Join(errs...)
}
