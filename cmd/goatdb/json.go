package main

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

// How items look as JSON, on input and output:
//
//	item type   JSON out (get, export)                  JSON in (put, import)
//	string      string                                  string
//	number      number; integral ones end in ".0"       number with a fraction or exponent, or past int64
//	int         integer                                 integer literal that fits int64
//	bool        true / false                            true / false
//	date        "2024-05-01T12:00:00.000Z" (UTC, ms)    string (date with a schema)
//	set         array, sorted as the set is             array
//	list        array, in order                         array (list with a schema)
//	counter     integer                                 integer (counter with a schema)
//	map         object, keys sorted                     object
//
// A JSON array is a set unless the item's schema makes the field a list:
// without a schema there is no way to tell, and arrays were sets before
// lists came, so they stay sets. With a schema, an array for a list field
// keeps its order and duplicates; rewriting a list keeps the identity of
// the elements that stayed (matched by value and order), so concurrent
// edits merge element by element. A counter is written as its new value;
// the write adds the difference, so increments made elsewhere meanwhile
// are kept.
//
// Numbers follow the rule of item.FromAny for json.Number, the same as for
// Go values: an integer literal (no fraction, no exponent) that fits in an
// int64 is an int, like a Go integer; any other number is a number, like a
// Go float64. Output keeps the distinction (3 is an int, 3.0 a number), so
// get and export print what put and import read back as the same type.
// Without a schema a string is a string, so a date written by a Go program
// comes back from export as a string; export names each item's schema so
// that import, with the same schema file, restores the types.

// timeLayout is RFC 3339 in UTC with millisecond precision, the precision
// of a date value.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// itemJSON returns an item's fields as plain values for encoding/json.
func itemJSON(it item.Item) map[string]any {
	m := make(map[string]any, it.Len())
	for name, v := range it.All() {
		m[name] = valueJSON(v)
	}
	return m
}

func valueJSON(v item.Value) any {
	switch v.Type() {
	case item.TypeDate:
		return v.Time().UTC().Format(timeLayout)
	case item.TypeSet, item.TypeList:
		out := make([]any, 0, v.Len())
		for _, e := range v.Elems() {
			out = append(out, valueJSON(e))
		}
		return out
	case item.TypeMap:
		out := make(map[string]any, v.Len())
		for i, k := range v.Keys() {
			out[k] = valueJSON(v.Elems()[i])
		}
		return out
	case item.TypeNumber:
		return numberJSON(v.Float())
	}
	return v.Any() // string, int64 (int and counter), bool
}

// numberJSON returns a number value for encoding/json so that it reads
// back as a number, not an int: integral ones that encoding/json would
// print without a fraction or exponent (below 1e21) get ".0".
func numberJSON(f float64) any {
	if f == math.Trunc(f) && math.Abs(f) < 1e21 {
		return json.Number(strconv.FormatFloat(f, 'f', -1, 64) + ".0")
	}
	return f
}

// writeJSON writes v as one line of JSON, without HTML escaping.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// parseJSON decodes exactly one JSON value from data, numbers as
// json.Number. Errors say where, as "WHERE: line L, column C: ...", data
// starting on line line0 of WHERE.
func parseJSON(data []byte, where string, line0 int) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		var se *json.SyntaxError
		switch {
		case err == io.EOF:
			return nil, fmt.Errorf("%s: no JSON value", where)
		case errors.As(err, &se):
			return nil, posError(data, where, line0, se.Offset-1, se.Error())
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, posError(data, where, line0, int64(len(data)), "unexpected end of JSON; is a closing bracket or quote missing?")
		}
		return nil, fmt.Errorf("%s: %w", where, err)
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

// parseObject decodes a JSON object of fields.
func parseObject(data []byte, where string) (map[string]any, error) {
	v, err := parseJSON(data, where, 1)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: the JSON value is %s, not an object; give the fields as an object like {\"title\": \"x\"}", where, jsonKind(v))
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
	return fmt.Errorf("%s: line %d, column %d: %s", where, line, col, msg)
}

// jsonKind names the JSON type of a decoded value, with an article.
func jsonKind(v any) string {
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

// formatTime formats a commit time like a date value.
func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }
