package main

import (
	"encoding/json"
	"io"
	"time"

	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/itemjson"
)

// How items look as JSON, on input and output (package itemjson):
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

// itemJSON returns an item's fields as plain values for encoding/json.
func itemJSON(it item.Item) map[string]any { return itemjson.Fields(it) }

func valueJSON(v item.Value) any { return itemjson.Value(v) }

// writeJSON writes v as one line of JSON, without HTML escaping.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// parseJSON decodes exactly one JSON value from data (itemjson.Decode).
func parseJSON(data []byte, where string, line0 int) (any, error) {
	return itemjson.Decode(data, where, line0)
}

// parseObject decodes a JSON object of fields.
func parseObject(data []byte, where string) (map[string]any, error) {
	return itemjson.DecodeObject(data, where)
}

// jsonKind names the JSON type of a decoded value, with an article.
func jsonKind(v any) string { return itemjson.Kind(v) }

// formatTime formats a commit time like a date value.
func formatTime(t time.Time) string { return itemjson.FormatTime(t) }
