package main

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/item"
)

// openDB opens the data directory in Go, as an embedding program would,
// for the duration of fn.
func openDB(t *testing.T, dir string, fn func(db *goatdb.DB)) {
	t.Helper()
	db, err := goatdb.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	}()
	fn(db)
}

// TestNumbersCLIAndGo checks the integer rule end to end: the same values
// written with 'goatdb put' and with DB.Put are stored as the same types.
func TestNumbersCLIAndGo(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	tests := []struct {
		name, json string
		goValue    any
	}{
		{"int", `1`, 1},
		{"negative int", `-7`, int64(-7)},
		{"zero", `0`, 0},
		{"min int64", `-9223372036854775808`, int64(math.MinInt64)},
		{"max int64", `9223372036854775807`, int64(math.MaxInt64)},
		{"past int64", `9223372036854775808`, float64(1 << 63)},
		{"integral float", `1.0`, 1.0},
		{"exponent", `1e3`, 1000.0},
		{"fraction", `2.5`, 2.5},
		{"set", `[1, 2.5, 3.0]`, []any{1, 2.5, 3.0}},
		{"map", `{"a": 1, "b": 1.5}`, map[string]any{"a": 1, "b": 1.5}},
	}
	for _, tt := range tests {
		mustPut(t, dir, "/data/n/cli-"+strings.ReplaceAll(tt.name, " ", "-"), `{"n": `+tt.json+`}`)
	}
	openDB(t, dir, func(db *goatdb.DB) {
		for _, tt := range tests {
			key := strings.ReplaceAll(tt.name, " ", "-")
			if _, err := db.Put("/data/n/go-"+key, goatdb.Fields{"n": tt.goValue}); err != nil {
				t.Fatal(err)
			}
			fromCLI, err := db.Get("/data/n/cli-" + key)
			if err != nil {
				t.Fatal(err)
			}
			fromGo, err := db.Get("/data/n/go-" + key)
			if err != nil {
				t.Fatal(err)
			}
			c, _ := fromCLI.Value("n")
			g, _ := fromGo.Value("n")
			if !item.Equal(c, g) {
				t.Errorf("%s: put %s stored %#v; Put(%#v) stored %#v", tt.name, tt.json, c, tt.goValue, g)
			}
		}
		// The accessor a Go program would use works on what the command wrote.
		it, err := db.Get("/data/n/cli-int")
		if err != nil {
			t.Fatal(err)
		}
		if n, ok := it.Get("n").(int64); !ok || n != 1 {
			t.Errorf("Get(\"n\") of put {\"n\": 1} = %#v, want int64(1)", it.Get("n"))
		}
		var s struct {
			N int `goatdb:"n"`
		}
		if err := it.Decode(&s); err != nil || s.N != 1 {
			t.Errorf("Decode: %+v, %v", s, err)
		}
	})
}

// TestNumbersQuery checks that a query compares ints and numbers by value,
// whichever way they were written.
func TestNumbersQuery(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	mustPut(t, dir, "/data/q/cli-int", `{"n": 1}`)
	mustPut(t, dir, "/data/q/cli-float", `{"n": 1.0}`)
	mustPut(t, dir, "/data/q/cli-two", `{"n": 2}`)
	openDB(t, dir, func(db *goatdb.DB) {
		for key, v := range map[string]any{"go-int": 1, "go-float": 1.0, "go-half": 0.5} {
			if _, err := db.Put("/data/q/"+key, goatdb.Fields{"n": v}); err != nil {
				t.Fatal(err)
			}
		}
	})
	paths := func(out string) string {
		var ps []string
		for line := range strings.Lines(out) {
			var r struct{ Path string }
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatal(err)
			}
			ps = append(ps, strings.TrimPrefix(r.Path, "/data/q/"))
		}
		return strings.Join(ps, " ")
	}
	for where, want := range map[string]string{
		"n == 1":    "cli-float cli-int go-float go-int",
		"n == 1.0":  "cli-float cli-int go-float go-int",
		"n != 1":    "cli-two go-half",
		"n > 0.5":   "cli-float cli-int cli-two go-float go-int",
		"n < 1":     "go-half",
		"n >= 1.0":  "cli-float cli-int cli-two go-float go-int",
		"n in [1]":  "cli-float cli-int go-float go-int",
		"n == 0.50": "go-half",
	} {
		if got := paths(ok(t, dir, "query", "/data/q", "--where", where)); got != want {
			t.Errorf("--where %q: %s; want %s", where, got, want)
		}
	}
	// Sorting mixes them by value; an int and a number of equal value
	// sort number first, then by path.
	if got := paths(ok(t, dir, "query", "/data/q", "--sort", "n")); got != "go-half cli-float go-float cli-int go-int cli-two" {
		t.Errorf("--sort n: %s", got)
	}
}

