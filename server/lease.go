package server

import (
	"context"
	"errors"
	"net/http"
	"sync"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/repo"
)

// A request holds the repository it works on so that the database does
// not close it for idleness under the request (goatdb.Options.MaxOpenRepos):
// holdRepos gives every request a holder, Server.repo takes a lease
// (goatdb.DB.Acquire) into it, and the lease is released when the request
// ends. The Responder handles a request's repositories one after another
// and keeps nothing of one (commits are immutable values) once it moves
// to the next, so a request holds only the repository it is on: taking a
// lease releases the one before, and a request naming thousands of
// repositories never holds more than one open.

// heldKey is the context key of a request's *held.
type heldKey struct{}

// held is the lease a request holds.
type held struct {
	mu      sync.Mutex // guards release
	release func()
}

// set holds release instead of the lease held before, which it releases.
func (h *held) set(release func()) {
	h.mu.Lock()
	prev := h.release
	h.release = release
	h.mu.Unlock()
	if prev != nil {
		prev()
	}
}

// holdRepos gives each request a holder, and releases what it holds once
// the request is answered.
func (s *Server) holdRepos(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := &held{}
		defer h.set(nil)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), heldKey{}, h)))
	})
}

// holdRepo returns the repository at path (created if create), held for
// the request whose context is ctx; outside a request it holds nothing.
func (s *Server) holdRepo(ctx context.Context, path string, create bool) (*repo.Repo, error) {
	acquire := s.db.AcquireExisting
	if create {
		acquire = s.db.Acquire
	}
	r, release, err := acquire(path)
	if err != nil {
		if !errors.Is(err, goatdb.ErrNotFound) && !errors.Is(err, goatdb.ErrClosed) {
			if _, logged := s.unavailable.LoadOrStore(path, true); !logged {
				s.log.Error("repository unavailable: it is not served until repaired; 'goatdb verify' lists its problems", "repo", path, "err", err)
			}
		}
		return nil, err
	}
	if h, ok := ctx.Value(heldKey{}).(*held); ok {
		h.set(release)
	} else {
		release()
	}
	return r, nil
}
