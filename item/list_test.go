package item_test

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/goatdb/goatdb/item"
)

// strs returns a list's elements as strings, for readable expectations.
func strs(v item.Value) string {
	parts := make([]string, v.Len())
	for i, e := range v.Elems() {
		parts[i] = e.Str()
	}
	return strings.Join(parts, " ")
}

// write returns it with field f set to a list of the given strings, ids
// assigned as a write with the given tag would.
func write(it item.Item, f string, tag uint64, elems ...string) item.Item {
	return item.AssignIDs(it, it.With(f, item.StringList(elems...)), tag)
}

func mustMerge(t *testing.T, base item.Item, leaves ...item.Item) item.Item {
	t.Helper()
	deltas := make([]item.Delta, len(leaves))
	for i, l := range leaves {
		deltas[i] = item.Diff(base, l)
	}
	got, err := item.Merge(base, deltas)
	if err != nil {
		t.Fatalf("Merge: %v", err)
	}
	// The order of the deltas decides only last writers: none here.
	slices.Reverse(deltas)
	rev, err := item.Merge(base, deltas)
	if err != nil || !item.ItemsEqual(rev, got) {
		t.Fatalf("Merge in reverse order = %s, %v; want %s", rev, err, got)
	}
	return got
}

// TestListMergeRules is the golden table of list merges: each leaf is a
// write (with its tag) of the list it shows to the base's list.
func TestListMergeRules(t *testing.T) {
	base := write(item.Item{}, "l", 100, "a", "b", "c")
	tests := []struct {
		name   string
		base   item.Item
		leaves [][]string // each leaf's list, written with tag 1, 2, ...
		want   string
	}{
		{"one leaf", base, [][]string{{"a", "x", "b", "c"}}, "a x b c"},
		{"inserts at one place keep each run together", base,
			[][]string{{"a", "x1", "x2", "x3", "b", "c"}, {"a", "y1", "y2", "b", "c"}}, "a y1 y2 x1 x2 x3 b c"},
		{"three writers at one place", base,
			[][]string{{"a", "x1", "x2", "b", "c"}, {"a", "y1", "y2", "b", "c"}, {"a", "z1", "z2", "b", "c"}}, "a z1 z2 y1 y2 x1 x2 b c"},
		{"inserts at the start", base, [][]string{{"x", "a", "b", "c"}, {"y", "a", "b", "c"}}, "y x a b c"},
		{"appends", base, [][]string{{"a", "b", "c", "x"}, {"a", "b", "c", "y1", "y2"}}, "a b c y1 y2 x"},
		{"inserts at different places", base, [][]string{{"a", "x", "b", "c"}, {"a", "b", "y", "c"}}, "a x b y c"},
		{"insert after an element deleted concurrently", base, [][]string{{"a", "c"}, {"a", "b", "y", "c"}}, "a y c"},
		{"insert before an element deleted concurrently", base, [][]string{{"a", "c"}, {"a", "y", "b", "c"}}, "a y c"},
		{"delete vs delete of the same element", base, [][]string{{"a", "c"}, {"a", "c"}}, "a c"},
		{"deletes of different elements", base, [][]string{{"b", "c"}, {"a", "b"}}, "b"},
		{"delete all vs insert", base, [][]string{{}, {"a", "b", "x", "c"}}, "x"},
		{"both create the list", item.Item{}, [][]string{{"p", "q"}, {"r"}}, "r p q"},
		{"duplicates", base, [][]string{{"a", "a", "b", "c"}, {"a", "b", "c", "a"}}, "a a b c a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaves := make([]item.Item, len(tt.leaves))
			for i, l := range tt.leaves {
				leaves[i] = write(tt.base, "l", uint64(i+1), l...)
			}
			got := mustMerge(t, tt.base, leaves...)
			v, _ := got.Get("l")
			if s := strs(v); s != tt.want {
				t.Errorf("merged %q, want %q", s, tt.want)
			}
		})
	}
}

// TestListDeleteSeesOneElement checks that a delete removes the element
// its writer saw, not another with the same value.
func TestListDeleteSeesOneElement(t *testing.T) {
	base := write(item.Item{}, "l", 100, "a", "x", "a")
	l, _ := base.Get("l")
	first, second := l.ListElems()[0].ID, l.ListElems()[2].ID
	without := func(id item.ElemID) item.Item {
		es := slices.DeleteFunc(l.ListElems(), func(e item.ListElem) bool { return e.ID == id })
		v, err := item.ListOf(es)
		if err != nil {
			t.Fatal(err)
		}
		return base.With("l", v)
	}
	got := mustMerge(t, base, without(first), write(base, "l", 1, "a", "x", "a", "y"))
	v, _ := got.Get("l")
	if strs(v) != "x a y" || v.ListElems()[1].ID != second {
		t.Errorf("merged %#v, want x and the second a, then y", v)
	}
	got = mustMerge(t, base, without(first), without(second))
	if v, _ := got.Get("l"); strs(v) != "x" {
		t.Errorf("merged %#v, want [x]", v)
	}
}