// TestNumbersGetPutRoundTrip checks that get prints what put reads back as
// the same type: 1 for the int 1, 1.0 for the number 1.
func TestNumbersGetPutRoundTrip(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	openDB(t, dir, func(db *goatdb.DB) {
		f := goatdb.Fields{"i": 1, "f": 1.0, "z": 0.0, "neg": -3.0, "big": 1e21, "frac": 0.25,
			"s": []any{2, 2.0}, "m": map[string]any{"x": 4.0}}
		if _, err := db.Put("/data/r/a", f); err != nil {
			t.Fatal(err)
		}
	})
	got := ok(t, dir, "get", "/data/r/a")
	const want = `{"big":1e+21,"f":1.0,"frac":0.25,"i":1,"m":{"x":4.0},"neg":-3.0,"s":[2.0,2],"z":0.0}` + "\n"
	if got != want {
		t.Fatalf("get: %s want %s", got, want)
	}
	mustPut(t, dir, "/data/r/b", got)
	openDB(t, dir, func(db *goatdb.DB) {
		a, err := db.Get("/data/r/a")
		if err != nil {
			t.Fatal(err)
		}
		b, err := db.Get("/data/r/b")
		if err != nil {
			t.Fatal(err)
		}
		if !item.Equal(item.Map(fields(a)), item.Map(fields(b))) {
			t.Errorf("put of get's output stored %#v, want %#v", item.Map(fields(b)), item.Map(fields(a)))
		}
	})
}

func fields(it goatdb.Item) map[string]item.Value {
	m := map[string]item.Value{}
	for name, v := range it.Data().All() {
		m[name] = v
	}
	return m
}

// FuzzParseNumbers checks the JSON decoding of put and import: whatever
// parseJSON accepts converts without a panic, and the JSON that get
// prints for the result parses back to an equal value.
func FuzzParseNumbers(f *testing.F) {
	for _, s := range []string{`{"n": 1}`, `{"n": 1.0}`, `{"n": -0}`, `{"n": 1e3}`, `{"n": 9223372036854775808}`,
		`{"n": -9223372036854775809}`, `{"n": 1e400}`, `{"s": [1, 1.0, "1"]}`, `{"m": {"a": [0.5, 5]}}`,
		`{"n": 123456789012345678901234567890}`, `{"n": 1E-400}`, `[1]`, `{"n": 01}`, `{"n": 1.5e300}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		x, err := parseJSON(data, "fuzz", 1)
		if err != nil {
			return
		}
		v, err := item.FromAny(x)
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := writeJSON(&out, valueJSON(v)); err != nil {
			if strings.Contains(err.Error(), "Inf") {
				return // ±Inf numbers have no JSON form
			}
			t.Fatalf("encode %#v: %v", v, err)
		}
		x2, err := parseJSON(out.Bytes(), "again", 1)
		if err != nil {
			t.Fatalf("%s: %v", out.Bytes(), err)
		}
		v2, err := item.FromAny(x2)
		if err != nil || !item.Equal(v, v2) {
			t.Fatalf("%s decoded as %#v, printed as %s, decoded again as %#v (%v)", data, v, out.Bytes(), v2, err)
		}
	})
}

// TestNumbersSchema checks how typed fields take ints and numbers: a
// number field converts an int a float64 holds exactly and refuses one it
// cannot; an int field converts an integral number up to 2^53.
func TestNumbersSchema(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	mustPut(t, dir, "/data/tasks/a", `{"title": "a", "score": 3, "count": 4.0}`, "--schema", "task")
	if got := ok(t, dir, "get", "/data/tasks/a"); got != `{"count":4,"score":3.0,"tags":[],"title":"a"}`+"\n" {
		t.Errorf("get: %s", got)
	}
	failure(t, cli(t, dir, "", "put", "/data/tasks/b", `{"title": "b", "score": 9007199254740993}`, "--schema", "task"), 2,
		`field "score": schema: wrong type: want number, have int 9007199254740993i`)
	failure(t, cli(t, dir, "", "put", "/data/tasks/b", `{"title": "b", "count": 1.5}`, "--schema", "task"), 2,
		`field "count": schema: wrong type: want int, have number 1.5`)
}
