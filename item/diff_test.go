package item_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/goatdb/goatdb/item"
)

// TestDiffPatchProperty checks on random pairs of related items that
// Patch(a, Diff(a, b)) == b, that Diff(a, a) is empty, and that the encoding
// of a diff round-trips and still patches a into b.
func TestDiffPatchProperty(t *testing.T) {
	r := newRand(t)
	for i := range iterations() {
		a := randItem(r)
		b := mutate(r, a)
		if i%5 == 0 {
			b = randItem(r) // unrelated items too
		}
		d := item.Diff(a, b)
		got, err := item.Patch(a, d)
		if err != nil {
			t.Fatalf("Patch(%s, Diff(.., %s)): %v", a, b, err)
		}
		if !item.ItemsEqual(got, b) {
			t.Fatalf("Patch(a, Diff(a, b)) = %s\na = %s\nb = %s\ndelta %+v", got, a, b, d)
		}
		if d.Empty() != item.ItemsEqual(a, b) {
			t.Fatalf("Diff(%s, %s).Empty() = %v", a, b, d.Empty())
		}
		if self := item.Diff(a, a); !self.Empty() {
			t.Fatalf("Diff(a, a) = %+v for %s", self, a)
		}

		enc := encDelta(t, d)
		dec, err := item.DecodeDelta(enc)
		if err != nil {
			t.Fatalf("DecodeDelta(% x) of %+v: %v", enc, d, err)
		}
		if enc2 := encDelta(t, dec); !bytes.Equal(enc, enc2) {
			t.Fatalf("delta re-encoded % x, first % x", enc2, enc)
		}
		got, err = item.Patch(a, dec)
		if err != nil || !item.ItemsEqual(got, b) {
			t.Fatalf("Patch with decoded delta = %s, %v; want %s", got, err, b)
		}
		// The patched item is canonical: it encodes as b does.
		if !bytes.Equal(encItem(t, got), encItem(t, b)) {
			t.Fatalf("patched item encodes differently from %s", b)
		}
	}
}

func TestDiff(t *testing.T) {
	set := func(xs ...string) item.Value { return item.StringSet(xs...) }
	mp := func(kv ...any) item.Value {
		m := map[string]item.Value{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1].(item.Value)
		}
		return item.Map(m)
	}
	it := func(kv ...any) item.Item {
		m := map[string]item.Value{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1].(item.Value)
		}
		return item.New(m)
	}
	tests := []struct {
		name string
		a, b item.Item
		want item.Delta
	}{
		{"equal", it("a", item.Int(1)), it("a", item.Int(1)), item.Delta{}},
		{"add field", it(), it("a", item.Int(1)), item.Delta{Edits: []item.Edit{{Field: "a", Op: item.OpSet, Value: item.Int(1)}}}},
		{"remove field", it("a", item.Int(1)), it(), item.Delta{Edits: []item.Edit{{Field: "a", Op: item.OpRemove}}}},
		{"change scalar", it("a", item.Int(1)), it("a", item.Int(2)), item.Delta{Edits: []item.Edit{{Field: "a", Op: item.OpSet, Value: item.Int(2)}}}},
		{"change type", it("a", item.Int(1)), it("a", item.Number(1)), item.Delta{Edits: []item.Edit{{Field: "a", Op: item.OpSet, Value: item.Number(1)}}}},
		{"set to map", it("a", set("x")), it("a", mp()), item.Delta{Edits: []item.Edit{{Field: "a", Op: item.OpSet, Value: mp()}}}},
		{"set ops", it("s", set("a", "b")), it("s", set("b", "c")), item.Delta{Edits: []item.Edit{
			{Field: "s", Op: item.OpSetOps, Add: []item.Value{item.String("c")}, Del: []item.Value{item.String("a")}}}}},
		{"set emptied", it("s", set("a")), it("s", set()), item.Delta{Edits: []item.Edit{
			{Field: "s", Op: item.OpSetOps, Del: []item.Value{item.String("a")}}}}},
		{"map ops", it("m", mp("a", item.Int(1), "b", item.Int(2), "c", item.Int(3))), it("m", mp("b", item.Int(2), "c", item.Int(4), "d", item.Int(5))),
			item.Delta{Edits: []item.Edit{{Field: "m", Op: item.OpMapOps,
				Put: []item.Field{{"c", item.Int(4)}, {"d", item.Int(5)}}, DelKeys: []string{"a"}}}}},
		{"delete", it("a", item.Int(1)), it("a", item.Int(1)).WithDeleted(true), item.Delta{Deleted: item.FlagSet}},
		{"undelete", it().WithDeleted(true), it(), item.Delta{Deleted: item.FlagClear}},
		{"several, sorted by name", it("a", item.Int(1), "c", item.Int(1)), it("b", item.Int(1), "c", item.Int(2)),
			item.Delta{Edits: []item.Edit{
				{Field: "a", Op: item.OpRemove},
				{Field: "b", Op: item.OpSet, Value: item.Int(1)},
				{Field: "c", Op: item.OpSet, Value: item.Int(2)}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := item.Diff(tt.a, tt.b)
			if got, want := encDelta(t, d), encDelta(t, tt.want); !bytes.Equal(got, want) {
				t.Errorf("Diff = %+v, want %+v", d, tt.want)
			}
			got, err := item.Patch(tt.a, d)
			if err != nil || !item.ItemsEqual(got, tt.b) {
				t.Errorf("Patch = %s, %v; want %s", got, err, tt.b)
			}
		})
	}
}

