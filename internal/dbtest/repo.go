package dbtest

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/goatdb/goatdb/repo"
)

// OpenRepo opens (or creates) the log at path with opts (nil means the
// defaults) and, when the test ends, checks it as RequireClean does, each
// problem failing the test, and closes it. Without opts.FS, a relative path
// is taken inside a new t.TempDir() and an absolute one as given (such as
// the Path of a log the test closed, to open it again); with opts.FS, path
// is a path in that filesystem. A log the test closes itself is not
// checked at the end.
func OpenRepo(t testing.TB, path string, opts *repo.Options) *repo.Repo {
	t.Helper()
	return openRepo(t, path, opts, true)
}

// OpenRepoUnchecked is OpenRepo without the check when the test ends, for
// a log the test leaves inconsistent on purpose (one holding a forged
// commit, say); the caller says why.
func OpenRepoUnchecked(t testing.TB, path string, opts *repo.Options) *repo.Repo {
	t.Helper()
	return openRepo(t, path, opts, false)
}

func openRepo(t testing.TB, path string, opts *repo.Options, check bool) *repo.Repo {
	t.Helper()
	if opts == nil {
		opts = &repo.Options{}
	}
	if opts.FS == nil && !filepath.IsAbs(path) {
		path = filepath.Join(t.TempDir(), path)
	}
	r, err := repo.Open(path, opts)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() {
		if r.Closed() {
			return
		}
		if check {
			for _, p := range r.Check() {
				t.Errorf("check %s: %s", path, p)
			}
		}
		if err := r.Close(); err != nil && !errors.Is(err, repo.ErrClosed) {
			t.Errorf("close %s: %v", path, err)
		}
	})
	return r
}

// RequireClean runs r's consistency check (repo.Repo.Check: the log re-read
// and compared with memory, every commit re-hashed and its signature
// verified, every delta and merge recomputed, every item's leaves, head
// and value recomputed) and stops the test if it finds any problem, after
// reporting each.
func RequireClean(t testing.TB, r *repo.Repo) {
	t.Helper()
	ps := r.Check()
	for _, p := range ps {
		t.Errorf("check %s: %s", r.Path(), p)
	}
	if len(ps) > 0 {
		t.FailNow()
	}
}
