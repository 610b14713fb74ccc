package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goatdb/goatdb/internal/dbtest"
)

// TestCommands runs every command's success path on one directory and
// compares the deterministic outputs exactly.
func TestCommands(t *testing.T) {
	t.Parallel()
	dir := newDir(t)

	initOut := ok(t, dir, "init")
	if !strings.HasPrefix(initOut, "dir:     "+dir+"\nsession: ") {
		t.Errorf("init printed %q", initOut)
	}
	var ij map[string]string
	if err := json.Unmarshal([]byte(ok(t, dir, "init", "--json")), &ij); err != nil || ij["dir"] != dir || len(ij["session"]) != 52 {
		t.Errorf("init --json: %v %v", ij, err)
	}
	if !strings.HasSuffix(initOut, ij["session"]+"\n") {
		t.Errorf("init and init --json disagree: %q, %v", initOut, ij)
	}

	first := mustPut(t, dir, "/data/tasks/t1", `{"title": "Write docs", "tags": ["docs", "cli"], "n": 3}`)
	mustPut(t, dir, "/data/tasks/t2", `{"title": "Test"}`)
	second := mustPut(t, dir, "/data/tasks/t1", `{"n": null, "done": true}`)
	mustPut(t, dir, "/data/tasks/t3", `{"title": "Gone"}`)
	ok(t, dir, "rm", "/data/tasks/t3")
	mustPut(t, dir, "/data/notes/n1", `{"text": "hello"}`, "--schema", "note")

	const t1 = `{"done":true,"tags":["cli","docs"],"title":"Write docs"}` + "\n"
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"get", "/data/tasks/t1"}, t1},
		{[]string{"get", "/data/tasks/t1", "--at", first}, `{"n":3,"tags":["cli","docs"],"title":"Write docs"}` + "\n"},
		{[]string{"get", "--at", second, "/data/tasks/t1"}, t1},
		{[]string{"get", "/data/tasks/t1", "--at", time.Now().Add(time.Hour).Format(time.RFC3339)}, t1},
		{[]string{"get", "/data/notes/n1"}, `{"text":"hello"}` + "\n"},
		{[]string{"ls", "/data/tasks"}, "/data/tasks/t1\n/data/tasks/t2\n"},
		{[]string{"ls", "/data/tasks", "--deleted"}, "/data/tasks/t1\n/data/tasks/t2\n/data/tasks/t3\n"},
		{[]string{"ls", "--json", "--deleted", "/data/tasks"}, `{"path":"/data/tasks/t1","deleted":false}
{"path":"/data/tasks/t2","deleted":false}
{"path":"/data/tasks/t3","deleted":true}
`},
		{[]string{"ls"}, "/data/notes\n/data/tasks\n"},
		{[]string{"ls", "--json"}, `{"path":"/data/notes"}` + "\n" + `{"path":"/data/tasks"}` + "\n"},
		{[]string{"export", "/data/tasks"}, `{"key":"t1","fields":{"done":true,"tags":["cli","docs"],"title":"Write docs"}}
{"key":"t2","fields":{"title":"Test"}}
`},
		{[]string{"export", "/data/notes"}, `{"key":"n1","schema":"note","fields":{"text":"hello"}}` + "\n"},
		{[]string{"verify"}, "ok: 2 repositories, 4 items, 6 commits\n"},
		{[]string{"verify", "--json"}, `{"repositories":2,"items":4,"commits":6,"pending":0,"problems":[]}` + "\n"},
		{[]string{"schema"}, `note/1
  text   string
task/1
  title  string  required
  count  int     default 0
  due    date
  tags   set     default []
  done   bool
  score  number
  meta   map
`},
		{[]string{"schema", "--json"}, `{"namespace":"note","version":1,"fields":[{"name":"text","type":"string","required":false}]}
{"namespace":"task","version":1,"fields":[{"name":"title","type":"string","required":true},{"name":"count","type":"int","required":false,"default":0},{"name":"due","type":"date","required":false},{"name":"tags","type":"set","required":false,"default":[]},{"name":"done","type":"bool","required":false},{"name":"score","type":"number","required":false},{"name":"meta","type":"map","required":false}]}
`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			if got := ok(t, dir, tt.args...); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}

	t.Run("log", func(t *testing.T) {
		lines := strings.Split(strings.TrimSpace(ok(t, dir, "log", "/data/tasks/t1")), "\n")
		if len(lines) != 2 {
			t.Fatalf("log has %d lines, want 2:\n%s", len(lines), strings.Join(lines, "\n"))
		}
		var got []map[string]any
		for _, l := range lines {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatal(err)
			}
			if len(m) != 5 {
				t.Errorf("log line has keys %v, want id, parents, time, session, kind", m)
			}
			if _, err := time.Parse(time.RFC3339, m["time"].(string)); err != nil || !strings.HasSuffix(m["time"].(string), "Z") {
				t.Errorf("time %v is not RFC 3339 UTC", m["time"])
			}
			if m["session"] != ij["session"] {
				t.Errorf("session %v, want %s", m["session"], ij["session"])
			}
			got = append(got, m)
		}
		if got[0]["id"] != second || got[1]["id"] != first {
			t.Errorf("log ids %v, %v; want newest first %s, %s", got[0]["id"], got[1]["id"], second, first)
		}
		if k := got[0]["kind"]; k != "delta" && k != "full" {
			t.Errorf("second commit's kind %v, want delta or full", k)
		}
		if got[1]["kind"] != "full" {
			t.Errorf("first commit's kind %v, want full", got[1]["kind"])
		}
		if p := got[0]["parents"].([]any); len(p) != 1 || p[0] != first {
			t.Errorf("parents %v, want [%s]", p, first)
		}
		if p := got[1]["parents"].([]any); len(p) != 0 {
			t.Errorf("first commit's parents %v, want []", p)
		}
	})

	t.Run("get --at a deletion", func(t *testing.T) {
		var c struct{ ID string }
		if err := json.Unmarshal([]byte(strings.SplitN(ok(t, dir, "log", "/data/tasks/t3"), "\n", 2)[0]), &c); err != nil {
			t.Fatal(err)
		}
		failure(t, cli(t, dir, "", "get", "/data/tasks/t3", "--at", c.ID), 1, "/data/tasks/t3 was deleted at "+c.ID)
	})

	t.Run("put restores a deleted item", func(t *testing.T) {
		mustPut(t, dir, "/data/tasks/t3", `{"again": true}`)
		if got := ok(t, dir, "get", "/data/tasks/t3"); got != `{"again":true,"title":"Gone"}`+"\n" {
			t.Errorf("got %s", got)
		}
	})
}

