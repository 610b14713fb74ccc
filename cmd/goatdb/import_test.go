package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExportImportRoundTrip exports repositories with every type, imports
// them into an empty directory and compares.
func TestExportImportRoundTrip(t *testing.T) {
	t.Parallel()
	src := newDir(t)
	mustPut(t, src, "/data/tasks/a", `{"title": "A", "count": 2, "due": "2024-05-01T12:00:00.5Z", "tags": ["x", 1, true], "done": true, "score": 0.25, "meta": {"k": {"n": [1, 2]}}}`, "--schema", "task")
	mustPut(t, src, "/data/tasks/b", `{"title": "B"}`, "--schema", "task")
	mustPut(t, src, "/data/tasks/c", `{"any": "thing", "n": 3, "big": 1e21, "set": [], "m": {}}`)
	mustPut(t, src, "/data/tasks/d", `{"deleted": true}`)
	ok(t, src, "rm", "/data/tasks/d")
	mustPut(t, src, "/data/tasks/c", `{"n": 4}`)

	exported := ok(t, src, "export", "/data/tasks")
	if n := strings.Count(exported, "\n"); n != 3 {
		t.Fatalf("export printed %d lines, want 3 (the deleted item left out):\n%s", n, exported)
	}

	dst := newDir(t)
	r := cli(t, dst, exported, "import", "/data/tasks")
	if r.code != 0 || r.stdout != "" || r.stderr != "goatdb: imported 3 items into /data/tasks\n" {
		t.Fatalf("import: %+v", r)
	}
	if got := ok(t, dst, "export", "/data/tasks"); got != exported {
		t.Errorf("export after import:\n%s\nwant\n%s", got, exported)
	}
	for _, k := range []string{"a", "b", "c"} {
		if got, want := ok(t, dst, "get", "/data/tasks/"+k), ok(t, src, "get", "/data/tasks/"+k); got != want {
			t.Errorf("get %s: %s, want %s", k, got, want)
		}
	}

	// Importing the same lines again writes nothing.
	before := sizes(t, dst)
	file := filepath.Join(t.TempDir(), "tasks.jsonl")
	if err := os.WriteFile(file, []byte(exported), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := cli(t, dst, "", "import", "/data/tasks", file); r.code != 0 {
		t.Fatalf("import FILE: %+v", r)
	}
	if after := sizes(t, dst); !equalSizes(before, after) {
		t.Errorf("re-import changed files:\nbefore %v\nafter  %v", before, after)
	}
}

// TestImportReplaces checks that an imported line sets the item to
// exactly its fields and restores deleted items.
func TestImportReplaces(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	mustPut(t, dir, "/data/r/x", `{"old": 1, "keep": 2}`)
	mustPut(t, dir, "/data/r/y", `{"v": 1}`)
	ok(t, dir, "rm", "/data/r/y")
	in := `{"key": "x", "fields": {"keep": 3, "gone": null}}
{"key": "y", "fields": {"v": 2}}
{"key": "z", "schema": "note", "fields": {"text": "new"}}
`
	if r := cli(t, dir, in, "import", "/data/r", "-"); r.code != 0 {
		t.Fatalf("import: %+v", r)
	}
	want := `{"key":"x","fields":{"keep":3}}
{"key":"y","fields":{"v":2}}
{"key":"z","schema":"note","fields":{"text":"new"}}
`
	if got := ok(t, dir, "export", "/data/r"); got != want {
		t.Errorf("export:\n%s\nwant\n%s", got, want)
	}
}

// TestImportBatches checks the progress lines and that a bad line late in
// a long input writes nothing, not even the earlier batches.
func TestImportBatches(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	var in strings.Builder
	for i := range 25 {
		fmt.Fprintf(&in, `{"key": "k%02d", "fields": {"title": "item %d"}}`+"\n", i, i)
	}
	good := in.String()

	bad := good + `{"key": "k99", "fields": {"title": 99}}` + "\n"
	before := sizes(t, dir)
	r := cli(t, dir, bad, "import", "/data/b", "--schema", "task", "--batch", "4", "--progress", "10")
	failure(t, r, 2, `standard input: line 26: item /data/b/k99: schema task/1: field "title"`)
	if after := sizes(t, dir); !equalSizes(before, after) {
		t.Errorf("a failed import changed files:\nbefore %v\nafter  %v", before, after)
	}

	r = cli(t, dir, good, "import", "/data/b", "--schema", "task", "--batch", "4", "--progress", "10")
	wantErr := `goatdb: import: 12 of 25 items written
goatdb: import: 20 of 25 items written
goatdb: imported 25 items into /data/b
`
	if r.code != 0 || r.stdout != "" || r.stderr != wantErr {
		t.Errorf("import: exit %d, stdout %q, stderr\n%s\nwant\n%s", r.code, r.stdout, r.stderr, wantErr)
	}
	if n := strings.Count(ok(t, dir, "ls", "/data/b"), "\n"); n != 25 {
		t.Errorf("ls after import: %d items, want 25", n)
	}
	if got := ok(t, dir, "get", "/data/b/k07"); got != `{"count":0,"tags":[],"title":"item 7"}`+"\n" {
		t.Errorf("get: %s", got)
	}

	r = cli(t, dir, "", "import", "/data/empty")
	if r.code != 0 || r.stderr != "goatdb: imported 0 items into /data/empty\n" {
		t.Errorf("empty import: %+v", r)
	}
	if got := ok(t, dir, "ls"); got != "/data/b\n" {
		t.Errorf("an empty import created a repository: %q", got)
	}
}

// TestImportInterrupted checks that a cancelled import stops between
// batches and says how to finish.
func TestImportInterrupted(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var out, errb strings.Builder
	in := `{"key": "a", "fields": {}}` + "\n"
	code := run(ctx, []string{"--dir", dir, "import", "/data/i"}, strings.NewReader(in), &out, &errb)
	failure(t, result{code, out.String(), errb.String()}, 2, "import into /data/i: interrupted; 0 of 1 items were written, run the same import again to finish")
}
