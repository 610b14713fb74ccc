package syncproto

import (
	"crypto/rand"
	"math"
	"strings"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/syncproto/riblt"
)

// First contact: rateless IBLT reconciliation (see doc.go, "Sketch
// path"). The server side is sketchAnswer; the client side is the run's
// contact, driven by sketchRound (building a request) and takeSymbols
// (handling an answer).

// Symbols per answer. The first answer sends what a difference of the
// count difference n needs with a margin, so that it decodes in one
// answer but rarely: 1.9n, 3n+1 below 64 (the decoder needs about 1.4 to
// 1.8 symbols per element on average, fewer the larger the difference,
// with more spread the smaller it is); sketchEven when the counts are equal (the sets differ
// by as many commits on each side, at least one: a guess); each later one
// as many as the client received so far, at least sketchMoreMin, so that
// a difference the counts hide costs O(log d) round trips. The first
// later one brings what the client received to sketchEven at least: a
// first answer sized by a small count difference that did not decode
// says the sets differ on both sides, which the counts do not show and
// the few symbols received estimate badly.
const (
	sketchFirstMin = 4 // symbols an answer may always carry, whatever its byte budget
	sketchEven     = 64
	sketchMoreMin  = 16
)

// sketchCount returns how many symbols an answer to a sketch from symbol
// from sends (ask, if the client asked for a number), where the two sides' counts differ by diff, within a budget
// of left commit bytes (about 20 bytes a symbol).
func sketchCount(from, ask, diff uint64, left int) int {
	var n uint64
	switch {
	case ask > 0:
		n = ask
	case from > 0:
		n = max(from, sketchMoreMin)
	case diff == 0:
		n = sketchEven
	case diff < 64:
		n = 3*diff + 1
	default:
		n = 2*diff - diff/10
	}
	n = min(n, MaxSymbols, uint64(max(left/20, sketchFirstMin)))
	return int(min(n, riblt.MaxIndex-from))
}

// sketchFarBehind reports whether a client holding n commits where the
// server holds m lacks more than about a third of the server's: the bulk
// path is then cheaper than coding the difference.
func sketchFarBehind(n, m uint64) bool { return n < m-m/3 }

// sketchAnswer answers a request's sketch over the scope: the commits it
// names (Want) once decoded, or a run of coded symbols of the scope's
// commit ids from the request's horizon on (the set whose count and
// digest the answer carries). A client far behind gets neither: its next
// round takes the Bloom path, whose answer is the bulk path (everything
// its filter lacks first, then the rest). clientCount is the client's
// count, st the scope's state from the request's horizon on; left is the
// byte budget.
func (sc *scope) sketchAnswer(q *RepoRequest, clientCount uint64, st State, left int) ([]*commit.Commit, *SymbolRun) {
	k := q.Sketch
	key := k.RibltKey()
	if k.Decoded {
		return sc.byShortID(key, k.Want), nil
	}
	if k.From == 0 && sketchFarBehind(clientCount, st.Count) {
		return nil, nil
	}
	enc := riblt.NewEncoder(key)
	for _, s := range sc.stamps() {
		if q.Horizon <= 0 || s.Time >= q.Horizon {
			enc.Add(s.ID)
		}
	}
	diff := max(clientCount, st.Count) - min(clientCount, st.Count)
	n := sketchCount(k.From, k.Ask, diff, left)
	if n == 0 {
		return nil, nil
	}
	syms := enc.AppendSymbols(make([]riblt.Symbol, 0, n), k.From, k.From+uint64(n))
	return nil, &SymbolRun{Start: k.From, Symbols: syms}
}

// WantOf returns how a Sketch names a commit of short id x (Sketch.Want):
// its high 32 bits.
func WantOf(x uint64) uint32 { return uint32(x >> 32) }

// byShortID returns the scope's commits named by want (WantOf their short
// ids under key), in log order. Any commit of the scope may be named,
// from the horizon on or not: like a missing id, it is the client's to
// ask.
func (sc *scope) byShortID(key riblt.Key, want []uint32) []*commit.Commit {
	if len(want) == 0 {
		return nil
	}
	set := make(map[uint32]bool, len(want))
	for _, x := range want {
		set[x] = true
	}
	var pick []repo.Stamp
	for _, s := range sc.stamps() {
		if set[WantOf(key.ShortID(s.ID))] {
			pick = append(pick, s)
		}
	}
	return commitsOf(sc.r, pick)
}

// sketchDecoderOptions are the options of the client's decoders; nil
// means riblt's defaults. Tests set a tiny budget to force the fallback.
var sketchDecoderOptions *riblt.DecoderOptions

