package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestPutGetListCounter checks lists and counters on the command line: with
// a schema, an array for a list field keeps its order and duplicates and
// prints in order, and a counter prints as an integer; without a schema an
// array is a set.
func TestPutGetListCounter(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "d")
	ok(t, dir, "init")
	file := filepath.Join(t.TempDir(), "s.json")
	schemas := `{"schemas": [{"namespace": "todo", "version": 1, "fields": {
		"steps": {"type": "list"}, "views": {"type": "counter", "default": 0}}}]}`
	if err := os.WriteFile(file, []byte(schemas), 0o644); err != nil {
		t.Fatal(err)
	}
	steps := []struct{ in, want string }{
		{`{"steps": ["b", "a", "b"]}`, `{"steps":["b","a","b"],"views":0}`},
		{`{"steps": ["b", "x", "a", "b"], "views": 3}`, `{"steps":["b","x","a","b"],"views":3}`},
		{`{"steps": [], "views": -2}`, `{"steps":[],"views":-2}`},
	}
	for _, s := range steps {
		mustPut(t, dir, "/data/todo/1", s.in, "--schemas", file, "--schema", "todo")
		if got := ok(t, dir, "get", "/data/todo/1"); got != s.want+"\n" {
			t.Errorf("put %s\nget %s\nwant %s", s.in, got, s.want)
		}
	}
	failure(t, cli(t, dir, "", "--schemas", file, "put", "/data/todo/1", `{"views": 1.5}`), 2, `field "views"`)
	mustPut(t, dir, "/data/plain/1", `{"steps": ["b", "a", "b"]}`)
	if got := ok(t, dir, "get", "/data/plain/1"); got != `{"steps":["a","b"]}`+"\n" {
		t.Errorf("an array without a schema: get %s, want a set", got)
	}
}
