package item

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Op is the kind of an edit. Its numeric value is part of the encoding.
type Op uint8

// The edit kinds.
const (
	OpSet    Op = 1 // replace the field's value
	OpRemove Op = 2 // remove the field
	OpSetOps Op = 3 // add and remove elements of a set
	OpMapOps Op = 4 // put and remove keys of a map
	// OpListOps deletes elements of a list and inserts runs of new ones.
	OpListOps Op = 5
	// OpCounterAdd adds to a counter.
	OpCounterAdd Op = 6
)

// Edit changes one field.
type Edit struct {
	Field string
	Op    Op
	Value Value // OpSet: the new value

	Add, Del []Value // OpSetOps: elements added and removed, sorted

	Put     []Field  // OpMapOps: keys set, sorted by key
	DelKeys []string // OpMapOps: keys removed, sorted

	Runs   []ListRun // OpListOps: runs inserted, in list order
	DelIDs []ElemID  // OpListOps: elements deleted, sorted by id

	N int64 // OpCounterAdd: the amount added (not zero; wraps around)
}

// Flag says what a delta does to the deleted flag.
type Flag uint8

// The deleted-flag changes.
const (
	FlagKeep  Flag = 0 // leave it as it is
	FlagClear Flag = 1 // undelete
	FlagSet   Flag = 2 // delete
)

// Delta is the difference between two items: edits sorted by field name and
// what happens to the deleted flag.
type Delta struct {
	Edits   []Edit
	Deleted Flag
}

// Empty reports whether the delta changes nothing.
func (d Delta) Empty() bool { return len(d.Edits) == 0 && d.Deleted == FlagKeep }

// Diff returns the delta that turns base into target: Patch(base,
// Diff(base, target)) equals target. Sets, maps and lists present in both
// with the same type are diffed element by element, and a counter present
// in both becomes an addition of the difference.
func Diff(base, target Item) Delta {
	var d Delta
	if base.deleted != target.deleted {
		d.Deleted = FlagClear
		if target.deleted {
			d.Deleted = FlagSet
		}
	}
	i, j := 0, 0
	for i < len(base.fields) || j < len(target.fields) {
		switch {
		case j == len(target.fields) || (i < len(base.fields) && base.fields[i].Name < target.fields[j].Name):
			d.Edits = append(d.Edits, Edit{Field: base.fields[i].Name, Op: OpRemove})
			i++
		case i == len(base.fields) || target.fields[j].Name < base.fields[i].Name:
			d.Edits = append(d.Edits, Edit{Field: target.fields[j].Name, Op: OpSet, Value: target.fields[j].Value})
			j++
		default:
			if e, ok := diffValue(target.fields[j].Name, base.fields[i].Value, target.fields[j].Value); ok {
				d.Edits = append(d.Edits, e)
			}
			i++
			j++
		}
	}
	return d
}

func diffValue(name string, a, b Value) (Edit, bool) {
	if Equal(a, b) {
		return Edit{}, false
	}
	switch {
	case a.t == TypeSet && b.t == TypeSet:
		e := Edit{Field: name, Op: OpSetOps}
		e.Del, e.Add = sortedDiff(a.Elems(), b.Elems())
		return e, true
	case a.t == TypeMap && b.t == TypeMap:
		return diffMap(name, a, b), true
	case a.t == TypeList && b.t == TypeList:
		return diffList(name, a, b), true
	case a.t == TypeCounter && b.t == TypeCounter:
		return Edit{Field: name, Op: OpCounterAdd, N: b.Int64() - a.Int64()}, true
	}
	return Edit{Field: name, Op: OpSet, Value: b}, true
}

// sortedDiff returns the elements only in a and only in b, both sorted.
func sortedDiff(a, b []Value) (onlyA, onlyB []Value) {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		c := 0
		switch {
		case i == len(a):
			c = 1
		case j == len(b):
			c = -1
		default:
			c = Compare(a[i], b[j])
		}
		switch {
		case c < 0:
			onlyA = append(onlyA, a[i])
			i++
		case c > 0:
			onlyB = append(onlyB, b[j])
			j++
		default:
			i++
			j++
		}
	}
	return onlyA, onlyB
}

