package item_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/goatdb/goatdb/item"
)

func TestFromAny(t *testing.T) {
	when := time.Date(2024, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	type myInt int16
	type myString string
	tests := []struct {
		name string
		in   any
		want item.Value
	}{
		{"string", "x", item.String("x")},
		{"float64", 1.5, item.Number(1.5)},
		{"float64 -0", math.Copysign(0, -1), item.Number(0)},
		{"float64 inf", math.Inf(-1), item.Number(math.Inf(-1))},
		{"float32", float32(0.25), item.Number(0.25)},
		{"json.Number", json.Number("12.5"), item.Number(12.5)},
		{"json.Number integer literal", json.Number("3"), item.Int(3)},
		{"json.Number negative integer", json.Number("-42"), item.Int(-42)},
		{"json.Number -0", json.Number("-0"), item.Int(0)},
		{"json.Number max int64", json.Number("9223372036854775807"), item.Int(math.MaxInt64)},
		{"json.Number min int64", json.Number("-9223372036854775808"), item.Int(math.MinInt64)},
		{"json.Number past int64", json.Number("9223372036854775808"), item.Number(1 << 63)},
		{"json.Number fraction", json.Number("1.0"), item.Number(1)},
		{"json.Number exponent", json.Number("1e3"), item.Number(1000)},
		{"json.Number negative exponent", json.Number("-25E-1"), item.Number(-2.5)},
		{"int", 7, item.Int(7)},
		{"int8", int8(-8), item.Int(-8)},
		{"int16", int16(16), item.Int(16)},
		{"int32", int32(-32), item.Int(-32)},
		{"int64", int64(math.MinInt64), item.Int(math.MinInt64)},
		{"named int", myInt(5), item.Int(5)},
		{"uint", uint(1), item.Int(1)},
		{"uint8", uint8(255), item.Int(255)},
		{"uint16", uint16(65535), item.Int(65535)},
		{"uint32", uint32(math.MaxUint32), item.Int(math.MaxUint32)},
		{"uint64 max int64", uint64(math.MaxInt64), item.Int(math.MaxInt64)},
		{"bool", true, item.Bool(true)},
		{"time", when, item.Date(when)},
		{"[]string", []string{"b", "a", "b"}, item.StringSet("a", "b")},
		{"[]any", []any{"a", 1.0, true}, mustSet(t, item.String("a"), item.Number(1), item.Bool(true))},
		{"[]int", []int{3, 1}, mustSet(t, item.Int(1), item.Int(3))},
		{"array", [2]string{"x", "y"}, item.StringSet("x", "y")},
		{"empty slice", []any{}, mustSet(t)},
		{"map[string]any", map[string]any{"a": 1.0, "b": "s"},
			item.Map(map[string]item.Value{"a": item.Number(1), "b": item.String("s")})},
		{"map[string]int", map[string]int{"a": 1}, item.Map(map[string]item.Value{"a": item.Int(1)})},
		{"map with named string key", map[myString]bool{"k": true}, item.Map(map[string]item.Value{"k": item.Bool(true)})},
		{"nested map", map[string]any{"m": map[string]any{"s": []any{"x"}}},
			item.Map(map[string]item.Value{"m": item.Map(map[string]item.Value{"s": item.StringSet("x")})})},
		{"Value", item.Int(4), item.Int(4)},
		{"map of Value", map[string]item.Value{"v": item.Int(4)}, item.Map(map[string]item.Value{"v": item.Int(4)})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := item.FromAny(tt.in)
			if err != nil {
				t.Fatalf("FromAny(%#v): %v", tt.in, err)
			}
			if !item.Equal(got, tt.want) {
				t.Errorf("FromAny(%#v) = %#v, want %#v", tt.in, got, tt.want)
			}
		})
	}
}

