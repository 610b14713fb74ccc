package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
)

// The JSON shapes of a schema file; see FORMAT.md. Objects whose keys are
// names (fields, renames) are kept raw and read with readObject, in file
// order and refusing repeated keys.
type (
	fileJSON struct {
		Schemas *[]json.RawMessage `json:"schemas"`
	}
	schemaJSON struct {
		Namespace string          `json:"namespace"`
		Version   uint32          `json:"version"`
		Fields    json.RawMessage `json:"fields"`
		Renames   json.RawMessage `json:"renames"`
		Removes   []string        `json:"removes"`
	}
	fieldJSON struct {
		Type      string          `json:"type"`
		Required  bool            `json:"required"`
		Default   json.RawMessage `json:"default"`
		Min       *float64        `json:"min"`
		Max       *float64        `json:"max"`
		MaxLength *int            `json:"maxLength"`
		Enum      []string        `json:"enum"`
	}
)

// member is one key and value of a JSON object.
type member struct {
	key   string
	value json.RawMessage
}

var (
	fileKeys   = jsonKeys(reflect.TypeFor[fileJSON]())
	schemaKeys = jsonKeys(reflect.TypeFor[schemaJSON]())
	fieldKeys  = jsonKeys(reflect.TypeFor[fieldJSON]())
)

// jsonKeys returns the JSON keys of a struct type, from its tags.
func jsonKeys(t reflect.Type) []string {
	keys := make([]string, t.NumField())
	for i := range keys {
		keys[i] = t.Field(i).Tag.Get("json")
	}
	return keys
}

// LoadFile reads and parses a schema file (see [ParseFile]).
func LoadFile(path string) ([]Schema, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	schemas, err := ParseFile(data)
	if err != nil {
		return nil, fmt.Errorf("load schema file %s: %w", path, err)
	}
	return schemas, nil
}

// RegisterFile loads a schema file and registers all of its schemas, or
// none of them if one is refused.
func (r *Registry) RegisterFile(path string) error {
	schemas, err := LoadFile(path)
	if err != nil {
		return err
	}
	if err := r.register(schemas); err != nil {
		return fmt.Errorf("register schema file %s: %w", path, err)
	}
	return nil
}

// ParseFile parses a schema file (format in FORMAT.md and the package
// documentation) and returns its schemas in file order, each checked as
// [Registry.Register] checks it, with fields in file order. JSON errors wrap
// [ErrSyntax] and give the byte offset, line and column of syntax errors;
// other problems wrap [ErrInvalidSchema] or [ErrDuplicate]. Every error
// about a schema is a *[FieldError] naming it ("task/2", or "schemas[1]"
// while its namespace or version is unusable) and the field concerned.
// ParseFile never panics.
func ParseFile(data []byte) ([]Schema, error) {
	raws, err := parseTop(data)
	if err != nil {
		return nil, err
	}
	schemas := make([]Schema, 0, len(raws))
	seen := make(map[commit.Schema]int, len(raws))
	for i, raw := range raws {
		s, err := parseSchema(raw, i)
		if err != nil {
			return nil, err
		}
		if j, dup := seen[s.Ref()]; dup {
			return nil, s.fieldErr("", fmt.Errorf("%w: schemas[%d] and schemas[%d]", ErrDuplicate, j, i))
		}
		seen[s.Ref()] = i
		schemas = append(schemas, s)
	}
	return schemas, nil
}

// parseTop checks the whole file's syntax and returns its schemas unparsed.
func parseTop(data []byte) ([]json.RawMessage, error) {
	if err := checkSyntax(data); err != nil {
		return nil, err
	}
	ms, err := readObject(data, "", fileKeys)
	if err != nil {
		return nil, err
	}
	var f fileJSON
	if err := strictDecode(data, "", &f); err != nil {
		return nil, err
	}
	switch {
	case f.Schemas != nil:
		return *f.Schemas, nil
	case len(ms) > 0: // "schemas": null
		return nil, fmt.Errorf("%w: %swant an array, have null", ErrSyntax, at("schemas"))
	}
	return nil, fmt.Errorf("%w: missing key %q", ErrSyntax, "schemas")
}