// TestPutGetTypes round-trips every value type through put and get.
func TestPutGetTypes(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	tests := []struct {
		name, in, want string
		flags          []string
	}{
		{"string", `{"s": "héllo <b> & \"q\" \n"}`, `{"s":"héllo <b> & \"q\" \n"}`, nil},
		{"integral number", `{"n": 3}`, `{"n":3}`, nil},
		{"integral number written as float", `{"n": 3.0}`, `{"n":3.0}`, nil},
		{"negative zero", `{"n": -0}`, `{"n":0}`, nil},
		{"fraction", `{"n": -1.25}`, `{"n":-1.25}`, nil},
		{"exponent", `{"n": 1e300}`, `{"n":1e+300}`, nil},
		{"large integer", `{"n": 9007199254740993}`, `{"n":9007199254740993}`, nil},
		{"integer past int64", `{"n": 9223372036854775808}`, `{"n":9223372036854776000.0}`, nil},
		{"large integral float", `{"n": 9007199254740993.0}`, `{"n":9007199254740992.0}`, nil},
		{"bool", `{"t": true, "f": false}`, `{"f":false,"t":true}`, nil},
		{"set sorted and deduplicated", `{"s": ["b", "a", "b"]}`, `{"s":["a","b"]}`, nil},
		{"set of mixed scalars", `{"s": [true, 2, "x", 1]}`, `{"s":["x",1,2,true]}`, nil},
		{"empty set", `{"s": []}`, `{"s":[]}`, nil},
		{"map", `{"m": {"z": 1, "a": {"b": [2, 1]}, "e": {}}}`, `{"m":{"a":{"b":[1,2]},"e":{},"z":1}}`, nil},
		{"empty item", `{}`, `{}`, nil},
		{"int from schema", `{"title": "x", "count": 7}`, `{"count":7,"tags":[],"title":"x"}`, []string{"--schema", "task"}},
		{"date from schema", `{"title": "x", "due": "2024-05-01T14:00:00.1234+02:00"}`, `{"count":0,"due":"2024-05-01T12:00:00.123Z","tags":[],"title":"x"}`, []string{"--schema", "task"}},
		{"every schema type", `{"title": "x", "count": 1, "due": "2024-01-02T03:04:05Z", "tags": [3, "a"], "done": false, "score": 2.5, "meta": {"k": "v"}}`,
			`{"count":1,"done":false,"due":"2024-01-02T03:04:05.000Z","meta":{"k":"v"},"score":2.5,"tags":["a",3],"title":"x"}`, []string{"--schema", "task"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/data/types/i" + string(rune('a'+i))
			mustPut(t, dir, path, tt.in, tt.flags...)
			if got := ok(t, dir, "get", path); got != tt.want+"\n" {
				t.Errorf("put %s\nget %s\nwant %s", tt.in, got, tt.want)
			}
		})
	}
	t.Run("stdin", func(t *testing.T) {
		r := cli(t, dir, "{\n  \"a\": 1\n}\n", "put", "/data/types/stdin")
		if r.code != 0 || !commitID.MatchString(r.stdout) {
			t.Fatalf("put from stdin: %+v", r)
		}
		if got := ok(t, dir, "get", "/data/types/stdin"); got != `{"a":1}`+"\n" {
			t.Errorf("got %s", got)
		}
	})
	t.Run("replace", func(t *testing.T) {
		mustPut(t, dir, "/data/types/r", `{"a": 1, "b": 2}`)
		mustPut(t, dir, "/data/types/r", `{"c": 3}`, "--replace")
		if got := ok(t, dir, "get", "/data/types/r"); got != `{"c":3}`+"\n" {
			t.Errorf("got %s", got)
		}
	})
	t.Run("item keeps its schema", func(t *testing.T) {
		mustPut(t, dir, "/data/types/k", `{"title": "x"}`, "--schema", "task")
		mustPut(t, dir, "/data/types/k", `{"count": 4}`) // coerced to int by task/1
		failure(t, cli(t, dir, "", "put", "/data/types/k", `{"count": 4.5}`), 2, `field "count"`)
		if got := ok(t, dir, "get", "/data/types/k"); got != `{"count":4,"tags":[],"title":"x"}`+"\n" {
			t.Errorf("got %s", got)
		}
	})
}

