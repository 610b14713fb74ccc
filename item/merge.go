package item

import (
	"slices"
	"strings"
)

// Merge merges concurrent changes to base. Each delta is one leaf's change
// relative to base (their lowest common ancestor), and deltas must be given
// in the order that decides "last writer": ascending (timestamp, commit id).
// The rules:
//
//   - string, number, int, bool, date: the last writer wins; a write beats a
//     concurrent removal of the field, whatever their order.
//   - set: elements removed by any leaf go, then elements added by any leaf
//     come back: a concurrent add wins over a remove.
//   - map: per key, the last put wins; a put beats a concurrent delete.
//   - list: element by element: every element any leaf inserted is kept,
//     the order of every leaf's elements is kept, and concurrent
//     insertions at one place are ordered by element id, greatest first
//     (RGA's rule), so that each write's run stays together; an element
//     goes only if a leaf deleted that very element.
//   - counter: the leaves' additions (each leaf's value minus the base's)
//     all add up.
//   - a field the base lacks that every leaf writing it makes a set (or
//     every one a map, a list or a counter): the elements (keys, value)
//     they create are adds (puts, inserts, additions), so leaves that each
//     start the set all keep their elements.
//   - a field replaced whole by one leaf and edited by another: the last
//     replacement wins, and the element edits ordered after it apply on top.
//   - deleted flag: the last leaf that changed it wins.
//
// The result depends only on base and the deltas, so merges are
// deterministic across peers.
func Merge(base Item, deltas []Delta) (Item, error) {
	return MergeStamped(base, deltas, func(i int, _ string) Stamp { return Stamp{Time: int64(i)} })
}

// Stamp orders writes for "last writer wins": by Time, then by Tie
// (bytewise). Ties must differ between leaves for merges to be
// deterministic; a commit id does.
type Stamp struct {
	Time int64
	Tie  [32]byte
}

// Compare orders stamps.
func (s Stamp) Compare(o Stamp) int {
	if s.Time != o.Time {
		if s.Time < o.Time {
			return -1
		}
		return 1
	}
	return strings.Compare(string(s.Tie[:]), string(o.Tie[:]))
}

// DeletedField is the name stamp is asked about for the deleted flag.
const DeletedField = ""

// MergeStamped is Merge with the last writer decided per field: the edits
// of each field are ordered by stamp(i, field), the stamp of delta i's write
// to that field (DeletedField for the deleted flag), instead of by the
// order of the deltas. Peers that pass the same stamps merge alike.
func MergeStamped(base Item, deltas []Delta, stamp func(i int, field string) Stamp) (Item, error) {
	type edit struct {
		e     Edit
		stamp Stamp
	}
	var merged Delta
	var deletedAt Stamp
	byField := map[string][]edit{}
	var names []string
	for i, d := range deltas {
		if d.Deleted != FlagKeep {
			if st := stamp(i, DeletedField); merged.Deleted == FlagKeep || st.Compare(deletedAt) >= 0 {
				merged.Deleted, deletedAt = d.Deleted, st
			}
		}
		for _, e := range d.Edits {
			if _, ok := byField[e.Field]; !ok {
				names = append(names, e.Field)
			}
			byField[e.Field] = append(byField[e.Field], edit{e, stamp(i, e.Field)})
		}
	}
	slices.Sort(names)
	for _, name := range names {
		list := byField[name]
		slices.SortStableFunc(list, func(a, b edit) int { return a.stamp.Compare(b.stamp) })
		edits := make([]Edit, len(list))
		for i, x := range list {
			edits[i] = x.e
		}
		cur, _ := base.Get(name)
		v, err := mergeField(cur, edits)
		if err != nil {
			return Item{}, err
		}
		if v.t == TypeInvalid {
			merged.Edits = append(merged.Edits, Edit{Field: name, Op: OpRemove})
		} else {
			merged.Edits = append(merged.Edits, Edit{Field: name, Op: OpSet, Value: v})
		}
	}
	return Patch(base, merged)
}

// mergeField returns the merged value of one field, or the zero Value if the
// field is removed.
func mergeField(cur Value, edits []Edit) (Value, error) {
	// A write beats a removal: drop removals unless nothing else happened.
	writes := slices.DeleteFunc(slices.Clone(edits), func(e Edit) bool { return e.Op == OpRemove })
	if len(writes) == 0 {
		return Value{}, nil
	}
	if cur.t == TypeInvalid {
		writes = creationsAsAdds(writes)
	}
	// The last whole replacement wins; element edits before it are overwritten.
	for i := len(writes) - 1; i >= 0; i-- {
		if writes[i].Op == OpSet {
			cur = writes[i].Value
			writes = writes[i+1:]
			break
		}
	}
	if len(writes) == 0 {
		return cur, nil
	}
	switch writes[0].Op {
	case OpSetOps:
		return mergeSetOps(cur, writes)
	case OpListOps:
		return mergeListOps(cur, writes)
	case OpCounterAdd:
		return mergeCounterAdds(cur, writes)
	default:
		return mergeMapOps(cur, writes)
	}
}

