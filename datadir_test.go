package goatdb_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goatdb/goatdb"
)

// TestMustExist opens directories that are not data directories with
// Options.MustExist: each fails with ErrNotDataDir, says why, and creates
// nothing; a directory a writable Open made (read-only too) opens.
func TestMustExist(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	empty := filepath.Join(root, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, dir, why string
	}{
		{"missing", filepath.Join(root, "missing"), "it does not exist"},
		{"missing parent", filepath.Join(root, "missing", "data"), "it does not exist"},
		{"empty", empty, "it has no session.key"},
		{"file", file, "it is not a directory"},
	} {
		for _, readOnly := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/readonly=%v", tt.name, readOnly), func(t *testing.T) {
				before := listAll(t, root)
				db, err := goatdb.Open(tt.dir, &goatdb.Options{MustExist: true, ReadOnly: readOnly})
				if err == nil {
					db.Close()
					t.Fatal("Open succeeded")
				}
				want := "goatdb: " + tt.dir + " is not a goatdb data directory (" + tt.why + ")"
				if !errors.Is(err, goatdb.ErrNotDataDir) || err.Error() != want {
					t.Errorf("Open: %v, want %q matching ErrNotDataDir", err, want)
				}
				if after := listAll(t, root); after != before {
					t.Errorf("Open created files:\nbefore %s\nafter  %s", before, after)
				}
			})
		}
	}

	dir := filepath.Join(root, "data")
	db, err := goatdb.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, readOnly := range []bool{false, true} {
		db, err := goatdb.Open(dir, &goatdb.Options{MustExist: true, ReadOnly: readOnly})
		if err != nil {
			t.Fatalf("Open of a data directory (read-only %v): %v", readOnly, err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// listAll lists every path under root, one per line.
func listAll(t *testing.T, root string) string {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(root, func(p string, _ os.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(paths, "\n")
}

// A tool that works on an existing database opens it with MustExist, so
// that a mistyped path is an error, not a new empty database.
func ExampleOptions_mustExist() {
	dir, err := os.MkdirTemp("", "goatdb-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	_, err = goatdb.Open(filepath.Join(dir, "mistyped"), &goatdb.Options{MustExist: true})
	fmt.Println(errors.Is(err, goatdb.ErrNotDataDir))

	db, err := goatdb.Open(filepath.Join(dir, "data"), nil) // creates it
	if err != nil {
		panic(err)
	}
	db.Close()
	db, err = goatdb.Open(filepath.Join(dir, "data"), &goatdb.Options{MustExist: true})
	if err != nil {
		panic(err)
	}
	db.Close()
	fmt.Println("reopened")
	// Output:
	// true
	// reopened
}