// TestFlagPlacement checks that flags work before and after positional
// arguments, global ones after the command too, and that -- ends flags.
func TestFlagPlacement(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	mustPut(t, dir, "/data/f/x", `{"title": "x"}`, "--schema", "task")
	want := `{"count":0,"tags":[],"title":"x"}` + "\n"
	for _, args := range [][]string{
		{"--dir", dir, "get", "/data/f/x"},
		{"get", "/data/f/x", "--dir", dir},
		{"get", "--dir=" + dir, "/data/f/x"},
		{"-dir", dir, "get", "--", "/data/f/x"},
	} {
		var out, errb strings.Builder
		if code := run(t.Context(), args, strings.NewReader(""), &out, &errb); code != 0 || out.String() != want {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out.String(), errb.String())
		}
	}
	ok(t, dir, "rm", "/data/f/x")
	if got := ok(t, dir, "ls", "/data/f", "--deleted"); got != "/data/f/x\n" {
		t.Errorf("ls REPO --deleted: %q", got)
	}
	r := cli(t, dir, "", "get", "--", "/data/f/x", "--at")
	failure(t, r, 2, "get takes one PATH")
}

func TestDirFromEnvironment(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "env")
	t.Setenv("GOATDB_DIR", dir)
	var out, errb strings.Builder
	if code := run(t.Context(), []string{"init"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("init: exit %d: %s", code, errb.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "session.key")); err != nil {
		t.Errorf("init with $GOATDB_DIR did not create the key: %v", err)
	}
}