// TestCounterMergeRules is the golden table of counter merges.
func TestCounterMergeRules(t *testing.T) {
	c := item.Counter
	tests := []struct {
		name   string
		base   item.Item
		leaves []item.Item
		want   item.Item
	}{
		{"+3 and +4", one("n", c(10)), []item.Item{one("n", c(13)), one("n", c(14))}, one("n", c(17))},
		{"increment and decrement", one("n", c(10)), []item.Item{one("n", c(15)), one("n", c(8))}, one("n", c(13))},
		{"set to a value is an increment by the difference", one("n", c(10)), []item.Item{one("n", c(0)), one("n", c(12))}, one("n", c(2))},
		{"three branches", one("n", c(0)), []item.Item{one("n", c(1)), one("n", c(1)), one("n", c(1))}, one("n", c(3))},
		{"both create", item.Item{}, []item.Item{one("n", c(3)), one("n", c(4))}, one("n", c(7))},
		{"write beats removal", one("n", c(10)), []item.Item{{}, one("n", c(11))}, one("n", c(11))},
		{"wraps around", one("n", c(math.MaxInt64)), []item.Item{one("n", c(math.MaxInt64)), one("n", c(math.MinInt64))}, one("n", c(math.MinInt64))},
		{"no change", one("n", c(10)), []item.Item{one("n", c(10)), one("n", c(10))}, one("n", c(10))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustMerge(t, tt.base, tt.leaves...); !item.ItemsEqual(got, tt.want) {
				t.Errorf("merged %s, want %s", got, tt.want)
			}
		})
	}
}

func TestCounterDiffPatch(t *testing.T) {
	a, b := one("n", item.Counter(5)), one("n", item.Counter(-2))
	d := item.Diff(a, b)
	if len(d.Edits) != 1 || d.Edits[0].Op != item.OpCounterAdd || d.Edits[0].N != -7 {
		t.Fatalf("Diff = %+v, want one addition of -7", d)
	}
	if got, err := item.Patch(a, d); err != nil || !item.ItemsEqual(got, b) {
		t.Fatalf("Patch = %s, %v; want %s", got, err, b)
	}
	if _, err := item.Patch(one("n", item.Int(1)), d); err == nil {
		t.Error("Patch of a counter addition to an int field succeeded")
	}
	if got, err := item.Patch(item.Item{}, d); err != nil || !item.ItemsEqual(got, one("n", item.Counter(-7))) {
		t.Errorf("Patch onto a missing field = %s, %v; want -7c", got, err)
	}
}

// TestAssignIDs checks that unchanged elements keep their ids and that new
// ones get ids above the old.
func TestAssignIDs(t *testing.T) {
	a := write(item.Item{}, "l", 7, "a", "b", "c")
	la, _ := a.Get("l")
	for i, e := range la.ListElems() {
		want := item.ListElem{ID: item.ElemID{Seq: uint64(i + 1), Tag: 7}, Value: item.String(string(rune('a' + i)))}
		if e != want {
			t.Errorf("element %d = %+v, want %+v", i, e, want)
		}
	}
	b := write(a, "l", 9, "b", "x", "c", "a")
	lb, _ := b.Get("l")
	ids := func(v item.Value) []item.ElemID {
		var out []item.ElemID
		for _, e := range v.ListElems() {
			out = append(out, e.ID)
		}
		return out
	}
	old := ids(la)
	want := []item.ElemID{old[1], {Seq: 4, Tag: 9}, old[2], {Seq: 5, Tag: 9}}
	if got := ids(lb); !slices.Equal(got, want) {
		t.Errorf("ids %v, want %v", got, want)
	}
	// Writing the same list again changes nothing, and so writes nothing.
	if again := write(b, "l", 11, "b", "x", "c", "a"); !item.ItemsEqual(again, b) {
		t.Errorf("rewrite = %s, want %s", again, b)
	}
	if d := item.Diff(b, write(b, "l", 11, "b", "x", "c", "a")); !d.Empty() {
		t.Errorf("Diff of a rewrite = %+v, want empty", d)
	}
	// A list without ids cannot be stored.
	if _, err := item.AppendItem(nil, one("l", item.StringList("a"))); err == nil {
		t.Error("AppendItem of a list without ids succeeded")
	}
}

