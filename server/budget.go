package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
)

// DefaultMemoryBudget is how much memory the sync requests a server
// handles may hold at once (Options.MemoryBudget): their bodies, their
// decompressed payloads and their answers.
const DefaultMemoryBudget = 256 << 20

// memBudget bounds the bytes sync requests hold at once: a request
// reserves its body as it is read, its decompressed payload before it
// is decompressed (syncproto.PayloadBound), what building its answer
// allocates as the answer's commits are chosen (syncproto.WithSendReserve:
// the answer is made to fit the room left, with at least one commit per
// repository), and its encoded answer until the client has read it. A
// request that finds no room for its body or payload is answered 503 at
// once, so what requests hold stays within the budget whatever clients
// send, however many at once, and however slowly they read.
//
// No one session, user or client address may hold more than share of it
// at once (once a request's sender is known: after authentication), so
// that one client's heavy requests leave room for everyone else's.
type memBudget struct {
	max   int64 // 0: no limit
	share int64 // most one account holds; 0: no limit
	used  atomic.Int64

	mu   sync.Mutex       // guards held
	held map[string]int64 // bytes held by account ("session:KEY")
}

// most returns the most one request may hold: the share, or the whole
// budget without one; 0 without a limit.
func (b *memBudget) most() int64 {
	if b.share > 0 {
		return b.share
	}
	return b.max
}

// claim counts n bytes against each of keys, or none of them if one
// would then hold more than the share.
func (b *memBudget) claim(keys []string, n int64) bool {
	if b.share == 0 || len(keys) == 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, k := range keys {
		if b.held[k]+n > b.share {
			return false
		}
	}
	if b.held == nil {
		b.held = map[string]int64{}
	}
	for _, k := range keys {
		b.held[k] += n
	}
	return true
}

// budgetKeys names accounts for the memory budget's shares.
func budgetKeys(accts []account) []string {
	keys := make([]string, len(accts))
	for i, a := range accts {
		keys[i] = a.scope.name + ":" + a.key
	}
	return keys
}

// unclaim gives back n bytes claimed for keys.
func (b *memBudget) unclaim(keys []string, n int64) {
	if b.share == 0 || len(keys) == 0 || n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, k := range keys {
		if b.held[k] -= n; b.held[k] <= 0 {
			delete(b.held, k)
		}
	}
}

// take reserves n bytes, or reports that they do not fit.
func (b *memBudget) take(n int64) bool {
	if b.max == 0 {
		b.used.Add(n)
		return true
	}
	for {
		u := b.used.Load()
		if u+n > b.max {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

// reservation is one request's share of the budget: it grows as the
// request learns what it needs, and is given back whole when it ends.
type reservation struct {
	b    *memBudget
	n    int64
	keys []string // the accounts it counts against, once known
}

func (r *reservation) grow(n int64) bool {
	if !r.b.take(n) {
		return false
	}
	if !r.b.claim(r.keys, n) {
		r.b.used.Add(-n)
		return false
	}
	r.n += n
	return true
}

// own counts the reservation, and what it grows by, against the accounts
// of the request's sender; false if one of them has no room for it.
func (r *reservation) own(keys []string) bool {
	if !r.b.claim(keys, r.n) {
		return false
	}
	r.keys = keys
	return true
}

// shrinkTo gives back what the request reserved beyond n.
func (r *reservation) shrinkTo(n int64) {
	if n < r.n {
		r.b.used.Add(n - r.n)
		r.b.unclaim(r.keys, r.n-n)
		r.n = n
	}
}

func (r *reservation) release() { r.shrinkTo(0) }

type reservationKey struct{}

// reserveBody gives a sync request a reservation, which its body takes
// from as it arrives (so a body that trickles in holds only what it sent)
// and which the request grows as it learns what else it needs; it is
// given back whole when the request is answered. A body that finds no
// room is answered 503 with Retry-After and the connection closed.
func (s *Server) reserveBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res := &reservation{b: &s.mem}
		defer res.release()
		r.Body = &budgetReader{ReadCloser: r.Body, res: res}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), reservationKey{}, res)))
	})
}

// budgetReader reserves each chunk of a body as it is read.
type budgetReader struct {
	io.ReadCloser
	res *reservation
}

func (b *budgetReader) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 && !b.res.grow(int64(n)) {
		return 0, errOverBudget
	}
	return n, err
}

// errOverBudget is why a body that did not fit the memory budget was not
// read.
var errOverBudget = errors.New("the memory budget for requests has no room for this body")

// reservationOf returns the request's reservation.
func reservationOf(ctx context.Context) *reservation {
	res, _ := ctx.Value(reservationKey{}).(*reservation)
	return res
}

// overBudget answers a request the memory budget has no room for.
func (s *Server) overBudget(w http.ResponseWriter) {
	s.metrics.overBudget.Add(1)
	w.Header().Set("Retry-After", "1")
	w.Header().Set("Connection", "close")
	httpError(w, http.StatusServiceUnavailable, "the server is busy (its memory budget for requests is in use); retry in a moment")
}
