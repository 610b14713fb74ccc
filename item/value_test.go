package item_test

import (
	"errors"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/goatdb/goatdb/item"
)

func TestConstructors(t *testing.T) {
	when := time.Date(2024, 5, 6, 7, 8, 9, 123_456_789, time.FixedZone("x", 3600))
	tests := []struct {
		name  string
		v     item.Value
		typ   item.Type
		check func(item.Value) bool
	}{
		{"string", item.String("héllo"), item.TypeString, func(v item.Value) bool { return v.Str() == "héllo" }},
		{"empty string", item.String(""), item.TypeString, func(v item.Value) bool { return v.Str() == "" }},
		{"number", item.Number(2.5), item.TypeNumber, func(v item.Value) bool { return v.Float() == 2.5 && v.Int64() == 2 }},
		{"negative number truncates", item.Number(-2.5), item.TypeNumber, func(v item.Value) bool { return v.Int64() == -2 }},
		{"inf", item.Number(math.Inf(1)), item.TypeNumber, func(v item.Value) bool { return math.IsInf(v.Float(), 1) }},
		{"int", item.Int(-7), item.TypeInt, func(v item.Value) bool { return v.Int64() == -7 && v.Float() == -7 }},
		{"int max", item.Int(math.MaxInt64), item.TypeInt, func(v item.Value) bool { return v.Int64() == math.MaxInt64 }},
		{"bool true", item.Bool(true), item.TypeBool, func(v item.Value) bool { return v.Bool() }},
		{"bool false", item.Bool(false), item.TypeBool, func(v item.Value) bool { return !v.Bool() }},
		{"date truncates to ms and UTC", item.Date(when), item.TypeDate, func(v item.Value) bool {
			return v.Time().Equal(when.Truncate(time.Millisecond)) && v.Time().Location() == time.UTC &&
				v.Int64() == when.UnixMilli()
		}},
		{"date millis", item.DateMillis(-1), item.TypeDate, func(v item.Value) bool { return v.Int64() == -1 }},
		{"string set", item.StringSet("b", "a", "b"), item.TypeSet, func(v item.Value) bool {
			return v.Len() == 2 && v.Elems()[0].Str() == "a" && v.Has(item.String("b")) && !v.Has(item.String("c"))
		}},
		{"map", item.Map(map[string]item.Value{"b": item.Int(2), "a": item.Int(1)}), item.TypeMap, func(v item.Value) bool {
			x, ok := v.Lookup("b")
			_, missing := v.Lookup("c")
			return v.Len() == 2 && slices.Equal(v.Keys(), []string{"a", "b"}) && ok && x.Int64() == 2 && !missing
		}},
		{"empty map", item.Map(nil), item.TypeMap, func(v item.Value) bool { return v.Len() == 0 && v.Valid() == nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.v.Type() != tt.typ {
				t.Errorf("Type() = %s, want %s", tt.v.Type(), tt.typ)
			}
			if err := tt.v.Valid(); err != nil {
				t.Errorf("Valid() = %v", err)
			}
			if !tt.check(tt.v) {
				t.Errorf("accessors of %#v are wrong", tt.v)
			}
		})
	}
}

func TestAccessorsOfOtherTypes(t *testing.T) {
	s := item.String("x")
	if s.Float() != 0 || s.Bool() || s.Len() != 0 || s.Elems() != nil || s.Keys() != nil || s.Has(item.Int(1)) {
		t.Error("accessors of a string value should return zero values")
	}
	if _, ok := s.Lookup("x"); ok {
		t.Error("Lookup on a string found a key")
	}
	if item.Int(3).Str() != "" || item.Number(1).Bool() {
		t.Error("Str/Bool of other types should be zero")
	}
}

