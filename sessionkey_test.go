package goatdb_test

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/vfs"
)

// TestSessionKeySavedAtFirstUse: a new data directory's session key is
// written at the first use that needs it, not at Open: a crash before
// then loses the key and nothing else (the next Open makes another),
// and a crash after it keeps it, whichever use came first.
func TestSessionKeySavedAtFirstUse(t *testing.T) {
	const dir = "/d/inst"
	open := func(t *testing.T, fsys vfs.FS) *goatdb.DB {
		t.Helper()
		db, err := goatdb.Open(dir, &goatdb.Options{FS: fsys})
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	uses := []struct {
		name string
		use  func(t *testing.T, db *goatdb.DB)
	}{
		{"none", nil},
		{"write", func(t *testing.T, db *goatdb.DB) {
			if _, err := db.Put("/data/r/x", goatdb.Fields{"n": 1}); err != nil {
				t.Fatal(err)
			}
		}},
		{"Session", func(t *testing.T, db *goatdb.DB) { db.Session() }},
		{"sync", func(t *testing.T, db *goatdb.DB) {
			if _, err := db.Sync(context.Background(), "http://127.0.0.1:1", "/data/r"); !errors.Is(err, goatdb.ErrUnreachable) {
				t.Fatalf("sync with nobody: %v, want ErrUnreachable", err)
			}
		}},
		{"register", func(t *testing.T, db *goatdb.DB) { // opens no repository
			if _, err := db.Register(context.Background(), "http://127.0.0.1:1"); !errors.Is(err, goatdb.ErrUnreachable) {
				t.Fatalf("register with nobody: %v, want ErrUnreachable", err)
			}
		}},
		{"Close", func(t *testing.T, db *goatdb.DB) {
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, u := range uses {
		t.Run(u.name, func(t *testing.T) {
			mem := vfs.NewMem()
			db := open(t, mem)
			var session commit.SessionID
			if u.use == nil {
				if _, err := mem.Stat(dir + "/session.key"); !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("Open wrote the session key before any use: %v", err)
				}
			} else {
				u.use(t, db)
				session = goatdb.SessionUnsaved(db) // Session would save it
			}
			after := open(t, mem.Crash(nil))
			defer after.Close()
			switch kept := after.Session() == session; {
			case u.use == nil && after.Session() == (commit.SessionID{}):
				t.Fatal("no session after the crash")
			case u.use != nil && !kept:
				t.Fatalf("the session key was lost in a crash after %s", u.name)
			}
			if u.name == "write" {
				if _, err := after.Get("/data/r/x"); err != nil {
					t.Fatalf("the write was lost: %v", err)
				}
			}
		})
	}
}

// TestSessionKeySaveFails: when the session key cannot be saved, the use
// that needed it fails with an error that says so, and nothing it would
// have written is written; a later use saves it once the disk takes it.
func TestSessionKeySaveFails(t *testing.T) {
	mem := vfs.NewMem()
	db, err := goatdb.Open("/d/inst", &goatdb.Options{FS: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mem.FailAfter(0)
	_, err = db.Put("/data/r/x", goatdb.Fields{"n": 1})
	if err == nil || !strings.Contains(err.Error(), "session key") {
		t.Fatalf("write with the key unsaveable: %v, want an error naming the session key", err)
	}
	mem.FailAfter(-1)
	if _, err := mem.Stat("/d/inst/data"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the failed write made its repository: %v", err)
	}
	if _, err := db.Put("/data/r/x", goatdb.Fields{"n": 1}); err != nil {
		t.Fatalf("write once the disk works: %v", err)
	}
	session := db.Session()
	after, err := goatdb.Open("/d/inst", &goatdb.Options{FS: mem.Crash(nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	if after.Session() != session {
		t.Fatal("the session key saved on retry was lost in a crash")
	}
}
