package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/syncproto"
)

// handleSync answers one sync round. The response is written only after
// the request's commits are stored (with the database's durability).
func (s *Server) handleSync(w http.ResponseWriter, r *http.Request) {
	began := time.Now()
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, _ := mime.ParseMediaType(ct); mt != goatdb.SyncContentType && mt != "application/octet-stream" {
			httpError(w, http.StatusUnsupportedMediaType, "Content-Type %q: a sync request is %s", ct, goatdb.SyncContentType)
			return
		}
	}
	rc := http.NewResponseController(w)
	deadline := began.Add(s.opts.RequestTimeout)
	rc.SetReadDeadline(deadline)
	rc.SetWriteDeadline(deadline)

	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	s.metrics.bytesIn.Add(len(body))
	// Reserve what decoding allocates before it does, and what building
	// the answer allocates as its commits are chosen: the answer is made
	// to fit the room left. A request the budget cannot hold is answered
	// 503.
	res := reservationOf(r.Context())
	bound := syncproto.PayloadBound(body)
	ctx := r.Context()
	accts := s.accountsOf(r)
	var ans *answerReserve
	if res != nil {
		if need, most := int64(len(body))+int64(bound), s.mem.most(); most > 0 && need > most {
			s.metrics.tooLarge.Add(1)
			httpError(w, http.StatusRequestEntityTooLarge, "this request takes %d bytes of memory to decode (its body and payload), more than one client may hold at once on this server (%d); send fewer commits per request", need, most)
			return
		}
		if !res.own(budgetKeys(accts)) || !res.grow(int64(bound)) {
			s.overBudget(w)
			return
		}
		ans = &answerReserve{res: res}
		ctx = syncproto.WithSendReserve(ctx, ans.take)
	}
	req, err := syncproto.DecodeRequestBound(body, bound)
	if err != nil {
		s.protocolError(w, r, err)
		return
	}
	for i := range req.Repos {
		s.metrics.commitsIn.Add(len(req.Repos[i].Commits))
	}
	pa := &pushAccounts{accts: accts}
	if rf := s.chargePush(pa.accts, req); rf != nil {
		s.refuse(w, rf)
		return
	}
	ctx = context.WithValue(ctx, pushKey{}, pa)
	served, moved := req, map[int]syncproto.RepoResponse(nil)
	if s.opts.Cluster != nil {
		served, moved = s.routeSections(ctx, req)
	}
	resp, err := s.responder.Handle(syncproto.WithRequest(ctx, s.requestInfo(r)), served)
	if err == nil {
		resp = mergeRouted(resp, moved, len(req.Repos))
	}
	if err != nil {
		var se *syncproto.StorageError
		if r.Context().Err() != nil || errors.As(err, &se) {
			s.refundPush(accts, req) // not stored: the client sends them again
		}
		switch {
		case r.Context().Err() != nil:
			httpError(w, http.StatusServiceUnavailable, "request cancelled: %v", r.Context().Err())
		case errors.As(err, &se):
			// Commits of the request may not be stored: no response
			// acknowledges any of them, and the client sends them again.
			s.storageError(w, r, se.Path, se.Err)
		default:
			s.protocolError(w, r, err)
		}
		return
	}
	if pa.refused > 0 && pa.refused == len(req.Repos) {
		// Every repository of the request was refused by the quota on
		// new ones (nothing was stored): say so as a whole.
		s.refuse(w, &refusal{limit: limitRepos, status: http.StatusTooManyRequests, wait: pa.wait, counted: true,
			msg: fmt.Sprintf("%s (all %d repositories of the request are new)", resp.Repos[0].Message, pa.refused)})
		return
	}
	if s.opts.AckReplicas > 0 {
		if err := s.awaitReplicas(r, req, resp); err != nil {
			w.Header().Set("Retry-After", "1")
			httpError(w, http.StatusServiceUnavailable, "%v; the commits are stored on this node: send them again (here or to another node)", err)
			return
		}
	}
	var out, rejected uint64
	for i := range resp.Repos {
		out += uint64(len(resp.Repos[i].Commits))
		rejected += uint64(len(resp.Repos[i].Rejected))
	}
	msg, err := syncproto.EncodeResponse(resp)
	if err != nil {
		s.log.Error("encode sync response", "request_id", requestIDOf(r.Context()), "err", err)
		httpError(w, http.StatusInternalServerError, "internal error: encoding the response failed (request id %s)", requestIDOf(r.Context()))
		return
	}
	// The answer is held until the client has read it: it counts against
	// the budget until then, in place of what building it took. An
	// answer for which there was no room (not one of the commits it
	// needed, or its own bytes) is 503: the request's commits are stored
	// already, so a client that retries finds them there.
	if ans != nil {
		if ans.refused && ans.granted == 0 {
			s.overBudget(w)
			return
		}
		if held := res.n - ans.reserved + int64(len(msg)); held < res.n {
			res.shrinkTo(held)
		} else if !res.grow(held - res.n) {
			s.overBudget(w)
			return
		}
	}
	s.metrics.commitsOut.Add(int(out))
	s.metrics.rejections(resp)
	s.metrics.bytesOut.Add(len(msg))
	s.log.Debug("sync", "request_id", requestIDOf(r.Context()), "session", req.Session,
		"repos", len(req.Repos), "commits_in", countCommits(req), "commits_out", out, "rejected", rejected)
	w.Header().Set("Content-Type", goatdb.SyncContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(msg)))
	w.Write(msg)
	s.metrics.synced(began)
}

