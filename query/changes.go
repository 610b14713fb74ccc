package query

import (
	"slices"
	"strings"

	"github.com/tidwall/btree"
)

// Kind is what happened to a visible result.
type Kind uint8

// The event kinds.
const (
	// Added: an item entered the visible results.
	Added Kind = iota + 1
	// Removed: an item left them (it stopped matching, was deleted, or was
	// pushed past Limit).
	Removed
	// Changed: a visible item got a new value (a new head); it may have
	// moved.
	Changed
	// Failed: an update failed; Err says why.
	Failed
)

var kindNames = [...]string{"", "added", "removed", "changed", "failed"}

// String returns "added", "removed", "changed" or "failed".
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind?"
}

// Event is a change of a query's visible results.
type Event struct {
	Kind Kind
	// Item is the new value (Added, Changed) or the value removed (the
	// last one the subscriber was told of).
	Item Item
	// Old is the value before, for Changed.
	Old Item
	// Err is why an update failed, for Failed.
	Err error
}

// kind is what a change of the visible results is to a subscriber:
// Added (no old entry), Removed (no new one), Changed (both), or 0 for
// neither (two changes that cancelled out when coalesced).
func (c change) kind() Kind {
	switch {
	case c.old == nil && c.new == nil:
		return 0
	case c.old == nil:
		return Added
	case c.new == nil:
		return Removed
	}
	return Changed
}

// key is the key of the entries changed; not for a change of kind 0.
func (c change) key() string {
	if c.new != nil {
		return c.new.it.Key
	}
	return c.old.it.Key
}

// visibleChanges turns a pass's changes into changes of the visible
// results: each changed key by where its entry was and is relative to the
// old and new boundaries, plus the unchanged entries that crossed a moved
// boundary, which are never more than the changed keys.
func (q *Query) visibleChanges(w *batch) []change {
	limited := q.spec.Limit > 0
	var out []change
	for _, c := range w.changes {
		isVis := c.new != nil && (!limited || q.within(c.new, q.bound))
		switch {
		case c.wasVis && isVis:
			if c.old.it.Head != c.new.it.Head {
				out = append(out, change{old: c.old, new: c.new})
			}
		case c.wasVis:
			out = append(out, change{old: c.old})
		case isVis:
			out = append(out, change{new: c.new})
		}
	}
	if !limited {
		return out
	}
	bOld, bNew := w.bOld, q.bound
	switch q.compareBounds(bOld, bNew) {
	case -1: // the window grew: unchanged entries in (bOld, bNew] entered
		q.tree.Ascend(bOld, func(e *entry) bool {
			switch {
			case !q.less(bOld, e):
				return true
			case bNew != nil && q.less(bNew, e):
				return false
			case e.stamp != w.stamp:
				out = append(out, change{new: e})
			}
			return true
		})
	case 1: // it shrank: unchanged entries in (bNew, bOld] left
		q.tree.Ascend(bNew, func(e *entry) bool {
			switch {
			case !q.less(bNew, e):
				return true
			case bOld != nil && q.less(bOld, e):
				return false
			case e.stamp != w.stamp:
				out = append(out, change{old: e})
			}
			return true
		})
	}
	return out
}

// compareBounds compares two boundaries; nil is after every entry.
func (q *Query) compareBounds(a, b *entry) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	case q.less(a, b):
		return -1
	case q.less(b, a):
		return 1
	}
	return 0
}

// diff compares the visible results of a published snapshot with the
// index's, after a rescan.
func (q *Query) diff(prior *btree.BTreeG[*entry]) []change {
	old := map[string]*entry{}
	q.scanVisible(prior, func(e *entry) { old[e.it.Key] = e })
	var out []change
	q.scanVisible(q.tree, func(e *entry) {
		o := old[e.it.Key]
		switch {
		case o == nil:
			out = append(out, change{new: e})
		case o.it.Head != e.it.Head:
			out = append(out, change{old: o, new: e})
		}
		delete(old, e.it.Key)
	})
	gone := make([]*entry, 0, len(old))
	for _, e := range old {
		gone = append(gone, e)
	}
	slices.SortFunc(gone, func(a, b *entry) int { return strings.Compare(a.it.Key, b.it.Key) })
	for _, e := range gone {
		out = append(out, change{old: e})
	}
	return out
}

// scanVisible calls fn for the first Limit entries of t.
func (q *Query) scanVisible(t *btree.BTreeG[*entry], fn func(*entry)) {
	n := 0
	t.Scan(func(e *entry) bool {
		if q.spec.Limit > 0 && n >= q.spec.Limit {
			return false
		}
		n++
		fn(e)
		return true
	})
}

// coalesce merges a change into the one pending for the same key, so a
// slow subscriber's queue holds at most one change per key. keep is false
// when the two cancel out.
func coalesce(p, v change) (merged change, keep bool) {
	switch {
	case p.kind() == Added && v.kind() == Changed:
		return change{new: v.new}, true
	case p.kind() == Added && v.kind() == Removed:
		return change{}, false
	case p.kind() == Changed && v.kind() == Changed:
		return change{old: p.old, new: v.new}, true
	case p.kind() == Changed && v.kind() == Removed:
		return change{old: p.old}, true
	case p.kind() == Removed && v.kind() == Added:
		if p.old.it.Head == v.new.it.Head {
			return change{}, false
		}
		return change{old: p.old, new: v.new}, true
	}
	return v, true
}