func TestFromAnyErrors(t *testing.T) {
	x := 1
	deep := any(1.0)
	for range item.MaxDepth + 1 {
		deep = map[string]any{"k": deep}
	}
	tests := []struct {
		name string
		in   any
	}{
		{"nil", nil},
		{"NaN", math.NaN()},
		{"float32 NaN", float32(math.NaN())},
		{"json.Number bad", json.Number("abc")},
		{"json.Number out of range", json.Number("1e400")},
		{"json.Number empty", json.Number("")},
		{"json.Number leading zero", json.Number("01")},
		{"json.Number plus", json.Number("+1")},
		{"json.Number Inf", json.Number("Inf")},
		{"json.Number hex", json.Number("0x10")},
		{"json.Number bare dot", json.Number("1.")},
		{"json.Number bare exponent", json.Number("1e")},
		{"json.Number space", json.Number(" 1")},
		{"json.Number underscore", json.Number("1_000")},
		{"uint64 overflow", uint64(math.MaxInt64) + 1},
		{"non-UTF-8 string", "\xff"},
		{"non-UTF-8 in []string", []string{"\xff"}},
		{"non-UTF-8 map key", map[string]any{"\xff": 1.0}},
		{"zero Value", item.Value{}},
		{"struct", struct{ A int }{1}},
		{"pointer", &x},
		{"complex", complex(1, 2)},
		{"func", func() {}},
		{"chan", make(chan int)},
		{"map with int keys", map[int]string{1: "a"}},
		{"nil in slice", []any{"a", nil}},
		{"nil in map", map[string]any{"a": nil}},
		{"set in set", []any{[]any{"a"}}},
		{"map in set", []any{map[string]any{}}},
		{"NaN in map", map[string]any{"a": math.NaN()}},
		{"too deep", deep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if v, err := item.FromAny(tt.in); !errors.Is(err, item.ErrInvalidValue) {
				t.Errorf("FromAny(%#v) = %#v, %v; want ErrInvalidValue", tt.in, v, err)
			}
		})
	}
}

func TestFromAnyMaxDepth(t *testing.T) {
	deep := any(1.0)
	for range item.MaxDepth {
		deep = map[string]any{"k": deep}
	}
	v, err := item.FromAny(deep)
	if err != nil {
		t.Fatalf("maps nested MaxDepth deep: %v", err)
	}
	if err := v.Valid(); err != nil {
		t.Fatal(err)
	}
}

// TestFromAnyJSON converts what encoding/json decodes into any: with
// float64 numbers every number is a number; with UseNumber integer literals
// that fit an int64 are ints, as the same values written from Go are.
func TestFromAnyJSON(t *testing.T) {
	doc := `{"title": "Item 42", "count": 42, "ratio": 0.5, "done": false, "one": 1.0,
		"tags": ["tag42", "category2", "tag42"], "empty": [], "meta": {"a": {"b": [1, 2]}, "n": -0}}`
	want := func(n func(int64) item.Value) item.Value {
		return item.Map(map[string]item.Value{
			"title": item.String("Item 42"),
			"count": n(42),
			"ratio": item.Number(0.5),
			"one":   item.Number(1),
			"done":  item.Bool(false),
			"tags":  item.StringSet("category2", "tag42"),
			"empty": mustSet(t),
			"meta": item.Map(map[string]item.Value{
				"a": item.Map(map[string]item.Value{"b": mustSet(t, n(1), n(2))}),
				"n": n(0),
			}),
		})
	}
	t.Run("float64", func(t *testing.T) {
		var x any
		if err := json.Unmarshal([]byte(doc), &x); err != nil {
			t.Fatal(err)
		}
		got, err := item.FromAny(x)
		if err != nil {
			t.Fatal(err)
		}
		if w := want(func(i int64) item.Value { return item.Number(float64(i)) }); !item.Equal(got, w) {
			t.Errorf("got %#v\nwant %#v", got, w)
		}
	})
	t.Run("UseNumber", func(t *testing.T) {
		dec := json.NewDecoder(bytes.NewReader([]byte(doc)))
		dec.UseNumber()
		var x any
		if err := dec.Decode(&x); err != nil {
			t.Fatal(err)
		}
		got, err := item.FromAny(x)
		if err != nil {
			t.Fatal(err)
		}
		if w := want(item.Int); !item.Equal(got, w) {
			t.Errorf("got %#v\nwant %#v", got, w)
		}
		fromGo, err := item.FromAny(map[string]any{"title": "Item 42", "count": 42, "ratio": 0.5, "one": 1.0,
			"done": false, "tags": []string{"tag42", "category2"}, "empty": []any{},
			"meta": map[string]any{"a": map[string][]int{"b": {1, 2}}, "n": 0}})
		if err != nil || !item.Equal(got, fromGo) {
			t.Errorf("from JSON %#v, from Go %#v (%v): want equal", got, fromGo, err)
		}
	})
	t.Run("rejected", func(t *testing.T) {
		for _, doc := range []string{`null`, `{"a": null}`, `[[1]]`, `[{"a": 1}]`, `[1, null]`} {
			var x any
			if err := json.Unmarshal([]byte(doc), &x); err != nil {
				t.Fatal(err)
			}
			if _, err := item.FromAny(x); !errors.Is(err, item.ErrInvalidValue) {
				t.Errorf("FromAny(%s) = %v, want ErrInvalidValue", doc, err)
			}
		}
	})
}

