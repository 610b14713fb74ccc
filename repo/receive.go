package repo

import (
	"fmt"
	"time"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/zeebo/blake3"
)

// Rejection names a commit a peer refused and why: one that Receive did
// not store, or (as syncproto.Rejection, the same type) one a sync
// message says the other side refused.
type Rejection struct {
	ID     commit.ID // blake3 of the bytes' body, or of all the bytes if they do not decode
	Reason string
}

// Receive validates commits from another peer and stores the valid ones.
// A commit is rejected, with a reason, if it does not decode, its signature
// does not verify against its session (or it is unsigned where signatures
// are required), it names another repository than this one (see
// Options.Name), it is stamped more than Options.MaxSkew after this peer's
// clock, or, when its parents are here, it does not fit them: wrong
// item, timestamp before a parent, a delta base that is not a full-snapshot
// ancestor, or a merge that differs from the merge this peer computes from
// the same leaves. A commit stamped before the log's horizon that is not
// here is refused for good (BelowHorizon: see Repo.Compact). Commits whose
// parents are missing are stored as pending
// and checked when they complete. Duplicates are ignored. Under Sync
// durability Receive returns after the stored commits are durable.
func (r *Repo) Receive(encs [][]byte) (stored []commit.ID, rejected []Rejection, err error) {
	return r.receive(encs, false, nil)
}

// ReceiveComplete is Receive for commits from a peer that is not trusted
// to make this repository keep what it cannot check: a commit whose
// parents or delta base are neither here nor earlier in encs is refused
// (the reason starts with MissingParents, and sending it again once its
// parents are here is accepted) instead of stored as pending. So nobody
// can make a server keep commits, merges above all, that hang from made-up
// parents.
func (r *Repo) ReceiveComplete(encs [][]byte) (stored []commit.ID, rejected []Rejection, err error) {
	return r.receive(encs, true, nil)
}

// Admit decides whether a commit received by ReceiveChecked is stored. c
// is a non-merge commit whose parents are all here; before is the item's
// value at its parents (merged if several; the zero Item for a new item)
// and after its value at c. nil stores it; an error refuses it with the
// error as the reason.
type Admit func(c *commit.Commit, before, after item.Item) error

// ReceiveChecked is ReceiveComplete that also asks admit (if not nil)
// about every non-merge commit, before anything is written: a commit it
// refuses is never stored, and commits of the batch that build on it are
// refused as missing their parents. Values are checked against
// Options.Validator at the same point, so a commit that breaks its schema
// never reaches the log either.
func (r *Repo) ReceiveChecked(encs [][]byte, admit Admit) (stored []commit.ID, rejected []Rejection, err error) {
	return r.receive(encs, true, admit)
}

// MissingParents starts the reason ReceiveComplete gives for a commit
// whose parents it does not hold.
const MissingParents = "missing parents"

// BelowHorizon starts the reason every Receive gives for a commit stamped
// before the log's horizon (see Repo.Horizon) that this repository does not
// hold: history before the horizon was collected, and no commit that old
// can be valid any more, so it is refused for good.
const BelowHorizon = "below horizon"

// BelowHorizonReason is the reason for refusing a commit stamped t (Unix
// ms) that is not held here, in a log whose horizon is h.
func BelowHorizonReason(t, h int64) string {
	return fmt.Sprintf("%s: commit stamped %s, before %s; history before it was collected here", BelowHorizon, fmtMillis(t), fmtMillis(h))
}