func TestNegativeZero(t *testing.T) {
	negZero := math.Copysign(0, -1)
	v := item.Number(negZero)
	if math.Signbit(v.Float()) {
		t.Fatal("Number(-0) kept the sign bit")
	}
	if !item.Equal(v, item.Number(0)) {
		t.Error("Number(-0) != Number(0)")
	}
	a, b := encValue(t, v), encValue(t, item.Number(0))
	if string(a) != string(b) {
		t.Errorf("-0 encodes as %x, 0 as %x", a, b)
	}
	s := mustSet(t, item.Number(0), item.Number(negZero))
	if s.Len() != 1 {
		t.Errorf("set {0, -0} has %d elements", s.Len())
	}
}

func TestNaNRejected(t *testing.T) {
	nans := []float64{math.NaN(), math.Float64frombits(0x7ff0000000000001), math.Float64frombits(0xfff8000000000000)}
	for _, f := range nans {
		v := item.Number(f)
		if err := v.Valid(); !errors.Is(err, item.ErrInvalidValue) {
			t.Errorf("Valid(NaN %x) = %v", math.Float64bits(f), err)
		}
		if b, err := item.AppendValue([]byte{1, 2}, v); !errors.Is(err, item.ErrInvalidValue) || len(b) != 2 {
			t.Errorf("AppendValue(NaN) = %x, %v", b, err)
		}
		if _, err := item.Set(v); !errors.Is(err, item.ErrInvalidValue) {
			t.Errorf("Set(NaN) = %v", err)
		}
		if _, err := item.AppendItem(nil, item.New(map[string]item.Value{"n": v})); !errors.Is(err, item.ErrInvalidValue) {
			t.Errorf("AppendItem(NaN field) = %v", err)
		}
		m := item.Map(map[string]item.Value{"n": v})
		if err := m.Valid(); !errors.Is(err, item.ErrInvalidValue) {
			t.Errorf("Valid(map with NaN) = %v", err)
		}
	}
}

func TestInvalidValues(t *testing.T) {
	tests := []struct {
		name string
		v    item.Value
	}{
		{"zero value", item.Value{}},
		{"non-UTF-8 string", item.String("\xff")},
		{"non-UTF-8 in string set", item.StringSet("ok", "\xc3")},
		{"non-UTF-8 map key", item.Map(map[string]item.Value{"\xff": item.Int(1)})},
		{"zero value in map", item.Map(map[string]item.Value{"a": {}})},
		{"maps too deep", nested(item.MaxDepth+1, item.Int(1))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.v.Valid(); !errors.Is(err, item.ErrInvalidValue) {
				t.Errorf("Valid() = %v, want ErrInvalidValue", err)
			}
			if _, err := item.AppendValue(nil, tt.v); !errors.Is(err, item.ErrInvalidValue) {
				t.Errorf("AppendValue() = %v, want ErrInvalidValue", err)
			}
		})
	}
	if err := nested(item.MaxDepth, item.Int(1)).Valid(); err != nil {
		t.Errorf("maps nested MaxDepth deep: %v", err)
	}
}