func diffMap(name string, a, b Value) Edit {
	e := Edit{Field: name, Op: OpMapOps}
	ak, bk := a.Keys(), b.Keys()
	i, j := 0, 0
	for i < len(ak) || j < len(bk) {
		switch {
		case j == len(bk) || (i < len(ak) && ak[i] < bk[j]):
			e.DelKeys = append(e.DelKeys, ak[i])
			i++
		case i == len(ak) || bk[j] < ak[i]:
			e.Put = append(e.Put, Field{bk[j], b.c.elems[j]})
			j++
		default:
			if !Equal(a.c.elems[i], b.c.elems[j]) {
				e.Put = append(e.Put, Field{bk[j], b.c.elems[j]})
			}
			i++
			j++
		}
	}
	return e
}

// Patch applies a delta to base. Set, map, list and counter operations on a
// missing field start from an empty set, map or list or a zero counter; on
// a field of another type they fail with [ErrTypeMismatch]. List
// operations that do not fit the list (an anchor or a deleted element
// missing) fail with [ErrCorrupt].
func Patch(base Item, d Delta) (Item, error) {
	out := make([]Field, 0, len(base.fields)+len(d.Edits))
	i := 0
	for _, e := range d.Edits {
		for i < len(base.fields) && base.fields[i].Name < e.Field {
			out = append(out, base.fields[i])
			i++
		}
		var cur Value
		if i < len(base.fields) && base.fields[i].Name == e.Field {
			cur = base.fields[i].Value
			i++
		}
		v, err := applyEdit(cur, e)
		if err != nil {
			return Item{}, err
		}
		if v.t != TypeInvalid {
			out = append(out, Field{e.Field, v})
		}
	}
	out = append(out, base.fields[i:]...)
	it := Item{fields: out, deleted: base.deleted}
	switch d.Deleted {
	case FlagSet:
		it.deleted = true
	case FlagClear:
		it.deleted = false
	}
	return it, nil
}

// applyEdit returns the field's new value; the zero Value means removed.
func applyEdit(cur Value, e Edit) (Value, error) {
	switch e.Op {
	case OpSet:
		return e.Value, nil
	case OpRemove:
		return Value{}, nil
	case OpSetOps:
		if cur.t != TypeSet && cur.t != TypeInvalid {
			return Value{}, fieldErr(e.Field, fmt.Errorf("%w: set operations on a %s field", ErrTypeMismatch, cur.t))
		}
		return applySetOps(cur.Elems(), e.Del, e.Add), nil
	case OpMapOps:
		if cur.t != TypeMap && cur.t != TypeInvalid {
			return Value{}, fieldErr(e.Field, fmt.Errorf("%w: map operations on a %s field", ErrTypeMismatch, cur.t))
		}
		return applyMapOps(cur, e.Put, e.DelKeys), nil
	case OpListOps:
		if cur.t != TypeList && cur.t != TypeInvalid {
			return Value{}, fieldErr(e.Field, fmt.Errorf("%w: list operations on a %s field", ErrTypeMismatch, cur.t))
		}
		return applyListOps(cur, e)
	case OpCounterAdd:
		if cur.t != TypeCounter && cur.t != TypeInvalid {
			return Value{}, fieldErr(e.Field, fmt.Errorf("%w: counter addition to a %s field", ErrTypeMismatch, cur.t))
		}
		return Counter(cur.Int64() + e.N), nil
	}
	return Value{}, fmt.Errorf("%w: unknown edit op %d", ErrCorrupt, e.Op)
}

// applySetOps removes del from elems, then adds add: an element in both
// ends up present.
func applySetOps(elems, del, add []Value) Value {
	out := make([]Value, 0, len(elems)+len(add))
	for _, e := range elems {
		if _, found := slices.BinarySearchFunc(del, e, Compare); !found {
			out = append(out, e)
		}
	}
	out = append(out, add...)
	return newSet(out)
}

func applyMapOps(cur Value, put []Field, del []string) Value {
	m := make(map[string]Value, cur.Len()+len(put))
	for i, k := range cur.Keys() {
		m[k] = cur.c.elems[i]
	}
	for _, k := range del {
		delete(m, k)
	}
	for _, f := range put {
		m[f.Name] = f.Value
	}
	return Map(m)
}

func fieldErr(name string, err error) error {
	return fmt.Errorf("field %q: %w", name, err)
}

var errUnsorted = fmt.Errorf("%w: fields not sorted or not unique", ErrInvalidValue)

// validName checks a field name or map key.
func validName(name string) error {
	if name == "" || len(name) > 1024 || strings.ContainsRune(name, 0) || !utf8.ValidString(name) {
		return fmt.Errorf("%w: field name %q must be 1–1024 bytes of UTF-8 without NUL", ErrInvalidValue, name)
	}
	return nil
}