func TestConvert(t *testing.T) {
	when := time.Date(2024, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	set := item.StringSet("a")
	m := item.Map(map[string]item.Value{"a": item.Int(1)})
	tests := []struct {
		name string
		v    item.Value
		to   item.Type
		want item.Value // zero: ErrTypeMismatch
	}{
		{"same type string", item.String("x"), item.TypeString, item.String("x")},
		{"same type set", set, item.TypeSet, set},
		{"same type map", m, item.TypeMap, m},
		{"int to number", item.Int(-5), item.TypeNumber, item.Number(-5)},
		{"int 2^53 to number", item.Int(1 << 53), item.TypeNumber, item.Number(1 << 53)},
		{"int 2^53+2 to number is exact", item.Int(1<<53 + 2), item.TypeNumber, item.Number(1<<53 + 2)},
		{"int min to number is exact", item.Int(math.MinInt64), item.TypeNumber, item.Number(math.MinInt64)},
		{"int 2^53+1 to number loses precision", item.Int(1<<53 + 1), item.TypeNumber, item.Value{}},
		{"int max to number loses precision", item.Int(math.MaxInt64), item.TypeNumber, item.Value{}},
		{"integral number to int", item.Number(42), item.TypeInt, item.Int(42)},
		{"number 2^53 to int", item.Number(1 << 53), item.TypeInt, item.Int(1 << 53)},
		{"number -2^53 to int", item.Number(-(1 << 53)), item.TypeInt, item.Int(-(1 << 53))},
		{"fractional number to int", item.Number(1.5), item.TypeInt, item.Value{}},
		{"huge number to int", item.Number(1e300), item.TypeInt, item.Value{}},
		{"inf to int", item.Number(math.Inf(1)), item.TypeInt, item.Value{}},
		{"RFC 3339 string to date", item.String("2024-01-02T03:04:05.006Z"), item.TypeDate, item.Date(when)},
		{"RFC 3339 with offset to date", item.String("2024-01-02T04:04:05.006+01:00"), item.TypeDate, item.Date(when)},
		{"bad string to date", item.String("yesterday"), item.TypeDate, item.Value{}},
		{"int to date", item.Int(when.UnixMilli()), item.TypeDate, item.Date(when)},
		{"number to date", item.Number(float64(when.UnixMilli())), item.TypeDate, item.Date(when)},
		{"fractional number to date", item.Number(0.5), item.TypeDate, item.Value{}},
		{"string to number", item.String("1"), item.TypeNumber, item.Value{}},
		{"string to int", item.String("1"), item.TypeInt, item.Value{}},
		{"bool to int", item.Bool(true), item.TypeInt, item.Value{}},
		{"date to int", item.DateMillis(1), item.TypeInt, item.Value{}},
		{"date to string", item.DateMillis(1), item.TypeString, item.Value{}},
		{"number to string", item.Number(1), item.TypeString, item.Value{}},
		{"string to set", item.String("a"), item.TypeSet, item.Value{}},
		{"set to map", set, item.TypeMap, item.Value{}},
		{"map to set", m, item.TypeSet, item.Value{}},
		{"to invalid", item.Int(1), item.TypeInvalid, item.Value{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := item.Convert(tt.v, tt.to)
			if tt.want.Type() == item.TypeInvalid {
				if !errors.Is(err, item.ErrTypeMismatch) {
					t.Errorf("Convert(%#v, %s) = %#v, %v; want ErrTypeMismatch", tt.v, tt.to, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Convert(%#v, %s): %v", tt.v, tt.to, err)
			}
			if !item.Equal(got, tt.want) {
				t.Errorf("Convert(%#v, %s) = %#v, want %#v", tt.v, tt.to, got, tt.want)
			}
		})
	}
}
