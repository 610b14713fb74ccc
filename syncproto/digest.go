package syncproto

import (
	"encoding/binary"
	"encoding/hex"
	"math/bits"
	"sync"

	"github.com/goatdb/goatdb/commit"
	"github.com/zeebo/blake3"
)

// Digest is an order-independent digest of a set of commit ids: the sum,
// modulo 2^256, of blake3("goatdb sync v1\x00\x00" || id) over the ids,
// read as little-endian 256-bit numbers. Because it is a sum, a peer adds
// one id in constant time, and can predict the digest of a set it is about
// to extend (or subtract ids the other side refused).
//
// It detects accidental differences with certainty for practical purposes;
// it is not collision-resistant against a writer who crafts many commits
// (sums of hashes yield to generalized-birthday attacks), which is why the
// sets are also compared by count and a sync may be run in repair mode,
// which exchanges Bloom filters whatever the digests say.
type Digest [32]byte

// digestDomain separates digest hashes from every other use of blake3 on
// commit ids; 16 + 32 bytes fit one blake3 block.
const digestDomain = "goatdb sync v1\x00\x00"

// String returns the digest in hex.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

func idHash(id commit.ID) [32]byte {
	var buf [len(digestDomain) + len(id)]byte
	copy(buf[:], digestDomain)
	copy(buf[len(digestDomain):], id[:])
	return blake3.Sum256(buf[:])
}

// Add returns the digest of the set with id added (id must not be in it).
func (d Digest) Add(id commit.ID) Digest { return d.Plus(Digest(idHash(id))) }

// Sub returns the digest of the set with id removed (id must be in it).
func (d Digest) Sub(id commit.ID) Digest { return d.Minus(Digest(idHash(id))) }

// Plus returns d + e mod 2^256: the digest of the union of disjoint sets.
func (d Digest) Plus(e Digest) Digest {
	var out Digest
	var carry uint64
	for i := 0; i < 32; i += 8 {
		var s uint64
		s, carry = bits.Add64(binary.LittleEndian.Uint64(d[i:]), binary.LittleEndian.Uint64(e[i:]), carry)
		binary.LittleEndian.PutUint64(out[i:], s)
	}
	return out
}

// Minus returns d - e mod 2^256.
func (d Digest) Minus(e Digest) Digest {
	var out Digest
	var borrow uint64
	for i := 0; i < 32; i += 8 {
		var s uint64
		s, borrow = bits.Sub64(binary.LittleEndian.Uint64(d[i:]), binary.LittleEndian.Uint64(e[i:]), borrow)
		binary.LittleEndian.PutUint64(out[i:], s)
	}
	return out
}

// DigestOf returns the digest of a set of distinct ids.
func DigestOf(ids []commit.ID) Digest {
	var d Digest
	for _, id := range ids {
		d = d.Add(id)
	}
	return d
}

// set is the digest and size of a set of commit ids.
type set struct {
	d Digest
	n uint64
}

func (s *set) add(id commit.ID) { s.d, s.n = s.d.Add(id), s.n+1 }

// State is what a peer says about its copy of a repository: its log
// epoch and sequence number, and the count and digest of its commit ids at
// that sequence number.
type State struct {
	Epoch, Seq, Count uint64
	Digest            Digest
}

// StateReporter is an optional extra of a Repo that maintains its own
// State (a repository can keep the digest as it inserts commits). Without
// it, State is kept by a cache that adds the commits after its last
// sequence number on every call.
type StateReporter interface {
	SyncState() State
}

// excluder is an optional extra of a Repo whose commits can leave the
// set CommitsSince lists, and come back, after they joined it
// (repo.Repo.Exclude and Restore): ExcludedSeq returns the sequence number
// just after the last such change, 0 if there was none. A State computed
// at a sequence number before it is computed again from the start. A Repo
// without it is taken to be one whose commits only ever join.
type excluder interface {
	ExcludedSeq() uint64
}

// excludedSeq returns r's ExcludedSeq, or 0 if it has none.
func excludedSeq(r Repo) uint64 {
	if x, ok := r.(excluder); ok {
		return x.ExcludedSeq()
	}
	return 0
}

// states caches each repository's State by (epoch, seq), so that an
// unchanged repository costs one CommitsSince call returning nothing, and
// a changed one costs only its new commits. A repository whose exclusions
// changed since (excluder) is counted again from the start. Repo values
// must be comparable (pointers are). The entries of repositories that
// report they are closed (closer) are dropped as new ones come in, so a
// process that opens and closes many repositories keeps few of the closed
// ones; other entries are never evicted.
type states struct {
	mu    sync.Mutex // guards m and added
	m     map[Repo]*stateEntry
	added int // entries added since the last sweep of closed repositories
}

// closer is an optional extra of a Repo that can be closed
// (repo.Repo.Closed). A cache keyed by Repo drops a closed one's entries:
// it would otherwise keep the closed repository, all of it, in memory.
type closer interface {
	Closed() bool
}

// isClosed reports whether r reports that it is closed.
func isClosed(r Repo) bool {
	c, ok := r.(closer)
	return ok && c.Closed()
}

// sweepDue reports whether a cache of n entries, added of them since its
// last sweep, should sweep out closed repositories: once an eighth of
// them (at least 16) are new, so sweeping costs O(1) per entry added and
// at most about that many closed repositories are kept.
func sweepDue(n, added int) bool { return added >= max(16, n/8) }

type stateEntry struct {
	mu sync.Mutex // guards st and ok
	st State
	ok bool
}

// of returns r's current state. Its Seq and Digest always agree: both come
// from one CommitsSince call, and no exclusion changed the repository
// between the sequence number the cached state was computed at and the one
// CommitsSince returned.
func (c *states) of(r Repo) State {
	if sr, ok := r.(StateReporter); ok {
		return sr.SyncState()
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[Repo]*stateEntry{}
	}
	e := c.m[r]
	if e == nil {
		e = &stateEntry{}
		c.m[r] = e
		if c.added++; sweepDue(len(c.m), c.added) {
			for k := range c.m {
				if isClosed(k) {
					delete(c.m, k)
				}
			}
			c.added = 0
		}
	}
	c.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	for {
		xs := excludedSeq(r)
		if epoch := r.Epoch(); !e.ok || e.st.Epoch != epoch || xs > e.st.Seq {
			e.st, e.ok = State{Epoch: epoch}, true
		}
		fresh, cur := r.CommitsSince(e.st.Seq)
		if excludedSeq(r) != xs {
			// An exclusion changed commits while they were read: the
			// list may hold some that left, or miss some that came back.
			e.ok = false
			continue
		}
		for _, c := range fresh {
			e.st.Digest = e.st.Digest.Add(c.ID())
		}
		e.st.Count += uint64(len(fresh))
		e.st.Seq = cur
		return e.st
	}
}