// mergeCounterAdds adds every branch's addition to cur: none is lost.
func mergeCounterAdds(cur Value, edits []Edit) (Value, error) {
	if cur.t != TypeCounter && cur.t != TypeInvalid {
		return applyAll(cur, edits)
	}
	n := cur.Int64()
	for _, e := range edits {
		if e.Op != OpCounterAdd {
			return applyAll(cur, edits)
		}
		n += e.N
	}
	return Counter(n), nil
}

// creationsAsAdds rewrites the writes to a field the base lacks as element
// edits when every one makes it a set (or every one a map, a list or a
// counter): leaves that each start the set add their elements, rather than
// the last one replacing the others'; leaves that each start a list insert
// their elements at its start; leaves that each start a counter add their
// values.
func creationsAsAdds(writes []Edit) []Edit {
	kind := TypeInvalid
	for _, e := range writes {
		t := e.Value.t // OpSet
		switch e.Op {
		case OpSetOps:
			t = TypeSet
		case OpMapOps:
			t = TypeMap
		case OpListOps:
			t = TypeList
		case OpCounterAdd:
			t = TypeCounter
		}
		if t != TypeSet && t != TypeMap && t != TypeList && t != TypeCounter || kind != TypeInvalid && t != kind {
			return writes
		}
		if t == TypeList && e.Op == OpSet && !e.Value.assigned() {
			return writes
		}
		kind = t
	}
	out := slices.Clone(writes)
	for i, e := range out {
		if e.Op == OpSet {
			out[i] = creationAsAdd(e, kind)
		}
	}
	return out
}

// creationAsAdd returns the element edit that makes a field the base
// lacks into e.Value, a value of type kind.
func creationAsAdd(e Edit, kind Type) Edit {
	switch kind {
	case TypeSet:
		return Edit{Field: e.Field, Op: OpSetOps, Add: e.Value.Elems()}
	case TypeList:
		out := Edit{Field: e.Field, Op: OpListOps}
		if e.Value.Len() > 0 {
			out.Runs = []ListRun{{Elems: e.Value.ListElems()}}
		}
		return out
	case TypeCounter:
		return Edit{Field: e.Field, Op: OpCounterAdd, N: e.Value.Int64()}
	}
	out := Edit{Field: e.Field, Op: OpMapOps}
	for j, k := range e.Value.Keys() {
		out.Put = append(out.Put, Field{k, e.Value.c.elems[j]})
	}
	return out
}

func mergeSetOps(cur Value, edits []Edit) (Value, error) {
	var add, del []Value
	for _, e := range edits {
		if e.Op != OpSetOps {
			return applyAll(cur, edits)
		}
		add = append(add, e.Add...)
		del = append(del, e.Del...)
	}
	if cur.t != TypeSet && cur.t != TypeInvalid {
		return applyAll(cur, edits)
	}
	slices.SortFunc(del, Compare)
	return applySetOps(cur.Elems(), slices.CompactFunc(del, Equal), add), nil
}

func mergeMapOps(cur Value, edits []Edit) (Value, error) {
	puts := map[string]Value{}
	dels := map[string]bool{}
	for _, e := range edits {
		if e.Op != OpMapOps {
			return applyAll(cur, edits)
		}
		for _, f := range e.Put {
			puts[f.Name] = f.Value // later edits overwrite: last writer wins
		}
		for _, k := range e.DelKeys {
			dels[k] = true
		}
	}
	if cur.t != TypeMap && cur.t != TypeInvalid {
		return applyAll(cur, edits)
	}
	var put []Field
	var del []string
	for k := range dels {
		if _, ok := puts[k]; !ok { // a put beats a delete
			del = append(del, k)
		}
	}
	for k, v := range puts {
		put = append(put, Field{k, v})
	}
	slices.Sort(del)
	slices.SortFunc(put, func(a, b Field) int { return strings.Compare(a.Name, b.Name) })
	return applyMapOps(cur, put, del), nil
}

// applyAll applies mixed or mistyped edits one after another in order; an
// edit that does not fit the value it meets replaces nothing and is skipped,
// so a merge never fails on histories whose field types changed.
func applyAll(cur Value, edits []Edit) (Value, error) {
	for _, e := range edits {
		if v, err := applyEdit(cur, e); err == nil {
			cur = v
		}
	}
	return cur, nil
}
