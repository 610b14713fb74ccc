package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/syncproto"
)

// The states /healthz and /readyz name besides goatdb's health statuses.
const (
	statusShuttingDown = "shutting_down"
	statusStarting     = "starting"
)

// healthJSON is /healthz's answer.
type healthJSON struct {
	// Status is goatdb.DB.Health's status, or "shutting_down".
	Status string `json:"status"`
	// Problem says why the storage state is unknown, if it is.
	Problem string `json:"problem,omitempty"`
	// Repos are the repositories whose status is not ok (omitted when
	// the answer may not name repositories).
	Repos []repoHealthJSON `json:"repos,omitzero"`
	// Failures are the storage failures answered to requests lately.
	Failures failuresJSON `json:"storage_failures"`
}

type repoHealthJSON struct {
	Repo        string `json:"repo"`
	Status      string `json:"status"`
	Problem     string `json:"problem,omitempty"`
	Quarantined int    `json:"quarantined"`
}

// handleHealth answers /healthz on the public handler: with
// authentication, without naming repositories (a client may not know of
// them).
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	s.health(w, s.accounts == nil)
}

// health answers /healthz (see the package doc): 503 while shutting down
// or while writes to some repository fail, 200 otherwise. Nothing in it
// names a server path. detail lists repositories by path.
func (s *Server) health(w http.ResponseWriter, detail bool) {
	out := healthJSON{Failures: s.failures.report(time.Now(), detail)}
	code := http.StatusOK
	if s.shuttingDown() {
		out.Status, code = statusShuttingDown, http.StatusServiceUnavailable
		writeJSONStatus(w, code, out)
		return
	}
	h, err := s.db.Health()
	if err != nil {
		s.log.Error("health: list repositories", "err", err)
		out.Status, out.Problem = goatdb.StatusDegraded, "cannot list the repositories of the data directory"
		writeJSONStatus(w, http.StatusServiceUnavailable, out)
		return
	}
	out.Status = h.Status
	if h.Status == goatdb.StatusDegraded {
		code = http.StatusServiceUnavailable
	}
	if detail {
		out.Repos = make([]repoHealthJSON, 0, len(h.Repos))
		for _, rh := range h.Repos {
			out.Repos = append(out.Repos, repoHealthOf(rh))
		}
	}
	writeJSONStatus(w, code, out)
}

func repoHealthOf(rh goatdb.RepoHealth) repoHealthJSON {
	out := repoHealthJSON{Repo: rh.Path, Status: rh.Status, Quarantined: len(rh.Quarantined)}
	switch {
	case rh.Err != nil:
		out.Problem = storageProblem(rh.Err, "cannot be opened; 'goatdb verify' on the server lists the problems")
	case out.Quarantined > 0:
		out.Problem = fmt.Sprintf("%d damaged range(s) of the log quarantined: commits in them are lost here until a peer that holds them syncs", out.Quarantined)
	}
	return out
}

// storageProblem describes a storage error without file system paths, or
// says fallback when it is none of the known kinds.
func storageProblem(err error, fallback string) string {
	switch {
	case errors.Is(err, goatdb.ErrCorrupt):
		return "damaged log; 'goatdb verify' on the server lists the problems"
	case errors.Is(err, repo.ErrLogFailed):
		return "writes are failing (disk full or failing); retried until they succeed"
	case errors.Is(err, repo.ErrClosed), errors.Is(err, goatdb.ErrClosed):
		return "the database is closed (shutting down)"
	}
	return fallback
}

// transient reports whether a storage error passes by itself: writes
// that fail are retried until the disk takes them, and a closed database
// is a server restarting. Clients are asked to come back (503).
func transient(err error) bool {
	return errors.Is(err, repo.ErrLogFailed) || errors.Is(err, repo.ErrClosed) || errors.Is(err, goatdb.ErrClosed)
}

// storageRetryAfter is the Retry-After of a 503 for a transient storage
// failure, in seconds.
const storageRetryAfter = "5"

// storageError answers a request whose handling hit a storage failure
// (in repository path, if known): 503 with Retry-After when it is
// transient, 500 otherwise, with one line that cites the request's id and
// never the error, which names files. The error is logged at Error level
// with the id, and counted in /healthz.
func (s *Server) storageError(w http.ResponseWriter, r *http.Request, path string, err error) {
	id := requestIDOf(r.Context())
	problem := storageProblem(err, "storage error")
	s.log.Error("storage failure", "request_id", id, "repo", path, "err", err)
	s.failures.add(time.Now(), storageFailure{repo: path, problem: problem, requestID: id})
	s.metrics.storageErrors.Inc()
	code := http.StatusInternalServerError
	if transient(err) {
		code = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", storageRetryAfter)
	}
	httpError(w, code, "storage error on the server (request id %s): %s; nothing of this request was acknowledged, retry later (the server's log has the details)", id, problem)
}

// requestInfo is what the Responder needs to report the failures of a
// sync request: its id, and where to count them.
func (s *Server) requestInfo(r *http.Request) syncproto.RequestInfo {
	id := requestIDOf(r.Context())
	return syncproto.RequestInfo{ID: id, Failed: func(path string, err error) {
		s.metrics.storageErrors.Inc()
		s.failures.add(time.Now(), storageFailure{repo: path,
			problem: storageProblem(err, "repository unavailable (cannot be opened or read)"), requestID: id})
	}}
}

