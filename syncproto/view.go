package syncproto

import (
	"container/list"
	"crypto/rand"
	"encoding/binary"
	"slices"
	"sync"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/repo"
	"github.com/zeebo/blake3"
)

// A view's commits, V, are those of the items it may read plus those it
// owns (see View). A Responder answers a requester with a view from a
// viewState: V's count and digest, the items it may read, and positions
// of its own.
//
// Positions. A restricted requester must not learn the log's epoch or
// sequence number (they tell how much was written that it may not see),
// yet it resumes from a position and compares positions in notices, where
// a larger Seq means later. So a view has positions of its own: Seq counts
// the changes of V (it grows by one each time a request or a notice finds
// V changed, and stays put while only commits outside V are written), and
// Epoch is a keyed hash of (view key, log epoch, the log sequence number
// the state was built at). The state maps each position it issued to the
// log sequence number it was up to then (marks), and remembers which items
// entered V after it (entered): resuming from a position sends the commits
// in V after its mark, and the whole history of the items that entered V
// since. A position the state does not know (tampered, too old, from an
// evicted state, another view or another log) is no resume: the client
// takes the Bloom path, never an error.
//
// A state evicted and rebuilt at the same log sequence number gets the
// same Epoch and starts at Seq 0, which is where the old one was (V
// changes only with new commits); rebuilt later, it gets a new Epoch.

// Bounds on what a viewState remembers to resolve positions: past them it
// forgets the oldest half of its positions. (views.bounds holds them, so
// tests can lower them.)
const (
	maxMarks   = 4096 // positions
	maxEntered = 4096 // items that entered the view
)

// viewBounds are a viewState's bounds.
type viewBounds struct{ marks, entered int }

// views caches view states by repository and view key, least recently
// used out.
type views struct {
	mu     sync.Mutex // guards m, lru and added
	added  int        // entries added since the last sweep of closed repositories (closer)
	max    int
	bounds viewBounds
	key    [32]byte // keys the hash that makes positions' epochs
	m      map[viewID]*list.Element
	lru    list.List // of *viewEntry, most recently used first
}

type viewID struct {
	r   Repo
	key string
}

type viewEntry struct {
	id viewID
	vs *viewState
}

// init sets the cache's bound and the key of its positions' epochs,
// derived from secret (random if nil).
func (w *views) init(max int, secret []byte) {
	w.max = max
	w.bounds = viewBounds{maxMarks, maxEntered}
	if secret == nil {
		secret = make([]byte, 32)
		rand.Read(secret) // never fails (crypto/rand)
	}
	blake3.DeriveKey("goatdb syncproto 2025 view positions", secret, w.key[:])
}

// of returns the state of r's view with the given key, made (unbuilt) if
// there is none, and evicts the least recently used beyond the bound.
func (w *views) of(r Repo, key string) *viewState {
	id := viewID{r, key}
	w.mu.Lock()
	defer w.mu.Unlock()
	if e, ok := w.m[id]; ok {
		w.lru.MoveToFront(e)
		return e.Value.(*viewEntry).vs
	}
	if w.m == nil {
		w.m = map[viewID]*list.Element{}
	}
	vs := &viewState{key: key, hkey: &w.key, bounds: w.bounds}
	w.m[id] = w.lru.PushFront(&viewEntry{id, vs})
	if w.added++; sweepDue(w.lru.Len(), w.added) {
		for e := w.lru.Front(); e != nil; {
			next := e.Next()
			if id := e.Value.(*viewEntry).id; isClosed(id.r) {
				delete(w.m, id)
				w.lru.Remove(e)
			}
			e = next
		}
		w.added = 0
	}
	for w.lru.Len() > w.max {
		delete(w.m, w.lru.Remove(w.lru.Back()).(*viewEntry).id)
	}
	return vs
}

