package goatdb

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/goatdb/goatdb/item"
)

// Decode stores the item's fields in the struct dst points to. A struct
// field is filled from the item field named by its `goatdb:"name"` tag, or
// by its own name when it has no tag; `goatdb:"-"` skips it. Supported
// struct field types: string, bool, integers, floats, time.Time, slices (from
// lists, in order, or sets) and maps with string keys. An integer field takes
// an int, a counter or an integral number, a float field an int or a
// number. Absent item fields leave the struct
// field unchanged; a value that does not fit the struct field is an error
// naming it. A zero date (0001-01-01, as FieldsOf stores a zero time.Time)
// decodes to the zero time.Time, so IsZero reports true.
func (it Item) Decode(dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("goatdb: decode %s: need a pointer to a struct, got %T", it.Path(), dst)
	}
	rv = rv.Elem()
	for i := range rv.NumField() {
		tag, ok := parseTag(rv.Type().Field(i))
		if !ok {
			continue
		}
		v, present := it.data.Get(tag.name)
		if !present {
			continue
		}
		if err := assign(rv.Field(i), v); err != nil {
			return fmt.Errorf("goatdb: decode %s: field %q: %w", it.Path(), tag.name, err)
		}
	}
	return nil
}

// FieldsOf returns the fields of a struct (or pointer to one) as Fields for
// Put, named as Decode names them, so that Decode of the item Put writes
// fills an equal struct.
//
// Every field is included, zero values too (a zero time.Time is stored as
// the date 0001-01-01T00:00:00Z, which Decode turns back into the zero
// time.Time), except fields tagged omitempty or omitzero when empty:
//
//   - `goatdb:"name,omitempty"` omits false, 0, "", a nil pointer or
//     interface, an empty (or nil) slice, array or map, the zero time.Time
//     and the zero item.Value, as encoding/json does (which keeps a zero
//     time.Time).
//   - `goatdb:"name,omitzero"` omits the zero value of the field's type, or
//     a value whose IsZero method reports true.
//
// An omitted field is given as nil, which Put removes, so that writing a
// struct whose field became empty clears the field rather than leaving its
// old value; the item then lacks the field, Decode leaves the struct field
// as it is, and a schema default, if the field has one, applies.
//
// A slice or array field is a list, in order, duplicates kept, merged
// element by element, unless tagged set: `goatdb:"tags,set"` makes it a set
// (sorted, duplicates dropped; slices were always sets before lists came).
// An integer field tagged counter, `goatdb:"views,counter"`, is a counter:
// writing it adds the difference from the item's value, so concurrent
// writers' increments all count. A schema that says otherwise wins: a list
// written to a set field becomes a set, and an int written to a counter
// field a counter.
func FieldsOf(src any) (Fields, error) {
	rv := reflect.Indirect(reflect.ValueOf(src))
	if rv.Kind() != reflect.Struct {
		return nil, fmt.Errorf("goatdb: fields of %T: need a struct", src)
	}
	out := Fields{}
	for i := range rv.NumField() {
		tag, ok := parseTag(rv.Type().Field(i))
		if !ok {
			continue
		}
		f := rv.Field(i)
		if tag.omitEmpty && isEmpty(f) || tag.omitZero && isZero(f) {
			out[tag.name] = nil
			continue
		}
		v, err := structValue(f, tag)
		if err != nil {
			return nil, fmt.Errorf("goatdb: fields of %T: field %q: %w", src, tag.name, err)
		}
		out[tag.name] = v
	}
	return out, nil
}

// structValue returns a struct field's value for Put: a slice or array is
// a list unless tagged set (then Put makes a set of it), and a field
// tagged counter is a counter; other fields are given as they are.
func structValue(f reflect.Value, tag structTag) (any, error) {
	x := f.Interface()
	switch {
	case tag.counter:
		v, err := item.FromAny(x)
		if err != nil {
			return nil, err
		}
		return item.Convert(v, item.TypeCounter)
	case tag.set || f.Type() == valueType:
		return x, nil
	case f.Kind() == reflect.Slice || f.Kind() == reflect.Array:
		return item.ListFromAny(x)
	}
	return x, nil
}

// structTag is a struct field's goatdb tag: `goatdb:"name,opt,..."`.
type structTag struct {
	name                string
	omitEmpty, omitZero bool
	set, counter        bool // store a slice as a set; an integer as a counter
}

