package goatdb_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/goatdb/goatdb"
)

// TestDropRepo: a repository is dropped only at the position given and
// while nobody holds it; then its files are gone, it is not listed, and a
// write makes it anew.
func TestDropRepo(t *testing.T) {
	dir := t.TempDir()
	db, err := goatdb.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, k := range []string{"a", "b"} {
		if _, err := db.Put("/data/drop/"+k, goatdb.Fields{"v": k}); err != nil {
			t.Fatal(err)
		}
	}
	r, release, err := db.AcquireExisting("/data/drop")
	if err != nil {
		t.Fatal(err)
	}
	epoch, seq := r.Epoch(), r.Seq()
	if err := db.DropRepo("/data/drop", epoch, seq); !errors.Is(err, goatdb.ErrRepoInUse) {
		t.Fatalf("drop while held: %v", err)
	}
	release()
	if err := db.DropRepo("/data/drop", epoch, seq-1); !errors.Is(err, goatdb.ErrRepoChanged) {
		t.Fatalf("drop at an old position: %v", err)
	}
	if _, err := db.Get("/data/drop/a"); err != nil {
		t.Fatalf("a refused drop lost data: %v", err)
	}
	if err := db.DropRepo("/data/drop", epoch, seq); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "drop.log")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the log is still there (%v)", err)
	}
	if repos, _ := db.Repos(); slices.Contains(repos, "/data/drop") {
		t.Fatalf("dropped repository listed: %v", repos)
	}
	if _, err := db.Get("/data/drop/a"); !errors.Is(err, goatdb.ErrNotFound) {
		t.Fatalf("get after the drop: %v", err)
	}
	if err := db.DropRepo("/data/drop", epoch, seq); !errors.Is(err, goatdb.ErrNotFound) {
		t.Fatalf("drop of a missing repository: %v", err)
	}
	if _, err := db.Put("/data/drop/c", goatdb.Fields{"v": "new"}); err != nil {
		t.Fatal(err)
	}
	if keys, _ := db.Keys("/data/drop", true); !slices.Equal(keys, []string{"c"}) {
		t.Fatalf("the repository made anew holds %v", keys)
	}
	// A repository closed (not open) is checked and dropped too.
	db.Close()
	db, err = goatdb.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, release, _ = db.AcquireExisting("/data/drop")
	epoch, seq = r.Epoch(), r.Seq()
	release()
	db.Close()
	db, err = goatdb.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.DropRepo("/data/drop", epoch, seq); err != nil {
		t.Fatalf("drop of a closed repository: %v", err)
	}
}
