package schema_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/schema"
)

var errTooBig = errors.New("too big")

// taskV1 is the schema most tests use.
func taskV1() *schema.Schema {
	return &schema.Schema{NS: "task", Version: 1, Fields: []schema.Field{
		{Name: "title", Type: item.TypeString, Required: true},
		{Name: "count", Type: item.TypeInt, Default: item.Int(0), Validate: func(v item.Value) error {
			if v.Int64() > 100 {
				return errTooBig
			}
			return nil
		}},
		{Name: "score", Type: item.TypeNumber},
		{Name: "due", Type: item.TypeDate},
		{Name: "tags", Type: item.TypeSet, Default: item.StringSet()},
		{Name: "meta", Type: item.TypeMap},
		{Name: "done", Type: item.TypeBool, Required: true, Default: item.Bool(false)},
		{Name: "boom", Type: item.TypeString, Validate: func(item.Value) error { panic("kaboom") }},
	}}
}

func TestRef(t *testing.T) {
	if got, want := taskV1().Ref(), (commit.Schema{NS: "task", Version: 1}); got != want {
		t.Fatalf("Ref = %v, want %v", got, want)
	}
}

func TestField(t *testing.T) {
	s := taskV1()
	f, ok := s.Field("score")
	if !ok || f.Type != item.TypeNumber {
		t.Fatalf("Field(score) = %+v, %v", f, ok)
	}
	if _, ok := s.Field("nope"); ok {
		t.Fatal("Field(nope) found")
	}
}

func TestCoerce(t *testing.T) {
	due := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		field   string
		in      item.Value
		want    item.Value
		wantErr error
		msg     string // substring of the error
	}{
		{"string", "title", item.String("hi"), item.String("hi"), nil, ""},
		{"int to number", "score", item.Int(3), item.Number(3), nil, ""},
		{"integral number to int", "count", item.Number(7), item.Int(7), nil, ""},
		{"RFC 3339 to date", "due", item.String("2024-05-01T12:00:00Z"), item.Date(due), nil, ""},
		{"millis to date", "due", item.Int(due.UnixMilli()), item.Date(due), nil, ""},
		{"set", "tags", item.StringSet("a"), item.StringSet("a"), nil, ""},
		{"unknown field", "nope", item.String("x"), item.Value{}, schema.ErrUnknownField,
			`schema task/1: field "nope": schema: unknown field`},
		{"fractional to int", "count", item.Number(1.5), item.Value{}, schema.ErrWrongType,
			`schema task/1: field "count": schema: wrong type: want int, have number 1.5`},
		{"string to number", "score", item.String("1"), item.Value{}, schema.ErrWrongType, `want number, have string "1"`},
		{"bad date", "due", item.String("yesterday"), item.Value{}, schema.ErrWrongType, "want date"},
		{"zero value", "title", item.Value{}, item.Value{}, item.ErrInvalidValue, "zero Value"},
		{"NaN", "score", item.Number(math.NaN()), item.Value{}, item.ErrInvalidValue, "NaN"},
		{"invalid UTF-8", "title", item.String("\xff"), item.Value{}, item.ErrInvalidValue, "UTF-8"},
		{"validate fails", "count", item.Int(101), item.Value{}, errTooBig,
			`schema task/1: field "count": schema: validation failed: too big`},
		{"validate fails after convert", "count", item.Number(101), item.Value{}, schema.ErrValidation, "too big"},
		{"validate panics", "boom", item.String("x"), item.Value{}, schema.ErrValidation, "panic: kaboom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := taskV1().Coerce(tt.field, tt.in)
			checkErr(t, err, tt.wantErr, tt.msg)
			if err == nil && !item.Equal(got, tt.want) {
				t.Fatalf("Coerce = %#v, want %#v", got, tt.want)
			}
			if err != nil {
				checkFieldError(t, err, "task/1", tt.field)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	base := map[string]item.Value{"title": item.String("t")}
	with := func(name string, v item.Value) item.Item {
		m := map[string]item.Value{"title": item.String("t")}
		m[name] = v
		return item.New(m)
	}
	tests := []struct {
		name    string
		it      item.Item
		wantErr error
		field   string
		msg     string
	}{
		{"minimal", item.New(base), nil, "", ""},
		{"all fields", item.New(map[string]item.Value{
			"title": item.String("t"), "count": item.Int(1), "score": item.Number(1.5),
			"due": item.DateMillis(0), "tags": item.StringSet("x"), "done": item.Bool(true),
			"meta": item.Map(map[string]item.Value{"k": item.Int(1)}),
		}), nil, "", ""},
		{"deleted item is still checked", item.New(nil).WithDeleted(true), schema.ErrMissingField, "title", "missing required field"},
		{"missing required", item.New(nil), schema.ErrMissingField, "title",
			`schema task/1: field "title": schema: missing required field`},
		{"unknown field", with("extra", item.Int(1)), schema.ErrUnknownField, "extra", ""},
		{"wrong type is not converted", with("count", item.Number(1)), schema.ErrWrongType, "count", "want int, have number 1"},
		{"field validate", with("count", item.Int(1000)), errTooBig, "count", "too big"},
		{"field validate panics", with("boom", item.String("")), schema.ErrValidation, "boom", "panic: kaboom"},
		{"invalid value", with("score", item.Number(math.NaN())), item.ErrInvalidValue, "score", "NaN"},
		{"bad field name", item.FromFields([]item.Field{{Name: "", Value: item.Int(1)}}, false), item.ErrInvalidValue, "", "field name"},
		{"unsorted fields", item.FromFields([]item.Field{
			{Name: "title", Value: item.String("a")}, {Name: "done", Value: item.Bool(true)},
		}, false), item.ErrInvalidValue, "done", "not sorted"},
		{"fields checked before required", with("extra", item.Int(1)).Without("title"), schema.ErrUnknownField, "extra", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := taskV1().Check(tt.it)
			checkErr(t, err, tt.wantErr, tt.msg)
			if err != nil {
				checkFieldError(t, err, "task/1", tt.field)
			}
		})
	}
}

func TestCheckItemValidate(t *testing.T) {
	errBad := errors.New("title must not equal state")
	tests := []struct {
		name     string
		validate func(item.Item) error
		wantErr  error
		msg      string
	}{
		{"passes", func(item.Item) error { return nil }, nil, ""},
		{"fails", func(item.Item) error { return errBad }, errBad,
			"schema task/1: schema: validation failed: title must not equal state"},
		{"panics", func(item.Item) error { panic("oops") }, schema.ErrValidation, "panic: oops"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := taskV1()
			s.Validate = tt.validate
			err := s.Check(item.New(map[string]item.Value{"title": item.String("t")}))
			checkErr(t, err, tt.wantErr, tt.msg)
			if err != nil {
				checkFieldError(t, err, "task/1", "")
			}
		})
	}
}

