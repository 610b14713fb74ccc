package goatdb

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/query"
	"github.com/goatdb/goatdb/repo"
)

// QueryOnce evaluates spec over the repository's current items and
// returns the results a Query of the same spec would show: the same items
// (deleted ones never match), in the same order (ties by path), the first
// Limit of them. It keeps no state: use it for a query run once, and
// Query for one read again or watched, whose later updates cost only what
// changed.
//
// It reads the items in key order, a chunk of up to 256 at a time under
// the repository's read lock, as Range does, and runs Where and Less with
// no lock held; ctx is checked between chunks. With a Limit and an order
// it keeps only the best Limit matches. Source, Name and Version do not
// apply: a Source is an error, the others are ignored. A panicking Where
// or Less, or an item whose schema upgrade fails, fails the query; the
// error of a panic wraps query.ErrCallback.
func (db *DB) QueryOnce(ctx context.Context, spec QuerySpec) ([]Item, error) {
	if err := checkOnce(spec); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, release, err := db.AcquireExisting(spec.Repo)
	if err != nil {
		return nil, fmt.Errorf("goatdb: query %s: %w", spec.Repo, err)
	}
	defer release()
	o := &onceQuery{db: db, spec: spec}
	scratch := itemPool.Get().(*[]Item)
	o.items = (*scratch)[:0]
	defer func() {
		if cap(o.items) > maxPooledItems {
			return // a large query's: not kept for the small ones
		}
		clear(o.items[:o.used]) // hold no items while pooled; the rest is still clear
		*scratch = o.items[:0]
		itemPool.Put(scratch)
	}()
	if err := o.scan(ctx, r); err != nil {
		return nil, err
	}
	return o.results()
}

// itemPool holds the slices QueryOnce gathers matches in: the results are
// copied out of them, at their size.
var itemPool = sync.Pool{New: func() any { return new([]Item) }}

// maxPooledItems bounds the slices itemPool keeps.
const maxPooledItems = 4096

// checkOnce reports a spec QueryOnce cannot run.
func checkOnce(spec QuerySpec) error {
	switch {
	case spec.Source != nil:
		return fmt.Errorf("goatdb: query %s: QueryOnce does not take a Source: run the source's query, or use Query", spec.Repo)
	case spec.SortBy != "" && spec.Less != nil:
		return fmt.Errorf("goatdb: query %s: give SortBy or Less, not both", spec.Repo)
	case spec.Limit < 0:
		return fmt.Errorf("goatdb: query %s: negative limit %d", spec.Repo, spec.Limit)
	}
	return nil
}

// onceQuery is one evaluation of a QuerySpec by QueryOnce.
type onceQuery struct {
	db      *DB
	spec    QuerySpec
	ordered bool         // by SortBy or Less, not by key
	items   []Item       // the matches, or with a Limit and an order a max-heap of the best
	sorts   []item.Value // with SortBy, each match's value of the field (zero when absent)
	done    bool         // no later item can be a result
	cur     Item         // the item a chunk is evaluating
	in      int          // the callback a chunk is running: inNone, inWhere or inLess
	used    int          // the most matches items held at once: its written prefix

	ns     string // the namespace of the last item with one, and
	latest uint32 // the latest version registered of it (0: none)
}

