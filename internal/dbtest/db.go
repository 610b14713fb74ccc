package dbtest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/goatdb/goatdb"
)

// OpenDB opens a database with opts (nil means the defaults) in a new
// t.TempDir() and, when the test ends, checks every repository in it as
// CheckDB does and closes it.
func OpenDB(t testing.TB, opts *goatdb.Options) *goatdb.DB {
	t.Helper()
	return OpenDBIn(t, t.TempDir(), opts)
}

// OpenDBIn is OpenDB in dir, for a test that reopens a directory or opens
// one it prepared. A database the test closes itself is not checked at the
// end.
func OpenDBIn(t testing.TB, dir string, opts *goatdb.Options) *goatdb.DB {
	t.Helper()
	return openDB(t, dir, opts, true)
}

// OpenDBUnchecked is OpenDBIn without the check when the test ends, for a
// database the test leaves inconsistent on purpose (damage it made, a log
// that cannot be opened); the caller says why.
func OpenDBUnchecked(t testing.TB, dir string, opts *goatdb.Options) *goatdb.DB {
	t.Helper()
	return openDB(t, dir, opts, false)
}

func openDB(t testing.TB, dir string, opts *goatdb.Options, check bool) *goatdb.DB {
	t.Helper()
	db, err := goatdb.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if check {
			for _, p := range problems(db) {
				if !errors.Is(p, goatdb.ErrClosed) {
					t.Error(p)
				}
			}
		}
		if err := db.Close(); err != nil && !errors.Is(err, goatdb.ErrClosed) {
			t.Errorf("close %s: %v", dir, err)
		}
	})
	return db
}

// CheckDB runs the consistency check of every repository in db, those the
// test did not open too (repo.Repo.Check: each log re-read and compared
// with memory, every commit re-hashed and its signature verified, every
// delta and merge recomputed, every item's leaves, head and value
// recomputed), and fails the test on each problem.
func CheckDB(t testing.TB, db *goatdb.DB) {
	t.Helper()
	for _, p := range problems(db) {
		t.Error(p)
	}
}

// problems checks every repository of db: a repository that does not
// open is one problem, and on a closed db that problem wraps
// goatdb.ErrClosed.
func problems(db *goatdb.DB) []error {
	repos, err := db.Repos()
	if err != nil {
		return []error{fmt.Errorf("check %s: %w", db.Dir(), err)}
	}
	var out []error
	for _, rp := range repos {
		r, release, err := db.Acquire(rp) // held: a bounded db may close idle ones
		if err != nil {
			out = append(out, fmt.Errorf("check %s: %w", rp, err))
			continue
		}
		for _, p := range r.Check() {
			out = append(out, fmt.Errorf("check %s: %s", rp, p))
		}
		release()
	}
	return out
}