// viewState is V's count and digest for one view of one repository, kept
// up to date incrementally: each update reads the commits written since
// the last, asks MayRead again only for the items they belong to, and
// adds those in view. When an item enters or leaves V, V is counted again
// from the whole log, once.
type viewState struct {
	key    string    // the view key
	hkey   *[32]byte // the key of the positions' hash
	bounds viewBounds

	mu      sync.RWMutex    // guards everything below
	built   bool            // the fields below are set
	epoch   uint64          // the log epoch the state follows
	point   uint64          // Point.Epoch of the view's positions
	seq     uint64          // the log sequence number read up to
	in      tally           // count and digest of V, by day
	read    map[string]bool // each item seen: whether the view may read it
	pos     uint64          // the current position (Point.Seq)
	base    uint64          // the oldest position still resolved
	marks   []uint64        // marks[i]: the log sequence number at position base+i
	entered []entered       // items that entered V, by position
	flip    uint64          // the last position at which an item entered or left V
}

// entered records that item key entered V at position pos.
type entered struct {
	pos uint64
	key string
}

// update brings the state up to date with r, whose view v is, and
// returns V's State: the view's position, count and digest.
func (vs *viewState) update(r Repo, v View) State {
	st, _ := vs.updateAt(r, v, 0, 0)
	return st
}

// updateAt is update with the count and digest of V's commits from
// horizon h on (all of them for 0); it also returns V's set from horizon
// g on.
func (vs *viewState) updateAt(r Repo, v View, h, g int64) (State, set) {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if e := r.Epoch(); !vs.built || vs.epoch != e {
		vs.build(r, v, e)
	} else {
		vs.advance(r, v)
	}
	if hs := vs.in.missingCuts(h, g); len(hs) > 0 {
		// The commits of V up to vs.seq: the log's, less those after it
		// (read after, so that none written meanwhile is counted).
		all, _ := stampsSince(r, 0)
		later, _ := stampsSince(r, vs.seq)
		skip := make(map[commit.ID]bool, len(later))
		for _, s := range later {
			skip[s.ID] = true
		}
		vs.in.setCuts(hs, func(h int64) set {
			return cutOf(all, h, func(s repo.Stamp) bool { return !skip[s.ID] && vs.visibleStamp(r, s, v) })
		})
	}
	in := vs.in.above(h)
	return State{Epoch: vs.point, Seq: vs.pos, Count: in.n, Digest: in.d}, vs.in.above(g)
}

// build counts V from the whole log of epoch e.
func (vs *viewState) build(r Repo, v View, e uint64) {
	all, cur := stampsSince(r, 0)
	vs.read = map[string]bool{}
	vs.in = vs.in.emptied()
	for _, s := range all {
		vs.mayRead(s.Key, v)
		if vs.visibleStamp(r, s, v) {
			vs.in.add(s.ID, s.Time)
		}
	}
	vs.built, vs.epoch, vs.seq = true, e, cur
	vs.point = vs.pointEpoch(e, cur)
	vs.pos, vs.base, vs.marks, vs.entered, vs.flip = 0, 0, []uint64{cur}, nil, 0
}

// mayRead returns whether the view may read item key, asking v the first
// time.
func (vs *viewState) mayRead(key string, v View) bool {
	rd, ok := vs.read[key]
	if !ok {
		rd = v.MayRead(key)
		vs.read[key] = rd
	}
	return rd
}

// advance reads the commits written since the last update.
func (vs *viewState) advance(r Repo, v View) {
	fresh, cur := r.CommitsSince(vs.seq)
	if len(fresh) == 0 {
		vs.seq = cur
		vs.marks[len(vs.marks)-1] = cur
		return
	}
	before := vs.in.all
	var in []string // items that entered V
	flipped := false
	asked := map[string]bool{}
	ask := func(key string) {
		if asked[key] {
			return
		}
		asked[key] = true
		was, seen := vs.read[key]
		now := v.MayRead(key)
		vs.read[key] = now
		if seen && was != now {
			flipped = true
			if now {
				in = append(in, key)
			}
		}
	}
	for _, c := range fresh {
		ask(c.Key())
	}
	if !flipped {
		for _, c := range fresh {
			if vs.visible(c, v) {
				vs.in.add(c.ID(), c.Time())
			}
		}
		vs.seq = cur
	} else {
		// Count again from the whole log, asking about the items written
		// since cur too (asking early is harmless: they are asked again
		// when read).
		all, upTo := stampsSince(r, 0)
		later, _ := stampsSince(r, cur)
		for _, s := range later {
			ask(s.Key)
		}
		vs.in = vs.in.emptied()
		for _, s := range all {
			if vs.visibleStamp(r, s, v) {
				vs.in.add(s.ID, s.Time)
			}
		}
		vs.seq = upTo
	}
	if vs.in.all == before {
		vs.marks[len(vs.marks)-1] = vs.seq
		return
	}
	vs.pos++
	vs.marks = append(vs.marks, vs.seq)
	if flipped {
		vs.flip = vs.pos
	}
	for _, key := range in {
		vs.entered = append(vs.entered, entered{vs.pos, key})
	}
	vs.trim()
}