// checkSyntax checks that data is one JSON value in UTF-8, reporting where
// it is not. (encoding/json would replace bad UTF-8 with U+FFFD.)
func checkSyntax(data []byte) error {
	if !utf8.Valid(data) {
		return fmt.Errorf("%w: %s: invalid UTF-8", ErrSyntax, position(data, firstInvalidUTF8(data)))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return jsonErr(data, "", err)
	}
	return readEnd(dec, data)
}

func parseSchema(raw json.RawMessage, i int) (Schema, error) {
	label := schemaLabel(raw, i)
	fail := func(field string, err error) (Schema, error) {
		return Schema{}, &FieldError{Schema: label, Field: field, Err: err}
	}
	var sj schemaJSON
	if _, err := readObject(raw, "", schemaKeys); err != nil {
		return fail("", err)
	}
	if err := strictDecode(raw, "", &sj); err != nil {
		return fail("", err)
	}
	s := Schema{NS: sj.Namespace, Version: sj.Version, Removes: sj.Removes}
	if field, err := s.parseFields(sj.Fields); err != nil {
		return fail(field, err)
	}
	if field, err := s.parseRenames(sj.Renames); err != nil {
		return fail(field, err)
	}
	if err := s.validate(label); err != nil {
		return Schema{}, err
	}
	return s, nil
}

// parseFields sets s.Fields from the raw "fields" object, in file order.
func (s *Schema) parseFields(raw json.RawMessage) (string, error) {
	fields, err := readObject(raw, "fields", nil)
	if err != nil {
		return "", err
	}
	for _, m := range fields {
		f, err := parseField(m)
		if err != nil {
			return m.key, err
		}
		s.Fields = append(s.Fields, f)
	}
	return "", nil
}

// schemaLabel names schemas[i] for errors: "ns/version" if the raw schema
// has a usable namespace and version, else "schemas[i]".
func schemaLabel(raw json.RawMessage, i int) string {
	var h struct {
		Namespace string `json:"namespace"`
		Version   uint32 `json:"version"`
	}
	if json.Unmarshal(raw, &h) == nil && checkNamespace(h.Namespace) == nil && h.Version > 0 {
		return h.Namespace + "/" + strconv.FormatUint(uint64(h.Version), 10)
	}
	return fmt.Sprintf("schemas[%d]", i)
}

// parseRenames sets s.Renames from the raw "renames" object.
func (s *Schema) parseRenames(raw json.RawMessage) (string, error) {
	renames, err := readObject(raw, "renames", nil)
	if err != nil || renames == nil {
		return "", err
	}
	s.Renames = make(map[string]string, len(renames))
	for _, m := range renames {
		var to string
		if err := strictDecode(m.value, "renames", &to); err != nil {
			return m.key, err
		}
		s.Renames[m.key] = to
	}
	return "", nil
}

func parseField(m member) (Field, error) {
	var fj fieldJSON
	if _, err := readObject(m.value, "", fieldKeys); err != nil {
		return Field{}, err
	}
	if err := strictDecode(m.value, "", &fj); err != nil {
		return Field{}, err
	}
	t, ok := item.ParseType(fj.Type)
	if !ok {
		return Field{}, fmt.Errorf("%w: type %s is not one of string, number, int, bool, date, set, map, list, counter",
			ErrInvalidSchema, quote(fj.Type))
	}
	f := Field{Name: m.key, Type: t, Required: fj.Required}
	var err error
	if fj.Default != nil {
		if f.Default, err = parseDefault(fj.Default, t); err != nil {
			return Field{}, fmt.Errorf("%w: default: %w", ErrInvalidSchema, err)
		}
	}
	if f.Validate, err = fj.validator(t); err != nil {
		return Field{}, fmt.Errorf("%w: %w", ErrInvalidSchema, err)
	}
	return f, nil
}

// parseDefault types a JSON default as the dynamic schema would (see
// item.FromAny), then converts it to t; an int keeps all 64 bits.
func parseDefault(raw json.RawMessage, t item.Type) (item.Value, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return item.Value{}, err
	}
	if n, ok := x.(json.Number); ok && (t == item.TypeInt || t == item.TypeCounter) {
		if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
			return item.Convert(item.Int(i), t)
		}
	}
	from := item.FromAny
	if _, ok := x.([]any); ok && t == item.TypeList {
		from = item.ListFromAny
	}
	v, err := from(x)
	if err != nil {
		return item.Value{}, err
	}
	if v, err = item.Convert(v, t); err != nil {
		return item.Value{}, fmt.Errorf("want %s, have %s", t, cut(string(raw)))
	}
	return v, nil
}

