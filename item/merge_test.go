package item_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/goatdb/goatdb/item"
)

// Helpers that build single-edit deltas by hand, for cases Diff cannot
// produce (for example an add and a remove of the same element).
func setD(field string, v item.Value) item.Delta {
	return item.Delta{Edits: []item.Edit{{Field: field, Op: item.OpSet, Value: v}}}
}

func removeD(field string) item.Delta {
	return item.Delta{Edits: []item.Edit{{Field: field, Op: item.OpRemove}}}
}

func setOpsD(field string, add, del []string) item.Delta {
	strs := func(xs []string) []item.Value { return item.StringSet(xs...).Elems() }
	return item.Delta{Edits: []item.Edit{{Field: field, Op: item.OpSetOps, Add: strs(add), Del: strs(del)}}}
}

func mapOpsD(field string, put map[string]item.Value, del ...string) item.Delta {
	m := item.Map(put)
	e := item.Edit{Field: field, Op: item.OpMapOps, DelKeys: slices.Sorted(slices.Values(del))}
	for i, k := range m.Keys() {
		e.Put = append(e.Put, item.Field{Name: k, Value: m.Elems()[i]})
	}
	return item.Delta{Edits: []item.Edit{e}}
}

func flagD(f item.Flag) item.Delta { return item.Delta{Deleted: f} }

func ints(kv ...any) item.Value {
	m := map[string]item.Value{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = item.Int(int64(kv[i+1].(int)))
	}
	return item.Map(m)
}

func one(name string, v item.Value) item.Item { return item.New(map[string]item.Value{name: v}) }

