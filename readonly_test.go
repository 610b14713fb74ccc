package goatdb_test

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
)

// TestReadsOfMissingRepositoryCreateNothing reads a repository that does
// not exist through every read of the API: each fails with ErrNotFound and
// leaves the directory as it was.
func TestReadsOfMissingRepositoryCreateNothing(t *testing.T) {
	db := dbtest.OpenDB(t, nil)
	if _, err := db.Put("/data/have/x", goatdb.Fields{"n": 1}); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	first := func(seq func(func(goatdb.Item, error) bool)) error {
		for _, err := range seq {
			return err
		}
		return errors.New("the sequence yielded nothing")
	}
	reads := []struct {
		name string
		read func(rp string) error
	}{
		{"Get", func(rp string) error { _, err := db.Get(rp + "/x"); return err }},
		{"GetAt", func(rp string) error { _, err := db.GetAt(rp+"/x", commit.ID{1}); return err }},
		{"GetAsOf", func(rp string) error { _, err := db.GetAsOf(rp+"/x", time.Now()); return err }},
		{"History", func(rp string) error { _, err := db.History(rp + "/x"); return err }},
		{"Keys", func(rp string) error { _, err := db.Keys(rp, true); return err }},
		{"Count", func(rp string) error { _, err := db.Count(rp); return err }},
		{"All", func(rp string) error { return first(db.All(rp)) }},
		{"Watch", func(rp string) error {
			ctx, cancel := context.WithTimeout(ctx, time.Second) // a watch that waits fails the test
			defer cancel()
			return first(db.Watch(ctx, rp+"/x"))
		}},
		{"LookupRepo", func(rp string) error { _, err := db.LookupRepo(rp); return err }},
		{"OpenQuery", func(rp string) error {
			q, err := db.OpenQuery(goatdb.QuerySpec{Repo: rp})
			if err == nil {
				q.Close()
			}
			return err
		}},
		{"Query", func(rp string) error {
			q, err := db.Query(ctx, goatdb.QuerySpec{Repo: rp, Name: "named"})
			if err == nil {
				q.Close()
			}
			return err
		}},
	}
	for _, rd := range reads {
		t.Run(rd.name, func(t *testing.T) {
			before := dirFiles(t, db.Dir())
			for _, rp := range []string{"/data/none", "/other/none"} {
				if err := rd.read(rp); !errors.Is(err, goatdb.ErrNotFound) {
					t.Errorf("%s of %s: %v, want ErrNotFound", rd.name, rp, err)
				}
			}
			if after := dirFiles(t, db.Dir()); !maps.Equal(before, after) {
				t.Errorf("%s of a missing repository changed the directory:\nbefore %v\nafter  %v", rd.name, before, after)
			}
			if repos, _ := db.Repos(); len(repos) != 1 {
				t.Errorf("repositories after %s: %v", rd.name, repos)
			}
		})
	}
}

