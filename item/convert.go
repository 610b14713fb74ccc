package item

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"
)

// FromAny converts a plain Go value to a Value, typing it from the Go type:
// string → string; float32/float64 → number; signed and unsigned integers →
// int; json.Number → int or number (see below); bool → bool; time.Time →
// date; a slice or array → set; map[string]T → map; a Value is returned as
// it is.
//
// A json.Number follows the integer rule: an integer literal (no fraction,
// no exponent) that fits in an int64 is an int, any other JSON number is a
// number, and a string that is not a JSON number is an error. JSON decoded
// with json.Decoder.UseNumber therefore types numbers as a Go program
// writing the same values would: 1 is an int, 1.0, 1e3 and
// 18446744073709551616 are numbers. (Plain encoding/json decoding, with
// numbers as float64, makes every number a number.)
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
		return fromJSONNumber(x)
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

// fromJSONNumber types a JSON number literal: an int when it is an
// integer literal that fits in an int64, a number otherwise.
func fromJSONNumber(n json.Number) (Value, error) {
	s := string(n)
	integer, ok := jsonNumber(s)
	if !ok {
		return Value{}, fmt.Errorf("%w: %q is not a JSON number", ErrInvalidValue, cut(s))
	}
	if integer {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return Int(i), nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return Value{}, fmt.Errorf("%w: number %s: %v", ErrInvalidValue, cut(s), errors.Unwrap(err))
	}
	return number(f)
}

// jsonNumber reports whether s is a JSON number literal (RFC 8259:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?) and whether it is an
// integer literal (no fraction, no exponent).
func jsonNumber(s string) (integer, ok bool) {
	i := 0
	digits := func() int {
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i - j
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch n := digits(); {
	case n == 0, n > 1 && s[i-n] == '0':
		return false, false
	}
	integer = i == len(s)
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false, false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false, false
		}
	}
	return integer, i == len(s)
}

// cut shortens s for an error message.
func cut(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
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
// RFC 3339 string → date, int or integral number → counter, counter → int,
// a value of one type to itself. It fails with [ErrTypeMismatch] otherwise.
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
	case t == TypeCounter && (v.t == TypeInt || v.t == TypeNumber):
		if iv, err := Convert(v, TypeInt); err == nil {
			return Counter(iv.Int64()), nil
		}
	case t == TypeInt && v.t == TypeCounter:
		return Int(v.Int64()), nil
	}
	return Value{}, fmt.Errorf("%w: %s value %s is not a %s", ErrTypeMismatch, v.t, v.GoString(), t)
}
