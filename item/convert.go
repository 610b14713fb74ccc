package item

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"time"
)

// FromAny converts a plain Go value to a Value, typing it from the Go type:
// string → string; float32/float64/json.Number → number; signed and unsigned
// integers → int; bool → bool; time.Time → date; a slice or array → set;
// map[string]T → map; a Value is returned as it is. JSON decoded with
// encoding/json (numbers as float64, arrays as []any, objects as
// map[string]any) converts as the dynamic schema expects.
func FromAny(x any) (Value, error) { return fromAny(x, 0) }

func fromAny(x any, depth int) (Value, error) {
	switch x := x.(type) {
	case Value:
		return x, x.Valid()
	case string:
		return String(x), String(x).Valid()
	case float64:
		return number(x)
	case float32:
		return number(float64(x))
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return Value{}, fmt.Errorf("%w: %v", ErrInvalidValue, err)
		}
		return number(f)
	case int:
		return Int(int64(x)), nil
	case int64:
		return Int(x), nil
	case int32:
		return Int(int64(x)), nil
	case bool:
		return Bool(x), nil
	case time.Time:
		return Date(x), nil
	case []string:
		v := StringSet(x...)
		return v, v.Valid()
	case nil:
		return Value{}, fmt.Errorf("%w: null is not a value (remove the field instead)", ErrInvalidValue)
	}
	return fromReflect(reflect.ValueOf(x), depth)
}

func number(f float64) (Value, error) {
	if math.IsNaN(f) {
		return Value{}, fmt.Errorf("%w: number is NaN", ErrInvalidValue)
	}
	return Number(f), nil
}

func fromReflect(rv reflect.Value, depth int) (Value, error) {
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return Int(rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u := rv.Uint()
		if u > math.MaxInt64 {
			return Value{}, fmt.Errorf("%w: %d overflows int64", ErrInvalidValue, u)
		}
		return Int(int64(u)), nil
	case reflect.Slice, reflect.Array:
		elems := make([]Value, rv.Len())
		for i := range elems {
			e, err := fromAny(rv.Index(i).Interface(), depth+1)
			if err != nil {
				return Value{}, err
			}
			elems[i] = e
		}
		return Set(elems...)
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return Value{}, fmt.Errorf("%w: map keys must be strings, not %s", ErrInvalidValue, rv.Type().Key())
		}
		if depth >= MaxDepth {
			return Value{}, fmt.Errorf("%w: maps nested deeper than %d", ErrInvalidValue, MaxDepth)
		}
		m := make(map[string]Value, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			e, err := fromAny(it.Value().Interface(), depth+1)
			if err != nil {
				return Value{}, fmt.Errorf("key %q: %w", it.Key().String(), err)
			}
			m[it.Key().String()] = e
		}
		v := Map(m)
		return v, v.Valid()
	}
	if !rv.IsValid() {
		return Value{}, fmt.Errorf("%w: null is not a value", ErrInvalidValue)
	}
	return Value{}, fmt.Errorf("%w: cannot store a Go %s", ErrInvalidValue, rv.Type())
}

// Convert converts v to type t where that loses nothing: int → number,
// integral number → int, number or int → date (as Unix milliseconds),
// RFC 3339 string → date, a set of one type to itself. It fails with
// [ErrTypeMismatch] otherwise.
func Convert(v Value, t Type) (Value, error) {
	if v.t == t {
		return v, nil
	}
	switch {
	case t == TypeNumber && v.t == TypeInt:
		// Exact unless rounding changed it; 2^63 itself is out of int64 range.
		if f := float64(v.Int64()); f < 1<<63 && int64(f) == v.Int64() {
			return Number(f), nil
		}
	case t == TypeInt && v.t == TypeNumber:
		f := v.Float()
		if f == math.Trunc(f) && math.Abs(f) <= 1<<53 {
			return Int(int64(f)), nil
		}
	case t == TypeDate && v.t == TypeString:
		tm, err := time.Parse(time.RFC3339Nano, v.s)
		if err == nil {
			return Date(tm), nil
		}
	case t == TypeDate && (v.t == TypeInt || v.t == TypeNumber):
		if iv, err := Convert(v, TypeInt); err == nil {
			return DateMillis(iv.Int64()), nil
		}
	}
	return Value{}, fmt.Errorf("%w: %s value %s is not a %s", ErrTypeMismatch, v.t, v.GoString(), t)
}