// TestMergeRules has one group of cases per rule in Merge's doc comment.
// Deltas are listed in merge order: the last one is the last writer.
func TestMergeRules(t *testing.T) {
	set := item.StringSet
	tests := []struct {
		name   string
		base   item.Item
		deltas []item.Delta
		want   item.Item
	}{
		// Scalars: last writer wins by order.
		{"scalar lww", one("a", item.Int(1)), []item.Delta{setD("a", item.Int(2)), setD("a", item.Int(3))}, one("a", item.Int(3))},
		{"scalar lww reversed", one("a", item.Int(1)), []item.Delta{setD("a", item.Int(3)), setD("a", item.Int(2))}, one("a", item.Int(2))},
		{"string lww", one("a", item.String("x")), []item.Delta{setD("a", item.String("y")), setD("a", item.String("z"))}, one("a", item.String("z"))},
		{"number lww", one("a", item.Number(1)), []item.Delta{setD("a", item.Number(0.5)), setD("a", item.Number(2))}, one("a", item.Number(2))},
		{"bool lww", one("a", item.Bool(false)), []item.Delta{setD("a", item.Bool(true)), setD("a", item.Bool(false))}, one("a", item.Bool(false))},
		{"date lww", one("a", item.DateMillis(1)), []item.Delta{setD("a", item.DateMillis(3)), setD("a", item.DateMillis(2))}, one("a", item.DateMillis(2))},
		{"new field lww", item.Item{}, []item.Delta{setD("a", item.Int(1)), setD("a", item.String("s"))}, one("a", item.String("s"))},
		{"untouched fields stay", item.New(map[string]item.Value{"a": item.Int(1), "b": item.Int(1)}),
			[]item.Delta{setD("a", item.Int(2))}, item.New(map[string]item.Value{"a": item.Int(2), "b": item.Int(1)})},
		{"edits to different fields combine", item.New(map[string]item.Value{"a": item.Int(1), "b": item.Int(1)}),
			[]item.Delta{setD("a", item.Int(2)), setD("b", item.Int(3))}, item.New(map[string]item.Value{"a": item.Int(2), "b": item.Int(3)})},

		// An update beats a removal, whatever their order.
		{"update then remove", one("a", item.Int(1)), []item.Delta{setD("a", item.Int(2)), removeD("a")}, one("a", item.Int(2))},
		{"remove then update", one("a", item.Int(1)), []item.Delta{removeD("a"), setD("a", item.Int(2))}, one("a", item.Int(2))},
		{"remove between updates", one("a", item.Int(1)), []item.Delta{setD("a", item.Int(2)), removeD("a"), setD("a", item.Int(3))}, one("a", item.Int(3))},
		{"set ops beat remove", one("s", set("x")), []item.Delta{setOpsD("s", []string{"y"}, nil), removeD("s")}, one("s", set("x", "y"))},
		{"remove beats nothing", one("a", item.Int(1)), []item.Delta{removeD("a"), {}}, item.Item{}},
		{"removes agree", one("a", item.Int(1)), []item.Delta{removeD("a"), removeD("a")}, item.Item{}},

		// Sets: removes go, then adds come back.
		{"set adds union", one("s", set("x")), []item.Delta{setOpsD("s", []string{"a"}, nil), setOpsD("s", []string{"b"}, nil)}, one("s", set("a", "b", "x"))},
		{"set removes union", one("s", set("x", "y", "z")), []item.Delta{setOpsD("s", nil, []string{"x"}), setOpsD("s", nil, []string{"z"})}, one("s", set("y"))},
		{"set add beats remove", one("s", set("x")), []item.Delta{setOpsD("s", []string{"y"}, nil), setOpsD("s", nil, []string{"y", "x"})}, one("s", set("y"))},
		{"set add beats remove reversed", one("s", set("x")), []item.Delta{setOpsD("s", nil, []string{"x", "y"}), setOpsD("s", []string{"y"}, nil)}, one("s", set("y"))},
		{"set add and remove of base element", one("s", set("x")), []item.Delta{setOpsD("s", nil, []string{"x"}), setOpsD("s", []string{"x"}, nil)}, one("s", set("x"))},
		{"set ops on a missing field", item.Item{}, []item.Delta{setOpsD("s", []string{"b"}, nil), setOpsD("s", []string{"a"}, []string{"b"})}, one("s", set("a", "b"))},
		{"set emptied stays", one("s", set("x")), []item.Delta{setOpsD("s", nil, []string{"x"})}, one("s", set())},

		// Maps: per key, the last put wins; a put beats a delete.
		{"map per-key lww", one("m", ints("a", 1, "b", 2)),
			[]item.Delta{mapOpsD("m", map[string]item.Value{"a": item.Int(10)}), mapOpsD("m", map[string]item.Value{"a": item.Int(20), "c": item.Int(3)})},
			one("m", ints("a", 20, "b", 2, "c", 3))},
		{"map per-key lww reversed", one("m", ints("a", 1, "b", 2)),
			[]item.Delta{mapOpsD("m", map[string]item.Value{"a": item.Int(20), "c": item.Int(3)}), mapOpsD("m", map[string]item.Value{"a": item.Int(10)})},
			one("m", ints("a", 10, "b", 2, "c", 3))},
		{"map put beats delete", one("m", ints("a", 1, "b", 2)),
			[]item.Delta{mapOpsD("m", map[string]item.Value{"a": item.Int(5)}), mapOpsD("m", nil, "a", "b")},
			one("m", ints("a", 5))},
		{"map put beats delete reversed", one("m", ints("a", 1, "b", 2)),
			[]item.Delta{mapOpsD("m", nil, "a", "b"), mapOpsD("m", map[string]item.Value{"a": item.Int(5)})},
			one("m", ints("a", 5))},
		{"map deletes union", one("m", ints("a", 1, "b", 2, "c", 3)),
			[]item.Delta{mapOpsD("m", nil, "a"), mapOpsD("m", nil, "c")}, one("m", ints("b", 2))},
		{"map ops on a missing field", item.Item{},
			[]item.Delta{mapOpsD("m", map[string]item.Value{"a": item.Int(1)}, "z"), mapOpsD("m", map[string]item.Value{"b": item.Int(2)})},
			one("m", ints("a", 1, "b", 2))},
		{"map values are replaced whole", one("m", item.Map(map[string]item.Value{"n": ints("x", 1)})),
			[]item.Delta{mapOpsD("m", map[string]item.Value{"n": ints("y", 2)}), mapOpsD("m", map[string]item.Value{"n": ints("z", 3)})},
			one("m", item.Map(map[string]item.Value{"n": ints("z", 3)}))},

		// A whole replacement, then the element edits ordered after it.
		{"set edit then replacement", one("s", set("x")), []item.Delta{setOpsD("s", []string{"y"}, nil), setD("s", set("z"))}, one("s", set("z"))},
		{"set replacement then edit", one("s", set("x")), []item.Delta{setD("s", set("z")), setOpsD("s", []string{"y"}, []string{"z"})}, one("s", set("y"))},
		{"set replacements and edits", one("s", set("x")),
			[]item.Delta{setD("s", set("a")), setOpsD("s", []string{"b"}, nil), setD("s", set("c")), setOpsD("s", []string{"d"}, []string{"x"}), setOpsD("s", []string{"e"}, nil)},
			one("s", set("c", "d", "e"))},
		{"map edit then replacement", one("m", ints("a", 1)),
			[]item.Delta{mapOpsD("m", map[string]item.Value{"b": item.Int(2)}), setD("m", ints("z", 9))}, one("m", ints("z", 9))},
		{"map replacement then edit", one("m", ints("a", 1)),
			[]item.Delta{setD("m", ints("z", 9)), mapOpsD("m", map[string]item.Value{"b": item.Int(2)}, "z", "a")}, one("m", ints("b", 2))},
		{"replacement then remove", one("s", set("x")), []item.Delta{setD("s", set("z")), removeD("s")}, one("s", set("z"))},

		// The deleted flag: the last leaf that changed it wins.
		{"delete", one("a", item.Int(1)), []item.Delta{flagD(item.FlagSet), {}}, one("a", item.Int(1)).WithDeleted(true)},
		{"delete then undelete", one("a", item.Int(1)), []item.Delta{flagD(item.FlagSet), flagD(item.FlagClear)}, one("a", item.Int(1))},
		{"undelete then delete", one("a", item.Int(1)).WithDeleted(true), []item.Delta{flagD(item.FlagClear), flagD(item.FlagSet)}, one("a", item.Int(1)).WithDeleted(true)},
		{"undelete then keep", one("a", item.Int(1)).WithDeleted(true), []item.Delta{flagD(item.FlagClear), setD("a", item.Int(2))}, one("a", item.Int(2))},
		{"keep leaves flag", item.Item{}.WithDeleted(true), []item.Delta{setD("a", item.Int(2)), {}}, one("a", item.Int(2)).WithDeleted(true)},
		{"delete and edit", one("a", item.Int(1)), []item.Delta{setD("a", item.Int(2)), flagD(item.FlagSet)}, one("a", item.Int(2)).WithDeleted(true)},

		// Histories whose field types changed never fail.
		{"replaced by a string, then set ops", one("s", set("x")), []item.Delta{setD("s", item.String("str")), setOpsD("s", []string{"y"}, nil)}, one("s", item.String("str"))},
		{"replaced by a set, then map ops", one("m", ints("a", 1)), []item.Delta{setD("m", set("x")), mapOpsD("m", map[string]item.Value{"b": item.Int(2)})}, one("m", set("x"))},
		{"set ops on a string base", one("s", item.String("str")), []item.Delta{setOpsD("s", []string{"y"}, nil)}, one("s", item.String("str"))},
		{"map ops on an int base", one("m", item.Int(1)), []item.Delta{mapOpsD("m", map[string]item.Value{"b": item.Int(2)})}, one("m", item.Int(1))},
		{"set ops then map ops", one("s", set("x")), []item.Delta{setOpsD("s", []string{"y"}, nil), mapOpsD("s", map[string]item.Value{"b": item.Int(2)})}, one("s", set("x", "y"))},
		{"map ops then set ops", one("m", ints("a", 1)), []item.Delta{mapOpsD("m", map[string]item.Value{"b": item.Int(2)}), setOpsD("m", []string{"y"}, nil)}, one("m", ints("a", 1, "b", 2))},
		{"set ops and map ops on a missing field", item.Item{}, []item.Delta{mapOpsD("f", map[string]item.Value{"b": item.Int(2)}), setOpsD("f", []string{"y"}, nil)}, one("f", ints("b", 2))},
		{"replaced by a map, then set ops and map ops", one("f", set("x")),
			[]item.Delta{setD("f", ints("a", 1)), setOpsD("f", []string{"y"}, nil), mapOpsD("f", map[string]item.Value{"b": item.Int(2)})}, one("f", ints("a", 1, "b", 2))},
		{"no deltas", one("a", item.Int(1)), nil, one("a", item.Int(1))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := item.Merge(tt.base, tt.deltas)
			if err != nil {
				t.Fatalf("Merge: %v", err)
			}
			if !item.ItemsEqual(got, tt.want) {
				t.Errorf("Merge = %s, want %s", got, tt.want)
			}
			if err := got.Valid(); err != nil {
				t.Errorf("merged item is not valid: %v", err)
			}
		})
	}
}

