package server

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/repo"
)

// handleHealth answers 200 "ok" when all is well; 200 "damaged" with a
// line per repository when some hold quarantined damage or cannot be
// opened (the rest serve); 503 "degraded" while writes to some repository
// fail, and 503 while shutting down. Storage errors name repositories,
// never server paths.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	select {
	case <-s.draining:
		httpError(w, http.StatusServiceUnavailable, "shutting down")
		return
	default:
	}
	h, err := s.db.Health()
	if err != nil {
		s.log.Error("health", "err", err)
		httpError(w, http.StatusServiceUnavailable, "cannot list repositories")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if h.Status == goatdb.StatusDegraded {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	fmt.Fprintln(w, h.Status)
	for _, rh := range h.Repos {
		line := rh.Path + ": " + rh.Status
		if len(rh.Quarantined) > 0 {
			line += fmt.Sprintf(": %d quarantined damaged range(s)", len(rh.Quarantined))
		}
		if rh.Err != nil {
			line += ": " + storageProblem(rh.Err)
		}
		fmt.Fprintln(w, line)
	}
}

// storageProblem describes a storage error without file system paths.
func storageProblem(err error) string {
	switch {
	case errors.Is(err, goatdb.ErrCorrupt):
		return "damaged log; 'goatdb verify' on the server lists the problems"
	case errors.Is(err, repo.ErrLogFailed):
		return "writes are failing (disk full or failing); retried until they succeed"
	}
	return "cannot be opened"
}
