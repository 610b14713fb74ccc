package schema

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
)

// Field describes one field of a schema.
type Field struct {
	Name     string
	Type     item.Type
	Required bool
	// Default is the value an absent field takes (see
	// [Schema.WithDefaults]). The zero Value means no default.
	Default item.Value
	// Validate, if not nil, checks a value that already has the field's
	// type. It must be deterministic and safe for concurrent use; a panic
	// is recovered and reported as an error wrapping [ErrValidation].
	Validate func(item.Value) error
}

// Schema describes one version of the items of a namespace. A registered
// Schema must not be modified.
type Schema struct {
	NS      string // 1–128 characters of A-Z a-z 0-9 . _ -
	Version uint32 // 1 or more
	Fields  []Field
	// Validate, if not nil, checks a whole item after its fields passed.
	// Same rules as [Field.Validate].
	Validate func(item.Item) error
	// Upgrade, if not nil, converts an item of the previous registered
	// version of NS to this version, after Renames and Removes. It must be
	// deterministic (a pure function of its input) and safe for concurrent
	// use; a panic is recovered and reported as an error wrapping
	// [ErrUpgrade].
	Upgrade func(item.Item) (item.Item, error)
	// Renames maps old field names to new ones, applied first when
	// upgrading from the previous version.
	Renames map[string]string
	// Removes lists fields dropped when upgrading from the previous
	// version, after Renames.
	Removes []string
}

// Ref returns the reference commits store for items of this schema.
func (s *Schema) Ref() commit.Schema { return commit.Schema{NS: s.NS, Version: s.Version} }

// name returns "ns/version" for errors, quoting a namespace that is not valid.
func (s *Schema) name() string {
	ns := s.NS
	if checkNamespace(ns) != nil {
		ns = quote(ns)
	}
	return ns + "/" + strconv.FormatUint(uint64(s.Version), 10)
}

func (s *Schema) fieldErr(field string, err error) error {
	return &FieldError{Schema: s.name(), Field: field, Err: err}
}

// Field returns the field called name. The result points into s.Fields.
func (s *Schema) Field(name string) (*Field, bool) {
	for i := range s.Fields {
		if s.Fields[i].Name == name {
			return &s.Fields[i], true
		}
	}
	return nil, false
}

// Coerce returns v converted to the type of field name (see item.Convert),
// once the field's Validate func accepts it. Errors are *[FieldError]s
// wrapping [ErrUnknownField], item.ErrInvalidValue, [ErrWrongType] or
// [ErrValidation].
func (s *Schema) Coerce(name string, v item.Value) (item.Value, error) {
	f, ok := s.Field(name)
	if !ok {
		return item.Value{}, s.fieldErr(name, ErrUnknownField)
	}
	if err := v.Valid(); err != nil {
		return item.Value{}, s.fieldErr(name, err)
	}
	c, err := item.Convert(v, f.Type)
	if err != nil {
		return item.Value{}, s.fieldErr(name, wrongType(f.Type, v))
	}
	if err := f.check(c); err != nil {
		return item.Value{}, s.fieldErr(name, err)
	}
	return c, nil
}

// CoerceAny returns the Go value x (as a Put gives it) as a value of field
// name: converted with item.ListFromAny if the field is a list, so that a
// slice keeps its order and duplicates, and with item.FromAny otherwise,
// then as [Schema.Coerce] converts it. A list given for a set field
// becomes the set of its elements, and a set given for a list field the
// list of its elements in set order: the schema decides.
func (s *Schema) CoerceAny(name string, x any) (item.Value, error) {
	var v item.Value
	var err error
	if f, ok := s.Field(name); ok && f.Type == item.TypeList && isSlice(x) {
		v, err = item.ListFromAny(x)
	} else {
		v, err = item.FromAny(x)
	}
	if err == nil && v.Type() == item.TypeList {
		if f, ok := s.Field(name); ok && f.Type == item.TypeSet {
			v, err = item.Set(v.Elems()...)
		}
	}
	if err != nil {
		return item.Value{}, s.fieldErr(name, err)
	}
	return s.Coerce(name, v)
}

// isSlice reports whether x is a Go slice or array, or a set or list value.
func isSlice(x any) bool {
	if v, ok := x.(item.Value); ok {
		return v.Type() == item.TypeSet || v.Type() == item.TypeList
	}
	k := reflect.ValueOf(x).Kind()
	return k == reflect.Slice || k == reflect.Array
}