// visible reports whether c is in V. The caller holds mu.
func (vs *viewState) visible(c *commit.Commit, v View) bool {
	return vs.read[c.Key()] || v.Own(c)
}

// visibleStamp is visible for the commit s stamps, read from r only if
// its item is one the view may not read (to ask Own). A commit r no
// longer holds is not in V.
func (vs *viewState) visibleStamp(r Repo, s repo.Stamp, v View) bool {
	if vs.read[s.Key] {
		return true
	}
	c, ok := r.Commit(s.ID)
	return ok && v.Own(c)
}

// trim keeps marks and entered within their bounds.
func (vs *viewState) trim() {
	if n := len(vs.entered); n > vs.bounds.entered {
		vs.forget(vs.entered[n/2].pos)
	}
	if n := len(vs.marks); n > vs.bounds.marks {
		vs.forget(vs.base + uint64(n/2))
	}
}

// forget stops resolving the positions before pos.
func (vs *viewState) forget(pos uint64) {
	if pos <= vs.base {
		return
	}
	vs.marks = slices.Clone(vs.marks[pos-vs.base:])
	vs.base = pos
	i, _ := slices.BinarySearchFunc(vs.entered, pos+1, func(e entered, p uint64) int {
		return cmpUint(e.pos, p)
	})
	vs.entered = slices.Clone(vs.entered[i:])
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// resolve returns the log sequence number position pt was up to and the
// items that entered V after it, or false if pt is not a position of this
// state. The caller holds mu.
func (vs *viewState) resolve(pt Point) (seq uint64, in map[string]bool, ok bool) {
	if !vs.built || pt.Epoch != vs.point || pt.Seq < vs.base || pt.Seq > vs.pos {
		return 0, nil, false
	}
	i, _ := slices.BinarySearchFunc(vs.entered, pt.Seq+1, func(e entered, p uint64) int {
		return cmpUint(e.pos, p)
	})
	if i < len(vs.entered) {
		in = make(map[string]bool, len(vs.entered)-i)
		for _, e := range vs.entered[i:] {
			in[e.key] = true
		}
	}
	return vs.marks[pt.Seq-vs.base], in, true
}

// pointEpoch returns the Epoch of the positions of a state built at
// sequence number seq of the log of epoch e: a keyed hash, so it tells
// nothing of either.
func (vs *viewState) pointEpoch(e, seq uint64) uint64 {
	h, _ := blake3.NewKeyed(vs.hkey[:]) // the key is 32 bytes: no error
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:], e)
	binary.LittleEndian.PutUint64(b[8:], seq)
	h.Write(b[:])
	h.WriteString(vs.key)
	return binary.LittleEndian.Uint64(h.Sum(nil))
}

// scope is what one request may see of a repository: all of it (vs nil),
// or a view's commits. A scope caches the commits in it, which every
// Bloom-path step reads.
type scope struct {
	r     Repo
	v     View       // nil: all of r
	vs    *viewState // v's state, read-locked while the scope is in use; nil if v is
	h     int64      // r's horizon
	all   []*commit.Commit
	got   bool         // all is set
	ss    []repo.Stamp // the stamps of the commits in the scope, once asked for
	ssok  bool
	above []*commit.Commit // those of all from h on, if aok
	aok   bool
}

// visible reports whether c is in the scope.
func (sc *scope) visible(c *commit.Commit) bool { return sc.vs == nil || sc.vs.visible(c, sc.v) }

// everything returns the commits in the scope, in log order.
func (sc *scope) everything() []*commit.Commit {
	if !sc.got {
		sc.all, sc.got = sc.since(0), true
	}
	return sc.all[:len(sc.all):len(sc.all)]
}