// strictDecode decodes one JSON value, refusing unknown keys; errors name
// the value's key path.
func strictDecode(data []byte, path string, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonErr(data, path, err)
	}
	return nil
}

func firstInvalidUTF8(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(data)
}

// readObject reads the JSON object at key path, refusing repeated keys and,
// if allowed is not nil, keys not in allowed (matched exactly, unlike
// encoding/json, which ignores case). An absent object (no data) has no
// members.
func readObject(data []byte, path string, allowed []string) ([]member, error) {
	if data == nil {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonErr(data, path, err)
	}
	if tok != json.Delim('{') {
		return nil, fmt.Errorf("%w: %swant an object, have %s", ErrSyntax, at(path), tokenKind(tok))
	}
	ms := []member{}
	seen := map[string]bool{}
	for dec.More() {
		m, err := readMember(dec, data, path, allowed, seen)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, nil
}

func readMember(dec *json.Decoder, data []byte, path string, allowed []string, seen map[string]bool) (member, error) {
	tok, err := dec.Token()
	if err != nil {
		return member{}, jsonErr(data, path, err)
	}
	key, _ := tok.(string) // the decoder only returns strings as keys
	if seen[key] {
		return member{}, fmt.Errorf("%w: %skey %s appears twice", ErrSyntax, at(path), quote(key))
	}
	seen[key] = true
	if allowed != nil && !slices.Contains(allowed, key) {
		return member{}, fmt.Errorf("%w: unknown key %s (known keys: %s)", ErrSyntax, quote(key), strings.Join(allowed, ", "))
	}
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return member{}, jsonErr(data, path, err)
	}
	return member{key, raw}, nil
}

// readEnd checks that only white space follows the value dec has read.
func readEnd(dec *json.Decoder, data []byte) error {
	rest := bytes.TrimLeft(data[dec.InputOffset():], " \t\r\n")
	if len(rest) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s: data after the top-level value", ErrSyntax, position(data, len(data)-len(rest)))
}

// at formats a key path as a message prefix.
func at(path string) string {
	if path == "" {
		return ""
	}
	return quote(path) + ": "
}

// jsonErr describes an encoding/json error at key path without Go type
// names, with the position of syntax errors.
func jsonErr(data []byte, path string, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		// se.Offset counts the bytes read, the bad one included.
		return fmt.Errorf("%w: %s: %w", ErrSyntax, position(data, int(se.Offset)-1), se)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: %s: unexpected end of file", ErrSyntax, position(data, len(data)))
	case errors.As(err, &te):
		if te.Field != "" {
			path = strings.TrimPrefix(path+"."+te.Field, ".")
		}
		return fmt.Errorf("%w: %swant %s, have %s", ErrSyntax, at(path), describe(te.Type), te.Value)
	}
	return fmt.Errorf("%w: %s%w", ErrSyntax, at(path), err)
}

// position formats the place of the byte at offset off (0-based) as line,
// column (1-based, in characters) and offset.
func position(data []byte, off int) string {
	off = min(max(off, 0), len(data))
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:]) + 1
	return fmt.Sprintf("line %d, column %d (byte offset %d)", line, col, off)
}

func tokenKind(tok json.Token) string {
	switch tok.(type) {
	case json.Delim:
		if tok == json.Delim('[') {
			return "an array"
		}
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a bool"
	case nil:
		return "null"
	}
	return fmt.Sprint(tok)
}

// describe names the JSON a Go type decodes from.
func describe(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Pointer:
		return describe(t.Elem())
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice:
		if t == reflect.TypeFor[json.RawMessage]() {
			return "a value"
		}
		if t.Elem() == reflect.TypeFor[json.RawMessage]() {
			return "an array"
		}
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(describe(t.Elem()), "a "), "an ") + "s"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Uint32:
		return "a whole number from 1 to 4294967295"
	case reflect.Int:
		return "a whole number"
	case reflect.Float64:
		return "a number"
	}
	return t.Kind().String()
}