// TestMergeProperties checks, on random histories, that merging one delta
// is patching it, that merging a delta with itself changes nothing more,
// that merge results do not depend on anything but the inputs (map
// iteration order included), and that merged items encode.
func TestMergeProperties(t *testing.T) {
	r := newRand(t)
	for range iterations() {
		base := randItem(r)
		deltas := make([]item.Delta, 1+r.IntN(4))
		for i := range deltas {
			deltas[i] = item.Diff(base, mutate(r, base))
		}
		before := encItem(t, base)
		var beforeDeltas [][]byte
		for _, d := range deltas {
			beforeDeltas = append(beforeDeltas, encDelta(t, d))
		}

		patched, err := item.Patch(base, deltas[0])
		if err != nil {
			t.Fatal(err)
		}
		single, err := item.Merge(base, deltas[:1])
		if err != nil {
			t.Fatalf("Merge(%s, one delta): %v", base, err)
		}
		if !item.ItemsEqual(single, patched) {
			t.Fatalf("Merge with one delta = %s, Patch = %s (base %s, delta %+v)", single, patched, base, deltas[0])
		}
		// A delta merged twice changes nothing more, except that counter
		// additions add up by design (two writes of +1 are two increments).
		twice, err := item.Merge(base, []item.Delta{deltas[0], deltas[0]})
		counts := func(e item.Edit) bool { return e.Op == item.OpCounterAdd || e.Value.Type() == item.TypeCounter }
		if !slices.ContainsFunc(deltas[0].Edits, counts) &&
			(err != nil || !item.ItemsEqual(twice, patched)) {
			t.Fatalf("Merge with a delta twice = %s, %v; want %s", twice, err, patched)
		}

		first, err := item.Merge(base, deltas)
		if err != nil {
			t.Fatalf("Merge: %v", err)
		}
		want := encItem(t, first)
		for range 2 {
			again, err := item.Merge(base, slices.Clone(deltas))
			if err != nil {
				t.Fatal(err)
			}
			if got := encItem(t, again); !bytes.Equal(got, want) {
				t.Fatalf("Merge is not deterministic: % x then % x", want, got)
			}
		}

		// Merge changes none of its inputs.
		if !bytes.Equal(encItem(t, base), before) {
			t.Fatal("Merge changed its base")
		}
		for i, d := range deltas {
			if !bytes.Equal(encDelta(t, d), beforeDeltas[i]) {
				t.Fatalf("Merge changed delta %d", i)
			}
		}
	}
}

// TestMergeDisjointCommutes checks that deltas touching different fields
// and leaving the deleted flag alone merge to the same item in any order.
func TestMergeDisjointCommutes(t *testing.T) {
	r := newRand(t)
	for range iterations() / 4 {
		base := randItem(r)
		a, b := item.Diff(base, mutate(r, base)), item.Diff(base, mutate(r, base))
		a.Deleted, b.Deleted = item.FlagKeep, item.FlagKeep
		taken := map[string]bool{}
		for _, e := range a.Edits {
			taken[e.Field] = true
		}
		b.Edits = slices.DeleteFunc(b.Edits, func(e item.Edit) bool { return taken[e.Field] })
		ab, err1 := item.Merge(base, []item.Delta{a, b})
		ba, err2 := item.Merge(base, []item.Delta{b, a})
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if !bytes.Equal(encItem(t, ab), encItem(t, ba)) {
			t.Fatalf("disjoint deltas do not commute: %s vs %s", ab, ba)
		}
	}
}
