package repo

import "github.com/goatdb/goatdb/commit"

// Shallow commits across sync. A peer that compacted its log sends a peer
// that lacks them commits some of whose parents it collected (shallow
// commits, see Compact), saying for each what ShallowRoot returns;
// ReceiveShallow stores them so that they complete without those parents,
// as the horizon record makes them complete on the peer that sent them.

// Shallow is what makes a commit whose parents were collected complete
// without them: the generation number and delta depth it had with them
// (so merges come out as on a peer that holds the whole history), and
// which of its parents were collected (bit i for parent i).
type Shallow struct {
	Gen    uint32
	Depth  uint16
	Absent uint64
}

// ShallowRoot reports whether the commit id is held here complete without
// some of its parents (compaction collected them), and if so returns what
// a peer needs to store it the same way.
func (r *Repo) ShallowRoot(id commit.ID) (Shallow, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := r.commits.get(id)
	if n == nil || !n.shallow || !n.complete() {
		return Shallow{}, false
	}
	s := Shallow{Gen: n.gen, Depth: uint16(n.depth)}
	for i, p := range n.c.Parents() {
		if i < 64 && r.commits.get(p) == nil {
			s.Absent |= 1 << i
		}
	}
	return s, s.Absent != 0
}

// ReceiveShallow is Receive for the commits of a peer that compacted its
// log: a commit roots names (with what the peer's ShallowRoot returned)
// completes without the parents its Absent mask names, if this repository
// does not hold them, taking the given generation and depth, instead of
// waiting for them. If some commit was stored so, the log is then
// compacted at its own horizon (Compact(Horizon()): nothing more is
// collected from a log never compacted), so that its horizon record lists
// them and they are complete again when the log is reopened.
func (r *Repo) ReceiveShallow(encs [][]byte, roots map[commit.ID]Shallow) (stored []commit.ID, rejected []Rejection, err error) {
	r.mu.Lock()
	var added []idPrefix
	for id, s := range roots {
		p := prefixOf(id)
		if _, ok := r.listed[p]; ok || s.Gen == 0 || s.Absent == 0 || s.Depth > maxChain || r.commits.get(id) != nil {
			continue
		}
		if r.listed == nil {
			r.listed = map[idPrefix]shallowEntry{}
		}
		r.listed[p] = shallowEntry{gen: s.Gen, depth: s.Depth, absent: s.Absent}
		added = append(added, p)
	}
	r.mu.Unlock()
	stored, rejected, err = r.Receive(encs)
	r.mu.Lock()
	for _, p := range added {
		delete(r.listed, p)
	}
	if len(r.listed) == 0 {
		r.listed = nil
	}
	shallow := false
	for _, id := range stored {
		if n := r.commits.get(id); n != nil && n.shallow {
			shallow = true
		}
	}
	h := r.horizon
	r.mu.Unlock()
	if err != nil || !shallow {
		return stored, rejected, err
	}
	if _, err := r.Compact(h, nil); err != nil {
		return stored, rejected, err
	}
	return stored, rejected, nil
}
