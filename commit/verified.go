package commit

import (
	"crypto/ed25519"
	"sync"
	"sync/atomic"
)

// Signatures are checked once per process: a commit whose signature
// verified is remembered in a bounded cache, and a later check of the
// same bytes (the same commit from a second peer, a push back, a
// repository reopened) is a lookup. The cache is keyed by the id, which
// is the blake3 of the body (everything the signature covers, the
// session's public key included), and holds the signature that verified:
// a hit needs the same id and the same signature bytes, so a body that
// verified once, sent again with another signature, is checked again
// (and refused). An entry is added only after ed25519.Verify succeeded
// with the session named in the body, or when New signed the commit
// with its session's key.

// DefaultVerifiedCacheSize is how many verified commits the cache
// remembers unless SetVerifiedCacheSize says otherwise: about 150 bytes
// each, 5 MiB in all.
const DefaultVerifiedCacheSize = 1 << 15

// verifiedShards spreads the cache's lock: repositories are opened and
// commits received concurrently.
const verifiedShards = 16

// verifiedCache is a set of verified (id, signature) pairs, each shard a
// ring in insertion order: when full, the oldest entry leaves.
type verifiedCache struct {
	shards [verifiedShards]verifiedShard
}

type verifiedShard struct {
	mu   sync.Mutex // guards the fields below
	sigs map[ID][ed25519.SignatureSize]byte
	ring []ID // insertion order; next is the slot to fill
	next int
	max  int
}

var verified atomic.Pointer[verifiedCache]

func init() { verified.Store(newVerifiedCache(DefaultVerifiedCacheSize)) }

func newVerifiedCache(n int) *verifiedCache {
	v := &verifiedCache{}
	per := (n + verifiedShards - 1) / verifiedShards
	for i := range v.shards {
		v.shards[i].max = per
	}
	return v
}

// SetVerifiedCacheSize sets how many verified commits the process
// remembers (about 150 bytes each), dropping those it remembered; 0 turns
// the cache off, so that every check verifies. It is meant to be called
// at start-up.
func SetVerifiedCacheSize(n int) {
	verified.Store(newVerifiedCache(max(n, 0)))
}

func (v *verifiedCache) shard(id ID) *verifiedShard { return &v.shards[id[0]%verifiedShards] }

// has reports whether id verified with exactly sig.
func (v *verifiedCache) has(id ID, sig []byte) bool {
	s := v.shard(id)
	s.mu.Lock()
	got, ok := s.sigs[id]
	s.mu.Unlock()
	return ok && string(got[:]) == string(sig)
}

// add remembers that id verified with sig.
func (v *verifiedCache) add(id ID, sig []byte) {
	s := v.shard(id)
	if s.max == 0 || len(sig) != ed25519.SignatureSize {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sigs[id]; ok {
		return
	}
	if s.sigs == nil {
		s.sigs = make(map[ID][ed25519.SignatureSize]byte, s.max)
		s.ring = make([]ID, 0, s.max)
	}
	if len(s.ring) < s.max {
		s.ring = append(s.ring, id)
	} else {
		delete(s.sigs, s.ring[s.next])
		s.ring[s.next] = id
		s.next = (s.next + 1) % s.max
	}
	s.sigs[id] = [ed25519.SignatureSize]byte(sig)
}