// parseTag returns the field's tag; ok is false for unexported fields and
// fields tagged "-". Unknown options are ignored, as encoding/json does.
func parseTag(f reflect.StructField) (structTag, bool) {
	if !f.IsExported() {
		return structTag{}, false
	}
	name, opts, _ := strings.Cut(f.Tag.Get("goatdb"), ",")
	if name == "-" && opts == "" {
		return structTag{}, false
	}
	tag := structTag{name: name}
	if name == "" {
		tag.name = f.Name
	}
	for opts != "" {
		var opt string
		opt, opts, _ = strings.Cut(opts, ",")
		switch opt {
		case "omitempty":
			tag.omitEmpty = true
		case "omitzero":
			tag.omitZero = true
		case "set":
			tag.set = true
		case "counter":
			tag.counter = true
		}
	}
	return tag, true
}

// isEmpty reports whether v is empty as omitempty means it.
func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.String, reflect.Slice, reflect.Map, reflect.Array:
		return v.Len() == 0
	case reflect.Pointer, reflect.Interface:
		return v.IsNil()
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return v.IsZero()
	}
	switch v.Type() {
	case timeType:
		return v.Interface().(time.Time).IsZero()
	case valueType:
		return v.IsZero()
	}
	return false
}

// isZero reports whether v is zero as omitzero means it.
func isZero(v reflect.Value) bool {
	if z, ok := v.Interface().(interface{ IsZero() bool }); ok {
		if v.Kind() == reflect.Pointer && v.IsNil() {
			return true
		}
		return z.IsZero()
	}
	return v.IsZero()
}

var (
	timeType     = reflect.TypeFor[time.Time]()
	errNoFit     = errors.New("value does not fit")
	valueType    = reflect.TypeFor[item.Value]()
	anyInterface = reflect.TypeFor[any]()
)

// assign stores v in dst, converting where nothing is lost.
func assign(dst reflect.Value, v item.Value) error {
	switch {
	case dst.Type() == valueType:
		dst.Set(reflect.ValueOf(v))
		return nil
	case dst.Type() == timeType && v.Type() == item.TypeDate:
		dst.Set(reflect.ValueOf(v.Time()))
		return nil
	case dst.Kind() == reflect.Interface && anyInterface.AssignableTo(dst.Type()):
		dst.Set(reflect.ValueOf(v.Any()))
		return nil
	}
	switch dst.Kind() {
	case reflect.String:
		return assignIf(v.Type() == item.TypeString, func() { dst.SetString(v.Str()) }, v, dst)
	case reflect.Bool:
		return assignIf(v.Type() == item.TypeBool, func() { dst.SetBool(v.Bool()) }, v, dst)
	case reflect.Float32, reflect.Float64:
		isNum := v.Type() == item.TypeNumber || v.Type() == item.TypeInt
		return assignIf(isNum, func() { dst.SetFloat(v.Float()) }, v, dst)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		iv, err := item.Convert(v, item.TypeInt)
		return assignIf(err == nil && !dst.OverflowInt(iv.Int64()), func() { dst.SetInt(iv.Int64()) }, v, dst)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		iv, err := item.Convert(v, item.TypeInt)
		ok := err == nil && iv.Int64() >= 0 && !dst.OverflowUint(uint64(iv.Int64()))
		return assignIf(ok, func() { dst.SetUint(uint64(iv.Int64())) }, v, dst)
	case reflect.Slice:
		return assignSlice(dst, v)
	case reflect.Map:
		return assignMap(dst, v)
	}
	return fmt.Errorf("%w: cannot store a %s in a Go %s", errNoFit, v.Type(), dst.Type())
}

func assignIf(ok bool, set func(), v item.Value, dst reflect.Value) error {
	if !ok {
		return fmt.Errorf("%w: cannot store %s %s in a Go %s", errNoFit, v.Type(), v.GoString(), dst.Type())
	}
	set()
	return nil
}

func assignSlice(dst reflect.Value, v item.Value) error {
	if v.Type() != item.TypeSet && v.Type() != item.TypeList {
		return fmt.Errorf("%w: cannot store a %s in a Go %s", errNoFit, v.Type(), dst.Type())
	}
	s := reflect.MakeSlice(dst.Type(), v.Len(), v.Len())
	for i, e := range v.Elems() {
		if err := assign(s.Index(i), e); err != nil {
			return err
		}
	}
	dst.Set(s)
	return nil
}

func assignMap(dst reflect.Value, v item.Value) error {
	if v.Type() != item.TypeMap || dst.Type().Key().Kind() != reflect.String {
		return fmt.Errorf("%w: cannot store a %s in a Go %s", errNoFit, v.Type(), dst.Type())
	}
	m := reflect.MakeMapWithSize(dst.Type(), v.Len())
	for i, k := range v.Keys() {
		e := reflect.New(dst.Type().Elem()).Elem()
		if err := assign(e, v.Elems()[i]); err != nil {
			return fmt.Errorf("key %q: %w", k, err)
		}
		m.SetMapIndex(reflect.ValueOf(k).Convert(dst.Type().Key()), e)
	}
	dst.Set(m)
	return nil
}
