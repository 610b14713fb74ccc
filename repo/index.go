package repo

import (
	"fmt"
	"strings"

	"github.com/tidwall/btree"
)

// liveIndex is the ordered set of live items: those with a head that is not
// deleted (what Get and Count see). It is kept by setHead, the one place an
// item's head changes (writes, receives, merges, exclusions and restores,
// compaction's rebuilds, replay), and emptied by reset; every change is one
// O(log n) insert or delete. An entry is the item's *itemState, so a key
// costs one pointer in the tree and its string is shared with the item.
// r.mu guards it: the tree's own locks are off.
type liveIndex struct {
	tr *btree.BTreeG[*itemState] // nil until the first live item
}

func byKey(a, b *itemState) bool { return a.key < b.key }

// update puts st in the index or takes it out, after its head changed.
func (x *liveIndex) update(st *itemState, live bool) {
	switch {
	case live && x.tr == nil:
		x.tr = btree.NewBTreeGOptions(byKey, btree.Options{NoLocks: true})
		fallthrough
	case live:
		x.tr.Set(st)
	case x.tr != nil:
		x.tr.Delete(st)
	}
}

func (x *liveIndex) clear() { x.tr = nil }

// load fills an empty index with items sorted by key.
func (x *liveIndex) load(sorted []*itemState) {
	if len(sorted) == 0 {
		return
	}
	x.tr = btree.NewBTreeGOptions(byKey, btree.Options{NoLocks: true})
	for _, st := range sorted {
		x.tr.Load(st)
	}
}

// RangeSpec selects live items by key for Range: keys at or after From
// (strictly after, if After), starting with Prefix; at most Limit of them,
// or every one if Limit is 0.
type RangeSpec struct {
	From   string
	After  bool
	Prefix string
	Limit  int
}

// Range returns the live items (head not deleted) that spec selects, in
// key order, read together under one read lock. Excluded items whose every
// commit is out have no head and are left out, as Get leaves them out. It
// does not sort: the keys come from an ordered index, so a page of n keys
// costs O(log items + n).
func (r *Repo) Range(spec RangeSpec) []Entry {
	var out []Entry
	if spec.Limit > 0 {
		out = make([]Entry, 0, min(spec.Limit, 1024))
	}
	return r.AppendRange(out, spec)
}

// AppendRange is Range appending to dst, and returning the extended
// slice: a caller that reuses dst reads pages without allocating them.
func (r *Repo) AppendRange(dst []Entry, spec RangeSpec) []Entry {
	n := len(dst)
	r.mu.RLock()
	defer r.mu.RUnlock()
	r.ascendLocked(spec, func(st *itemState) bool {
		dst = append(dst, Entry{st.key, st.val(r), st.head.schemaOf(), st.head.c.ID()})
		return spec.Limit <= 0 || len(dst)-n < spec.Limit
	})
	return dst
}

// AppendRangeKeys is Range for keys only: it appends the keys of the live
// items spec selects to dst, in key order, read under one read lock, and
// returns the extended slice. A caller that reuses dst reads pages without
// allocating.
func (r *Repo) AppendRangeKeys(dst []string, spec RangeSpec) []string {
	n := len(dst)
	r.mu.RLock()
	defer r.mu.RUnlock()
	r.ascendLocked(spec, func(st *itemState) bool {
		dst = append(dst, st.key)
		return spec.Limit <= 0 || len(dst)-n < spec.Limit
	})
	return dst
}

// LiveKeys returns the keys of the live items (head not deleted) in key
// order, read under one read lock from the ordered index: no sort, and one
// allocation, the result's.
func (r *Repo) LiveKeys() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, r.live)
	if r.index.tr != nil {
		r.index.tr.Scan(func(st *itemState) bool {
			out = append(out, st.key)
			return true
		})
	}
	return out
}

// ascendLocked calls fn with the live items spec selects (From, After and
// Prefix; fn counts Limit), in key order, until fn returns false. r.mu
// must be held.
func (r *Repo) ascendLocked(spec RangeSpec, fn func(*itemState) bool) {
	if r.live == 0 || r.index.tr == nil {
		return
	}
	from := max(spec.From, spec.Prefix)
	after := spec.After && from == spec.From
	r.index.tr.Ascend(&itemState{key: from}, func(st *itemState) bool {
		if after && st.key == from {
			return true
		}
		if !strings.HasPrefix(st.key, spec.Prefix) {
			return false
		}
		return fn(st)
	})
}

// checkIndex reports where the index and the items disagree: the index
// must hold exactly the items with a head that is not deleted, in key
// order, each once, and as many as Count says.
func (r *Repo) checkIndex() []Problem {
	var ps []Problem
	n, prev := 0, ""
	if r.index.tr != nil {
		r.index.tr.Scan(func(st *itemState) bool {
			switch {
			case n > 0 && st.key <= prev:
				ps = append(ps, Problem{Offset: -1, Item: st.key, What: "live index out of order after " + prev})
			case r.items.get(st.key) != st || st.head == nil || st.deleted():
				ps = append(ps, Problem{Offset: -1, Item: st.key, What: "live index holds an item that is not live"})
			}
			n, prev = n+1, st.key
			return true
		})
	}
	live := 0
	r.items.all(func(st *itemState) {
		if st.head != nil && !st.deleted() {
			live++
		}
	})
	if n != live || live != r.live {
		ps = append(ps, Problem{Offset: -1, What: fmt.Sprintf("live index holds %d items, %d are live, Count says %d", n, live, r.live)})
	}
	return ps
}