// scan evaluates the repository's live items in key order, a chunk at a
// time.
func (o *onceQuery) scan(ctx context.Context, r *repo.Repo) error {
	o.ordered = o.spec.SortBy != "" || o.spec.Less != nil
	rs := repo.RangeSpec{Limit: min(rangeChunk, r.Count()+1)}
	buf, used := entryPool.Get().(*[]repo.Entry), 0
	defer func() {
		clear((*buf)[:used]) // hold no values while pooled; the rest is still clear
		entryPool.Put(buf)
	}()
	for {
		es := r.AppendRange((*buf)[:0], rs)
		*buf, used = es, max(used, len(es))
		if err := o.chunk(es); err != nil || o.done || len(es) < rs.Limit {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rs.From, rs.After, rs.Limit = es[len(es)-1].Key, true, rangeChunk
	}
}

// entryPool holds the chunks QueryOnce reads entries into.
var entryPool = sync.Pool{New: func() any { return new([]repo.Entry) }}

// chunk evaluates a chunk of entries and keeps the matches that may be
// results. A panic of Where or Less is recovered once for the chunk, not
// per item: o.in says which callback was running.
func (o *onceQuery) chunk(es []repo.Entry) (err error) {
	defer func() {
		if o.in == inNone {
			return // not a callback's panic: it goes on
		}
		if p := recover(); p != nil {
			err = o.callbackPanic(p)
		}
		o.in = inNone
	}()
	limit := o.spec.Limit
	it := &o.cur
	for i := range es {
		e := &es[i]
		if o.spec.Schema != "" && e.Schema.NS != o.spec.Schema {
			continue // an upgrade keeps the namespace
		}
		if err := o.view(e, it); err != nil {
			return err
		}
		if o.spec.Where != nil {
			o.in = inWhere
			ok := o.spec.Where(*it)
			o.in = inNone
			if !ok {
				continue
			}
		}
		o.add(it)
		if !o.ordered && limit > 0 && len(o.items) == limit { // key order: the first Limit
			o.done = true
			break
		}
	}
	*it = Item{} // hold no value past the chunk
	return nil
}

// The callback a chunk is running, if any.
const (
	inNone  = iota
	inWhere // spec.Where on o.cur
	inLess  // spec.Less, comparing matches
)

// callbackPanic is the error of a panic p of the callback o.in.
func (o *onceQuery) callbackPanic(p any) error {
	if o.in == inWhere {
		return fmt.Errorf("goatdb: query %s: %w: where on %s: %v", o.spec.Repo, query.ErrCallback, o.cur.key, p)
	}
	return fmt.Errorf("goatdb: query %s: %w: ordering: %v", o.spec.Repo, query.ErrCallback, p)
}

// add keeps a match: every one, or with a Limit and an order the best
// Limit in a heap. It runs within chunk, which recovers a panic of Less.
func (o *onceQuery) add(it *Item) {
	o.items = append(o.items, *it)
	o.used = max(o.used, len(o.items))
	if o.spec.SortBy != "" {
		v, _ := it.data.Get(o.spec.SortBy)
		o.sorts = append(o.sorts, v)
	}
	limit := o.spec.Limit
	if limit == 0 || !o.ordered {
		return
	}
	o.in = inLess
	if len(o.items) <= limit {
		o.up(len(o.items) - 1)
	} else { // the new match replaces the worst if better
		if o.compare(limit, 0) < 0 {
			o.swap(limit, 0)
			o.truncate(limit)
			o.down(0)
		} else {
			o.truncate(limit)
		}
	}
	o.in = inNone
}

// view is DB.view into it, looking up the latest version of a namespace
// once for a run of items of that namespace rather than per item. An
// item whose schema is upgraded is upgraded twice, to test it and to keep
// it: such items are rare, and upgrades deterministic.
func (o *onceQuery) view(e *repo.Entry, it *Item) error {
	if ns := e.Schema.NS; ns != "" {
		if ns != o.ns {
			o.ns, o.latest = ns, 0
			if s, ok := o.db.opts.Schemas.Latest(ns); ok {
				o.latest = s.Version
			}
		}
		if o.latest > e.Schema.Version {
			up, err := o.db.view(o.spec.Repo, e.Key, e.Value, e.Schema, e.Head)
			if err != nil {
				return fmt.Errorf("goatdb: query %s: %w", o.spec.Repo, err)
			}
			*it = up
			return nil
		}
	}
	*it = Item{repo: o.spec.Repo, key: e.Key, data: e.Value, schema: e.Schema, head: e.Head}
	return nil
}

// callback runs fn, which compares matches, turning a panic of Less into
// an error.
func (o *onceQuery) callback(fn func()) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("goatdb: query %s: %w: ordering: %v", o.spec.Repo, query.ErrCallback, p)
		}
	}()
	fn()
	return nil
}

// compare orders matches i and j as a Query does: by the SortBy field
// (absent first, ints and numbers by value, others by item.Compare) or
// by Less, reversed by Desc, then by key.
func (o *onceQuery) compare(i, j int) int {
	switch {
	case o.spec.SortBy != "":
		a, b := o.sorts[i], o.sorts[j]
		c := item.CompareNumbers(a, b)
		if c == 0 {
			c = item.Compare(a, b)
		}
		if o.spec.Desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	case o.spec.Less != nil:
		x, y := o.items[i], o.items[j]
		if o.spec.Desc {
			x, y = y, x
		}
		if o.spec.Less(x, y) {
			return -1
		}
		if o.spec.Less(y, x) {
			return 1
		}
	}
	return strings.Compare(o.items[i].key, o.items[j].key)
}

func (o *onceQuery) swap(i, j int) {
	o.items[i], o.items[j] = o.items[j], o.items[i]
	if o.sorts != nil {
		o.sorts[i], o.sorts[j] = o.sorts[j], o.sorts[i]
	}
}

func (o *onceQuery) truncate(n int) {
	o.items = o.items[:n]
	if o.sorts != nil {
		o.sorts = o.sorts[:n]
	}
}

// up and down keep the matches a max-heap by compare: its root is the
// worst of the best Limit.
func (o *onceQuery) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if o.compare(p, i) >= 0 {
			return
		}
		o.swap(p, i)
		i = p
	}
}

func (o *onceQuery) down(i int) {
	n := len(o.items)
	for {
		c := 2*i + 1
		if c >= n {
			return
		}
		if c+1 < n && o.compare(c+1, c) > 0 {
			c++
		}
		if o.compare(i, c) >= 0 {
			return
		}
		o.swap(i, c)
		i = c
	}
}

// results returns the matches in order, in a slice of their own.
func (o *onceQuery) results() ([]Item, error) {
	switch {
	case len(o.items) == 0:
		return nil, nil
	case !o.ordered || len(o.items) == 1:
		return slices.Clone(o.items), nil
	}
	perm := make([]int32, len(o.items))
	for i := range perm {
		perm[i] = int32(i)
	}
	err := o.callback(func() {
		slices.SortFunc(perm, func(i, j int32) int { return o.compare(int(i), int(j)) })
	})
	if err != nil {
		return nil, err
	}
	out := make([]Item, len(perm))
	for i, p := range perm {
		out[i] = o.items[p]
	}
	return out, nil
}
