// Package itemjson is the JSON form of goatdb items, shared by the goatdb
// command and the server's JSON API, so that both print and read the same
// values:
//
//	item type   JSON out                                JSON in
//	string      string                                  string
//	number      number; integral ones end in ".0"       number with a fraction or exponent, or past int64
//	int         integer                                 integer literal that fits int64
//	bool        true / false                            true / false
//	date        "2024-05-01T12:00:00.000Z" (UTC, ms)    string (a date with a schema)
//	set         array, sorted as the set is             array
//	list        array, in order                         array (a list with a schema)
//	counter     integer                                 integer (a counter with a schema)
//	map         object, keys sorted                     object
//
// Output keeps ints and numbers apart (3 is an int, 3.0 a number), so a
// value printed and read back has the same type. Input is decoded with
// json.Decoder.UseNumber, and item.FromAny (or a schema's CoerceAny) types
// it; this package only decodes and checks the JSON.
package itemjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/goatdb/goatdb/item"
)

// TimeLayout is RFC 3339 in UTC with millisecond precision, the precision
// of a date value.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// FormatTime formats a time (a commit's, a date value's) as dates print.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// Fields returns an item's fields as plain values for encoding/json.
func Fields(it item.Item) map[string]any {
	m := make(map[string]any, it.Len())
	for name, v := range it.All() {
		m[name] = Value(v)
	}
	return m
}

// Value returns one value as a plain value for encoding/json.
func Value(v item.Value) any {
	switch v.Type() {
	case item.TypeDate:
		return FormatTime(v.Time())
	case item.TypeSet, item.TypeList:
		out := make([]any, 0, v.Len())
		for _, e := range v.Elems() {
			out = append(out, Value(e))
		}
		return out
	case item.TypeMap:
		out := make(map[string]any, v.Len())
		for i, k := range v.Keys() {
			out[k] = Value(v.Elems()[i])
		}
		return out
	case item.TypeNumber:
		return Number(v.Float())
	}
	return v.Any() // string, int64 (int and counter), bool
}

// Number returns a number value for encoding/json so that it reads back
// as a number, not an int: integral ones that encoding/json would print
// without a fraction or exponent (below 1e21) get ".0".
func Number(f float64) any {
	if f == math.Trunc(f) && math.Abs(f) < 1e21 {
		return json.Number(strconv.FormatFloat(f, 'f', -1, 64) + ".0")
	}
	return f
}

// ErrSyntax matches (errors.Is) the errors of Decode and DecodeObject for
// data that is not one JSON value (or object); their text is the
// problem and where it is, without a prefix.
var ErrSyntax = errors.New("itemjson: not valid JSON")

type syntaxError struct{ msg string }

func (e *syntaxError) Error() string        { return e.msg }
func (e *syntaxError) Is(target error) bool { return target == ErrSyntax }

func syntaxf(format string, args ...any) error {
	return &syntaxError{fmt.Sprintf(format, args...)}
}

// Decode decodes exactly one JSON value from data, numbers as
// json.Number. Errors match ErrSyntax and say where, as "WHERE: line L,
// column C: ...", data starting on line line0 of WHERE.
func Decode(data []byte, where string, line0 int) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		var se *json.SyntaxError
		switch {
		case err == io.EOF:
			return nil, syntaxf("%s: no JSON value", where)
		case errors.As(err, &se):
			return nil, posError(data, where, line0, se.Offset-1, se.Error())
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, posError(data, where, line0, int64(len(data)), "unexpected end of JSON; is a closing bracket or quote missing?")
		}
		return nil, syntaxf("%s: %v", where, err)
	}
	off := dec.InputOffset()
	for off < int64(len(data)) && isSpace(data[off]) {
		off++
	}
	if off < int64(len(data)) {
		return nil, posError(data, where, line0, off, "unexpected data after the JSON value")
	}
	return v, nil
}

// DecodeObject decodes a JSON object of fields, as Decode does.
func DecodeObject(data []byte, where string) (map[string]any, error) {
	v, err := Decode(data, where, 1)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, syntaxf("%s: the JSON value is %s, not an object; give the fields as an object like {\"title\": \"x\"}", where, Kind(v))
	}
	return m, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// posError reports a problem at byte offset off of data as line and column
// (1-based; columns count bytes), data starting on line line0.
func posError(data []byte, where string, line0 int, off int64, msg string) error {
	off = max(0, min(off, int64(len(data))))
	line, col := line0, 1
	for _, c := range data[:off] {
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return syntaxf("%s: line %d, column %d: %s", where, line, col, msg)
}

// Kind names the JSON type of a decoded value, with an article.
func Kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("a %T", v)
}