func TestCheckSkipsItemValidateAfterFieldError(t *testing.T) {
	s := taskV1()
	s.Validate = func(item.Item) error { t.Fatal("item Validate called"); return nil }
	if err := s.Check(item.New(nil)); !errors.Is(err, schema.ErrMissingField) {
		t.Fatalf("Check = %v, want ErrMissingField", err)
	}
}

func TestWithDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   item.Item
		want string
	}{
		{"fills absent", item.New(nil), "{count: 0i, done: false, tags: {}}"},
		{"keeps present", item.New(map[string]item.Value{"count": item.Int(5), "done": item.Bool(true)}),
			"{count: 5i, done: true, tags: {}}"},
		{"keeps deleted flag", item.New(nil).WithDeleted(true), "deleted {count: 0i, done: false, tags: {}}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := taskV1()
			got := s.WithDefaults(tt.in)
			if got.String() != tt.want {
				t.Fatalf("WithDefaults = %s, want %s", got, tt.want)
			}
			if err := s.Check(got.With("title", item.String("t"))); err != nil {
				t.Fatalf("Check after WithDefaults: %v", err)
			}
		})
	}
}

func TestCheckDynamic(t *testing.T) {
	fromJSON, err := item.FromAny(map[string]any{"a": []any{"x", 1.0}, "b": true})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		it      item.Item
		wantErr error
		field   string
	}{
		{"empty", item.New(nil), nil, ""},
		{"typed from JSON", item.New(map[string]item.Value{"m": fromJSON, "s": item.String("x")}), nil, ""},
		{"NaN", item.New(map[string]item.Value{"n": item.Number(math.NaN())}), item.ErrInvalidValue, "n"},
		{"zero value", item.New(map[string]item.Value{"z": {}}), item.ErrInvalidValue, "z"},
		{"NUL in name", item.New(map[string]item.Value{"a\x00": item.Int(1)}), item.ErrInvalidValue, "a\x00"},
		{"duplicate names", item.FromFields([]item.Field{{Name: "a", Value: item.Int(1)}, {Name: "a", Value: item.Int(2)}}, false),
			item.ErrInvalidValue, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := schema.CheckDynamic(tt.it)
			checkErr(t, err, tt.wantErr, "")
			if err != nil {
				checkFieldError(t, err, "dynamic", tt.field)
			}
		})
	}
}

func TestFieldError(t *testing.T) {
	tests := []struct {
		err  *schema.FieldError
		want string
	}{
		{&schema.FieldError{Schema: "task/2", Field: "title", Err: schema.ErrMissingField},
			`schema task/2: field "title": schema: missing required field`},
		{&schema.FieldError{Schema: "task/2", Err: schema.ErrValidation},
			`schema task/2: schema: validation failed`},
		{&schema.FieldError{Schema: "dynamic", Field: "a\"b", Err: item.ErrInvalidValue},
			`schema dynamic: field "a\"b": item: invalid value`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %s, want %s", got, tt.want)
		}
		if !errors.Is(tt.err, tt.err.Err) {
			t.Errorf("%v does not unwrap to %v", tt.err, tt.err.Err)
		}
	}
}

// checkErr checks that err wraps want (nil: no error) and contains msg.
func checkErr(t *testing.T, err, want error, msg string) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("error = %v, want one wrapping %v", err, want)
	case err != nil && !strings.Contains(err.Error(), msg):
		t.Fatalf("error = %q, want it to contain %q", err, msg)
	}
}

// checkFieldError checks that err is a *FieldError naming schema and field.
func checkFieldError(t *testing.T, err error, schemaName, field string) {
	t.Helper()
	var fe *schema.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v is not a *FieldError", err)
	}
	if fe.Schema != schemaName || fe.Field != field {
		t.Fatalf("FieldError names %q field %q, want %q field %q", fe.Schema, fe.Field, schemaName, field)
	}
}
