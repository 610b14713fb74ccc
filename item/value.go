package item

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Type is the type of a value.
type Type uint8

// The value types. Their numeric values are part of the encoding.
const (
	TypeInvalid Type = 0
	TypeString  Type = 1
	TypeNumber  Type = 2
	TypeInt     Type = 3
	TypeBool    Type = 4
	TypeDate    Type = 5
	TypeSet     Type = 6
	TypeMap     Type = 7
	TypeList    Type = 8
	// 9 is the tag of the compact number form, not a type.
	TypeCounter Type = 10
)

var typeNames = [...]string{"invalid", "string", "number", "int", "bool", "date", "set", "map", "list", "", "counter"}

// String returns the type's name as used in schema files: "string",
// "number", "int", "bool", "date", "set", "map", "list" or "counter".
func (t Type) String() string {
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", t)
}

// ParseType returns the type with the given name.
func ParseType(name string) (Type, bool) {
	for i, n := range typeNames[1:] {
		if n != "" && n == name {
			return Type(i + 1), true
		}
	}
	return TypeInvalid, false
}

// FieldOnly reports whether values of the type may only be item fields,
// never set elements or map values: lists and counters, whose merge rules
// are defined per field.
func (t Type) FieldOnly() bool { return t == TypeList || t == TypeCounter }

// Scalar reports whether values of the type can be set elements.
func (t Type) Scalar() bool { return t >= TypeString && t <= TypeDate }

// MaxDepth is how deeply maps may nest.
const MaxDepth = 16

// Value is an immutable typed value. The zero Value is invalid and is never
// stored; use the constructors.
type Value struct {
	t Type
	n uint64     // number bits, int, bool (0/1), date ms
	s string     // string
	c *composite // set or map
}

type composite struct {
	elems []Value  // set or list elements, or map values in key order
	keys  []string // map keys, sorted
	meta  []ElemID // list element ids
}

// String returns a string value.
func String(s string) Value { return Value{t: TypeString, s: s} }

// Number returns a number value. Negative zero becomes zero; NaN makes a
// value that [Value.Valid] rejects and that cannot be stored.
func Number(f float64) Value {
	if f == 0 {
		f = 0
	}
	return Value{t: TypeNumber, n: math.Float64bits(f)}
}

// Int returns an int value.
func Int(i int64) Value { return Value{t: TypeInt, n: uint64(i)} }

// Bool returns a bool value.
func Bool(b bool) Value {
	if b {
		return Value{t: TypeBool, n: 1}
	}
	return Value{t: TypeBool}
}

// Counter returns a counter value: an int64 whose concurrent increments
// and decrements add up when branches merge.
func Counter(i int64) Value { return Value{t: TypeCounter, n: uint64(i)} }

// Date returns a date value, truncated to the millisecond, in UTC.
func Date(t time.Time) Value { return DateMillis(t.UnixMilli()) }

// DateMillis returns a date value from Unix milliseconds.
func DateMillis(ms int64) Value { return Value{t: TypeDate, n: uint64(ms)} }

// Set returns a set of the given scalar values, sorted and without
// duplicates. It fails with [ErrInvalidValue] if an element is not a valid
// scalar.
func Set(elems ...Value) (Value, error) {
	for _, e := range elems {
		if !e.t.Scalar() {
			return Value{}, fmt.Errorf("%w: a set holds scalars, not %s", ErrInvalidValue, e.t)
		}
		if err := e.Valid(); err != nil {
			return Value{}, err
		}
	}
	return newSet(elems), nil
}

// newSet sorts and dedups a copy of elems; elems must be valid scalars.
func newSet(elems []Value) Value {
	s := slices.Clone(elems)
	slices.SortFunc(s, Compare)
	s = slices.CompactFunc(s, Equal)
	return Value{t: TypeSet, c: &composite{elems: s}}
}

// StringSet returns a set of strings.
func StringSet(elems ...string) Value {
	vs := make([]Value, len(elems))
	for i, e := range elems {
		vs[i] = String(e)
	}
	return newSet(vs)
}

// Map returns a map value holding a copy of m.
func Map(m map[string]Value) Value {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	vals := make([]Value, len(keys))
	for i, k := range keys {
		vals[i] = m[k]
	}
	return Value{t: TypeMap, c: &composite{elems: vals, keys: keys}}
}

// Type returns the value's type.
func (v Value) Type() Type { return v.t }

// Str returns the string of a string value, or "".
func (v Value) Str() string { return v.s }

// Float returns a number value as a float64. Int and counter values
// convert; other types return 0.
func (v Value) Float() float64 {
	switch v.t {
	case TypeNumber:
		return math.Float64frombits(v.n)
	case TypeInt, TypeCounter:
		return float64(int64(v.n))
	}
	return 0
}

// Int64 returns an int or counter value, a date's Unix milliseconds, or a number
// truncated toward zero.
func (v Value) Int64() int64 {
	if v.t == TypeNumber {
		return int64(math.Float64frombits(v.n))
	}
	return int64(v.n)
}

// Bool returns a bool value, or false.
func (v Value) Bool() bool { return v.t == TypeBool && v.n != 0 }

// Time returns a date value as a UTC time.
func (v Value) Time() time.Time { return time.UnixMilli(int64(v.n)).UTC() }

// Len returns the number of elements of a set, list or map, and 0
// otherwise.
func (v Value) Len() int {
	if v.c == nil {
		return 0
	}
	return len(v.c.elems)
}

// Elems returns the sorted elements of a set, the elements of a list in
// order, or the values of a map in key order. The slice is shared: do not
// modify it.
func (v Value) Elems() []Value {
	if v.c == nil {
		return nil
	}
	return v.c.elems
}