// contact is a run's rateless IBLT exchange with the server: the key it
// chose, the horizon the compared sets start at, the local set then (enc)
// and the decoder fed with it and the symbols received since (recv).
type contact struct {
	seed    [SketchKeySize]byte
	key     riblt.Key
	h       int64
	started bool
	pin     bool // the rounds after name h, whatever the server's horizon
	dead    bool // failed or ended: the rounds after take the Bloom path
	enc     *riblt.Encoder
	dec     *riblt.Decoder
	recv    []riblt.Symbol
	fed     bool   // the last answer carried symbols
	asked   bool   // the decoded round (Want and pushes) was sent
	n       int    // local commits in the compared set
	est     uint64 // the difference as last estimated (more), for a Bloom round after
}

// sketchDiff returns the size of the difference an exchange that gave up
// estimated, to size the Bloom filter of the round after; 0 if none.
func (u *run) sketchDiff() uint64 {
	if u.fc == nil {
		return 0
	}
	return u.fc.est
}

// sketchHorizon returns the horizon this round names and the local state
// from it on: once an exchange started, the one it started at, for the
// rest of the sync. An exchange that started with no horizon (a client
// that never heard of the server's) goes on naming none, as a cold client
// does, so that a Bloom round that follows a failed exchange still offers
// the older commits the server kept (see Horizons).
func (u *run) sketchHorizon(h int64, st State) (int64, State) {
	if fc := u.fc; fc != nil && fc.pin && fc.h != h && !u.cold {
		st, _ = u.states.at(u.Repo, fc.h, 0, u.stampsSince)
		return fc.h, st
	}
	return h, st
}

// sketchRound builds this round's part of the rateless exchange, if the
// round belongs to it, and returns the commits to push then. The first
// round of a sync with no usable resume point starts it, unless the
// repository holds nothing (the bulk path), is cold, or repairs (the
// Bloom path). Later rounds ask for more symbols until the decoder is
// done, then send the commits only this side holds and ask for those only
// the server holds, once. Any failure, an answer without symbols (the
// server took the bulk path), a difference that the Bloom path finds
// cheaper (see more), or digests still unequal after the decoded round
// end it: the rounds after take the Bloom path.
func (u *run) sketchRound(q *RepoRequest, st State, h int64) ([]*commit.Commit, bool) {
	fc := u.fc
	switch {
	case fc == nil || fc.dead:
		return nil, false
	case u.srv == nil:
		if u.repair || st.Count == 0 || u.cold {
			fc.dead = true
			return nil, false
		}
		fc.start(h)
		fc.pin = true
		q.Sketch = &Sketch{Key: fc.seed}
		return nil, true
	case fc.dec == nil || fc.dec.Err() != nil || fc.asked:
		fc.dead = true
		return nil, false
	case !fc.dec.Done():
		ask, ok := fc.more()
		if !fc.fed || !ok {
			fc.dead = true
			return nil, false
		}
		q.Sketch = &Sketch{Key: fc.seed, From: fc.dec.Received(), Ask: ask}
		return nil, true
	}
	want, local := fc.dec.RemoteOnly(), fc.dec.LocalOnly()
	if len(want) > MaxWant || len(want)+len(local) == 0 {
		fc.dead = true // too many to name, or a collision across the sides
		return nil, false
	}
	fc.asked = true
	names := make([]uint32, len(want))
	for i, x := range want {
		names[i] = WantOf(x)
	}
	q.Sketch = &Sketch{Key: fc.seed, Decoded: true, Want: names}
	return u.sketchPush(local), true
}

// newContact returns a contact under a fresh random key.
func newContact() *contact {
	fc := &contact{}
	rand.Read(fc.seed[:]) // never fails (crypto/rand)
	fc.key = (&Sketch{Key: fc.seed}).RibltKey()
	return fc
}

// start starts the exchange from horizon h on.
func (fc *contact) start(h int64) { fc.started, fc.h = true, h }

// load makes the decoder and the encoder of r's commits from the
// exchange's horizon on, when the first symbols arrive: an answer
// without symbols (the sets are equal) costs the client nothing. The
// local set is fixed from then on; what the answer that brought the
// symbols stored is in it, which is right: those are commits of the
// server's set (asked for by id), and the decoder then finds them on
// neither side.
func (fc *contact) load(all []repo.Stamp) {
	fc.enc = riblt.NewEncoder(fc.key)
	fc.dec = riblt.NewDecoder(fc.key, sketchDecoderOptions)
	ids := idsFrom(all, fc.h)
	for _, id := range ids {
		fc.enc.Add(id)
		fc.dec.Add(id)
	}
	fc.n = len(ids)
}

