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
// sets) and maps with string keys. Absent item fields leave the struct field
// unchanged; a value that does not fit the struct field is an error naming it.
func (it Item) Decode(dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("goatdb: decode %s: need a pointer to a struct, got %T", it.Path(), dst)
	}
	rv = rv.Elem()
	for i := range rv.NumField() {
		name, ok := fieldName(rv.Type().Field(i))
		if !ok {
			continue
		}
		v, present := it.data.Get(name)
		if !present {
			continue
		}
		if err := assign(rv.Field(i), v); err != nil {
			return fmt.Errorf("goatdb: decode %s: field %q: %w", it.Path(), name, err)
		}
	}
	return nil
}

// FieldsOf returns the fields of a struct (or pointer to one) as Fields for
// Put, named as Decode names them. Zero values are included.
func FieldsOf(src any) (Fields, error) {
	rv := reflect.Indirect(reflect.ValueOf(src))
	if rv.Kind() != reflect.Struct {
		return nil, fmt.Errorf("goatdb: fields of %T: need a struct", src)
	}
	out := Fields{}
	for i := range rv.NumField() {
		if name, ok := fieldName(rv.Type().Field(i)); ok {
			out[name] = rv.Field(i).Interface()
		}
	}
	return out, nil
}

func fieldName(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", false
	}
	tag, _, _ := strings.Cut(f.Tag.Get("goatdb"), ",")
	switch tag {
	case "-":
		return "", false
	case "":
		return f.Name, true
	}
	return tag, true
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
	if v.Type() != item.TypeSet {
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
