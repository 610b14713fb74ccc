package dbtest_test

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/vfs"
)

// recorder is a testing.TB that records failures and cleanups instead of
// acting on them, so a test can see what the harness reports.
type recorder struct {
	testing.TB
	mu       sync.Mutex
	errs     []string
	stopped  bool
	cleanups []func()
}

func (r *recorder) Helper() {}

func (r *recorder) Error(args ...any) { r.record(fmt.Sprint(args...)) }

func (r *recorder) Errorf(format string, args ...any) { r.record(fmt.Sprintf(format, args...)) }

func (r *recorder) Fatal(args ...any) { r.record(fmt.Sprint(args...)); r.FailNow() }

func (r *recorder) Fatalf(format string, args ...any) {
	r.record(fmt.Sprintf(format, args...))
	r.FailNow()
}

func (r *recorder) FailNow() {
	r.mu.Lock()
	r.stopped = true
	r.mu.Unlock()
	panic(errStopped)
}

func (r *recorder) Cleanup(fn func()) { r.cleanups = append(r.cleanups, fn) }

func (r *recorder) record(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, s)
}

var errStopped = errors.New("FailNow")

// run calls fn with a new recorder, then its cleanups in reverse order, as
// the testing package would.
func run(t *testing.T, fn func(tb testing.TB)) *recorder {
	t.Helper()
	r := &recorder{TB: t}
	func() {
		defer func() {
			if p := recover(); p != nil && p != errStopped {
				panic(p)
			}
		}()
		fn(r)
	}()
	for _, c := range slices.Backward(r.cleanups) {
		c()
	}
	return r
}

func set(key, field string, v item.Value) repo.Update {
	return repo.Update{Key: key, Fn: func(c repo.Current) (item.Item, commit.Schema, error) {
		return c.Value.With(field, v), c.Schema, nil
	}}
}

