package itemjson_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/itemjson"
)

func TestRoundTrip(t *testing.T) {
	in := `{"s": "x", "i": 3, "n": 3.0, "b": true, "set": ["b", "a"], "m": {"k": 1}}`
	obj, err := itemjson.DecodeObject([]byte(in), "test")
	if err != nil {
		t.Fatal(err)
	}
	var it item.Item
	for k, x := range obj {
		v, err := item.FromAny(x)
		if err != nil {
			t.Fatalf("field %s: %v", k, err)
		}
		it = it.With(k, v)
	}
	it = it.With("d", item.Date(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)))
	out, err := json.Marshal(itemjson.Fields(it))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"b":true,"d":"2026-05-01T12:00:00.000Z","i":3,"m":{"k":1},"n":3.0,"s":"x","set":["a","b"]}`
	if string(out) != want {
		t.Fatalf("got %s\nwant %s", out, want)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{``, "body: no JSON value"},
		{`{"a": }`, "body: line 1, column 7: invalid character '}' looking for beginning of value"},
		{"{\"a\": 1,\n", "body: line 2, column 1: unexpected end of JSON"},
		{`{} {}`, "body: line 1, column 4: unexpected data after the JSON value"},
		{`[1]`, "body: the JSON value is an array, not an object"},
	} {
		_, err := itemjson.DecodeObject([]byte(tc.in), "body")
		if err == nil || !errors.Is(err, itemjson.ErrSyntax) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("DecodeObject(%q): %v; want ErrSyntax starting %q", tc.in, err, tc.want)
		}
	}
}

// FuzzDecodeObject: any bytes decode to an object or fail with
// ErrSyntax, never panic; an object's fields print back as JSON that
// decodes again.
func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a": [1, 2.5, "x", {"b": null}]}`, `{"a": 1e400}`, `"x"`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		obj, err := itemjson.DecodeObject(data, "fuzz")
		if err != nil {
			if !errors.Is(err, itemjson.ErrSyntax) {
				t.Fatalf("error %v does not match ErrSyntax", err)
			}
			return
		}
		var it item.Item
		for k, x := range obj {
			if v, err := item.FromAny(x); err == nil && k != "" {
				it = it.With(k, v)
			}
		}
		out, err := json.Marshal(itemjson.Fields(it))
		if err != nil {
			t.Fatalf("marshal %v: %v", it, err)
		}
		if _, err := itemjson.DecodeObject(out, "again"); err != nil {
			t.Fatalf("printed %s does not decode: %v", out, err)
		}
	})
}
