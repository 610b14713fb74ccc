package repo

import (
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
)

// Under Sync durability a commit joins the graph, and so becomes readable
// and syncable, only once the fsync that covers its record has succeeded.
// Until then it waits in a tentative batch, in log order, and a local
// write's new head waits in inflight, so that the next write of the same
// item builds on it (an Update stays atomic) while readers still see the
// old head. A batch whose records a failure dropped is forgotten: its
// commits never appear, and a write built on one of them is built again.
// Under Async durability a write is acknowledged at once and its commits
// join the graph at once; a failed flush keeps them to write again. An
// exclusion record (exclude.go) is held and joins the same way, in log
// order among the commits.

// batch is the commits of one log record, or its exclusion, held until
// durable.
type batch struct {
	t         ticket
	size      uint32 // the record's length
	commits   []*commit.Commit
	op        *exclOp // an exclusion record (exclude.go) instead of commits
	untrusted bool    // received from a peer: merges among them are recomputed
	validate  bool    // received by ReceiveComplete: values checked by Options.Validator
}

// pendingHead is a local write's item head that is not durable yet.
type pendingHead struct {
	n     *node
	value item.Item
}

// headLocked returns the head and value a new write of key builds on: a
// pending one, or the graph's.
func (r *Repo) headLocked(key string) (*node, item.Item, bool) {
	if p := r.inflight[key]; p != nil {
		return p.n, p.value, true
	}
	if st := r.items.get(key); st != nil && st.head != nil {
		return st.head, st.val(r), true
	}
	return nil, item.Item{}, false
}

// pendingNode describes a commit a write built on parent (nil for a new
// item), as link would once it joins the graph.
func (r *Repo) pendingNode(c *commit.Commit, parent *node) *node {
	n := r.placeNode(c)
	n.h = &held{full: c}
	n.gen = 1
	if parent == nil {
		return n
	}
	n.gen = parent.gen + 1
	if !c.IsFull() {
		n.base = parent
		if !parent.c.IsFull() {
			n.base = parent.base
		}
		n.schema = n.base.schema
		n.depth = min(maxChain, parent.depth+1)
	}
	return n
}

// holdLocked logs commits as one record and holds them as a tentative
// batch.
func (r *Repo) holdLocked(commits []*commit.Commit, untrusted bool, gen *uint64) (ticket, error) {
	return r.holdBatchLocked(&batch{commits: commits, untrusted: untrusted}, gen)
}

// holdBatchLocked logs b's commits as one record and holds b.
func (r *Repo) holdBatchLocked(b *batch, gen *uint64) (ticket, error) {
	commits, op := b.commits, b.op
	var size int
	add := func(b []byte, claim int64) []byte {
		n := len(b)
		switch {
		case op != nil:
			b = appendExclusionRecord(b, op, claim)
		case len(commits) == 1:
			b = appendCommitRecord(b, commits[0], r.owner, claim)
		default:
			b = appendGroupRecord(b, commits, r.owner, claim)
		}
		size = len(b) - n
		return b
	}
	var t ticket
	var err error
	if gen != nil {
		t, err = r.log.appendIfGen(*gen, add)
	} else {
		t, err = r.log.appendWith(add)
	}
	if err != nil {
		return t, err
	}
	b.t, b.size = t, uint32(size)
	r.tentative = append(r.tentative, b)
	for _, c := range commits {
		r.held[c.ID()] = true
	}
	return t, nil
}

// confirmLocked moves the tentative batches that are durable into the
// graph, in log order, forgets those a failure dropped, settles the items
// they touched and wakes watchers. Merges it writes are held like any
// other commit; it returns the ticket of the last batch still held.
func (r *Repo) confirmLocked() (ticket, bool) {
	keys := map[string]bool{}
	moved := false
	for len(r.tentative) > 0 {
		b := r.tentative[0]
		lost := r.log.lost(b.t)
		if !lost && !r.log.isDurable(b.t) {
			break
		}
		r.tentative[0] = nil
		r.tentative = r.tentative[1:]
		for _, c := range b.commits {
			delete(r.held, c.ID())
			if p := r.inflight[c.Key()]; p != nil && p.n.decoded() == c {
				delete(r.inflight, c.Key())
			}
		}
		if lost {
			r.forgetDroppedLocked()
			continue
		}
		end := uint64(r.log.place(b.t)) // moved if the log was compacted since
		if b.op != nil {
			for k := range r.applyOpLocked(b.op, end) {
				keys[k] = true
			}
			moved = true
			continue
		}
		r.markLocked(b.commits, b.untrusted, b.validate)
		for i, c := range b.commits {
			r.insert(c, logPos{end, b.size, uint32(i)})
			keys[c.Key()] = true
		}
		r.untrusted, r.validating = nil, nil
		r.seq = end
		moved = true
	}
	if moved {
		r.settleKeys(keys)
		r.wakeLocked()
	}
	if len(r.tentative) == 0 {
		return ticket{}, false
	}
	return r.tentative[len(r.tentative)-1].t, true
}

// forgetDroppedLocked drops every pending head built on a commit that is no
// longer held: a write of that item builds on the graph again.
func (r *Repo) forgetDroppedLocked() {
	for k, p := range r.inflight {
		if !r.held[p.n.c.ID()] {
			delete(r.inflight, k)
		}
	}
}

// settleDurable waits for t's records (under Sync), moves what is durable
// into the graph, and makes the merges that produced durable too. The
// error is t's own.
func (r *Repo) settleDurable(t ticket) error {
	if r.opts.Durability != Sync || t.end == 0 {
		return nil
	}
	err := r.log.sync(t)
	r.mu.Lock()
	last, held := r.confirmLocked()
	r.mu.Unlock()
	// Merges (and other writers' batches) still held: sync them so that
	// the write returns with its item merged. A failure here is not this
	// write's: its records are durable.
	for i := 0; held && i < 4 && r.log.sync(last) == nil; i++ {
		r.mu.Lock()
		last, held = r.confirmLocked()
		r.mu.Unlock()
	}
	return err
}

// markLocked notes which commits about to be inserted came from a peer
// (merges recomputed) and which must pass the Validator; insert's caller
// clears both after.
func (r *Repo) markLocked(commits []*commit.Commit, untrusted, validate bool) {
	if untrusted {
		r.untrusted = make(map[commit.ID]bool, len(commits))
		for _, c := range commits {
			r.untrusted[c.ID()] = true
		}
	}
	if validate && r.opts.Validator != nil {
		r.validating = make(map[commit.ID]bool, len(commits))
		for _, c := range commits {
			r.validating[c.ID()] = true
		}
	}
}
