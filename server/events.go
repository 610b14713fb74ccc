package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/syncproto"
	"github.com/goatdb/goatdb/transport"
)

// hub fans repository changes out to event streams. One goroutine per
// open repository waits for its changes; each subscriber keeps the set of
// repositories changed since its stream last wrote, so a burst of changes
// costs a subscriber one event per repository, with the latest position.
//
// The hub follows repositories as the database opens them
// (DB.OnRepoOpen). One closed for idleness wakes its goroutine, which
// ends: the hub keeps its position (a closed repository does not change)
// and, if it changed since it was last announced, announces it. When it
// is reopened it is followed again, and announced only if it moved.
type hub struct {
	metrics *metrics
	unhook  func()
	// onChange, if set, is called (outside the hub's lock) with every
	// repository that changed, before streams are told.
	onChange func(path string)

	mu       sync.Mutex                  // guards the fields below
	repos    map[string]*repo.Repo       // the open repositories
	known    map[string]syncproto.Notice // positions of those closed since
	subs     map[*subscriber]bool
	draining bool
	closed   bool
	stop     chan struct{} // closed by close: watchers return
	drained  chan struct{} // closed by drain: streams return
	wg       sync.WaitGroup
}

type subscriber struct {
	only map[string]bool // nil: every repository
	wake chan struct{}   // capacity 1

	mu      sync.Mutex // guards pending
	pending []string
	queued  map[string]bool
}

func newHub(m *metrics) *hub {
	return &hub{metrics: m, repos: map[string]*repo.Repo{}, known: map[string]syncproto.Notice{},
		subs: map[*subscriber]bool{}, stop: make(chan struct{}), drained: make(chan struct{})}
}

// noticeOf is the position of repository path, open as r.
func noticeOf(path string, r *repo.Repo) syncproto.Notice {
	return syncproto.Notice{Repo: path, Epoch: r.Epoch(), Seq: r.Seq()}
}

// watch starts following a repository (it is the database's OnRepoOpen
// hook, so it must not block). A new repository is announced at once, a
// reopened one if it is not where it was when it closed.
func (h *hub) watch(path string, r *repo.Repo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.repos[path] == r {
		return
	}
	h.repos[path] = r
	ch := r.Changed() // now, so that no change after the open is missed
	at := noticeOf(path, r)
	was, reopened := h.known[path]
	delete(h.known, path)
	h.wg.Go(func() { h.follow(path, r, ch, at) })
	if reopened && was == at {
		return
	}
	if h.onChange != nil {
		// A repository that appears (received from a peer, say) is a
		// change too. Not under h.mu: onChange may take other locks.
		h.wg.Go(func() { h.onChange(path) })
	}
	h.publishLocked(path)
}

// follow announces each change of repository path, open as r, until it
// closes or the hub stops; at is its position when last announced.
func (h *hub) follow(path string, r *repo.Repo, ch <-chan struct{}, at syncproto.Notice) {
	for {
		select {
		case <-ch:
		case <-h.stop:
			return
		}
		if r.Closed() {
			if h.closedRepo(path, r, at) {
				h.changed(path)
			}
			return
		}
		ch = r.Changed()
		at = noticeOf(path, r)
		h.changed(path)
	}
}

// changed tells onChange and the subscribers that path changed.
func (h *hub) changed(path string) {
	if h.onChange != nil {
		h.onChange(path)
	}
	h.publish(path)
}

// closedRepo forgets repository path, open as r until now, keeping its
// position, and reports whether it moved since at.
func (h *hub) closedRepo(path string, r *repo.Repo, at syncproto.Notice) bool {
	now := noticeOf(path, r)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.repos[path] != r {
		return false // reopened meanwhile, and announced then
	}
	delete(h.repos, path)
	h.known[path] = now
	return now != at
}

func (h *hub) publish(path string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.publishLocked(path)
}

func (h *hub) publishLocked(path string) {
	for sub := range h.subs {
		if sub.only == nil || sub.only[path] {
			sub.add(path)
		}
	}
}

func (sub *subscriber) add(path string) {
	sub.mu.Lock()
	if !sub.queued[path] {
		sub.queued[path] = true
		sub.pending = append(sub.pending, path)
	}
	sub.mu.Unlock()
	select {
	case sub.wake <- struct{}{}:
	default:
	}
}

// take returns the repositories changed since the last take.
func (sub *subscriber) take() []string {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	out := sub.pending
	sub.pending = nil
	clear(sub.queued)
	return out
}

