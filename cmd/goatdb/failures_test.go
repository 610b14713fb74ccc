package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestFailures runs every documented failure on a populated directory and
// checks the exit status, the one-line message and that no file changed.
func TestFailures(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	mustPut(t, dir, "/data/tasks/t1", `{"title": "one"}`, "--schema", "task")
	mustPut(t, dir, "/data/tasks/gone", `{"title": "gone"}`, "--schema", "task")
	ok(t, dir, "rm", "/data/tasks/gone")
	mustPut(t, dir, "/data/dyn/d1", `{"a": 1}`)
	badSchemas := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(badSchemas, []byte(`{"schemas": [`), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.jsonl")

	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		// usage
		{"unknown command", "", []string{"frob"}, 2, `unknown command "frob"; see 'goatdb help'`},
		{"unknown global flag", "", []string{"--frob", "ls"}, 2, "unknown flag -frob"},
		{"unknown flag", "", []string{"get", "/data/tasks/t1", "--frob"}, 2, "unknown flag -frob; see 'goatdb help get'"},
		{"flag without value", "", []string{"get", "/data/tasks/t1", "--at"}, 2, "flag needs an argument: -at"},
		{"empty dir", "", []string{"ls", "--dir", ""}, 2, "--dir is empty"},
		{"put without path", "", []string{"put"}, 2, "put takes PATH and an optional JSON object"},
		{"put extra argument", "", []string{"put", "/data/tasks/t1", "{}", "{}"}, 2, "put takes PATH"},
		{"get two paths", "", []string{"get", "/data/tasks/t1", "/data/tasks/t2"}, 2, "get takes one PATH"},
		{"help unknown", "", []string{"help", "frob"}, 2, `unknown command "frob"`},
		{"version argument", "", []string{"version", "x"}, 2, "version takes no arguments"},
		{"serve argument", "", []string{"serve", "x"}, 2, "serve takes no arguments; see 'goatdb help serve'"},
		{"serve bad log level", "", []string{"serve", "--log-level", "loud"}, 2, `--log-level "loud": want debug, info, warn or error`},
		{"serve bad peer", "", []string{"serve", "--peer", "ftp://x"}, 2, "want http:// or https://"},
		{"serve negative rate", "", []string{"serve", "--rate", "-1"}, 2, "--rate -1: want 0 (no limit) or more"},
		{"sync without URL", "", []string{"sync"}, 2, "sync needs the server URL"},
		{"sync bad URL", "", []string{"sync", "localhost:8080"}, 2, "want http:// or https://"},
		{"sync bad repo", "", []string{"sync", "http://127.0.0.1:1", "/x"}, 2, "invalid path"},
		{"sync unreachable", "", []string{"sync", "http://127.0.0.1:1", "/data/tasks"}, 2, "server unreachable"},
		{"import batch 0", "", []string{"import", "/data/tasks", "--batch", "0"}, 2, "--batch must be at least 1"},
		{"import batch not a number", "", []string{"import", "/data/tasks", "--batch", "x"}, 2, `invalid value "x" for flag -batch`},

		// invalid paths
		{"put repo path", "", []string{"put", "/data/tasks", "{}"}, 2, `invalid path "/data/tasks": want /type/repo/item`},
		{"put bad character", "", []string{"put", "/data/tasks/a b", "{}"}, 2, `invalid path "/data/tasks/a b"`},
		{"put dot dot", "", []string{"put", "/data/../x", "{}"}, 2, "invalid path"},
		{"get relative", "", []string{"get", "data/tasks/t1"}, 2, "invalid path"},
		{"rm bad", "", []string{"rm", "/x"}, 2, "invalid path"},
		{"log bad", "", []string{"log", "/x/y/z/w"}, 2, "invalid path"},
		{"ls item path", "", []string{"ls", "/data/tasks/t1"}, 2, `invalid path "/data/tasks/t1": want /type/repo`},
		{"export bad", "", []string{"export", "tasks"}, 2, "invalid path"},
		{"import bad", "", []string{"import", "/data"}, 2, "invalid path"},

		// bad JSON
		{"malformed JSON", "", []string{"put", "/data/dyn/d1", `{"a": 1,}`}, 2, "JSON argument: line 1, column 9: invalid character '}'"},
		{"malformed JSON on stdin", "{\n  \"a\": tru\n}", []string{"put", "/data/dyn/d1"}, 2, "JSON on standard input: line 2, column 11: invalid character"},
		{"truncated JSON", "", []string{"put", "/data/dyn/d1", `{"a": [1`}, 2, "line 1, column 9: unexpected end of JSON"},
		{"data after JSON", "", []string{"put", "/data/dyn/d1", `{"a": 1} {}`}, 2, "line 1, column 10: unexpected data after the JSON value"},
		{"array not object", "", []string{"put", "/data/dyn/d1", `[1, 2]`}, 2, "the JSON value is an array, not an object"},
		{"string not object", "", []string{"put", "/data/dyn/d1", `"a"`}, 2, "the JSON value is a string, not an object"},
		{"empty stdin", "  \n", []string{"put", "/data/dyn/d1"}, 2, "no JSON on standard input"},
		{"set of sets", "", []string{"put", "/data/dyn/d1", `{"a": [[1]]}`}, 2, "a set holds scalars"},
		{"null in a set", "", []string{"put", "/data/dyn/d1", `{"a": [null]}`}, 2, "null is not a value"},
		{"number out of range", "", []string{"put", "/data/dyn/d1", `{"a": 1e999}`}, 2, `field "a"`},
		{"empty field name", "", []string{"put", "/data/dyn/d1", `{"": 1}`}, 2, "empty field name"},

		// schemas
		{"wrong type for schema", "", []string{"put", "/data/tasks/t1", `{"count": "many"}`}, 2, `field "count"`},
		{"not a date", "", []string{"put", "/data/tasks/t1", `{"due": "tomorrow"}`}, 2, `field "due"`},
		{"unknown field", "", []string{"put", "/data/tasks/t1", `{"colour": "red"}`}, 2, `field "colour"`},
		{"missing required field", "", []string{"put", "/data/tasks/new", `{"count": 1}`, "--schema", "task"}, 2, `field "title"`},
		{"wrong type in a new repository", "", []string{"put", "/data/fresh/x", `{"title": 1}`, "--schema", "task"}, 2, `field "title"`},
		{"unknown schema", "", []string{"put", "/data/tasks/t1", `{}`, "--schema", "nope"}, 2, `schema "nope" is not registered; load a schema file with --schemas FILE`},
		{"dynamic item given a schema it does not fit", "", []string{"put", "/data/dyn/d1", `{"title": "x"}`, "--schema", "task"}, 2, `field "a": schema: unknown field`},
		{"bad schema file", "", []string{"--schemas", badSchemas, "get", "/data/tasks/t1"}, 2, "load schemas from " + badSchemas},
		{"missing schema file", "", []string{"--schemas", missing, "schema"}, 2, "load schemas from " + missing},

		// --at
		{"bad --at", "", []string{"get", "/data/tasks/t1", "--at", "yesterday"}, 2, `--at "yesterday" is neither a commit id (64 hex digits, from 'goatdb log') nor an RFC 3339 time`},
		{"unknown commit", "", []string{"get", "/data/tasks/t1", "--at", "0123456789012345678901234567890123456789012345678901234567890123"}, 1, "no such commit of this item"},
		{"before the item existed", "", []string{"get", "/data/tasks/t1", "--at", "2000-01-01T00:00:00Z"}, 1, "the item did not exist yet"},

		// not found
		{"get missing", "", []string{"get", "/data/tasks/nope"}, 1, "/data/tasks/nope not found"},
		{"get missing repository", "", []string{"get", "/data/nope/x"}, 1, "/data/nope/x not found"},
		{"get deleted", "", []string{"get", "/data/tasks/gone"}, 1, "/data/tasks/gone is deleted; 'goatdb put' restores it"},
		{"rm missing", "", []string{"rm", "/data/nope/x"}, 1, "/data/nope/x not found"},
		{"rm deleted", "", []string{"rm", "/data/tasks/gone"}, 1, "/data/tasks/gone is already deleted"},
		{"log missing", "", []string{"log", "/data/tasks/nope"}, 1, "/data/tasks/nope not found"},
		{"ls missing", "", []string{"ls", "/data/nope"}, 1, "repository /data/nope not found"},
		{"export missing", "", []string{"export", "/data/nope"}, 1, "repository /data/nope not found"},

		// import
		{"import malformed line", "{\"key\": \"a\", \"fields\": {}}\n{\"key\": \"b\", \"fields\": {]}\n", []string{"import", "/data/tasks"}, 2, "standard input: line 2, column 25: invalid character ']'"},
		{"import not an object", "{\"key\": \"a\", \"fields\": {}}\n\n[1]\n", []string{"import", "/data/dyn"}, 2, "standard input: line 3: the line is an array, not an object"},
		{"import no key", `{"fields": {}}`, []string{"import", "/data/dyn"}, 2, `line 1: no "key"`},
		{"import no fields", `{"key": "a"}`, []string{"import", "/data/dyn"}, 2, `line 1: no "fields"`},
		{"import unknown key", `{"key": "a", "fields": {}, "extra": 1}`, []string{"import", "/data/dyn"}, 2, `line 1: unknown key "extra"`},
		{"import bad key", `{"key": "a/b", "fields": {}}`, []string{"import", "/data/dyn"}, 2, `line 1: invalid key "a/b"`},
		{"import duplicate key", "{\"key\": \"a\", \"fields\": {}}\n{\"key\": \"a\", \"fields\": {}}\n", []string{"import", "/data/dyn"}, 2, `line 2: key "a" is already on line 1`},
		{"import wrong type", "{\"key\": \"a\", \"fields\": {\"title\": \"x\"}}\n{\"key\": \"b\", \"fields\": {\"title\": 2}}\n", []string{"import", "/data/tasks", "--schema", "task", "--batch", "1"}, 2, `line 2: item /data/tasks/b: schema task/1: field "title"`},
		{"import existing item's schema", `{"key": "t1", "fields": {"title": 5}}`, []string{"import", "/data/tasks"}, 2, `line 1: item /data/tasks/t1: schema task/1: field "title"`},
		{"import into a new repository", "{\"key\": \"a\", \"fields\": {\"x\": 1}}\n{\"key\": \"b\", \"fields\": {\"x\": [[]]}}\n", []string{"import", "/data/new", "--batch", "1"}, 2, `line 2: item /data/new/b: field "x"`},
		{"import unknown line schema", `{"key": "a", "schema": "nope", "fields": {}}`, []string{"import", "/data/dyn"}, 2, `line 1: item /data/dyn/a: schema "nope" is not registered`},
		{"import missing file", "", []string{"import", "/data/dyn", missing}, 2, "no such file or directory; give an existing FILE, or - for standard input"},
	}
	before := sizes(t, dir)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			failure(t, cli(t, dir, tt.stdin, tt.args...), tt.code, tt.want)
			if after := sizes(t, dir); !equalSizes(before, after) {
				t.Fatalf("files changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

// TestNothingCreatedOnBadInput checks that bad usage and input do not
// even create the data directory.
func TestNothingCreatedOnBadInput(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"put", "/data/x/y", "{"},
		{"put", "/bad", "{}"},
		{"get", "/data/x/y", "--at", "soon"},
		{"import", "/data/x", "-"},
		{"frob"},
	} {
		dir := filepath.Join(t.TempDir(), "d")
		r := cli(t, dir, "not json\n", args...)
		if r.code != 2 {
			t.Errorf("%v: exit %d, want 2", args, r.code)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%v created %s", args, dir)
		}
	}
}
