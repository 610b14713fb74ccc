package authz

import (
	"container/heap"
	"fmt"
	"sync"
	"time"

	"github.com/goatdb/goatdb/commit"
)

const (
	// DefaultMaxNonces bounds a NonceCache's entries by default. An entry
	// costs about 100 bytes, so the default cache holds at most ~25 MiB.
	DefaultMaxNonces = 1 << 18
	// DefaultMaxNoncesPerSession bounds one session's entries by default:
	// 100 requests a second over two windows of 60 s.
	DefaultMaxNoncesPerSession = 12000
)

// NonceCache remembers the nonces sessions used until their requests'
// windows close, so that a request is accepted once. Its memory is
// bounded: at most max entries, and at most perSession per session; past
// either, Add returns ErrTooManyRequests until entries expire. It is safe
// for concurrent use.
type NonceCache struct {
	max, perSession int

	// mu guards entries, bySession and expiry.
	mu        sync.Mutex
	entries   map[nonceKey]struct{}
	bySession map[commit.SessionID]int
	expiry    expiryHeap
}

// nonceKey names one used nonce. Client nonces and echoed server nonces
// live apart, so one cannot block the other.
type nonceKey struct {
	session commit.SessionID
	nonce   [16]byte
	server  bool
}

// NewNonceCache returns a cache of at most max entries, at most perSession
// of them for one session; 0 means DefaultMaxNonces and
// DefaultMaxNoncesPerSession.
func NewNonceCache(max, perSession int) *NonceCache {
	if max <= 0 {
		max = DefaultMaxNonces
	}
	if perSession <= 0 {
		perSession = DefaultMaxNoncesPerSession
	}
	return &NonceCache{
		max: max, perSession: perSession,
		entries: map[nonceKey]struct{}{}, bySession: map[commit.SessionID]int{},
	}
}

// Add records that session used nonce, until expires (exclusive: from
// then on the nonce is forgotten). It returns ErrReplay if the session
// used it before and the entry has not expired at now, and
// ErrTooManyRequests if the cache is full. A nonce that expires at or
// before now is not recorded.
func (c *NonceCache) Add(session commit.SessionID, nonce [16]byte, expires, now time.Time) error {
	return c.add(nonceKey{session: session, nonce: nonce}, expires.UnixMilli(), now.UnixMilli())
}

func (c *NonceCache) add(k nonceKey, expires, now int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked(now)
	if _, ok := c.entries[k]; ok {
		return fmt.Errorf("%w: nonce already used by session %s", ErrReplay, k.session)
	}
	if len(c.entries) >= c.max {
		return fmt.Errorf("%w: %d nonces in the window", ErrTooManyRequests, len(c.entries))
	}
	if c.bySession[k.session] >= c.perSession {
		return fmt.Errorf("%w: session %s used %d nonces in the window", ErrTooManyRequests, k.session, c.perSession)
	}
	if expires <= now {
		return nil // already outside its window: nothing to remember
	}
	c.entries[k] = struct{}{}
	c.bySession[k.session]++
	heap.Push(&c.expiry, expiring{expires, k})
	return nil
}

// expireLocked drops the entries that expired at or before now.
func (c *NonceCache) expireLocked(now int64) {
	for len(c.expiry) > 0 && c.expiry[0].at <= now {
		e := heap.Pop(&c.expiry).(expiring)
		delete(c.entries, e.key)
		if n := c.bySession[e.key.session] - 1; n > 0 {
			c.bySession[e.key.session] = n
		} else {
			delete(c.bySession, e.key.session)
		}
	}
}

// Len returns the number of entries, expired ones included until the next
// Add.
func (c *NonceCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

type expiring struct {
	at  int64 // Unix milliseconds
	key nonceKey
}

// expiryHeap orders entries by expiry, earliest first.
type expiryHeap []expiring

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiring)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