// subscribe adds a subscriber and queues every repository it follows, so
// its stream starts with their positions. It fails if the hub is draining
// or has max subscribers.
func (h *hub) subscribe(only map[string]bool, maxSubs int) (*subscriber, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.draining || h.closed:
		return nil, errShuttingDown
	case len(h.subs) >= maxSubs:
		return nil, errTooManyStreams
	}
	sub := &subscriber{only: only, wake: make(chan struct{}, 1), queued: map[string]bool{}}
	paths := make([]string, 0, len(h.repos)+len(h.known))
	for _, m := range []map[string]bool{keys(h.repos), keys(h.known)} {
		for p := range m {
			if only == nil || only[p] {
				paths = append(paths, p)
			}
		}
	}
	slices.Sort(paths)
	for _, p := range paths {
		sub.add(p)
	}
	h.subs[sub] = true
	h.metrics.streams.Add(1)
	return sub, nil
}

func (h *hub) unsubscribe(sub *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs[sub] {
		delete(h.subs, sub)
		h.metrics.streams.Add(-1)
	}
}

// lookup returns repository path if it is open, else where it was when it
// closed; ok is false for a repository the hub never saw.
func (h *hub) lookup(path string) (r *repo.Repo, n syncproto.Notice, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r := h.repos[path]; r != nil {
		return r, noticeOf(path, r), true
	}
	n, ok = h.known[path]
	return nil, n, ok
}

// keys returns the keys of m.
func keys[V any](m map[string]V) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.repos)
}

// drain ends every event stream and refuses new ones.
func (h *hub) drain() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.draining {
		h.draining = true
		close(h.drained)
	}
}

// close drains and stops the watchers.
func (h *hub) close() {
	h.drain()
	h.mu.Lock()
	already := h.closed
	h.closed = true
	h.mu.Unlock()
	if already {
		return
	}
	if h.unhook != nil {
		h.unhook()
	}
	close(h.stop)
	h.wg.Wait()
}

var (
	errShuttingDown   = fmt.Errorf("the server is shutting down")
	errTooManyStreams = fmt.Errorf("too many event streams")
)

// handleEvents streams change notices (see the package doc; package
// transport draws the format).
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	var only map[string]bool
	if ps := r.URL.Query()["repo"]; len(ps) > 0 {
		only = map[string]bool{}
		for _, p := range ps {
			if err := goatdb.CheckRepoPath(p); err != nil {
				httpError(w, http.StatusBadRequest, "repo=%q: %v", p, err)
				return
			}
			only[p] = true
		}
	}
	release, err := openStream(s.accountsOf(r))
	if err != nil {
		s.limitHit(limitStreams)
		w.Header().Set("Retry-After", "5")
		w.Header().Set("Connection", "close")
		httpError(w, http.StatusTooManyRequests, "%v; close one first", err)
		return
	}
	defer release()
	sub, err := s.hub.subscribe(only, s.opts.MaxEventStreams)
	if err != nil {
		if errors.Is(err, errTooManyStreams) {
			s.limitHit(limitMaxStreams)
		}
		w.Header().Set("Retry-After", "5")
		httpError(w, http.StatusServiceUnavailable, "%v; retry later", err)
		return
	}
	defer s.hub.unsubscribe(sub)

	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", transport.EventsContentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 4096)
	flush := func() bool {
		rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		return bw.Flush() == nil && rc.Flush() == nil
	}
	// Write errors stay in bw until flush reports them.
	ew := transport.NewEventWriter(bw)
	_ = ew.Retry(2 * time.Second)
	first := true
	keepAlive := time.NewTicker(s.opts.KeepAlive)
	defer keepAlive.Stop()
	var revoked <-chan struct{}
	if s.accounts != nil {
		revoked = s.accounts.Revoked()
	}
	st := newStreamState(s.opts.EventCommitRate)
	for {
		for _, p := range sub.take() {
			s.writeChange(r.Context(), ew, st, p, first)
		}
		if first {
			first = false
			_ = ew.Ready()
		}
		if !flush() {
			return
		}
		select {
		case <-sub.wake:
		case <-keepAlive.C:
			_ = ew.KeepAlive()
		case <-r.Context().Done():
			return
		case <-s.hub.drained:
			return
		case <-revoked:
			// The revocations changed: a stream whose session lost its
			// certificate ends (its next request gets 401).
			if _, err := s.principal(principalOf(r).Session, r.URL.Path); err != nil {
				return
			}
			revoked = s.accounts.Revoked()
		}
	}
}