// awaitReplicas waits until Options.AckReplicas peers stored the commits
// a client's request brought (every repository whose section it stored),
// at most Options.AckTimeout. Requests from peer nodes and the root do
// not wait: a node's own peers may be waiting on it.
func (s *Server) awaitReplicas(r *http.Request, req *syncproto.Request, resp *syncproto.Response) error {
	if _, ok := trusted(r.Context()); ok {
		return nil
	}
	peers := s.peers.Load()
	if peers == nil {
		return errors.New("this node does not replicate yet")
	}
	timeout := s.opts.AckTimeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	for i, q := range req.Repos {
		if len(q.Commits) == 0 || resp.Repos[i].Status != syncproto.StatusOK || len(resp.Repos[i].Rejected) == len(q.Commits) {
			continue
		}
		rr, err := s.holdRepo(ctx, q.Path, false)
		if err != nil {
			return fmt.Errorf("replicating %s: %w", q.Path, err)
		}
		start := time.Now()
		err = peers.WaitStored(ctx, q.Path, rr.Epoch(), rr.Seq(), s.opts.AckReplicas)
		s.metrics.ackWait(time.Since(start), err)
		if err != nil {
			return err
		}
	}
	return nil
}

// Building an answer of n commit bytes takes up to about answerCost × n
// bytes at once: the commits encoded, the payload they are copied into
// (sized up front), and the compressed message. An answer reserves it in
// steps of at least answerStep commit bytes, as its commits are chosen.
const (
	answerCost = 3
	answerStep = 256 << 10
)

// answerReserve reserves, from a request's reservation, the memory to
// build its answer as the Responder chooses its commits
// (syncproto.WithSendReserve). Handle calls it from one goroutine.
type answerReserve struct {
	res      *reservation
	credit   int64 // commit bytes reserved and not yet taken
	reserved int64 // bytes reserved in all
	granted  int   // commits granted
	refused  bool  // a commit was refused
}

func (a *answerReserve) take(n int) bool {
	if need := int64(n) - a.credit; need > 0 {
		step := max(need, answerStep)
		if !a.res.grow(step * answerCost) {
			step = need
			if !a.res.grow(step * answerCost) {
				a.refused = true
				return false
			}
		}
		a.credit += step
		a.reserved += step * answerCost
	}
	a.credit -= int64(n)
	a.granted++
	return true
}

// bodyKey holds a request body authenticate read already.
type bodyKey struct{}

// readBody reads a request's body, or answers 413 (over the route's
// limit) or 400 and returns false.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if body, ok := r.Context().Value(bodyKey{}).([]byte); ok {
		return body, true // read (and counted) once, by authenticate
	}
	body, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		s.metrics.tooLarge.Add(1)
		httpError(w, http.StatusRequestEntityTooLarge, "request body over %d bytes; send fewer commits per request", tooBig.Limit)
		return nil, false
	case errors.Is(err, errOverBudget):
		s.overBudget(w)
		return nil, false
	case errors.Is(err, errSlowBody):
		s.metrics.slowBodies.Add(1)
		w.Header().Set("Connection", "close")
		httpError(w, http.StatusRequestTimeout, "%v: at least %g bytes per second after %v", err, s.opts.MinBodyRate, s.opts.BodyGrace)
		return nil, false
	case err != nil:
		httpError(w, http.StatusBadRequest, "reading the request body: %v", err)
		return nil, false
	}
	return body, true
}

// protocolError answers a request the protocol refused: 413 if too
// large, 400 otherwise (the message names what is wrong, and for an
// unknown version the supported ones). Any other error is the server's:
// 500 citing the request's id, with the error only in the log.
func (s *Server) protocolError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, syncproto.ErrTooLarge):
		s.metrics.tooLarge.Add(1)
		httpError(w, http.StatusRequestEntityTooLarge, "%v", err)
	case errors.Is(err, syncproto.ErrMalformed), errors.Is(err, syncproto.ErrVersion):
		s.metrics.badRequests.Add(1)
		httpError(w, http.StatusBadRequest, "%v", err)
	default:
		id := requestIDOf(r.Context())
		s.log.Error("sync request failed", "request_id", id, "err", err)
		httpError(w, http.StatusInternalServerError, "internal error on the server (request id %s); retry later (the server's log has the details)", id)
	}
}

func countCommits(req *syncproto.Request) int {
	n := 0
	for i := range req.Repos {
		n += len(req.Repos[i].Commits)
	}
	return n
}