func key(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// flip flips the byte in the middle of the file at path, in its records.
func flip(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSeeds(t *testing.T) {
	got := dbtest.Seeds(3, 10)
	switch {
	case dbtest.Seed() != 0:
		if !slices.Equal(got, []uint64{dbtest.Seed()}) {
			t.Fatalf("Seeds under -seed %d: %v", dbtest.Seed(), got)
		}
	case dbtest.Long():
		if len(got) != 10 || got[0] != 1 || got[9] != 10 {
			t.Fatalf("Seeds under -long: %v", got)
		}
	default:
		if !slices.Equal(got, []uint64{1, 2, 3}) {
			t.Fatalf("Seeds: %v", got)
		}
	}
}

func TestReplay(t *testing.T) {
	want := "go test ./internal/dbtest -run '^TestReplay$' -seed 7"
	if got := dbtest.Replay(t, 7); got != want {
		t.Errorf("Replay: %q, want %q", got, want)
	}
	t.Run("sub", func(t *testing.T) {
		if got := dbtest.Replay(t, 7); got != want {
			t.Errorf("Replay in a subtest: %q, want %q", got, want)
		}
	})
	if s := dbtest.ClockSeed(t); dbtest.Seed() != 0 && s != dbtest.Seed() {
		t.Errorf("ClockSeed %d under -seed %d", s, dbtest.Seed())
	}
}

func TestOpenRepo(t *testing.T) {
	k := key(t)
	var r *repo.Repo
	t.Run("clean", func(t *testing.T) {
		rec := run(t, func(tb testing.TB) {
			r = dbtest.OpenRepo(tb, "a.log", &repo.Options{Key: k})
			if _, err := r.Write(set("x", "n", item.Int(1))); err != nil {
				t.Fatal(err)
			}
		})
		if len(rec.errs) > 0 || !r.Closed() {
			t.Fatalf("errors %q, closed %v", rec.errs, r.Closed())
		}
		rec = run(t, func(tb testing.TB) {
			r2 := dbtest.OpenRepo(tb, r.Path(), &repo.Options{Key: k})
			if v, _, ok := r2.Get("x"); !ok || v.Len() != 1 {
				t.Fatalf("reopened %s: %v %v", r.Path(), v, ok)
			}
		})
		if len(rec.errs) > 0 {
			t.Fatalf("errors %q", rec.errs)
		}
	})
	t.Run("damaged", func(t *testing.T) {
		rec := run(t, func(tb testing.TB) {
			r = dbtest.OpenRepo(tb, "b.log", &repo.Options{Key: k})
			if _, err := r.Write(set("x", "n", item.Int(1))); err != nil {
				t.Fatal(err)
			}
			flip(t, r.Path())
		})
		if len(rec.errs) == 0 || !strings.Contains(rec.errs[0], "check "+r.Path()) || !r.Closed() {
			t.Fatalf("errors %q, closed %v; want the damage reported and the log closed", rec.errs, r.Closed())
		}
	})
	t.Run("unchecked", func(t *testing.T) {
		rec := run(t, func(tb testing.TB) {
			r = dbtest.OpenRepoUnchecked(tb, "b.log", &repo.Options{Key: k})
			if _, err := r.Write(set("x", "n", item.Int(1))); err != nil {
				t.Fatal(err)
			}
			flip(t, r.Path())
		})
		if len(rec.errs) > 0 || !r.Closed() {
			t.Fatalf("errors %q, closed %v; want no check and the log closed", rec.errs, r.Closed())
		}
	})
	t.Run("closed by the test", func(t *testing.T) {
		rec := run(t, func(tb testing.TB) {
			r = dbtest.OpenRepo(tb, "c.log", &repo.Options{Key: k})
			if _, err := r.Write(set("x", "n", item.Int(1))); err != nil {
				t.Fatal(err)
			}
			r.Close()
			flip(t, r.Path())
		})
		if len(rec.errs) > 0 {
			t.Fatalf("errors %q", rec.errs)
		}
	})
	t.Run("own filesystem", func(t *testing.T) {
		fsys := vfs.NewMem()
		rec := run(t, func(tb testing.TB) {
			r = dbtest.OpenRepo(tb, "/d.log", &repo.Options{FS: fsys, Key: k})
		})
		if len(rec.errs) > 0 || r.Path() != "/d.log" {
			t.Fatalf("errors %q, path %s", rec.errs, r.Path())
		}
		if _, err := fsys.Stat("/d.log"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRequireClean(t *testing.T) {
	r := dbtest.OpenRepo(t, "a.log", &repo.Options{Key: key(t)})
	if _, err := r.Write(set("x", "n", item.Int(1))); err != nil {
		t.Fatal(err)
	}
	if rec := run(t, func(tb testing.TB) { dbtest.RequireClean(tb, r) }); len(rec.errs) > 0 || rec.stopped {
		t.Fatalf("clean log: errors %q, stopped %v", rec.errs, rec.stopped)
	}
	flip(t, r.Path())
	rec := run(t, func(tb testing.TB) { dbtest.RequireClean(tb, r) })
	if len(rec.errs) == 0 || !rec.stopped {
		t.Fatalf("damaged log: errors %q, stopped %v; want the damage reported and the test stopped", rec.errs, rec.stopped)
	}
	r.Close()
}

func TestOpenDB(t *testing.T) {
	put := func(t *testing.T, db *goatdb.DB, paths ...string) {
		t.Helper()
		for _, p := range paths {
			if _, err := db.Put(p, goatdb.Fields{"n": 1}); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Run("clean", func(t *testing.T) {
		var db *goatdb.DB
		rec := run(t, func(tb testing.TB) {
			db = dbtest.OpenDB(tb, nil)
			put(t, db, "/data/a/x", "/data/b/x")
		})
		if len(rec.errs) > 0 {
			t.Fatalf("errors %q", rec.errs)
		}
		if _, err := db.Get("/data/a/x"); !errors.Is(err, goatdb.ErrClosed) {
			t.Fatalf("get after cleanup: %v, want the database closed", err)
		}
	})
	t.Run("damaged", func(t *testing.T) {
		dir := t.TempDir()
		w, err := goatdb.Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		put(t, w, "/data/a/x", "/data/b/x")
		w.Close()
		// A repository this session does not open is checked too.
		flip(t, filepath.Join(dir, "data", "b.log"))
		rec := run(t, func(tb testing.TB) {
			db := dbtest.OpenDBIn(tb, dir, &goatdb.Options{ReadOnly: true})
			if _, err := db.Get("/data/a/x"); err != nil {
				t.Fatal(err)
			}
		})
		if len(rec.errs) == 0 || !strings.Contains(strings.Join(rec.errs, "\n"), "check /data/b") {
			t.Fatalf("errors %q, want /data/b's damage", rec.errs)
		}
		rec = run(t, func(tb testing.TB) {
			db := dbtest.OpenDBIn(tb, dir, &goatdb.Options{ReadOnly: true})
			dbtest.CheckDB(tb, db)
		})
		if len(rec.errs) < 2 {
			t.Fatalf("errors %q, want /data/b's damage from CheckDB and at cleanup", rec.errs)
		}
		var db *goatdb.DB
		rec = run(t, func(tb testing.TB) {
			db = dbtest.OpenDBUnchecked(tb, dir, &goatdb.Options{ReadOnly: true})
		})
		if _, err := db.Get("/data/a/x"); len(rec.errs) > 0 || !errors.Is(err, goatdb.ErrClosed) {
			t.Fatalf("unchecked: errors %q, get after cleanup: %v; want no check and the database closed", rec.errs, err)
		}
	})
	t.Run("closed by the test", func(t *testing.T) {
		rec := run(t, func(tb testing.TB) {
			db := dbtest.OpenDB(tb, nil)
			put(t, db, "/data/a/x")
			db.Close()
		})
		if len(rec.errs) > 0 {
			t.Fatalf("errors %q", rec.errs)
		}
	})
}