func TestHelpAndVersion(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	usage := ok(t, dir, "help")
	for _, c := range commands {
		if !strings.Contains(usage, "\n  "+c.name+" ") {
			t.Errorf("help does not list %s", c.name)
		}
		h := ok(t, dir, "help", c.name)
		if !strings.HasPrefix(h, "Usage: goatdb "+c.name) {
			t.Errorf("help %s: %q", c.name, h)
		}
		if !c.raw {
			if got := ok(t, dir, c.name, "-h"); got != h {
				t.Errorf("%s -h differs from help %s", c.name, c.name)
			}
		}
	}
	if got := ok(t, dir, "--help"); got != usage {
		t.Errorf("--help differs from help")
	}
	if h := ok(t, dir, "help", "put"); !strings.Contains(h, "-schema NS") || !strings.Contains(h, "-replace") {
		t.Errorf("help put lacks its flags:\n%s", h)
	}
	if v := ok(t, dir, "version"); !strings.HasPrefix(v, "goatdb ") || !strings.HasSuffix(v, "\n") {
		t.Errorf("version: %q", v)
	}

	// No command: the usage on stderr, exit 2.
	var out, errb strings.Builder
	if code := run(t.Context(), nil, strings.NewReader(""), &out, &errb); code != 2 || out.Len() != 0 || errb.String() != usage {
		t.Errorf("no command: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

func TestSchemasFlag(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "d")
	ok(t, dir, "init")
	file := filepath.Join(t.TempDir(), "s.json")
	if err := os.WriteFile(file, []byte(schemaFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := ok(t, dir, "schema"); !strings.HasPrefix(got, "no schemas registered") {
		t.Errorf("schema without a file: %q", got)
	}
	if got := ok(t, dir, "schema", "--json"); got != "" {
		t.Errorf("schema --json without a file: %q", got)
	}
	if got := ok(t, dir, "--schemas", file, "schema"); !strings.HasPrefix(got, "note/1\n") {
		t.Errorf("schema --schemas: %q", got)
	}
	mustPut(t, dir, "/data/s/x", `{"text": "t"}`, "--schemas", file, "--schema", "note")
}

// TestLocked runs the commands that write on a directory another DB holds
// open (the ones that read work beside it: TestReadsBesideWriter).
func TestLocked(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	mustPut(t, dir, "/data/l/x", `{"a": 1}`)
	dbtest.OpenDBIn(t, dir, nil)
	before := sizes(t, dir)
	for _, args := range [][]string{
		{"put", "/data/l/x", `{"a": 2}`},
		{"rm", "/data/l/x"},
		{"import", "/data/l"},
		{"init"},
	} {
		t.Run(args[0], func(t *testing.T) {
			failure(t, cli(t, dir, `{"key": "y", "fields": {}}`, args...), 2, "is in use by another goatdb process; stop it, or give another --dir")
		})
	}
	if after := sizes(t, dir); !equalSizes(before, after) {
		t.Errorf("files changed:\nbefore %v\nafter  %v", before, after)
	}
}

func equalSizes(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