// more returns how many symbols to ask for next, from an estimate of the
// difference, or false if a Bloom round is cheaper: about two filters of
// 1.75 bytes per commit, against 18 bytes per symbol.
func (fc *contact) more() (uint64, bool) {
	m := len(fc.recv)
	d, lower := fc.estimate()
	if lower {
		d *= 4 // no empty symbol yet: the difference may be much larger
	}
	fc.est = uint64(d)
	need := max(int(1.7*d)+16-m, m/2, sketchMoreMin, sketchEven-m)
	if 18*need > 7*fc.n/2 {
		return 0, false
	}
	return uint64(min(need, MaxSymbols)), true
}

// estimate estimates the size d of the difference from the symbols
// received: the difference's symbol j is empty with probability
// (1-p_j)^d, p_j = 2/(j+2) the chance that an element joins it. It
// counts the empty ones among the upper half of those received and
// solves for d; if none is empty, it returns the d at which one would be
// expected, a lower bound (lower true).
func (fc *contact) estimate() (d float64, lower bool) {
	m := len(fc.recv)
	lo := m / 2
	local := fc.enc.AppendSymbols(nil, uint64(lo), uint64(m))
	zeros := 0
	for i, l := range local {
		r := fc.recv[lo+i]
		if r.Sum == l.Sum && r.Check == l.Check && r.Count == l.Count {
			zeros++
		}
	}
	target := float64(zeros)
	if zeros == 0 {
		target, lower = 1, true
	}
	expect := func(d float64) float64 {
		e := 0.0
		for j := lo; j < m; j++ {
			e += math.Pow(1-2/float64(j+2), d)
		}
		return e
	}
	a, b := 0.0, float64(4*riblt.MaxIndex)
	for range 64 {
		mid := (a + b) / 2
		if expect(mid) > target {
			a = mid
		} else {
			b = mid
		}
	}
	return a, lower
}

// sketchPush returns what the decoded round pushes: the commits that did
// not fit the last request, the local commits the decoder found only here
// (from the server's horizon on: it collected older ones), those the
// server asked for, and those to retry.
func (u *run) sketchPush(local []uint64) []*commit.Commit {
	out := u.unsent(u.backlog)
	only := make(map[uint64]bool, len(local))
	for _, x := range local {
		only[x] = true
	}
	var cand []*commit.Commit
	if len(only) > 0 {
		all := u.allStamps()
		var pick []repo.Stamp
		for _, s := range all {
			if (u.fc.h > 0 && s.Time < u.fc.h) || (u.srv.Horizon > 0 && s.Time < u.srv.Horizon) {
				continue
			}
			if only[u.fc.key.ShortID(s.ID)] && !u.got[s.ID] && !u.excluded[s.ID] {
				pick = append(pick, s)
			}
		}
		cand = commitsOf(u.Repo, pick)
	}
	out = appendUnique(out, cand)
	out = appendWanted(out, u.Repo, u.srv.Missing, nil)
	out, u.retry = appendUnique(out, u.retry), nil
	return out
}

// takeSymbols feeds the symbols of the server's answer to the decoder.
// An error stops the decoder for good (riblt), and the next round falls
// back to the Bloom path.
func (u *run) takeSymbols(p *RepoResponse) {
	fc := u.fc
	if fc == nil || fc.dead {
		return
	}
	fc.fed = p.Symbols != nil && fc.started && p.Symbols.Start == uint64(len(fc.recv))
	if !fc.fed {
		return
	}
	if fc.dec == nil {
		fc.load(u.allStamps())
	}
	fc.pin = true
	fc.recv = append(fc.recv, p.Symbols.Symbols...)
	if err := fc.dec.AddSymbols(p.Symbols.Start, p.Symbols.Symbols); err != nil {
		fc.dead = true
	}
}

// sketchRefused reports whether err is a server's refusal of a request
// that carried a sketch for its version (a server that predates version
// 3): the Syncer then stops sending sketches, and syncs that server with
// the Bloom path.
func sketchRefused(req *Request, err error) bool {
	if !strings.Contains(err.Error(), ErrVersion.Error()) {
		return false
	}
	for i := range req.Repos {
		if req.Repos[i].Sketch != nil {
			return true
		}
	}
	return false
}

// sketchOn is sketchRound for request's switch: it reports whether this
// round belongs to the rateless exchange, with its pushes in push.
func (u *run) sketchOn(q *RepoRequest, st State, h int64, push *[]*commit.Commit) bool {
	p, ok := u.sketchRound(q, st, h)
	*push = p
	return ok
}