// Keys returns the sorted keys of a map. The slice is shared: do not modify it.
func (v Value) Keys() []string {
	if v.c == nil {
		return nil
	}
	return v.c.keys
}

// Has reports whether a set holds e.
func (v Value) Has(e Value) bool {
	_, ok := slices.BinarySearchFunc(v.Elems(), e, Compare)
	return ok
}

// Lookup returns the value of key k in a map.
func (v Value) Lookup(k string) (Value, bool) {
	i, ok := slices.BinarySearch(v.Keys(), k)
	if !ok {
		return Value{}, false
	}
	return v.c.elems[i], true
}

// Valid reports whether the value can be stored; the error wraps
// [ErrInvalidValue].
func (v Value) Valid() error { return v.valid(0) }

func (v Value) valid(depth int) error {
	switch v.t {
	case TypeString:
		if !utf8.ValidString(v.s) {
			return fmt.Errorf("%w: string is not valid UTF-8", ErrInvalidValue)
		}
	case TypeNumber:
		if math.IsNaN(math.Float64frombits(v.n)) {
			return fmt.Errorf("%w: number is NaN", ErrInvalidValue)
		}
	case TypeInt, TypeBool, TypeDate:
	case TypeCounter, TypeList:
		if depth > 0 {
			return fmt.Errorf("%w: a %s is a field, not a map value", ErrInvalidValue, v.t)
		}
		if v.t == TypeList {
			return v.validList()
		}
	case TypeSet:
		// Set checks its elements, but StringSet does not check UTF-8.
		for _, e := range v.c.elems {
			if !e.t.Scalar() {
				return fmt.Errorf("%w: a set holds scalars, not %s", ErrInvalidValue, e.t)
			}
			if err := e.valid(depth); err != nil {
				return err
			}
		}
	case TypeMap:
		if depth >= MaxDepth {
			return fmt.Errorf("%w: maps nested deeper than %d", ErrInvalidValue, MaxDepth)
		}
		for i, e := range v.c.elems {
			if !utf8.ValidString(v.c.keys[i]) {
				return fmt.Errorf("%w: map key is not valid UTF-8", ErrInvalidValue)
			}
			if err := e.valid(depth + 1); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("%w: zero Value", ErrInvalidValue)
	}
	return nil
}

// Compare orders values: first by type, then by value (strings bytewise,
// numbers numerically, false before true, sets and maps element by element).
func Compare(a, b Value) int {
	if a.t != b.t {
		return cmp.Compare(a.t, b.t)
	}
	switch a.t {
	case TypeString:
		return strings.Compare(a.s, b.s)
	case TypeNumber:
		return cmp.Compare(math.Float64frombits(a.n), math.Float64frombits(b.n))
	case TypeInt, TypeDate, TypeCounter:
		return cmp.Compare(int64(a.n), int64(b.n))
	case TypeBool:
		return cmp.Compare(a.n, b.n)
	case TypeSet:
		return slices.CompareFunc(a.Elems(), b.Elems(), Compare)
	case TypeMap:
		if c := slices.Compare(a.Keys(), b.Keys()); c != 0 {
			return c
		}
		return slices.CompareFunc(a.Elems(), b.Elems(), Compare)
	case TypeList:
		if c := slices.CompareFunc(a.Elems(), b.Elems(), Compare); c != 0 {
			return c
		}
		return slices.CompareFunc(a.meta(), b.meta(), ElemID.Compare)
	}
	return 0
}

// Equal reports whether two values are equal.
func Equal(a, b Value) bool {
	if a.t != b.t || a.n != b.n || a.s != b.s {
		return false
	}
	if a.c == nil || b.c == nil {
		return a.c == b.c
	}
	return Compare(a, b) == 0
}

// Any returns the value as a plain Go value: string, float64, int64 (int
// and counter), bool, time.Time, []any (set, or list in order) or
// map[string]any.
func (v Value) Any() any {
	switch v.t {
	case TypeString:
		return v.s
	case TypeNumber:
		return v.Float()
	case TypeInt, TypeCounter:
		return v.Int64()
	case TypeBool:
		return v.Bool()
	case TypeDate:
		return v.Time()
	case TypeSet, TypeList:
		out := make([]any, len(v.c.elems))
		for i, e := range v.c.elems {
			out[i] = e.Any()
		}
		return out
	case TypeMap:
		out := make(map[string]any, len(v.c.keys))
		for i, k := range v.c.keys {
			out[k] = v.c.elems[i].Any()
		}
		return out
	}
	return nil
}

// GoString formats the value for debugging and golden files.
func (v Value) GoString() string {
	switch v.t {
	case TypeString:
		return fmt.Sprintf("%q", v.s)
	case TypeNumber:
		return fmt.Sprint(v.Float())
	case TypeInt:
		return fmt.Sprintf("%di", v.Int64())
	case TypeCounter:
		return fmt.Sprintf("%dc", v.Int64())
	case TypeList:
		parts := make([]string, len(v.c.elems))
		for i, e := range v.c.elems {
			parts[i] = e.GoString()
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case TypeBool:
		return fmt.Sprint(v.Bool())
	case TypeDate:
		return v.Time().Format(time.RFC3339Nano)
	case TypeSet:
		parts := make([]string, len(v.c.elems))
		for i, e := range v.c.elems {
			parts[i] = e.GoString()
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case TypeMap:
		parts := make([]string, len(v.c.keys))
		for i, k := range v.c.keys {
			parts[i] = fmt.Sprintf("%q: %s", k, v.c.elems[i].GoString())
		}
		return "map{" + strings.Join(parts, ", ") + "}"
	}
	return "invalid"
}