// TestListEncoding pins the list and counter encodings and the list and
// counter edits.
func TestListEncoding(t *testing.T) {
	it := write(item.Item{}, "l", 0x0102030405060708, "a", "b")
	v, _ := it.Get("l")
	tag := "08 07 06 05 04 03 02 01"
	// Element 1: Seq 1: 1<<1, tag, "a". Element 2: Seq 2, same tag: 2<<1|1, "b".
	if got, want := encValue(t, v), hx(t, "08 02 02 "+tag+" 01 01 61  05 01 01 62"); !bytes.Equal(got, want) {
		t.Errorf("list = % x, want % x", got, want)
	}
	if got, want := encValue(t, item.Counter(-3)), hx(t, "0a 05"); !bytes.Equal(got, want) {
		t.Errorf("counter = % x, want % x", got, want)
	}
	next := write(it, "l", 0x1111111111111111, "a", "x")
	d := item.Diff(it, next).Edits[0]
	// Runs: 1, after element 1 (Seq 1, tag), 1 element (Seq 3, new tag);
	// deleted: 1, element 2.
	want := "01 6c 05  01 01 " + tag + " 01 06 " + strings.Repeat("11 ", 8) + "01 01 78  01 02 " + tag
	if got := encDelta(t, item.Delta{Edits: []item.Edit{d}}); !bytes.Equal(got, hx(t, "04"+want)) {
		t.Errorf("list edit = % x, want % x", got, hx(t, "04"+want))
	}
	add := item.Delta{Edits: []item.Edit{{Field: "n", Op: item.OpCounterAdd, N: 64}}}
	if got, want := encDelta(t, add), hx(t, "04 01 6e 06 8001"); !bytes.Equal(got, want) {
		t.Errorf("counter edit = % x, want % x", got, want)
	}
}

func TestDecodeRejectsList(t *testing.T) {
	tag := " 01 00 00 00 00 00 00 00 "
	tests := []struct{ name, in string }{
		{"seq 0", "08 01 00" + tag + "04 01"},
		{"same tag first", "08 01 03 04 01"},
		{"tag repeated", "08 02 02" + tag + "04 01 04" + tag + "04 01"},
		{"duplicate id", "08 02 02" + tag + "04 01 03 04 01"},
		{"element not scalar", "08 01 02" + tag + "06 00"},
		{"list in a list", "08 01 02" + tag + "08 00"},
		{"list in a map", "07 01 01 6b 08 00"},
		{"counter in a map", "07 01 01 6b 0a 00"},
		{"count too big", "08 05 02" + tag + "04 01"},
		{"truncated tag", "08 01 02 01 02"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if v, err := decodeValue(hx(t, tt.in)); err == nil {
				t.Errorf("decode %s = %#v, want an error", tt.in, v)
			}
		})
	}
	deltas := []struct{ name, in string }{
		{"counter add 0", "04 01 6e 06 00"},
		{"empty run", "04 01 6c 05 01 00 00 00"},
		{"deleted head", "04 01 6c 05 00 01 00"},
		{"deleted not increasing", "04 01 6c 05 00 02 02" + tag + "01" + tag},
	}
	for _, tt := range deltas {
		t.Run(tt.name, func(t *testing.T) {
			if d, err := item.DecodeDelta(hx(t, tt.in)); err == nil {
				t.Errorf("decode %s = %+v, want an error", tt.in, d)
			}
		})
	}
}

// TestListPatchRejects checks that list edits that do not fit the list
// fail instead of guessing.
func TestListPatchRejects(t *testing.T) {
	base := write(item.Item{}, "l", 1, "a", "b")
	other := write(item.Item{}, "l", 2, "z")
	foreign := item.Diff(other, write(other, "l", 3, "z", "y")) // anchored at z
	if _, err := item.Patch(base, foreign); err == nil {
		t.Error("Patch of a run anchored at an absent element succeeded")
	}
	del := item.Diff(other, write(other, "l", 3))
	if _, err := item.Patch(base, del); err == nil {
		t.Error("Patch deleting an absent element succeeded")
	}
	if _, err := item.Patch(one("l", item.Int(1)), item.Diff(base, write(base, "l", 4, "a"))); err == nil {
		t.Error("Patch of list operations on an int succeeded")
	}
}

// leafEdit is one random leaf of a list merge.
func randListLeaf(r *rand.Rand, base item.Item) item.Item {
	v, _ := base.Get("l")
	return assign(r, base, base.With("l", editList(r, v)))
}

