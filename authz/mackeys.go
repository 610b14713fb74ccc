package authz

import (
	"sync"

	"github.com/goatdb/goatdb/commit"
)

// macKeys caches the request keys of the sessions a Verifier
// authenticated with v2 headers, so that a session's later requests cost
// a keyed hash, not an X25519. It holds at most max keys, each about 180
// bytes with the map's share (the default, DefaultMACSessions, about 11
// MiB), and evicts the least recently used. A key is cached only once a
// request under it was accepted, so headers with bad MACs evict nothing;
// sessions that send valid v2 headers can evict each other's keys, which
// costs an evicted session one X25519 on its next request: about what
// checking a v1 signature costs every request. It is safe for concurrent
// use.
type macKeys struct {
	max int

	// mu guards m and the list through head.
	mu sync.Mutex
	m  map[commit.SessionID]*macEntry
	// head is the list's sentinel: head.next is the most recently used
	// entry, head.prev the least.
	head macEntry
}

type macEntry struct {
	session    commit.SessionID
	key        [macSize]byte
	prev, next *macEntry
}

func newMACKeys(max int) *macKeys {
	c := &macKeys{max: max, m: map[commit.SessionID]*macEntry{}}
	c.head.prev, c.head.next = &c.head, &c.head
	return c
}

// get returns session's key, marking it used.
func (c *macKeys) get(session commit.SessionID) (key [macSize]byte, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[session]
	if e == nil {
		return key, false
	}
	c.unlink(e)
	c.pushFront(e)
	return e.key, true
}

// put caches session's key as the most recently used, evicting the least
// recently used key if the cache is full.
func (c *macKeys) put(session commit.SessionID, key *[macSize]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[session]; e != nil {
		e.key = *key
		c.unlink(e)
		c.pushFront(e)
		return
	}
	var e *macEntry
	if len(c.m) >= c.max {
		e = c.head.prev // evicted, and reused
		c.unlink(e)
		delete(c.m, e.session)
	} else {
		e = &macEntry{}
	}
	e.session, e.key = session, *key
	c.m[session] = e
	c.pushFront(e)
}

// len returns the number of keys cached.
func (c *macKeys) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

func (c *macKeys) unlink(e *macEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (c *macKeys) pushFront(e *macEntry) {
	e.prev, e.next = &c.head, c.head.next
	c.head.next.prev = e
	c.head.next = e
}