// stamps returns the stamps of the commits in the scope, in log order:
// for all of r, without decoding a commit (stampsSince); for a view, of
// the commits it shows.
func (sc *scope) stamps() []repo.Stamp {
	switch {
	case sc.ssok:
	case sc.vs == nil && !sc.got:
		sc.ss, _ = stampsSince(sc.r, 0)
	default:
		all := sc.everything()
		sc.ss = make([]repo.Stamp, len(all))
		for i, c := range all {
			sc.ss[i] = repo.Stamp{ID: c.ID(), Key: c.Key(), Time: c.Time()}
		}
	}
	sc.ssok = true
	return sc.ss[:len(sc.ss):len(sc.ss)]
}

// recent returns the commits in the scope from its horizon on, in log
// order: all of them if r never collected.
func (sc *scope) recent() []*commit.Commit {
	all := sc.everything()
	if sc.h <= 0 {
		return all
	}
	if !sc.aok {
		sc.above, sc.aok = fromHorizon(all, sc.h), true
	}
	return sc.above[:len(sc.above):len(sc.above)]
}

// fromHorizon returns the commits of cs of time h or later.
func fromHorizon(cs []*commit.Commit, h int64) []*commit.Commit {
	out := make([]*commit.Commit, 0, len(cs))
	for _, c := range cs {
		if c.Time() >= h {
			out = append(out, c)
		}
	}
	return out
}

// poolStamps is pool's stamps, in log order.
func (sc *scope) poolStamps(q *RepoRequest) []repo.Stamp {
	if q.Horizon == 0 {
		return sc.stamps()
	}
	return sc.recentStamps()
}

// recentStamps is recent's stamps, in log order.
func (sc *scope) recentStamps() []repo.Stamp {
	all := sc.stamps()
	if sc.h <= 0 {
		return all
	}
	out := make([]repo.Stamp, 0, len(all))
	for _, s := range all {
		if s.Time >= sc.h {
			out = append(out, s)
		}
	}
	return out
}

// commitsOf returns the scope's commits that ss stamps, in order: for
// all of r read by id; for a view, from the commits it already decoded.
func (sc *scope) commitsOf(ss []repo.Stamp) []*commit.Commit {
	if sc.vs == nil || !sc.got {
		return commitsOf(sc.r, ss)
	}
	want := make(map[commit.ID]bool, len(ss))
	for _, s := range ss {
		want[s.ID] = true
	}
	var out []*commit.Commit
	for _, c := range sc.everything() {
		if want[c.ID()] {
			out = append(out, c)
		}
	}
	return out
}

// pool returns the commits a request's filter and bulk sends choose from:
// those from the horizon on, unless the request named no horizon (the
// client compares everything: it holds nothing, or never synced with a
// collected server), then all of them.
func (sc *scope) pool(q *RepoRequest) []*commit.Commit {
	if q.Horizon == 0 {
		return sc.everything()
	}
	return sc.recent()
}

// shallowRooter is the optional method of a Repo that collected history:
// whether a commit it holds is a shallow root (some of its parents were
// collected), and if so its generation, delta depth and which parents
// were collected (repo.Repo.ShallowRoot).
type shallowRooter interface {
	ShallowRoot(id commit.ID) (repo.Shallow, bool)
}

// shallow returns the shallow roots among cs.
func (sc *scope) shallow(cs []*commit.Commit) []ShallowRoot {
	sr, ok := sc.r.(shallowRooter)
	if !ok || sc.h <= 0 {
		return nil
	}
	var out []ShallowRoot
	for _, c := range cs {
		if x, ok := sr.ShallowRoot(c.ID()); ok && x.Gen > 0 && x.Absent != 0 {
			out = append(out, ShallowRoot{ID: c.ID(), Gen: x.Gen, Depth: x.Depth, Absent: x.Absent})
		}
	}
	return out
}

// since returns the commits in the scope after log sequence number seq,
// in log order.
func (sc *scope) since(seq uint64) []*commit.Commit {
	cs, _ := sc.r.CommitsSince(seq)
	if sc.vs == nil {
		return cs
	}
	out := make([]*commit.Commit, 0, len(cs))
	for _, c := range cs {
		if sc.vs.visible(c, sc.v) {
			out = append(out, c)
		}
	}
	return out
}