func (r *Repo) receive(encs [][]byte, complete bool, admit Admit) (stored []commit.ID, rejected []Rejection, err error) {
	if r.log == nil {
		return nil, nil, fmt.Errorf("repo: %s is read-only", r.path)
	}
	decoded := make([]*commit.Commit, 0, len(encs))
	latest := r.opts.Now().UnixMilli() + min(r.opts.MaxSkew.Milliseconds(), 1<<62)
	for _, b := range encs {
		c, err := commit.Decode(b)
		if err == nil {
			err = c.VerifySignature(!r.opts.Trusted)
		}
		if err == nil {
			err = r.fits(c, latest)
		}
		if err != nil {
			id := commit.ID(blake3.Sum256(b))
			if c != nil { // it decodes: name it by its id, as documented
				id = c.ID()
			}
			rejected = append(rejected, Rejection{ID: id, Reason: err.Error()})
			continue
		}
		decoded = append(decoded, c)
	}
	if complete {
		decoded = parentsFirst(decoded)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, rejected, ErrClosed
	}
	var fresh []*commit.Commit
	seen := map[commit.ID]bool{}
	var values map[commit.ID]item.Item // of fresh non-merge commits, when complete
	if complete {
		values = map[commit.ID]item.Item{}
	}
	inflight := false // a commit of encs is held on its way to the graph
	for _, c := range decoded {
		if r.held[c.ID()] && !seen[c.ID()] {
			inflight = true
			continue
		}
		if r.commits.get(c.ID()) != nil || seen[c.ID()] {
			continue
		}
		if c.Time() < r.horizon {
			rejected = append(rejected, Rejection{ID: c.ID(), Reason: BelowHorizonReason(c.Time(), r.horizon)})
			continue
		}
		if complete {
			if id, ok := r.absentDepLocked(c, seen); ok {
				rejected = append(rejected, Rejection{ID: c.ID(), Reason: fmt.Sprintf("%s: %s is not here; send it first", MissingParents, id.Short())})
				continue
			}
		}
		if reason := r.precheckLocked(c); reason != "" {
			rejected = append(rejected, Rejection{ID: c.ID(), Reason: reason})
			continue
		}
		if complete && !c.IsMerge() {
			if reason := r.admitLocked(c, values, admit); reason != "" {
				rejected = append(rejected, Rejection{ID: c.ID(), Reason: reason})
				continue
			}
		}
		seen[c.ID()] = true
		fresh = append(fresh, c)
	}
	var t ticket
	if len(fresh) > 0 {
		if r.opts.Durability == Sync {
			t, err = r.holdBatchLocked(&batch{commits: fresh, untrusted: true, validate: complete}, nil)
		} else {
			r.markLocked(fresh, true, complete)
			_, err = r.appendLocked(fresh)
			r.untrusted, r.validating = nil, nil
		}
	}
	var other ticket // another writer's batch that holds commits of encs
	if inflight && t.end == 0 && len(r.tentative) > 0 {
		other = r.tentative[len(r.tentative)-1].t
	}
	r.mu.Unlock()
	if err != nil {
		return nil, rejected, err
	}
	if err := r.settleDurable(t); err != nil {
		return nil, rejected, err
	}
	// Commits another writer is storing (a concurrent sync that received
	// them too) join the graph before Receive returns, so that a caller
	// comparing its set with a peer's right after sees them. Their
	// batch's failure is that writer's to report.
	_ = r.settleDurable(other)
	// A commit that completed here but does not fit its parents (a forged
	// merge whose parents came in the same batch, say) stays out of the
	// graph; it is reported like any other rejection.
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, c := range fresh {
		if n := r.commits.get(c.ID()); n != nil && n.bad {
			rejected = append(rejected, Rejection{ID: c.ID(), Reason: r.badWhy[n]})
		} else {
			stored = append(stored, c.ID())
		}
	}
	return stored, rejected, nil
}

// admitLocked checks a complete non-merge commit before it is stored: its
// value against its schema (Options.Validator) and, with its value before,
// against admit. values holds the values of the batch's commits admitted so
// far, and gets c's. It returns why c is refused, or "".
func (r *Repo) admitLocked(c *commit.Commit, values map[commit.ID]item.Item, admit Admit) string {
	after, err := r.previewValue(c, values)
	if err != nil {
		return err.Error()
	}
	if r.opts.Validator != nil {
		if err := r.opts.Validator.Validate(after, c.Schema()); err != nil {
			return fmt.Sprintf("does not fit its schema: %v", err)
		}
	}
	if admit != nil {
		before, err := r.previewBefore(c, values)
		if err != nil {
			return err.Error()
		}
		if err := admit(c, before, after); err != nil {
			return "not allowed: " + err.Error()
		}
	}
	values[c.ID()] = after
	return ""
}

// previewValue returns the value of a commit not stored yet whose delta
// base is here or in values.
func (r *Repo) previewValue(c *commit.Commit, values map[commit.ID]item.Item) (item.Item, error) {
	if c.IsFull() {
		return c.Value(), nil
	}
	base, ok := values[c.Base()]
	if !ok {
		n := r.commits.get(c.Base())
		if n == nil || !n.complete() {
			return item.Item{}, fmt.Errorf("%s: delta base %s is not stored yet; send it again", MissingParents, c.Base().Short())
		}
		st := r.items.get(c.Key())
		var err error
		if base, err = r.baseValue(st, n); err != nil {
			return item.Item{}, err
		}
		if st != nil && n != st.head && (st.base == nil || st.base.n != n) {
			// c is likely the item's next head: its value, checked again
			// when c completes, needs the base too.
			st.base = &knownValue{n, base}
		}
	}
	v, err := item.Patch(base, c.Delta())
	if err != nil {
		return item.Item{}, fmt.Errorf("delta does not apply to its base: %v", err)
	}
	return v, nil
}