// handleLive answers /livez: 200 as long as the process serves HTTP. It
// never touches storage.
func (s *Server) handleLive(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintln(w, "ok")
}

// readyJSON is /readyz's answer.
type readyJSON struct {
	Ready  bool   `json:"ready"`
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// handleReady answers /readyz: 200 while the server should receive
// traffic; 503 with the reason before Serve starts, once it begins to
// shut down, and while it cannot take writes (goatdb.StatusDegraded, or
// the repositories cannot be listed). A repository with quarantined
// damage or that cannot be opened does not make the server unready: the
// others serve.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	out := readyJSON{Status: statusStarting, Reason: "the server has not started serving yet"}
	switch {
	case s.shuttingDown():
		out.Status, out.Reason = statusShuttingDown, "the server is shutting down"
	case !s.started():
	default:
		h, err := s.db.Health()
		switch {
		case err != nil:
			s.log.Error("ready: list repositories", "err", err)
			out.Status, out.Reason = goatdb.StatusDegraded, "cannot list the repositories of the data directory"
		case h.Status == goatdb.StatusDegraded:
			out.Status, out.Reason = h.Status, "writes to some repository are failing (disk full or failing); see /healthz"
		default:
			out = readyJSON{Ready: true, Status: h.Status}
		}
	}
	code := http.StatusOK
	if !out.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSONStatus(w, code, out)
}

// shuttingDown reports whether Serve has begun to shut down.
func (s *Server) shuttingDown() bool {
	select {
	case <-s.draining:
		return true
	default:
		return false
	}
}

// started reports whether Serve has been called.
func (s *Server) started() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.serving
}

// OpsHandler serves the operator's routes: GET /metrics, /healthz (with
// every repository named), /livez and /readyz. Serve it on an address
// only operators reach, on its own listener (goatdb serve
// --metrics-addr): it answers even while the public listener is at
// Options.MaxConnections, and it is neither rate limited nor
// authenticated.
func (s *Server) OpsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", http.HandlerFunc(s.handleMetrics))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { s.health(w, true) })
	mux.HandleFunc("GET /livez", s.handleLive)
	mux.HandleFunc("GET /readyz", s.handleReady)
	return mux
}

// writeJSONStatus writes v as a JSON answer with status code.
func writeJSONStatus(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "encoding the answer failed")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// The storage failures answered to requests are counted in failureSlots
// slots of failureSlot each: /healthz reports those of the last minute
// and the last 15 minutes, and the last one, in constant memory.
const (
	failureSlot  = 10 * time.Second
	failureSlots = 90
)

// storageFailure is one storage failure answered to a request, as
// /healthz shows it: no paths but the repository's.
type storageFailure struct {
	at        time.Time
	repo      string // "" if none in particular
	problem   string // path-free (storageProblem)
	requestID string
}

// storageFailures counts the storage failures answered to requests.
type storageFailures struct {
	mu    sync.Mutex // guards the fields below
	slots [failureSlots]struct {
		at int64 // the slot's start, in failureSlots since the epoch
		n  int
	}
	total uint64
	last  storageFailure
}

func (f *storageFailures) add(now time.Time, sf storageFailure) {
	sf.at = now
	i := slotOf(now)
	f.mu.Lock()
	defer f.mu.Unlock()
	sl := &f.slots[i%failureSlots]
	if sl.at != i {
		sl.at, sl.n = i, 0
	}
	sl.n++
	f.total++
	f.last = sf
}

func slotOf(t time.Time) int64 { return max(0, t.UnixNano()/int64(failureSlot)) }

// count returns the failures of the d before now, to a slot's precision
// (d at most failureSlots slots).
func (f *storageFailures) count(now time.Time, d time.Duration) int {
	cur := slotOf(now)
	from := cur - int64(min(d/failureSlot, failureSlots)) + 1
	n := 0
	for _, sl := range f.slots {
		if sl.at >= from && sl.at <= cur {
			n += sl.n
		}
	}
	return n
}

// failuresJSON is the storage_failures of /healthz.
type failuresJSON struct {
	// LastMinute and Last15Minutes count the failures answered lately
	// (to 10 seconds), Total since the server started.
	LastMinute    int          `json:"last_minute"`
	Last15Minutes int          `json:"last_15_minutes"`
	Total         uint64       `json:"total"`
	Last          *failureJSON `json:"last,omitempty"`
}

type failureJSON struct {
	Time      string `json:"time"`
	Repo      string `json:"repo,omitempty"`
	Problem   string `json:"problem"`
	RequestID string `json:"request_id,omitempty"`
}

// report returns the failures for /healthz; without detail, the last one
// names no repository.
func (f *storageFailures) report(now time.Time, detail bool) failuresJSON {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := failuresJSON{LastMinute: f.count(now, time.Minute), Last15Minutes: f.count(now, 15*time.Minute), Total: f.total}
	if f.total > 0 {
		out.Last = &failureJSON{Time: f.last.at.UTC().Format(time.RFC3339), Problem: f.last.problem, RequestID: f.last.requestID}
		if detail {
			out.Last.Repo = f.last.repo
		}
	}
	return out
}
