package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/syncproto"
)

type apiChangeEvent struct {
	Repo    string         `json:"repo"`
	Path    string         `json:"path"`
	Key     string         `json:"key"`
	Head    string         `json:"head"`
	Deleted bool           `json:"deleted"`
	Fields  map[string]any `json:"fields,omitempty"`
}

// handleChanges streams the changes of one repository's items as
// Server-Sent Events (GET /v1/changes?repo=/t/r&since=CURSOR): a "change"
// event per item changed after the cursor, with the item as it is when
// sent (only the items the principal may read), "ready" once the backlog
// is sent, then live changes, each batch followed by a "cursor" event,
// and keep-alive comments. The cursor (the event id of "ready" and
// "cursor") is a position in the repository's log; a client resumes from
// the last one it saw (since=, or Last-Event-ID). Without a cursor the
// stream starts at the present. A cursor of another epoch (the log was
// compacted since) replays every live item once. Delivery is at least
// once: a client that drops in a batch gets it again.
func (s *Server) handleChanges(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rp := q.Get("repo")
	if rp == "" {
		apiError(w, http.StatusBadRequest, "name the repository: /v1/changes?repo=/type/repo")
		return
	}
	if s.redirectUnowned(w, r, rp) {
		return
	}
	since := q.Get("since")
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		since = id
	}
	rr, v, err := s.readable(r.Context(), rp)
	if err != nil {
		s.readFailed(w, r, rp, err)
		return
	}
	var epoch, seq uint64
	if since != "" {
		var ok bool
		if epoch, seq, ok = parseCursor(since); !ok {
			apiError(w, http.StatusBadRequest, "since=%s is not a cursor of this API (the id of a change event, or a repository's cursor)", since)
			return
		}
		if epoch != rr.Epoch() {
			seq = 0 // compacted since: replay every item once
		}
	} else {
		_, seq = rr.CommitsSince(^uint64(0))
	}
	release, err := openStream(s.accountsOf(r))
	if err != nil {
		w.Header().Set("Retry-After", "60")
		apiError(w, http.StatusTooManyRequests, "%v; close another event stream first", err)
		return
	}
	defer release()
	if n := s.metrics.streams.Add(1); s.opts.MaxEventStreams > 0 && n > int64(s.opts.MaxEventStreams) {
		s.metrics.streams.Add(-1)
		w.Header().Set("Retry-After", "60")
		apiError(w, http.StatusServiceUnavailable, "the server has %d event streams open, its limit; retry later", s.opts.MaxEventStreams)
		return
	}
	defer s.metrics.streams.Add(-1)

	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriter(w)
	flush := func() bool { return bw.Flush() == nil && rc.Flush() == nil }

	keepAlive := time.NewTicker(s.opts.KeepAlive)
	defer keepAlive.Stop()
	var revoked <-chan struct{}
	if s.accounts != nil {
		revoked = s.accounts.Revoked()
	}
	ready := false
	for {
		changed := rr.Changed()
		if rr.Epoch() != epoch {
			epoch, seq = rr.Epoch(), 0
		}
		n, next, err := s.sendChanges(bw, rp, rr, v, seq)
		if err != nil {
			return
		}
		seq = next
		if n > 0 || !ready {
			cur := cursorOf(epoch, seq)
			if !ready {
				fmt.Fprintf(bw, "event: ready\nid: %s\ndata: {\"cursor\":%q}\n\n", cur, cur)
				ready = true
			} else {
				fmt.Fprintf(bw, "event: cursor\nid: %s\ndata: {\"cursor\":%q}\n\n", cur, cur)
			}
			if !flush() {
				return
			}
		}
		select {
		case <-r.Context().Done():
			return
		case <-s.draining:
			return
		case <-changed:
		case <-revoked:
			revoked = s.accounts.Revoked()
			if p, ok := PrincipalFrom(r.Context()); ok && !p.Node && !p.Root {
				if _, err := s.accounts.Current(p.Session); err != nil {
					return
				}
			}
		case <-keepAlive.C:
			if _, err := bw.WriteString(": keep-alive\n\n"); err != nil || !flush() {
				return
			}
		}
	}
}

// sendChanges writes a change event for each readable item with commits
// after seq, and returns how many it wrote and
// the position they reach.
func (s *Server) sendChanges(bw *bufio.Writer, rp string, rr *repo.Repo, v syncproto.View, seq uint64) (int, uint64, error) {
	commits, next := rr.CommitsSince(seq)
	if len(commits) == 0 {
		return 0, next, nil
	}
	seen := map[string]bool{}
	n := 0
	for _, c := range commits {
		key := c.Key()
		if seen[key] {
			continue
		}
		seen[key] = true
		if !mayRead(v, key) {
			continue
		}
		it, err := s.db.GetAny(rp + "/" + key)
		if err != nil {
			continue // not visible yet (a pending commit)
		}
		ev := apiChangeEvent{Repo: rp, Path: it.Path(), Key: key, Head: it.Head().String(), Deleted: it.Deleted()}
		if !it.Deleted() {
			ev.Fields = toAPIItem(rr, it).Fields
		}
		b, _ := json.Marshal(ev)
		if _, err := fmt.Fprintf(bw, "event: change\ndata: %s\n\n", b); err != nil {
			return n, next, err
		}
		n++
	}
	return n, next, nil
}