// TestListMergeProperties checks, on random concurrent edits of a list:
// the merge does not depend on the order of the leaves; every element a
// leaf inserted is there unless another leaf deleted it; an element of the
// base is there unless a leaf deleted it; and every leaf's elements that
// are there keep the order they have in the leaf. (How leaves are grouped
// can change the order of concurrent insertions no leaf orders; see the
// package doc.)
func TestListMergeProperties(t *testing.T) {
	r := newRand(t)
	for range iterations() {
		base := randListLeaf(r, write(item.Item{}, "l", r.Uint64(), "a", "b", "c"))
		leaves := make([]item.Item, 2+r.IntN(3))
		for i := range leaves {
			leaves[i] = randListLeaf(r, base)
			if i > 0 && r.IntN(4) == 0 { // a leaf that saw another's changes
				leaves[i] = randListLeaf(r, leaves[i-1])
			}
		}
		checkListMerge(t, base, leaves, mustMerge(t, base, leaves...))
	}
}

func checkListMerge(t *testing.T, base item.Item, leaves []item.Item, got item.Item) {
	t.Helper()
	ids := func(it item.Item) map[item.ElemID]bool {
		v, _ := it.Get("l")
		out := map[item.ElemID]bool{}
		for _, e := range v.ListElems() {
			out[e.ID] = true
		}
		return out
	}
	inBase, inGot := ids(base), ids(got)
	deleted := map[item.ElemID]bool{}
	for _, l := range leaves {
		inLeaf := ids(l)
		for id := range inBase {
			if !inLeaf[id] {
				deleted[id] = true
			}
		}
	}
	for _, l := range leaves {
		v, _ := l.Get("l")
		var order []item.ElemID
		for id := range ids(l) {
			if want := !deleted[id]; inGot[id] != want && (inBase[id] || want) {
				t.Fatalf("element %v: present %v, want %v (base %s, leaves %v, merged %s)", id, inGot[id], want, base, leaves, got)
			}
		}
		for _, e := range v.ListElems() {
			if inGot[e.ID] {
				order = append(order, e.ID)
			}
		}
		gv, _ := got.Get("l")
		var gorder []item.ElemID
		for _, e := range gv.ListElems() {
			if slices.Contains(order, e.ID) {
				gorder = append(gorder, e.ID)
			}
		}
		if !slices.Equal(order, gorder) {
			t.Fatalf("leaf %s: order %v, merged %v (%s)", l, order, gorder, got)
		}
	}
	for id := range inGot {
		found := inBase[id]
		for _, l := range leaves {
			found = found || ids(l)[id]
		}
		if !found {
			t.Fatalf("merged element %v comes from nowhere", id)
		}
	}
}

func ExampleAssignIDs() {
	v1 := item.AssignIDs(item.Item{}, one("todo", item.StringList("milk", "eggs")), 1)
	// Two writers edit the list concurrently.
	alice := item.AssignIDs(v1, one("todo", item.StringList("milk", "bread", "butter", "eggs")), 2)
	bob := item.AssignIDs(v1, one("todo", item.StringList("milk", "tea", "eggs")), 3)
	merged, err := item.Merge(v1, []item.Delta{item.Diff(v1, alice), item.Diff(v1, bob)})
	if err != nil {
		panic(err)
	}
	v, _ := merged.Get("todo")
	fmt.Println(v.GoString())
	// Output: ["milk", "tea", "bread", "butter", "eggs"]
}

// TestFillIDs checks that ids derived from a list's content are the same
// for the same list, different for another, and leave ids already there.
func TestFillIDs(t *testing.T) {
	a := item.FillIDs(one("l", item.StringList("x", "y")))
	b := item.FillIDs(one("l", item.StringList("x", "y")))
	c := item.FillIDs(one("l", item.StringList("x", "z")))
	if !item.ItemsEqual(a, b) {
		t.Errorf("the same list filled twice: %v, %v", a, b)
	}
	if _, err := item.AppendItem(nil, a); err != nil {
		t.Fatalf("filled list does not encode: %v", err)
	}
	la, _ := a.Get("l")
	lc, _ := c.Get("l")
	if la.ListElems()[0].ID == lc.ListElems()[0].ID {
		t.Error("different lists got the same ids")
	}
	mixed, err := item.ListOf(append(la.ListElems(), item.ListElem{Value: item.String("w")}))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := item.FillIDs(one("l", mixed)).Get("l")
	es := got.ListElems()
	if es[0].ID != la.ListElems()[0].ID || es[2].ID.Seq != 3 {
		t.Errorf("filled %v, want the first ids kept and Seq 3 for the new one", es)
	}
}