// previewBefore returns the value of c's item at c's parents: the zero
// Item for a new item, a parent's value, or the merge of several parents
// when all of them are stored.
func (r *Repo) previewBefore(c *commit.Commit, values map[commit.ID]item.Item) (item.Item, error) {
	ps := c.Parents()
	if len(ps) == 1 {
		if v, ok := values[ps[0]]; ok {
			return v, nil
		}
	}
	nodes := make([]*node, 0, len(ps))
	for _, id := range ps {
		n := r.commits.get(id)
		if n == nil || !n.complete() || n.bad {
			return item.Item{}, fmt.Errorf("%s: parent %s is not stored yet; send it again", MissingParents, id.Short())
		}
		nodes = append(nodes, n)
	}
	switch len(nodes) {
	case 0:
		return item.Item{}, nil
	case 1:
		return r.valueKnown(nodes[0])
	}
	return r.mergeValues(nodes, c.Schema())
}

// parentsFirst orders cs so that every commit comes after the parents and
// delta base it has in cs, keeping the order otherwise, in linear time.
func parentsFirst(cs []*commit.Commit) []*commit.Commit {
	byID := make(map[commit.ID]*commit.Commit, len(cs))
	for _, c := range cs {
		byID[c.ID()] = c
	}
	out := make([]*commit.Commit, 0, len(cs))
	done := make(map[commit.ID]bool, len(cs))
	type frame struct {
		c    *commit.Commit
		deps []commit.ID
	}
	for _, c := range cs {
		if done[c.ID()] {
			continue
		}
		done[c.ID()] = true
		stack := []frame{{c, deps(c)}}
		for len(stack) > 0 {
			f := &stack[len(stack)-1]
			if len(f.deps) == 0 {
				out = append(out, f.c)
				stack = stack[:len(stack)-1]
				continue
			}
			id := f.deps[0]
			f.deps = f.deps[1:]
			if p := byID[id]; p != nil && !done[id] {
				done[id] = true
				stack = append(stack, frame{p, deps(p)})
			}
		}
	}
	return out
}

// deps returns a commit's parents and, for a delta, its base.
func deps(c placed) []commit.ID {
	ds := c.Parents()
	if !c.IsFull() {
		ds = append(ds[:len(ds):len(ds)], c.Base())
	}
	return ds
}

// absentDepLocked returns a parent or delta base of c that is neither a
// complete commit here, nor held on its way to the log, nor in batch.
func (r *Repo) absentDepLocked(c *commit.Commit, batch map[commit.ID]bool) (commit.ID, bool) {
	for _, id := range deps(c) {
		if p := r.commits.get(id); p != nil && p.complete() && !p.bad || r.held[id] || batch[id] {
			continue
		}
		return id, true
	}
	return commit.ID{}, false
}

func fmtMillis(t int64) string { return time.UnixMilli(t).UTC().Format(time.RFC3339Nano) }

// fits checks what a received commit says of where and when it was made:
// it must name this repository (when this one is named), and not be
// stamped after latest (Unix ms).
func (r *Repo) fits(c *commit.Commit, latest int64) error {
	switch {
	case r.opts.Name != "" && c.Repo() == "":
		return fmt.Errorf("commit names no repository (version 1); %s takes only commits that name it", r.opts.Name)
	case c.Repo() != r.opts.Name:
		return fmt.Errorf("commit belongs to repository %s, not %s", c.Repo(), r.opts.Name)
	case c.Time() > latest:
		return fmt.Errorf("commit is stamped %s, more than %v after this peer's clock",
			time.UnixMilli(c.Time()).UTC().Format(time.RFC3339), r.opts.MaxSkew)
	}
	return nil
}

// precheckLocked checks a received commit against its parents when they are
// all here and complete; it returns why the commit is invalid, or "".
func (r *Repo) precheckLocked(c *commit.Commit) string {
	deps := c.Parents()
	if !c.IsFull() {
		deps = append(deps[:len(deps):len(deps)], c.Base())
	}
	for _, id := range deps {
		if p := r.commits.get(id); p == nil || !p.complete() {
			return "" // pending: checked on completion
		}
	}
	if err := r.link(r.placeNode(c)); err != nil {
		return err.Error()
	}
	if c.IsMerge() {
		return r.checkMerge(c)
	}
	return ""
}

// checkMerge recomputes a merge commit from its parents.
func (r *Repo) checkMerge(c placed) string {
	leaves := make([]*node, len(c.Parents()))
	for i, p := range c.Parents() {
		leaves[i] = r.commits.get(p)
	}
	want, err := r.computeMerge(c.Key(), leaves)
	if err != nil {
		return "cannot recompute merge: " + err.Error()
	}
	if want.ID() != c.ID() {
		return fmt.Sprintf("merge differs from its recomputation %s", want.ID().Short())
	}
	return ""
}