func TestSet(t *testing.T) {
	m := item.Map(map[string]item.Value{"a": item.Int(1)})
	tests := []struct {
		name    string
		in      []item.Value
		want    []item.Value
		wantErr bool
	}{
		{"empty", nil, nil, false},
		{"sorts", []item.Value{item.Int(3), item.Int(1), item.Int(2)}, []item.Value{item.Int(1), item.Int(2), item.Int(3)}, false},
		{"dedups", []item.Value{item.String("a"), item.String("a"), item.String("b"), item.String("a")},
			[]item.Value{item.String("a"), item.String("b")}, false},
		{"mixed types by type order", []item.Value{item.Bool(true), item.Int(1), item.Number(1), item.String("1"), item.DateMillis(1)},
			[]item.Value{item.String("1"), item.Number(1), item.Int(1), item.Bool(true), item.DateMillis(1)}, false},
		{"set element rejected", []item.Value{item.Int(1), item.StringSet("x")}, nil, true},
		{"map element rejected", []item.Value{m}, nil, true},
		{"zero value rejected", []item.Value{{}}, nil, true},
		{"NaN rejected", []item.Value{item.Number(math.NaN())}, nil, true},
		{"bad UTF-8 rejected", []item.Value{item.String("\xfe")}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.in)
			s, err := item.Set(tt.in...)
			if tt.wantErr {
				if !errors.Is(err, item.ErrInvalidValue) {
					t.Fatalf("Set() error = %v, want ErrInvalidValue", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(s.Elems(), tt.want, item.Equal) {
				t.Errorf("Set() = %#v, want %v", s, tt.want)
			}
			if !slices.EqualFunc(in, tt.in, item.Equal) {
				t.Error("Set modified its argument")
			}
		})
	}
}

func TestMapCopies(t *testing.T) {
	src := map[string]item.Value{"a": item.Int(1)}
	v := item.Map(src)
	src["a"] = item.Int(2)
	src["b"] = item.Int(3)
	if x, _ := v.Lookup("a"); x.Int64() != 1 || v.Len() != 1 {
		t.Errorf("Map did not copy its argument: %#v", v)
	}
}

// ordered lists values in strictly increasing order.
func ordered(t *testing.T) []item.Value {
	return []item.Value{
		item.String(""), item.String("A"), item.String("a"), item.String("ab"), item.String("b"), item.String("ü"),
		item.Number(math.Inf(-1)), item.Number(-1e300), item.Number(-1), item.Number(0), item.Number(0.5), item.Number(1 << 53), item.Number(math.Inf(1)),
		item.Int(math.MinInt64), item.Int(-1), item.Int(0), item.Int(math.MaxInt64),
		item.Bool(false), item.Bool(true),
		item.DateMillis(-5), item.DateMillis(0), item.DateMillis(1_700_000_000_000),
		mustSet(t), mustSet(t, item.String("a")), mustSet(t, item.String("a"), item.Int(1)), mustSet(t, item.String("b")),
		item.Map(nil), item.Map(map[string]item.Value{"a": item.Int(1)}), item.Map(map[string]item.Value{"a": item.Int(2)}),
		item.Map(map[string]item.Value{"a": item.Int(1), "b": item.Int(0)}), item.Map(map[string]item.Value{"b": item.Int(0)}),
	}
}

func TestCompareTable(t *testing.T) {
	vs := ordered(t)
	for i, a := range vs {
		for j, b := range vs {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := item.Compare(a, b); got != want {
				t.Errorf("Compare(%#v, %#v) = %d, want %d", a, b, got, want)
			}
			if got := item.Equal(a, b); got != (i == j) {
				t.Errorf("Equal(%#v, %#v) = %v", a, b, got)
			}
		}
	}
}

// TestCompareTotalOrder checks on random values that Compare is a total
// order consistent with Equal: reflexive, antisymmetric, transitive.
func TestCompareTotalOrder(t *testing.T) {
	r := newRand(t)
	vs := make([]item.Value, 300)
	for i := range vs {
		vs[i] = randValue(r, 0)
	}
	for _, a := range vs {
		if item.Compare(a, a) != 0 || !item.Equal(a, a) {
			t.Fatalf("%#v is not equal to itself", a)
		}
		for _, b := range vs {
			ab, ba := item.Compare(a, b), item.Compare(b, a)
			if ab != -ba {
				t.Fatalf("Compare(%#v, %#v) = %d but reversed = %d", a, b, ab, ba)
			}
			if (ab == 0) != item.Equal(a, b) {
				t.Fatalf("Compare(%#v, %#v) = %d but Equal = %v", a, b, ab, item.Equal(a, b))
			}
		}
	}
	sorted := slices.Clone(vs)
	slices.SortFunc(sorted, item.Compare)
	for i := 1; i < len(sorted); i++ {
		for j := 0; j < i; j += 7 { // transitivity against earlier elements
			if item.Compare(sorted[j], sorted[i]) > 0 {
				t.Fatalf("not transitive: %#v sorted before %#v", sorted[j], sorted[i])
			}
		}
	}
}

func TestEqualDistinguishesTypes(t *testing.T) {
	pairs := [][2]item.Value{
		{item.Int(1), item.Number(1)},
		{item.Int(1), item.DateMillis(1)},
		{item.Int(0), item.Bool(false)},
		{item.String(""), item.Map(nil)},
		{mustSet(t), item.Map(nil)},
		{item.Value{}, item.String("")},
	}
	for _, p := range pairs {
		if item.Equal(p[0], p[1]) || item.Compare(p[0], p[1]) == 0 {
			t.Errorf("%#v and %#v compare equal", p[0], p[1])
		}
	}
	if !item.Equal(item.Value{}, item.Value{}) {
		t.Error("zero values are not equal")
	}
}

func TestAny(t *testing.T) {
	when := time.UnixMilli(1_700_000_000_123).UTC()
	tests := []struct {
		v    item.Value
		want any
	}{
		{item.String("s"), "s"},
		{item.Number(1.5), 1.5},
		{item.Int(-3), int64(-3)},
		{item.Bool(true), true},
		{item.Date(when), when},
		{item.StringSet("b", "a"), []any{"a", "b"}},
		{mustSet(t), []any{}},
		{item.Map(map[string]item.Value{"a": item.Int(1), "m": item.Map(map[string]item.Value{"x": item.StringSet("y")})}),
			map[string]any{"a": int64(1), "m": map[string]any{"x": []any{"y"}}}},
		{item.Value{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.v.GoString(), func(t *testing.T) {
			if got := tt.v.Any(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Any() = %#v, want %#v", got, tt.want)
			}
		})
	}
}

// TestAnyFromAnyRoundTrip checks FromAny(v.Any()) == v for random values.
func TestAnyFromAnyRoundTrip(t *testing.T) {
	r := newRand(t)
	for range iterations() {
		v := randValue(r, 0)
		got, err := item.FromAny(v.Any())
		if err != nil {
			t.Fatalf("FromAny(%#v.Any()): %v", v, err)
		}
		if !item.Equal(got, v) {
			t.Fatalf("FromAny(Any()) = %#v, want %#v", got, v)
		}
	}
}

func TestTypeNames(t *testing.T) {
	for typ := item.TypeString; typ <= item.TypeMap; typ++ {
		got, ok := item.ParseType(typ.String())
		if !ok || got != typ {
			t.Errorf("ParseType(%q) = %v, %v", typ.String(), got, ok)
		}
		if typ.Scalar() != (typ <= item.TypeDate) {
			t.Errorf("%s.Scalar() = %v", typ, typ.Scalar())
		}
	}
	for _, bad := range []string{"", "invalid", "Map", "float"} {
		if _, ok := item.ParseType(bad); ok {
			t.Errorf("ParseType(%q) succeeded", bad)
		}
	}
	if item.TypeInvalid.Scalar() || item.Type(99).String() != "type(99)" {
		t.Error("invalid types are misdescribed")
	}
}

func TestGoString(t *testing.T) {
	it := item.New(map[string]item.Value{
		"n": item.Number(1.5), "i": item.Int(2), "s": item.String("x"), "b": item.Bool(true),
		"d": item.DateMillis(0), "set": item.StringSet("a"), "m": item.Map(map[string]item.Value{"k": item.Int(1)}),
	}).WithDeleted(true)
	want := `deleted {b: true, d: 1970-01-01T00:00:00Z, i: 2i, m: map{"k": 1i}, n: 1.5, s: "x", set: {"a"}}`
	if got := it.String(); got != want {
		t.Errorf("String() =\n%s\nwant\n%s", got, want)
	}
	if got := (item.Value{}).GoString(); got != "invalid" {
		t.Errorf("zero GoString = %q", got)
	}
}

func TestItem(t *testing.T) {
	it := item.New(map[string]item.Value{"b": item.Int(2), "a": item.Int(1)})
	if it.Len() != 2 || it.Fields()[0].Name != "a" || it.Deleted() {
		t.Fatalf("New = %s", it)
	}
	with := it.With("c", item.Int(3)).With("a", item.Int(10))
	if v, _ := with.Get("a"); v.Int64() != 10 || with.Len() != 3 {
		t.Errorf("With = %s", with)
	}
	if v, _ := it.Get("a"); v.Int64() != 1 || it.Len() != 2 {
		t.Errorf("With changed the original: %s", it)
	}
	without := with.Without("b").Without("zz")
	if _, ok := without.Get("b"); ok || without.Len() != 2 {
		t.Errorf("Without = %s", without)
	}
	if with.Len() != 3 {
		t.Error("Without changed the original")
	}
	del := it.WithDeleted(true)
	if !del.Deleted() || it.Deleted() || !del.With("x", item.Int(0)).Deleted() || !del.Without("a").Deleted() {
		t.Error("deleted flag not kept")
	}
	var names []string
	for name := range with.All() {
		names = append(names, name)
		if name == "b" {
			break
		}
	}
	if !slices.Equal(names, []string{"a", "b"}) {
		t.Errorf("All stopped at %v", names)
	}
	if m := with.Map(); len(m) != 3 || m["c"].Int64() != 3 {
		t.Errorf("Map() = %v", m)
	}
	if !item.ItemsEqual(item.New(with.Map()), with) || item.ItemsEqual(with, it) || item.ItemsEqual(it, del) {
		t.Error("ItemsEqual is wrong")
	}
	var zero item.Item
	if zero.Len() != 0 || zero.Deleted() || zero.Valid() != nil {
		t.Error("zero Item is not empty and valid")
	}
}

func TestItemValid(t *testing.T) {
	tests := []struct {
		name string
		it   item.Item
	}{
		{"empty name", item.New(map[string]item.Value{"": item.Int(1)})},
		{"NUL in name", item.New(map[string]item.Value{"a\x00b": item.Int(1)})},
		{"long name", item.New(map[string]item.Value{string(make([]byte, 1025)): item.Int(1)})},
		{"non-UTF-8 name", item.New(map[string]item.Value{"\xff": item.Int(1)})},
		{"unsorted", item.FromFields([]item.Field{{"b", item.Int(1)}, {"a", item.Int(1)}}, false)},
		{"duplicate", item.FromFields([]item.Field{{"a", item.Int(1)}, {"a", item.Int(2)}}, false)},
		{"bad value", item.New(map[string]item.Value{"a": item.String("\xff")})},
		{"zero value", item.New(map[string]item.Value{"a": {}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.it.Valid(); !errors.Is(err, item.ErrInvalidValue) {
				t.Errorf("Valid() = %v", err)
			}
			if _, err := item.AppendItem(nil, tt.it); !errors.Is(err, item.ErrInvalidValue) {
				t.Errorf("AppendItem() = %v", err)
			}
		})
	}
	long := string(slices.Repeat([]byte("x"), 1024))
	if err := item.New(map[string]item.Value{long: item.Int(1), "ü": item.Int(2)}).Valid(); err != nil {
		t.Errorf("1024-byte and non-ASCII names: %v", err)
	}
}

func TestItemUpdate(t *testing.T) {
	base := item.New(map[string]item.Value{"a": item.Int(1), "c": item.Int(3), "e": item.Int(5)})
	got := base.Update([]item.Field{{Name: "d", Value: item.Int(4)}, {Name: "a", Value: item.Int(9)}, {Name: "b", Value: item.Int(2)}, {Name: "b", Value: item.Int(7)}}, []string{"e", "zz"})
	want := item.New(map[string]item.Value{"a": item.Int(9), "b": item.Int(7), "c": item.Int(3), "d": item.Int(4)})
	if !item.ItemsEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if !item.ItemsEqual(base, item.New(map[string]item.Value{"a": item.Int(1), "c": item.Int(3), "e": item.Int(5)})) {
		t.Fatalf("Update changed its receiver: %v", base)
	}
	if err := got.Valid(); err != nil {
		t.Fatal(err)
	}
}