func TestPatch(t *testing.T) {
	base := item.New(map[string]item.Value{"s": item.String("x"), "set": item.StringSet("a"), "m": item.Map(nil)})
	tests := []struct {
		name    string
		d       item.Delta
		want    item.Item
		wantErr error
	}{
		{"set ops on a missing field start empty",
			item.Delta{Edits: []item.Edit{{Field: "new", Op: item.OpSetOps, Add: []item.Value{item.Int(1)}, Del: []item.Value{item.Int(2)}}}},
			base.With("new", mustSet(t, item.Int(1))), nil},
		{"map ops on a missing field start empty",
			item.Delta{Edits: []item.Edit{{Field: "new", Op: item.OpMapOps, Put: []item.Field{{"k", item.Int(1)}}, DelKeys: []string{"z"}}}},
			base.With("new", item.Map(map[string]item.Value{"k": item.Int(1)})), nil},
		{"add and remove of one element keeps it",
			item.Delta{Edits: []item.Edit{{Field: "set", Op: item.OpSetOps, Add: []item.Value{item.String("b")}, Del: []item.Value{item.String("b")}}}},
			base.With("set", item.StringSet("a", "b")), nil},
		{"removing a missing field is a no-op", item.Delta{Edits: []item.Edit{{Field: "zz", Op: item.OpRemove}}}, base, nil},
		{"set ops on a string", item.Delta{Edits: []item.Edit{{Field: "s", Op: item.OpSetOps}}}, item.Item{}, item.ErrTypeMismatch},
		{"map ops on a set", item.Delta{Edits: []item.Edit{{Field: "set", Op: item.OpMapOps}}}, item.Item{}, item.ErrTypeMismatch},
		{"unknown op", item.Delta{Edits: []item.Edit{{Field: "s", Op: 7}}}, item.Item{}, item.ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := item.Patch(base, tt.d)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("Patch error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || !item.ItemsEqual(got, tt.want) {
				t.Errorf("Patch = %s, %v; want %s", got, err, tt.want)
			}
		})
	}
	// Patch leaves its input alone.
	before := base.String()
	if _, err := item.Patch(base, item.Diff(base, item.Item{}.WithDeleted(true))); err != nil {
		t.Fatal(err)
	}
	if base.String() != before {
		t.Errorf("Patch changed its base: %s", base)
	}
}
