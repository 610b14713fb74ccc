package query

import (
	"fmt"
	"sync/atomic"

	"github.com/goatdb/goatdb/item"
	"github.com/tidwall/btree"
)

// entry is one matching item in a query's ordered index. Entries are
// immutable once in an index, but for the value of an entry resumed from
// a state file, which is loaded on first use; published snapshots share
// them.
type entry struct {
	it    Item                 // Key and Head always; the rest once loaded
	sort  item.Value           // the SortBy field; zero Value when absent
	stamp uint64               // the update pass that created it
	ord   int32                // position in the state file it was resumed from, else -1
	val   atomic.Pointer[Item] // &it, or the loaded item; nil until loaded
}

func newEntry(it Item, sortBy string, stamp uint64) *entry {
	e := &entry{it: it, stamp: stamp, ord: -1}
	if sortBy != "" {
		e.sort, _ = it.Value.Get(sortBy)
	}
	e.val.Store(&e.it)
	return e
}

// item returns the entry's item, loading it from src at the entry's head
// if it was resumed from a state file and not read since.
func (e *entry) item(src Source) (Item, error) {
	if p := e.val.Load(); p != nil {
		return *p, nil
	}
	it, err := src.LoadAt(e.it.Key, e.it.Head)
	if err != nil {
		return Item{}, fmt.Errorf("load %s at %s: %w", e.it.Key, e.it.Head.Short(), err)
	}
	e.val.CompareAndSwap(nil, &it)
	return *e.val.Load(), nil
}

// compareValues orders sort values: absent (the zero Value) first, ints
// and numbers together by exact numeric value (item.CompareNumbers; the
// number 1 before the equal int 1), then item.Compare (type, then value).
func compareValues(a, b item.Value) int {
	if c := item.CompareNumbers(a, b); c != 0 {
		return c
	}
	return item.Compare(a, b)
}

// loadPanic carries a load error out of a comparator, which cannot return
// one; the update recovers it.
type loadPanic struct{ err error }

// less is the index order: the sort field or the Less function (reversed
// by Desc), then the key. While bulk loading a state file, entries from it
// are ordered by their position in the file, which is the order they were
// saved in.
func (q *Query) less(a, b *entry) bool {
	if q.bulk && a.ord >= 0 && b.ord >= 0 {
		return a.ord < b.ord
	}
	if a == b {
		return false
	}
	switch {
	case q.spec.SortBy != "":
		c := compareValues(a.sort, b.sort)
		if q.spec.Desc {
			c = -c
		}
		if c != 0 {
			return c < 0
		}
	case q.spec.Less != nil:
		x, y := q.mustItem(a), q.mustItem(b)
		if q.spec.Desc {
			x, y = y, x
		}
		if q.spec.Less(x, y) {
			return true
		}
		if q.spec.Less(y, x) {
			return false
		}
	}
	return a.it.Key < b.it.Key
}

func (q *Query) mustItem(e *entry) Item {
	it, err := e.item(q.src)
	if err != nil {
		panic(loadPanic{err})
	}
	return it
}

func (q *Query) newTree() *btree.BTreeG[*entry] {
	return btree.NewBTreeGOptions(q.less, btree.Options{NoLocks: true})
}

// within reports whether e is at or before bound in the index order; a nil
// bound is after everything.
func (q *Query) within(e, bound *entry) bool {
	return bound == nil || !q.less(bound, e)
}

// boundary returns the last visible entry when Limit hides some, else nil.
func (q *Query) boundary() *entry {
	if q.spec.Limit == 0 || q.tree.Len() <= q.spec.Limit {
		return nil
	}
	e, _ := q.tree.GetAt(q.spec.Limit - 1)
	return e
}

// visible returns the entry of key if it is in the visible results (the
// first Limit), else nil. The update lock must be held.
func (q *Query) visible(key string) *entry {
	e := q.byKey.get(key)
	if e == nil || !q.within(e, q.bound) {
		return nil
	}
	return e
}

// visibleKeys returns the keys of the visible results. The update lock
// must be held.
func (q *Query) visibleKeys() []string {
	n := q.tree.Len()
	if q.spec.Limit > 0 {
		n = min(n, q.spec.Limit)
	}
	keys := make([]string, 0, n)
	q.tree.Scan(func(e *entry) bool {
		keys = append(keys, e.it.Key)
		return len(keys) < n
	})
	return keys
}

// keyIndex finds a query's entries by key: the entries resumed from a
// state file, kept sorted by key in one slice (binary search, nothing to
// build at resume), overlaid by a map of the entries set or removed since
// (nil: removed).
type keyIndex struct {
	base    []entry // sorted by key; never modified
	overlay map[string]*entry
}

func (x *keyIndex) get(key string) *entry {
	if e, ok := x.overlay[key]; ok {
		return e
	}
	i, j := 0, len(x.base)
	for i < j {
		h := int(uint(i+j) >> 1)
		if x.base[h].it.Key < key {
			i = h + 1
		} else {
			j = h
		}
	}
	if i < len(x.base) && x.base[i].it.Key == key {
		return &x.base[i]
	}
	return nil
}

func (x *keyIndex) set(key string, e *entry) {
	if x.overlay == nil {
		x.overlay = map[string]*entry{}
	}
	x.overlay[key] = e
}

func (x *keyIndex) del(key string) {
	if len(x.base) == 0 {
		delete(x.overlay, key)
		return
	}
	x.set(key, nil)
}

// all returns every key with an entry.
func (x *keyIndex) all() []string {
	var keys []string
	for i := range x.base {
		if _, ok := x.overlay[x.base[i].it.Key]; !ok {
			keys = append(keys, x.base[i].it.Key)
		}
	}
	for k, e := range x.overlay {
		if e != nil {
			keys = append(keys, k)
		}
	}
	return keys
}