// Check reports the first problem with it, or nil: a field the schema does
// not define, an invalid value, a value not exactly of its field's type, a
// field Validate func that fails, a required field that is absent and has
// no default, and last the schema's Validate func. Fields are checked in
// name order, then required fields in schema order, so the error is always
// the same for the same item. A deleted item is checked like any other.
// Errors are *[FieldError]s.
func (s *Schema) Check(it item.Item) error {
	fields := it.Fields()
	for i, f := range fields {
		if err := s.checkField(fields, i); err != nil {
			return s.fieldErr(f.Name, err)
		}
	}
	for _, f := range s.Fields {
		if _, ok := it.Get(f.Name); !ok && f.Required && !hasDefault(f) {
			return s.fieldErr(f.Name, ErrMissingField)
		}
	}
	if s.Validate == nil {
		return nil
	}
	if err := recovered(s.Validate, it); err != nil {
		return s.fieldErr("", fmt.Errorf("%w: %w", ErrValidation, err))
	}
	return nil
}

func (s *Schema) checkField(fields []item.Field, i int) error {
	if err := storable(fields, i); err != nil {
		return err
	}
	f, ok := s.Field(fields[i].Name)
	if !ok {
		return ErrUnknownField
	}
	if v := fields[i].Value; v.Type() != f.Type {
		return wrongType(f.Type, v)
	}
	return f.check(fields[i].Value)
}

// WithDefaults returns it with every absent field that has a default set to
// that default. A list default's elements get ids derived from its values
// (item.FillIDs), the same on every peer.
func (s *Schema) WithDefaults(it item.Item) item.Item {
	filled := false
	for _, f := range s.Fields {
		if _, ok := it.Get(f.Name); !ok && hasDefault(f) {
			it = it.With(f.Name, f.Default)
			filled = filled || f.Type == item.TypeList
		}
	}
	if filled {
		it = item.FillIDs(it)
	}
	return it
}

// CheckDynamic checks an item of the dynamic schema (commit.Schema{}),
// whose field types come from the values: every field name and value must
// be storable. Errors are *[FieldError]s naming the schema "dynamic".
func CheckDynamic(it item.Item) error {
	fields := it.Fields()
	for i, f := range fields {
		if err := storable(fields, i); err != nil {
			return &FieldError{Schema: "dynamic", Field: f.Name, Err: err}
		}
	}
	return nil
}

// storable checks the name, order and value of fields[i].
func storable(fields []item.Field, i int) error {
	f := fields[i]
	if err := checkName(f.Name); err != nil {
		return fmt.Errorf("%w: %w", item.ErrInvalidValue, err)
	}
	if i > 0 && fields[i-1].Name >= f.Name {
		return fmt.Errorf("%w: fields not sorted by name or not unique", item.ErrInvalidValue)
	}
	return f.Value.Valid()
}

// check runs the field's Validate func on v.
func (f *Field) check(v item.Value) error {
	if f.Validate == nil {
		return nil
	}
	if err := recovered(f.Validate, v); err != nil {
		return fmt.Errorf("%w: %w", ErrValidation, err)
	}
	return nil
}

func hasDefault(f Field) bool { return f.Default.Type() != item.TypeInvalid }

// recovered calls fn, turning a panic into an error.
func recovered[T any](fn func(T) error, x T) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return fn(x)
}

func wrongType(want item.Type, v item.Value) error {
	return fmt.Errorf("%w: want %s, have %s %s", ErrWrongType, want, v.Type(), brief(v))
}

// brief formats v for an error message.
func brief(v item.Value) string { return cut(v.GoString()) }