// streamState is what one event stream remembers: the position it last
// announced of each repository (at most maxLast of them: past that it
// forgets them all, which costs commits in a few events), and what its
// commit budget has left.
type streamState struct {
	last   map[string]syncproto.Point
	budget byteBudget
}

// maxLast bounds the positions a stream remembers.
const maxLast = 4096

func newStreamState(rate int) *streamState {
	return &streamState{last: map[string]syncproto.Point{},
		budget: byteBudget{rate: float64(rate), left: float64(rate), at: time.Now()}}
}

// announced records that the stream announced repository path at n.
func (st *streamState) announced(n syncproto.Notice) {
	if _, ok := st.last[n.Repo]; !ok && len(st.last) >= maxLast {
		clear(st.last)
	}
	st.last[n.Repo] = syncproto.Point{Epoch: n.Epoch, Seq: n.Seq}
}

// byteBudget is a stream's commit bytes per second: it holds at most one
// second's worth, refilled continuously.
type byteBudget struct {
	rate, left float64
	at         time.Time
}

// available returns the bytes the budget has now.
func (b *byteBudget) available(now time.Time) int {
	b.left = min(b.rate, b.left+now.Sub(b.at).Seconds()*b.rate)
	b.at = now
	return int(b.left)
}

func (b *byteBudget) take(n int) { b.left -= float64(n) }

// writeChange writes the event of repository path to a stream (listing
// says it is in the listing that opens it): after the listing, a change
// the stream's session may read carries its commits when they fit the
// bounds (Options.EventCommitBytes, EventCommitRate) and follow the
// position the stream last announced; a position the stream announced
// already is not sent again (the change was outside the session's view).
func (s *Server) writeChange(ctx context.Context, ew *transport.EventWriter, st *streamState, path string, listing bool) {
	from, known := st.last[path]
	if !listing && known && s.opts.EventCommitBytes > 0 {
		limit := min(s.opts.EventCommitBytes, st.budget.available(time.Now()))
		if n, cs, ok := s.changeFor(ctx, path, from, limit); ok {
			if (syncproto.Point{Epoch: n.Epoch, Seq: n.Seq}) == from {
				return
			}
			encs := make([][]byte, len(cs))
			size := 0
			for i, c := range cs {
				encs[i] = c.Encode()
				size += len(encs[i])
			}
			if ew.ChangedWith(n, from, encs) == nil {
				st.budget.take(size)
				st.announced(n)
			}
			return
		}
	}
	n, ok := s.noticeFor(ctx, path, listing)
	if !ok || !listing && known && (syncproto.Point{Epoch: n.Epoch, Seq: n.Seq}) == from {
		return
	}
	if ew.Changed(n) == nil { // a notice that does not encode is not sent
		st.announced(n)
	}
}

// changeFor returns the notice of repository path, if it is open and the
// stream's session may read it, with the commits since position from in
// its view when there are some and they fit limit bytes
// (syncproto.Responder.NoticeSince). ok is false when the caller should
// fall back to noticeFor.
func (s *Server) changeFor(ctx context.Context, path string, from syncproto.Point, limit int) (n syncproto.Notice, cs []*commit.Commit, ok bool) {
	rp, _, known := s.hub.lookup(path)
	if !known || rp == nil || s.policy != nil && !s.policy.readable(ctx, path) {
		return n, nil, false
	}
	n, cs, err := s.responder.NoticeSince(ctx, path, rp, from, limit)
	return n, cs, err == nil
}

// noticeFor returns the notice of repository path for the event stream of
// the request whose context is ctx, and whether to send it: the position
// of the repository, or of the session's view of it with a policy (only
// for a repository the session may read: a change it may not see sends
// nothing new). A repository closed for idleness is where it was when it
// closed; a view of it is computed by opening it again, except in the
// listing that starts a stream (a client syncs the repositories the
// listing leaves out that it holds, once it reads "ready").
func (s *Server) noticeFor(ctx context.Context, path string, listing bool) (syncproto.Notice, bool) {
	rp, n, ok := s.hub.lookup(path)
	switch {
	case !ok:
		return n, false
	case s.policy == nil:
		return n, true
	case !s.policy.readable(ctx, path):
		return n, false
	case rp == nil && listing:
		return n, false
	case rp == nil:
		r, release, err := s.db.AcquireExisting(path)
		if err != nil {
			return n, false
		}
		defer release()
		rp = r
	}
	n, err := s.responder.Notice(ctx, path, rp)
	return n, err == nil
}
