package syncproto

import (
	"encoding/binary"
	"encoding/hex"
	"math/bits"
	"slices"
	"sync"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/repo"
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

// minus returns the set less its subset t.
func (s set) minus(t set) set { return set{s.d.Minus(t.d), s.n - t.n} }

// dayMillis is a UTC day in Unix milliseconds, the unit of commit times.
const dayMillis = 24 * 60 * 60 * 1000

// dayOf returns the UTC day (days since the Unix epoch) of time t.
func dayOf(t int64) int64 {
	d := t / dayMillis
	if t%dayMillis < 0 {
		d--
	}
	return d
}

// maxCuts bounds the horizons inside a day a tally keeps the partial day
// of: horizons change once per compaction, so a few are plenty.
const maxCuts = 4

// tally is the count and digest of a set of commits, and of its commits
// of each UTC day, so that the set of those from any time h on (a
// horizon) is had in O(days): everything less the days before h's. A
// horizon inside a day (not at midnight UTC) also needs the commits of
// its day before it: the tally keeps that set, its cut, for the few
// horizons it was asked about, and adds to it as commits come.
type tally struct {
	all  set
	days map[int64]*set
	cuts map[int64]*set // horizon → its day's commits before it
}

// add adds commit id of time t (it must not be in the set).
func (t *tally) add(id commit.ID, at int64) {
	t.all.add(id)
	day := dayOf(at)
	if t.days == nil {
		t.days = map[int64]*set{}
	}
	s := t.days[day]
	if s == nil {
		s = &set{}
		t.days[day] = s
	}
	s.add(id)
	for h, c := range t.cuts {
		if at < h && dayOf(h) == day {
			c.add(id)
		}
	}
}

// missingCuts returns the horizons of hs that need a cut (they are not
// at midnight UTC) that t does not have.
func (t *tally) missingCuts(hs ...int64) []int64 {
	var out []int64
	for _, h := range hs {
		if _, ok := t.cuts[h]; !ok && h > 0 && h%dayMillis != 0 && !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// setCuts records the cuts of horizons hs (at most maxCuts), cut(h)
// giving the set's commits of h's day before h. It forgets the others if
// there is no room for them.
func (t *tally) setCuts(hs []int64, cut func(h int64) set) {
	if len(hs) == 0 {
		return
	}
	if t.cuts == nil {
		t.cuts = map[int64]*set{}
	}
	if len(t.cuts)+len(hs) > maxCuts {
		clear(t.cuts)
	}
	for _, h := range hs {
		c := cut(h)
		t.cuts[h] = &c
	}
}

// emptied returns an empty tally that keeps the cuts of t's horizons and
// of hs (within maxCuts, those of hs first), to count a set again.
func (t *tally) emptied(hs ...int64) tally {
	var e tally
	keep := (&e).missingCuts(hs...)
	for h := range t.cuts {
		if len(keep) < maxCuts && !slices.Contains(keep, h) {
			keep = append(keep, h)
		}
	}
	e.setCuts(keep, func(int64) set { return set{} })
	return e
}

// above returns the set of the commits of time h or later; all of them
// if h ≤ 0 (no horizon). A horizon inside a day must have its cut
// (needsCut).
func (t *tally) above(h int64) set {
	if h <= 0 {
		return t.all
	}
	out := t.all
	day := dayOf(h)
	for d, s := range t.days {
		if d < day {
			out = out.minus(*s)
		}
	}
	if c := t.cuts[h]; c != nil {
		out = out.minus(*c)
	}
	return out
}

// cutOf returns the cut of horizon h over ss: those of h's day before h.
func cutOf(ss []repo.Stamp, h int64, in func(repo.Stamp) bool) set {
	var c set
	day := dayOf(h)
	for _, x := range ss {
		if t := x.Time; t < h && dayOf(t) == day && (in == nil || in(x)) {
			c.add(x.ID)
		}
	}
	return c
}

// stamp is a commit id and its time.
type stamp struct {
	id commit.ID
	at int64
}

// stamps is a small list of commits (those one side refused), whose set
// from a horizon on is computed by going through them.
type stamps []stamp

// above returns the set of the commits of time h or later (all if h ≤ 0).
func (ss stamps) above(h int64) set {
	var s set
	for _, x := range ss {
		if h <= 0 || x.at >= h {
			s.add(x.id)
		}
	}
	return s
}

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
	mu sync.Mutex // guards st, t and ok
	st State
	t  tally // the commits up to st.Seq, by day
	ok bool
}

// horizoner is the optional method of a Repo that collected its history
// before a time (repo.Repo.Horizon): its horizon, in Unix milliseconds; 0
// if it never collected.
type horizoner interface{ Horizon() int64 }

// horizonOf returns r's horizon, 0 if it has none.
func horizonOf(r Repo) int64 {
	if h, ok := r.(horizoner); ok {
		return max(h.Horizon(), 0)
	}
	return 0
}

// of returns r's current state. Its Seq and Digest always agree: both come
// from one CommitsSince call, and no exclusion changed the repository
// between the sequence number the cached state was computed at and the one
// CommitsSince returned.
func (c *states) of(r Repo) State {
	if sr, ok := r.(StateReporter); ok {
		return sr.SyncState()
	}
	st, _ := c.at(r, 0, 0, stampsSince)
	return st
}

// at returns r's current state with its Count and Digest over the commits
// from horizon h on (all if h is 0), and its set from horizon g on, both
// at the same sequence number. It lists commits with list (stampsSince,
// or a sync's own memo of it). A StateReporter's own state is used for
// horizon 0 only.
func (c *states) at(r Repo, h, g int64, list lister) (State, set) {
	if sr, ok := r.(StateReporter); ok && h <= 0 && g <= 0 {
		st := sr.SyncState()
		return st, set{st.Digest, st.Count}
	}
	e := c.entry(r)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.update(r, list)
	if len(e.t.missingCuts(h, g)) > 0 {
		// Count again from the start, adding the cuts as it goes.
		e.ok = false
		e.update(r, list, h, g)
	}
	st := e.st
	in := e.t.above(h)
	st.Count, st.Digest = in.n, in.d
	return st, e.t.above(g)
}

// entry returns r's cache entry, made if there is none.
func (c *states) entry(r Repo) *stateEntry {
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
	return e
}

// update brings the entry up to r's current sequence number. If it
// starts again from the beginning, it keeps the cuts of the horizons it
// had and of cuts. The caller holds e.mu.
func (e *stateEntry) update(r Repo, list lister, cuts ...int64) {
	for {
		xs := excludedSeq(r)
		if epoch := r.Epoch(); !e.ok || e.st.Epoch != epoch || xs > e.st.Seq {
			e.st, e.ok, e.t = State{Epoch: epoch}, true, e.t.emptied(cuts...)
		}
		fresh, cur := list(r, e.st.Seq)
		if excludedSeq(r) != xs {
			// An exclusion changed commits while they were read: the
			// list may hold some that left, or miss some that came back.
			e.ok = false
			continue
		}
		for _, c := range fresh {
			e.t.add(c.ID, c.Time)
		}
		e.st.Count, e.st.Digest = e.t.all.n, e.t.all.d
		e.st.Seq = cur
		return
	}
}