// missing returns the ids pending commits wait for and r lacks: for a
// view, only those commits in view wait for.
func (sc *scope) missing() []commit.ID {
	ids := sc.r.Missing()
	if sc.vs == nil || len(ids) == 0 {
		return limitIDs(ids)
	}
	want := make(map[commit.ID]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	keep := map[commit.ID]bool{}
	for _, c := range sc.everything() {
		for _, p := range c.Parents() {
			if want[p] {
				keep[p] = true
			}
		}
		if !c.IsFull() && want[c.Base()] {
			keep[c.Base()] = true
		}
	}
	out := ids[:0:0]
	for _, id := range ids {
		if keep[id] {
			out = append(out, id)
		}
	}
	return limitIDs(out)
}

// hidden returns, of ids (the commits a request carried), those r holds
// outside the scope.
func (sc *scope) hidden(ids []commit.ID) []commit.ID {
	if sc.vs == nil {
		return nil
	}
	var out []commit.ID
	for _, id := range ids {
		if c, ok := sc.r.Commit(id); ok && !sc.vs.visible(c, sc.v) {
			out = append(out, id)
		}
	}
	return out
}

// candidates chooses the commits in the scope the client lacks, in log
// order within each item (so parents come before children): everything
// if it is empty (from the horizon on if it named one: it holds only
// older commits); what is new since its resume point; what its filter
// does not hold (and, if that is most of the pool, everything else after
// it, so that no round is needed to find commits hidden by false
// positives); and the ids it asked for. The pool is the commits from the
// horizon on unless the request named none (see pool). negatives are the
// ids its filter certainly lacks.
func (sc *scope) candidates(q *RepoRequest, clientCount uint64, got map[commit.ID]bool) (out []*commit.Commit, negatives map[commit.ID]bool) {
	switch {
	case clientCount == 0:
		out = sc.pool(q)
	case q.Resume != nil:
		out = sc.resume(*q.Resume, got)
	}
	if q.Filter != nil && clientCount > 0 {
		var neg []repo.Stamp
		neg, negatives = splitStamps(sc.poolStamps(q), q.Filter, nil)
		out = appendUnique(out, sc.commitsOf(neg))
	}
	return append(out, sc.wanted(q.Missing, out...)...), negatives
}

// wanted returns the commits in the scope of ids (those a client asked
// for) but those of have.
func (sc *scope) wanted(ids []commit.ID, have ...*commit.Commit) []*commit.Commit {
	var ok func(*commit.Commit) bool
	if sc.vs != nil {
		ok = sc.visible
	}
	return appendWanted(have, sc.r, ids, ok)[len(have):]
}

// resume returns the commits in the scope after position pt but those the
// client sent: for a view, also the whole history of the items that
// entered it since. A position that is not the scope's gives none.
func (sc *scope) resume(pt Point, got map[commit.ID]bool) []*commit.Commit {
	seq, in := pt.Seq, map[string]bool(nil)
	if sc.vs == nil {
		if pt.Epoch != sc.r.Epoch() {
			return nil
		}
	} else {
		var ok bool
		if seq, in, ok = sc.vs.resolve(pt); !ok {
			return nil
		}
	}
	var out []*commit.Commit
	for _, c := range sc.since(seq) {
		if !got[c.ID()] {
			out = append(out, c)
		}
	}
	if len(in) == 0 {
		return out
	}
	var hist []*commit.Commit
	for _, c := range sc.everything() {
		if in[c.Key()] && !got[c.ID()] {
			hist = append(hist, c)
		}
	}
	return appendUnique(hist, out)
}

// filter returns a filter of the scope's commit ids from its horizon on
// (whose set is at) for the client to find what it should send; it is
// sized for the difference in counts.
func (sc *scope) filter(at set, clientCount uint64) *Filter {
	ss := sc.recentStamps()
	ids := make([]commit.ID, len(ss))
	for i, s := range ss {
		ids[i] = s.ID
	}
	diff := max(clientCount, at.n) - min(clientCount, at.n)
	return filterOf(ids, diff, 0)
}