// cut shortens s to at most 60 bytes for an error message.
func cut(s string) string {
	if len(s) <= 60 {
		return s
	}
	n := 57
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

func quote(s string) string { return strconv.Quote(s) }

// checkNamespace checks a namespace: 1–128 characters of A-Z a-z 0-9 . _ -.
func checkNamespace(ns string) error {
	if ns == "" || commit.ValidKey(ns) != nil {
		return fmt.Errorf("namespace %s must be 1–128 characters of A-Z a-z 0-9 . _ - (not . or ..)", quote(ns))
	}
	return nil
}

// checkName checks a field name as package item does: 1–1024 bytes of
// UTF-8 without NUL.
func checkName(name string) error {
	if name == "" || len(name) > 1024 || strings.ContainsRune(name, 0) || !utf8.ValidString(name) {
		return fmt.Errorf("field name %s must be 1–1024 bytes of UTF-8 without NUL", quote(name))
	}
	return nil
}

// validate checks that the schema is well formed; errors name it label.
func (s *Schema) validate(label string) error {
	fail := func(field string, err error) error {
		return &FieldError{Schema: label, Field: field, Err: fmt.Errorf("%w: %w", ErrInvalidSchema, err)}
	}
	if err := checkNamespace(s.NS); err != nil {
		return fail("", err)
	}
	if s.Version == 0 {
		return fail("", errors.New("version must be 1 or more"))
	}
	seen := make(map[string]bool, len(s.Fields))
	for i := range s.Fields {
		f := &s.Fields[i]
		if seen[f.Name] {
			return fail(f.Name, errors.New("defined twice"))
		}
		seen[f.Name] = true
		if err := f.validate(); err != nil {
			return fail(f.Name, err)
		}
	}
	if field, err := s.validateMoves(); err != nil {
		return fail(field, err)
	}
	return nil
}

// validate checks a field's name, type and default.
func (f *Field) validate() error {
	if err := checkName(f.Name); err != nil {
		return err
	}
	if _, ok := item.ParseType(f.Type.String()); !ok {
		return fmt.Errorf("unknown type %s", f.Type)
	}
	if !hasDefault(*f) {
		return nil
	}
	if err := f.Default.Valid(); err != nil {
		return fmt.Errorf("default: %w", err)
	}
	if f.Default.Type() != f.Type {
		return fmt.Errorf("default: want %s, have %s %s", f.Type, f.Default.Type(), brief(f.Default))
	}
	if err := f.check(f.Default); err != nil {
		return fmt.Errorf("default: %w", err)
	}
	return nil
}

// validateMoves checks Renames and Removes, in sorted order so the error
// is always the same, and returns the field concerned with the error.
func (s *Schema) validateMoves() (string, error) {
	targets := make(map[string]string, len(s.Renames))
	for _, old := range slices.Sorted(maps.Keys(s.Renames)) {
		if field, err := checkRename(old, s.Renames[old], targets); err != nil {
			return field, err
		}
	}
	removed := make(map[string]bool, len(s.Removes))
	for _, name := range s.Removes {
		if err := checkName(name); err != nil {
			return name, fmt.Errorf("removes: %w", err)
		}
		if removed[name] {
			return name, errors.New("removed twice")
		}
		_, isOld := s.Renames[name]
		if _, isNew := targets[name]; isOld || isNew {
			return name, errors.New("both renamed and removed")
		}
		removed[name] = true
	}
	return "", nil
}

func checkRename(old, to string, targets map[string]string) (string, error) {
	for _, n := range []string{old, to} {
		if err := checkName(n); err != nil {
			return n, fmt.Errorf("renames: %w", err)
		}
	}
	if old == to {
		return old, errors.New("renamed to itself")
	}
	if prev, ok := targets[to]; ok {
		return to, fmt.Errorf("target of two renames, from %s and %s", quote(prev), quote(old))
	}
	targets[to] = old
	return "", nil
}

// clone returns a copy of s that shares nothing the caller could change.
func (s *Schema) clone() *Schema {
	c := *s
	c.Fields = slices.Clone(s.Fields)
	c.Renames = maps.Clone(s.Renames)
	c.Removes = slices.Clone(s.Removes)
	return &c
}

// move applies Renames then Removes to it. Renames apply all at once, so
// their order does not matter and swaps work; a renamed value replaces a
// field already present under the new name.
func (s *Schema) move(it item.Item) item.Item {
	if len(s.Renames) == 0 && len(s.Removes) == 0 {
		return it
	}
	m := it.Map()
	moved := make(map[string]item.Value, len(s.Renames))
	for old, to := range s.Renames {
		if v, ok := m[old]; ok {
			moved[to] = v
		}
	}
	for old := range s.Renames {
		delete(m, old)
	}
	maps.Copy(m, moved)
	for _, name := range s.Removes {
		delete(m, name)
	}
	return item.New(m).WithDeleted(it.Deleted())
}
