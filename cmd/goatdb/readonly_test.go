package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/internal/dbtest"
)

// TestReadsBesideWriter runs the commands that only read while a writer
// (as 'goatdb serve' would) holds the directory: each sees the writes the
// writer acknowledged, and none changes a file.
func TestReadsBesideWriter(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	w := dbtest.OpenDBIn(t, dir, nil)
	for _, p := range []string{"/data/tasks/t1", "/data/tasks/t2", "/data/notes/n1"} {
		if _, err := w.Put(p, goatdb.Fields{"title": "at " + p}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Put("/data/tasks/t1", goatdb.Fields{"done": true}); err != nil {
		t.Fatal(err)
	}
	before := sizes(t, dir)
	dest := filepath.Join(t.TempDir(), "backup")
	for _, tc := range []struct {
		args []string
		want []string // lines stdout must hold
	}{
		{[]string{"verify"}, []string{"ok: 2 repositories, 3 items, 4 commits"}},
		{[]string{"get", "/data/tasks/t1"}, []string{`{"done":true,"title":"at /data/tasks/t1"}`}},
		{[]string{"ls"}, []string{"/data/notes", "/data/tasks"}},
		{[]string{"ls", "/data/tasks"}, []string{"/data/tasks/t1", "/data/tasks/t2"}},
		{[]string{"log", "/data/tasks/t1"}, []string{`"parents":["`, `"parents":[]`}},
		{[]string{"export", "/data/tasks"}, []string{
			`{"key":"t1","fields":{"done":true,"title":"at /data/tasks/t1"}}`,
			`{"key":"t2","fields":{"title":"at /data/tasks/t2"}}`}},
		{[]string{"query", "/data/tasks", "--where", "done == true"}, []string{`{"path":"/data/tasks/t1","fields":{"done":true,"title":"at /data/tasks/t1"}}`}},
		{[]string{"backup", dest}, []string{"backed up 2 repositories"}},
	} {
		t.Run(tc.args[0], func(t *testing.T) {
			out := ok(t, dir, tc.args...)
			for _, want := range tc.want {
				if !strings.Contains(out, want) {
					t.Errorf("goatdb %s printed %q, want %q in it", strings.Join(tc.args, " "), out, want)
				}
			}
		})
	}
	if after := sizes(t, dir); !equalSizes(before, after) {
		t.Errorf("reads changed the directory:\nbefore %v\nafter  %v", before, after)
	}
	// The backup holds the same items, and the writer goes on.
	if got := ok(t, dest, "get", "/data/tasks/t1"); got != `{"done":true,"title":"at /data/tasks/t1"}`+"\n" {
		t.Errorf("get from the backup: %q", got)
	}
	if got := ok(t, dest, "verify"); got != "ok: 2 repositories, 3 items, 4 commits\n" {
		t.Errorf("verify of the backup: %q", got)
	}
	if _, err := w.Put("/data/tasks/t3", goatdb.Fields{"title": "later"}); err != nil {
		t.Fatalf("the writer after the reads: %v", err)
	}
}

// TestReadsOfMissingDirectory runs the commands that only read on a data
// directory that does not exist: they exit 1 and create nothing.
func TestReadsOfMissingDirectory(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "missing")
	for _, args := range [][]string{
		{"get", "/data/x/y"},
		{"ls"},
		{"log", "/data/x/y"},
		{"export", "/data/x"},
		{"query", "/data/x"},
		{"verify"},
		{"backup", filepath.Join(t.TempDir(), "b")},
	} {
		t.Run(args[0], func(t *testing.T) {
			failure(t, cli(t, dir, "", args...), 1, dir+" is not a goatdb data directory (it does not exist)")
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("goatdb %s created the directory: %v", args[0], err)
			}
		})
	}
}

// TestBackupCommand backs up while a writer holds the directory, refuses a
// destination that is not empty, and restores by putting the copy in the
// directory's place.
func TestBackupCommand(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	w, err := goatdb.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := w.Put("/data/b/i"+string(rune('0'+i)), goatdb.Fields{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	dest := filepath.Join(t.TempDir(), "backup")
	if out := ok(t, dir, "backup", dest); !strings.HasPrefix(out, "backed up 1 repository (") || !strings.HasSuffix(out, ") to "+dest+"\n") {
		t.Errorf("backup printed %q", out)
	}
	failure(t, cli(t, dir, "", "backup", dest), 2, dest+" is not empty; give a new or empty directory")
	failure(t, cli(t, dir, "", "backup"), 2, "backup takes one DEST directory")
	if _, err := w.Put("/data/b/after", goatdb.Fields{"n": 9}); err != nil {
		t.Fatal(err)
	}
	w.Close()

	// Restore: move the directory aside and put the copy in its place.
	if err := os.Rename(dir, dir+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dest, dir); err != nil {
		t.Fatal(err)
	}
	if got := ok(t, dir, "ls", "/data/b"); got != "/data/b/i0\n/data/b/i1\n/data/b/i2\n/data/b/i3\n/data/b/i4\n" {
		t.Errorf("ls of the restored directory: %q", got)
	}
	if got := ok(t, dir, "schema"); !strings.Contains(got, "\ntask/1\n") {
		t.Errorf("the restored directory's schemas: %q", got)
	}
	mustPut(t, dir, "/data/b/new", `{"n": 10}`)
	help := ok(t, dir, "help", "backup")
	for _, want := range []string{"Usage: goatdb backup DEST", "To restore", "move the\ndata directory aside"} {
		if !strings.Contains(help, want) {
			t.Errorf("help backup lacks %q:\n%s", want, help)
		}
	}
}