// TestWatchItemNotYetWritten watches an item of an existing repository
// before it exists: the write that creates it is yielded.
func TestWatchItemNotYetWritten(t *testing.T) {
	db := dbtest.OpenDB(t, nil)
	if _, err := db.Put("/data/w/other", goatdb.Fields{"n": 0}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	got := make(chan any, 1)
	go func() {
		for it, err := range db.Watch(ctx, "/data/w/later") {
			if err != nil {
				got <- err
				return
			}
			got <- it.Get("n")
			return
		}
	}()
	time.Sleep(20 * time.Millisecond)
	if _, err := db.Put("/data/w/later", goatdb.Fields{"n": 7}); err != nil {
		t.Fatal(err)
	}
	if v := <-got; v != int64(7) {
		t.Fatalf("watch yielded %v, want 7", v)
	}
}

// TestReadOnlyOpenCreatesNothing opens missing, empty and used directories
// read-only: nothing is ever created, a missing directory is ErrNotFound,
// and the shared lock keeps writers out only while no writer is running.
func TestReadOnlyOpenCreatesNothing(t *testing.T) {
	ro := &goatdb.Options{ReadOnly: true}
	t.Run("missing directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "missing")
		_, err := goatdb.Open(dir, ro)
		if !errors.Is(err, goatdb.ErrNotFound) || !strings.Contains(err.Error(), dir) {
			t.Fatalf("read-only open of a missing directory: %v, want ErrNotFound naming it", err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the directory was created: %v", err)
		}
	})
	t.Run("empty directory", func(t *testing.T) {
		dir := t.TempDir()
		db, err := goatdb.Open(dir, ro)
		if err != nil {
			t.Fatal(err)
		}
		if !db.Session().IsZero() {
			t.Errorf("session %s without a key file", db.Session())
		}
		if repos, err := db.Repos(); err != nil || len(repos) != 0 {
			t.Errorf("repos %v, %v", repos, err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if files := dirFiles(t, dir); len(files) != 1 {
			t.Fatalf("a read-only open created files: %v", files)
		}
	})
	t.Run("offline directory", func(t *testing.T) {
		dir := t.TempDir()
		w, err := goatdb.Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Put("/data/o/x", goatdb.Fields{"n": 1}); err != nil {
			t.Fatal(err)
		}
		session := w.Session()
		w.Close()
		before := dirFiles(t, dir)
		db, err := goatdb.Open(dir, ro)
		if err != nil {
			t.Fatal(err)
		}
		if db.Session() != session {
			t.Errorf("session %s, want the key file's %s", db.Session(), session)
		}
		if it, err := db.Get("/data/o/x"); err != nil || it.Get("n") != int64(1) {
			t.Errorf("get: %v %v", it.Fields(), err)
		}
		// The shared lock keeps a writer from starting (and repairing
		// logs) during the inspection, but not another reader.
		if w, err := goatdb.Open(dir, nil); !errors.Is(err, goatdb.ErrLocked) {
			if err == nil {
				w.Close()
			}
			t.Errorf("writer open during a read-only open: %v, want ErrLocked", err)
		}
		db2, err := goatdb.Open(dir, ro)
		if err != nil {
			t.Fatalf("second read-only open: %v", err)
		}
		db2.Close()
		db.Close()
		if after := dirFiles(t, dir); !maps.Equal(before, after) {
			t.Errorf("read-only opens changed the directory:\nbefore %v\nafter  %v", before, after)
		}
		w, err = goatdb.Open(dir, nil)
		if err != nil {
			t.Fatalf("writer open after the read-only close: %v", err)
		}
		w.Close()
	})
}

// TestReadOnlyBesideWriter opens a directory read-only while a writer has
// it open: reads see what the writer had written, and the writer goes on.
func TestReadOnlyBesideWriter(t *testing.T) {
	dir := t.TempDir()
	w := dbtest.OpenDBIn(t, dir, nil)
	if _, err := w.Put("/data/b/x", goatdb.Fields{"n": 1}); err != nil {
		t.Fatal(err)
	}
	ro := dbtest.OpenDBIn(t, dir, &goatdb.Options{ReadOnly: true})
	if it, err := ro.Get("/data/b/x"); err != nil || it.Get("n") != int64(1) {
		t.Fatalf("read-only get: %v %v", it.Fields(), err)
	}
	if _, err := w.Put("/data/b/y", goatdb.Fields{"n": 2}); err != nil {
		t.Fatalf("writer after a read-only open: %v", err)
	}
	if ro.Session() != w.Session() {
		t.Errorf("read-only session %s, writer's %s", ro.Session(), w.Session())
	}
}

// TestReadOnlyWritesFail tries every write on a read-only database: each
// fails with ErrReadOnly and nothing is written.
func TestReadOnlyWritesFail(t *testing.T) {
	dir := t.TempDir()
	w, err := goatdb.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Put("/data/r/x", goatdb.Fields{"n": 1}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	db := dbtest.OpenDBIn(t, dir, &goatdb.Options{ReadOnly: true})
	q, err := db.OpenQuery(goatdb.QuerySpec{Repo: "/data/r", Name: "q"})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	before := dirFiles(t, dir)
	writes := []struct {
		name  string
		write func() error
	}{
		{"Put", func() error { _, err := db.Put("/data/r/x", goatdb.Fields{"n": 2}); return err }},
		{"Put new repository", func() error { _, err := db.Put("/data/new/x", goatdb.Fields{"n": 2}); return err }},
		{"Create", func() error { _, err := db.Create("/data/r", goatdb.Fields{"n": 2}); return err }},
		{"Delete", func() error { return db.Delete("/data/r/x") }},
		{"Batch", func() error {
			b := db.Batch()
			b.Put("/data/r/x", goatdb.Fields{"n": 3})
			b.Put("/data/r2/y", goatdb.Fields{"n": 3})
			_, err := b.Commit()
			return err
		}},
		{"Repo", func() error { _, err := db.Repo("/data/new"); return err }},
		{"Sync", func() error { _, err := db.Sync(t.Context(), "http://127.0.0.1:1"); return err }},
		{"StartSync", func() error {
			s, err := db.StartSync([]string{"http://127.0.0.1:1"}, nil)
			if s != nil {
				s.Stop()
			}
			return err
		}},
		{"Query.Save", q.Save},
	}
	for _, wr := range writes {
		if err := wr.write(); !errors.Is(err, goatdb.ErrReadOnly) {
			t.Errorf("%s on a read-only database: %v, want ErrReadOnly", wr.name, err)
		}
	}
	if it, err := db.Get("/data/r/x"); err != nil || it.Get("n") != int64(1) {
		t.Errorf("after the refused writes: %v %v", it.Fields(), err)
	}
	if after := dirFiles(t, dir); !maps.Equal(before, after) {
		t.Errorf("refused writes changed the directory:\nbefore %v\nafter  %v", before, after)
	}
}
