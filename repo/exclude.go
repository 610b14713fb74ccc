package repo

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
)

// Exclusion takes commits out of the graph without deleting them: a local
// write a server refused (quarantined, kept until it is restored, written
// again or discarded) and the commits of an item this peer may no longer
// read (forgotten). Excluding a commit excludes every commit that descends
// from it, now or when it arrives, since none of them can be valid without
// it. The commits named are the roots; node.out marks every commit they
// exclude, and the graph treats it like a refused commit: never a leaf,
// never in a merge, never offered to a peer. What remains of an item is
// ancestor-closed, so its leaves, head and merges are those of a history
// in which the excluded commits never happened.
//
// Every Exclude, Restore and Discard is one record in the log (type 6),
// written, synced and recovered like a write (see doc.go, Exclusion).

// ExcludeKind says why commits are excluded.
type ExcludeKind uint8

const (
	// ExcludeQuarantined marks a local write a server refused: kept and
	// listed by Excluded until Restore brings it back, Reauthor writes its
	// change again, or Discard stops listing it.
	ExcludeQuarantined ExcludeKind = 1
	// ExcludeForgotten marks the commits of an item this peer may no
	// longer read: out of every read and of sync; ValueAt and History no
	// longer show them either.
	ExcludeForgotten ExcludeKind = 2
	// ExcludeCollected marks history a server stored and has since
	// collected (it refuses the commit as below its horizon): an old
	// commit held here only, kept out of the item's value (it would merge
	// as a leaf with the history that replaced it, whose link to it the
	// server collected) and of sync, and never listed as a refused write.
	// A quarantined commit that descends from it stays listed, as
	// quarantined.
	ExcludeCollected ExcludeKind = 3
)

// String returns "quarantined", "forgotten", "collected" or "none".
func (k ExcludeKind) String() string {
	switch k {
	case ExcludeQuarantined:
		return "quarantined"
	case ExcludeForgotten:
		return "forgotten"
	case ExcludeCollected:
		return "collected"
	case 0:
		return "none"
	}
	return fmt.Sprintf("ExcludeKind(%d)", uint8(k))
}

func (k ExcludeKind) valid() bool {
	return k == ExcludeQuarantined || k == ExcludeForgotten || k == ExcludeCollected
}

// Exclusion is one excluded commit.
type Exclusion struct {
	ID     commit.ID
	Key    string // the commit's item
	Kind   ExcludeKind
	Reason string
	At     time.Time // when Exclude was called
	// Root is the commit whose exclusion this one shows: ID itself, or the
	// excluded ancestor it descends from. A commit with a forgotten
	// ancestor is forgotten whatever else excludes it.
	Root commit.ID
	// Merge is true for a merge commit.
	Merge bool
}

// exclusion is what excludes a root.
type exclusion struct {
	kind   ExcludeKind
	reason string
	at     int64 // Unix ms
	hidden bool  // discarded: still excluded, no longer listed
}

// touch is an exclusion record that changed items: where it ends in the
// log and the items, sorted.
type touch struct {
	seq  uint64
	keys []string
}

// maxReason is how many bytes of a reason an exclusion keeps.
const maxReason = 1024

// maxExcludeIDs bounds the roots one exclusion record names (32 MiB).
const maxExcludeIDs = 1 << 20

// Exclude takes commits, and every commit that descends from them, out of
// the graph: they are no longer leaves, part of any value, in IDs,
// CommitsSince or Commit (so a peer never receives them from here), and an
// item whose commits are all excluded disappears from Get, Keys and All.
// The items' heads are recomputed from the commits that remain; an item
// left with several leaves gets the usual merge, which holds nothing of
// the excluded commits. Commits that arrive later and descend from an
// excluded one are excluded too, and an excluded commit received again
// stays excluded until Restore.
//
// A merge is excluded only with one of its parents (otherwise it would be
// recomputed as it is): ErrExcludeMerge. An id not held here is
// ErrNotFound; commits refused when they completed are out of the graph
// already and are skipped. The reason is kept (its first 1 KiB).
//
// Exclude returns once its record is durable, whatever the durability;
// under Async, if that sync fails the exclusion stays in effect and is
// written by the next flush, as writes are.
func (r *Repo) Exclude(ids []commit.ID, kind ExcludeKind, reason string) error {
	if !kind.valid() {
		return fmt.Errorf("repo: unknown exclusion kind %d", kind)
	}
	r.exclMu.Lock()
	defer r.exclMu.Unlock()
	return r.recordOp(func() (*exclOp, error) {
		roots, err := r.excludeRootsLocked(ids)
		if err != nil || len(roots) == 0 {
			return nil, err
		}
		return &exclOp{action: actExclude, kind: kind, reason: clip(reason, maxReason), ids: roots}, nil
	})
}

// Restore brings excluded commits back into the graph. A commit comes back
// with the exclusions that cover it: its own and those of its excluded
// ancestors, since it cannot come back without them; so everything those
// excluded comes back too, except what another exclusion still covers.
// Quarantined and forgotten commits alike may be restored. An id not
// excluded is ErrNotExcluded.
func (r *Repo) Restore(ids []commit.ID) error {
	r.exclMu.Lock()
	defer r.exclMu.Unlock()
	return r.recordOp(func() (*exclOp, error) {
		roots, err := r.coveringRootsLocked(ids)
		if err != nil || len(roots) == 0 {
			return nil, err
		}
		return &exclOp{action: actRestore, ids: roots}, nil
	})
}

// Discard stops listing excluded commits in Excluded; they stay excluded
// (Restore still brings them back). It acts on the exclusion each commit
// shows (Exclusion.Root), so the commits listed with it go too. An id not
// excluded is ErrNotExcluded.
func (r *Repo) Discard(ids []commit.ID) error {
	r.exclMu.Lock()
	defer r.exclMu.Unlock()
	return r.discardLocked(ids)
}

func (r *Repo) discardLocked(ids []commit.ID) error {
	return r.recordOp(func() (*exclOp, error) {
		roots, err := r.shownRootsLocked(ids)
		if err != nil || len(roots) == 0 {
			return nil, err
		}
		return &exclOp{action: actDiscard, ids: roots}, nil
	})
}

// Excluded lists the excluded commits not discarded, those excluded as
// descendants of a commit named to Exclude included, in log order.
func (r *Repo) Excluded() []Exclusion {
	r.mu.RLock()
	defer r.mu.RUnlock()
	type listed struct {
		seq uint64
		e   Exclusion
	}
	var all []listed
	for _, st := range r.excludedItemsLocked() {
		nodes := r.itemNodes(st)
		by := r.exclusionsOf(nodes)
		for _, n := range nodes {
			root := by[n]
			if root == nil || n.bad || r.excl[root.c.ID()].hidden {
				continue
			}
			e := r.excl[root.c.ID()]
			all = append(all, listed{n.seq, Exclusion{ID: n.c.ID(), Key: n.c.Key(), Kind: e.kind, Reason: e.reason,
				At: time.UnixMilli(e.at).UTC(), Root: root.c.ID(), Merge: n.c.IsMerge()}})
		}
	}
	slices.SortFunc(all, func(a, b listed) int {
		return cmp.Or(cmp.Compare(a.seq, b.seq), commit.CompareIDs(a.e.ID, b.e.ID))
	})
	out := make([]Exclusion, len(all))
	for i, l := range all {
		out[i] = l.e
	}
	return out
}

// ExcludedSeq returns the sequence number just after the last exclusion
// record (Exclude, Restore, Discard): 0 if there is none. Commits before it
// may have left or come back, so a digest or count of CommitsSince kept
// from before it must be computed again from the start.
func (r *Repo) ExcludedSeq() uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.exclSeq
}

// Reinstated reports whether commit id, or one of its ancestors held
// here, is a quarantined write a Restore brought back: a server refused
// it, so none of them was ever stored by that server, whatever a sync
// since may say of the positions before them.
func (r *Repo) Reinstated(id commit.ID) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.reinstated) == 0 {
		return false
	}
	seen := map[commit.ID]bool{}
	stack := []commit.ID{id}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[x] {
			continue
		}
		seen[x] = true
		if r.reinstated[x] {
			return true
		}
		if n := r.commits.get(x); n != nil {
			stack = append(stack, n.c.Parents()...)
		}
	}
	return false
}

// Reauthor writes again, as new local commits signed with this
// repository's key, the changes quarantined commits made. Per item, the
// change is the difference between the value at its last non-excluded
// ancestors and the value at the quarantined commits (fields set, changed
// or removed, a deletion or undeletion), taking every commit the
// exclusions covering ids exclude in that item; it is applied onto the
// item's current head in one Write, so concurrent accepted changes to
// other fields stay. Then the quarantined commits are discarded. It
// returns the commits written (none for an item the change leaves as it
// is). A forgotten commit, or one not excluded, is ErrNotExcluded.
func (r *Repo) Reauthor(ids []commit.ID) ([]*commit.Commit, error) {
	if r.log == nil || r.opts.Key == nil {
		return nil, fmt.Errorf("repo: %s is read-only", r.path)
	}
	r.exclMu.Lock()
	defer r.exclMu.Unlock()
	if err := r.Flush(); err != nil {
		return nil, err
	}
	r.mu.RLock()
	plans, roots, err := r.planReauthorLocked(ids)
	r.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	updates := make([]Update, len(plans))
	for i, p := range plans {
		updates[i] = Update{Key: p.key, Fn: p.apply}
	}
	cs, err := r.Write(updates...)
	if err != nil {
		return nil, err
	}
	if err := r.discardLocked(roots); err != nil {
		return cs, fmt.Errorf("reauthor: discard the quarantined commits: %w", err)
	}
	return cs, nil
}

// recordOp logs the exclusion record prepare builds holding the graph lock
// (nil: nothing to do) and applies it. Under Sync it joins the graph once
// its fsync succeeded, in log order, as a write's commits do (a failure
// drops it); under Async at once. Either way recordOp returns once the
// record is durable. r.exclMu must be held.
func (r *Repo) recordOp(prepare func() (*exclOp, error)) error {
	if r.log == nil {
		return fmt.Errorf("repo: %s is read-only", r.path)
	}
	// Commits written so far join the graph, so ids name what callers saw.
	if err := r.Flush(); err != nil {
		return err
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	op, err := prepare()
	if err != nil || op == nil {
		r.mu.Unlock()
		return err
	}
	op.at = r.opts.Now().UnixMilli()
	if r.opts.Durability == Sync {
		t, err := r.holdBatchLocked(&batch{op: op}, nil)
		r.mu.Unlock()
		if err != nil {
			return err
		}
		return r.settleDurable(t)
	}
	t, err := r.log.appendWith(func(b []byte, claim int64) []byte { return appendExclusionRecord(b, op, claim) })
	if err != nil {
		r.mu.Unlock()
		return err
	}
	r.settleKeys(r.applyOpLocked(op, uint64(t.end)))
	r.wakeLocked()
	r.mu.Unlock()
	return r.log.sync(t)
}

// applyOpLocked applies an exclusion record that ends at seq and returns
// the items whose commits it took out or brought back, with their leaves
// recomputed; the caller settles them (merges, heads) and wakes watchers.
func (r *Repo) applyOpLocked(op *exclOp, seq uint64) map[string]bool {
	r.foldOp(op)
	r.seq, r.exclSeq = max(r.seq, seq), seq
	if op.action == actDiscard {
		return nil
	}
	keys := r.opKeysLocked(op)
	r.touched = append(r.touched, touch{seq: seq, keys: sortedKeys(keys)})
	for k := range keys {
		r.reexcludeLocked(r.items.get(k))
		// A write not durable yet that builds on an excluded commit is
		// excluded when it joins; the next write must not build on it.
		if p := r.inflight[k]; p != nil && r.overOutLocked(&p.n.c) {
			delete(r.inflight, k)
		}
	}
	return keys
}

// foldOp updates the roots with an exclusion record.
func (r *Repo) foldOp(op *exclOp) {
	for _, id := range op.ids {
		switch op.action {
		case actExclude:
			r.excl[id] = &exclusion{kind: op.kind, reason: op.reason, at: op.at}
		case actRestore:
			if e := r.excl[id]; e != nil && e.kind == ExcludeQuarantined {
				if r.reinstated == nil {
					r.reinstated = map[commit.ID]bool{}
				}
				r.reinstated[id] = true
			}
			delete(r.excl, id)
		case actDiscard:
			if e := r.excl[id]; e != nil {
				e.hidden = true
			}
		}
	}
}

// opKeysLocked returns the items of the commits an exclusion record names.
func (r *Repo) opKeysLocked(op *exclOp) map[string]bool {
	keys := map[string]bool{}
	for _, id := range op.ids {
		if n := r.commits.get(id); n != nil {
			keys[n.c.Key()] = true
		}
	}
	return keys
}

func sortedKeys(m map[string]bool) []string { return slices.Sorted(maps.Keys(m)) }

// loggedOp is an exclusion record read from the log.
type loggedOp struct {
	seq uint64 // the log position after it
	op  *exclOp
}

// loadExclusions folds the exclusion records of a log into the roots,
// before replay inserts the commits, so that every commit is excluded as
// it completes. A sound record that does not decode is damage (marked bad,
// returned); one found by scanning past damage is ignored, since a
// commit's content can hold bytes that look like one.
func (r *Repo) loadExclusions(recs []scanned) ([]loggedOp, []Damage) {
	var ops []loggedOp
	var bad []Damage
	for i := range recs {
		rec := &recs[i]
		if rec.typ != recExclude || rec.bad {
			continue
		}
		if rec.untrusted {
			r.opts.Logger.Warn("ignored an exclusion record found past damage", "path", r.path, "offset", rec.off)
			continue
		}
		op, err := decodeExclusion(rec.data)
		if err != nil {
			rec.bad = true
			bad = append(bad, Damage{Offset: rec.off, Length: rec.end - rec.off, Reason: "exclusion record: " + err.Error()})
			continue
		}
		r.foldOp(op)
		ops = append(ops, loggedOp{seq: uint64(rec.end), op: op})
	}
	return ops, bad
}

// noteExclusions records, after replay, which items the exclusion records
// changed, for Since.
func (r *Repo) noteExclusions(ops []loggedOp) {
	for _, lo := range ops {
		r.exclSeq = lo.seq
		if lo.op.action != actDiscard {
			r.touched = append(r.touched, touch{seq: lo.seq, keys: sortedKeys(r.opKeysLocked(lo.op))})
		}
	}
}

// outLocked reports whether n is excluded: by name, or through a parent.
func (r *Repo) outLocked(n *node) bool {
	if len(r.excl) == 0 {
		return false
	}
	if r.excl[n.c.ID()] != nil {
		return true
	}
	for _, p := range n.c.Parents() {
		if pn := r.commits.get(p); pn != nil && pn.out {
			return true
		}
	}
	return false
}

// outPending marks excluded the pending commits that wait on n, directly
// or through other pending commits.
func (r *Repo) outPending(n *node) {
	stack := []commit.ID{n.c.ID()}
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, w := range r.waiting[id] {
			if !w.out {
				w.out = true
				stack = append(stack, w.c.ID())
			}
		}
	}
}

// reexcludeLocked recomputes which of an item's commits are excluded, and
// its leaves: the latest commits that are not. The caller settles it.
func (r *Repo) reexcludeLocked(st *itemState) {
	nodes := r.itemNodes(st)
	out := r.descends(nodes, func(n *node) bool { return r.excl[n.c.ID()] != nil })
	for _, n := range nodes {
		n.out = out[n] && !n.bad
	}
	hasChild := map[*node]bool{}
	for _, n := range nodes {
		if n.complete() && !n.bad && !n.out {
			for _, p := range n.c.Parents() {
				hasChild[r.commits.get(p)] = true
			}
		}
	}
	outs := st.outList()[:0]
	leaves := st.leaf1[:0]
	for _, n := range nodes {
		switch {
		case !n.complete() || n.bad:
		case n.out:
			outs = append(outs, n)
		case !hasChild[n]:
			leaves = append(leaves, n)
		}
	}
	st.setRare(st.pendingList(), outs)
	slices.SortFunc(leaves, byID)
	st.setLeaves(leaves)
}

// overOutLocked reports whether a commit not in the graph yet builds on an
// excluded one, through commits held on their way to the graph.
func (r *Repo) overOutLocked(c placed) bool {
	for _, p := range c.Parents() {
		if n := r.commits.get(p); n != nil {
			if n.out {
				return true
			}
			continue
		}
		if hc := r.heldCommitLocked(p); hc != nil && r.overOutLocked(hc) {
			return true
		}
	}
	return false
}

func (r *Repo) heldCommitLocked(id commit.ID) *commit.Commit {
	if !r.held[id] {
		return nil
	}
	for _, b := range r.tentative {
		for _, c := range b.commits {
			if c.ID() == id {
				return c
			}
		}
	}
	return nil
}

// topoOrder returns nodes ordered so that each comes after those of its
// parents that are among nodes.
func (r *Repo) topoOrder(nodes []*node) []*node {
	in := make(map[*node]bool, len(nodes))
	for _, n := range nodes {
		in[n] = true
	}
	done := make(map[*node]bool, len(nodes))
	out := make([]*node, 0, len(nodes))
	type frame struct {
		n *node
		i int
	}
	var stack []frame
	for _, n := range nodes {
		if done[n] {
			continue
		}
		done[n] = true
		stack = append(stack, frame{n, 0})
		for len(stack) > 0 {
			f := &stack[len(stack)-1]
			if ps := f.n.c.Parents(); f.i < len(ps) {
				pn := r.commits.get(ps[f.i])
				f.i++
				if in[pn] && !done[pn] {
					done[pn] = true
					stack = append(stack, frame{pn, 0})
				}
				continue
			}
			out = append(out, f.n)
			stack = stack[:len(stack)-1]
		}
	}
	return out
}

// descends returns, for each of nodes, whether it or an ancestor among
// nodes satisfies seed.
func (r *Repo) descends(nodes []*node, seed func(*node) bool) map[*node]bool {
	got := make(map[*node]bool, len(nodes))
	for _, n := range r.topoOrder(nodes) {
		v := seed(n)
		for _, p := range n.c.Parents() {
			v = v || got[r.commits.get(p)]
		}
		if v {
			got[n] = true
		}
	}
	return got
}

// exclusionsOf returns, for every excluded commit among nodes (an item's),
// the root whose exclusion it shows: its nearest forgotten one (itself
// first, then through its first parents) if it has any, since forgetting
// wins, else its nearest one.
func (r *Repo) exclusionsOf(nodes []*node) map[*node]*node {
	by := map[*node]*node{}
	forgotten := func(x *node) bool { return x != nil && r.excl[x.c.ID()].kind == ExcludeForgotten }
	for _, n := range r.topoOrder(nodes) {
		if !n.out {
			continue
		}
		var near, forgot *node
		if r.excl[n.c.ID()] != nil {
			near = n
		}
		if forgotten(near) {
			forgot = near
		}
		for _, p := range n.c.Parents() {
			pb := by[r.commits.get(p)]
			if near == nil {
				near = pb
			}
			if forgot == nil && forgotten(pb) {
				forgot = pb
			}
		}
		if root := cmp.Or(forgot, near); root != nil {
			by[n] = root
		}
	}
	return by
}

// excludedKindLocked returns how n is excluded, or 0.
func (r *Repo) excludedKindLocked(n *node) ExcludeKind {
	if !n.out {
		return 0
	}
	root := r.exclusionsOf(r.itemNodes(r.items.get(n.c.Key())))[n]
	if root == nil {
		return ExcludeQuarantined
	}
	return r.excl[root.c.ID()].kind
}

// excludedItemsLocked returns the items with roots here, in order of
// first commit.
func (r *Repo) excludedItemsLocked() []*itemState {
	seen := map[*itemState]bool{}
	for id := range r.excl {
		if n := r.commits.get(id); n != nil {
			seen[r.items.get(n.c.Key())] = true
		}
	}
	var out []*itemState
	for _, st := range r.list {
		if seen[st] {
			out = append(out, st)
		}
	}
	return out
}

// excludeRootsLocked returns the commits an Exclude of ids records: those
// named that descend from no other commit named. A merge must have an
// excluded parent or one named.
func (r *Repo) excludeRootsLocked(ids []commit.ID) ([]commit.ID, error) {
	named := map[*node]bool{}
	keys := map[string]bool{}
	for _, id := range ids {
		n := r.commits.get(id)
		switch {
		case n == nil:
			return nil, fmt.Errorf("%w: commit %s", ErrNotFound, id.Short())
		case n.bad:
			continue // refused when it completed: out of the graph already
		}
		named[n] = true
		keys[n.c.Key()] = true
	}
	var roots []commit.ID
	for _, key := range sortedKeys(keys) {
		nodes := r.itemNodes(r.items.get(key))
		under := r.descends(nodes, func(n *node) bool { return named[n] })
		for _, n := range nodes {
			if !named[n] {
				continue
			}
			covered, outParent := false, false
			for _, p := range n.c.Parents() {
				if pn := r.commits.get(p); pn != nil {
					covered = covered || under[pn]
					outParent = outParent || pn.out
				}
			}
			switch {
			case covered:
			case n.c.IsMerge() && outParent:
			case n.c.IsMerge():
				return nil, fmt.Errorf("%w: merge %s of %s", ErrExcludeMerge, n.c.ID().Short(), key)
			default:
				roots = append(roots, n.c.ID())
			}
		}
	}
	if len(roots) > maxExcludeIDs {
		return nil, fmt.Errorf("repo: %d commits to exclude at once, at most %d", len(roots), maxExcludeIDs)
	}
	slices.SortFunc(roots, commit.CompareIDs)
	return roots, nil
}

// excludedNodeLocked returns the excluded commit id names.
func (r *Repo) excludedNodeLocked(id commit.ID) (*node, error) {
	n := r.commits.get(id)
	switch {
	case n == nil:
		return nil, fmt.Errorf("%w: commit %s", ErrNotFound, id.Short())
	case !n.out || n.bad:
		return nil, fmt.Errorf("%w: commit %s", ErrNotExcluded, id.Short())
	}
	return n, nil
}

// coveringRootsLocked returns the roots that exclude the commits ids
// names: theirs and their excluded ancestors'.
func (r *Repo) coveringRootsLocked(ids []commit.ID) ([]commit.ID, error) {
	seen := map[*node]bool{}
	var roots []commit.ID
	for _, id := range ids {
		n, err := r.excludedNodeLocked(id)
		if err != nil {
			return nil, err
		}
		stack := []*node{n}
		for len(stack) > 0 {
			x := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[x] {
				continue
			}
			seen[x] = true
			if r.excl[x.c.ID()] != nil {
				roots = append(roots, x.c.ID())
			}
			for _, p := range x.c.Parents() {
				if pn := r.commits.get(p); pn != nil && pn.out {
					stack = append(stack, pn)
				}
			}
		}
	}
	slices.SortFunc(roots, commit.CompareIDs)
	return roots, nil
}

// shownRootsLocked returns the roots whose exclusion the commits ids names
// show (Exclusion.Root).
func (r *Repo) shownRootsLocked(ids []commit.ID) ([]commit.ID, error) {
	byItem := map[*itemState]map[*node]*node{}
	set := map[commit.ID]bool{}
	for _, id := range ids {
		n, err := r.excludedNodeLocked(id)
		if err != nil {
			return nil, err
		}
		st := r.items.get(n.c.Key())
		if byItem[st] == nil {
			byItem[st] = r.exclusionsOf(r.itemNodes(st))
		}
		if root := byItem[st][n]; root != nil {
			set[root.c.ID()] = true
		}
	}
	roots := make([]commit.ID, 0, len(set))
	for id := range set {
		roots = append(roots, id)
	}
	slices.SortFunc(roots, commit.CompareIDs)
	return roots, nil
}

// reauthoring is the change Reauthor writes again to one item.
type reauthoring struct {
	key    string
	delta  item.Delta    // from the last non-excluded ancestors to the quarantined head
	value  item.Item     // the value at the quarantined head
	schema commit.Schema // its schema, for an item that has no head now
}

// apply is the Update function of a reauthoring: the change applied onto
// the item's current value. A set or map operation on a field that no
// longer holds a set or map sets the field to its quarantined value.
func (p reauthoring) apply(cur Current) (item.Item, commit.Schema, error) {
	d := item.Delta{Edits: slices.Clone(p.delta.Edits), Deleted: p.delta.Deleted}
	for i, e := range d.Edits {
		want := item.TypeSet
		if e.Op == item.OpMapOps {
			want = item.TypeMap
		}
		if e.Op != item.OpSetOps && e.Op != item.OpMapOps {
			continue
		}
		if v, ok := cur.Value.Get(e.Field); ok && v.Type() != want {
			qv, _ := p.value.Get(e.Field)
			d.Edits[i] = item.Edit{Field: e.Field, Op: item.OpSet, Value: qv}
		}
	}
	v, err := item.Patch(cur.Value, d)
	if err != nil {
		return item.Item{}, commit.Schema{}, fmt.Errorf("reauthor %s: %w", p.key, err)
	}
	if !cur.Exists {
		return v, p.schema, nil
	}
	return v, cur.Schema, nil
}

// planReauthorLocked computes, per item, the change the quarantined
// commits covering ids made, and returns it with the roots to discard.
func (r *Repo) planReauthorLocked(ids []commit.ID) ([]reauthoring, []commit.ID, error) {
	roots, err := r.coveringRootsLocked(ids)
	if err != nil {
		return nil, nil, err
	}
	byKey := map[string]map[*node]bool{}
	// Collected history under a quarantined write is where its change
	// starts (planItemLocked), not part of it.
	roots = slices.DeleteFunc(roots, func(id commit.ID) bool { return r.excl[id].kind == ExcludeCollected })
	for _, id := range roots {
		if e := r.excl[id]; e.kind != ExcludeQuarantined {
			return nil, nil, fmt.Errorf("%w: commit %s is %s, not quarantined", ErrNotExcluded, id.Short(), e.kind)
		}
		n := r.commits.get(id)
		if byKey[n.c.Key()] == nil {
			byKey[n.c.Key()] = map[*node]bool{}
		}
		byKey[n.c.Key()][n] = true
	}
	plans := make([]reauthoring, 0, len(byKey))
	for _, key := range slices.Sorted(maps.Keys(byKey)) {
		p, err := r.planItemLocked(r.items.get(key), byKey[key])
		if err != nil {
			return nil, nil, err
		}
		plans = append(plans, p)
	}
	return plans, roots, nil
}

// planItemLocked computes the change the commits roots exclude in one item
// made: from the value at their last non-excluded ancestors (merged if
// several; nothing for an item they created) to the value at their latest
// commits (merged if several).
func (r *Repo) planItemLocked(st *itemState, roots map[*node]bool) (reauthoring, error) {
	nodes := r.itemNodes(st)
	under := r.descends(nodes, func(n *node) bool { return roots[n] })
	var set []*node
	in := map[*node]bool{}
	for _, n := range nodes {
		if !under[n] || !n.out || n.bad {
			continue
		}
		if !n.complete() {
			return reauthoring{}, fmt.Errorf("%w: commit %s is pending (its history is incomplete)", ErrNotFound, n.c.ID().Short())
		}
		set = append(set, n)
		in[n] = true
	}
	hasChild := map[*node]bool{}
	var bases []*node
	for _, n := range set {
		for _, p := range n.c.Parents() {
			switch pn := r.commits.get(p); {
			case pn == nil: // collected by compaction
			case in[pn]:
				hasChild[pn] = true
			case (!pn.out || r.excl[p] != nil && r.excl[p].kind == ExcludeCollected) && !slices.Contains(bases, pn):
				bases = append(bases, pn)
			}
		}
	}
	var heads []*node
	for _, n := range set {
		if !hasChild[n] {
			heads = append(heads, n)
		}
	}
	bases = slices.DeleteFunc(bases, func(b *node) bool {
		return slices.ContainsFunc(bases, func(o *node) bool { return o != b && r.isAncestor(b, o) })
	})
	target := newestSchema(heads)
	if st.head != nil {
		target = st.head.schemaOf()
	}
	qv, err := r.valueOfAll(heads, target)
	if err != nil {
		return reauthoring{}, err
	}
	bv, err := r.valueOfAll(bases, target)
	if err != nil {
		return reauthoring{}, err
	}
	return reauthoring{key: st.key, delta: item.Diff(bv, qv), value: qv, schema: target}, nil
}

// valueOfAll returns the value of complete commits in the target schema:
// the zero Item for none, the merge of their values for several.
func (r *Repo) valueOfAll(nodes []*node, target commit.Schema) (item.Item, error) {
	switch len(nodes) {
	case 0:
		return item.Item{}, nil
	case 1:
		return r.targetValue(nodes[0], target)
	}
	nodes = slices.Clone(nodes)
	slices.SortFunc(nodes, byID)
	return r.mergeValues(nodes, target)
}

// clip returns s cut to at most n bytes, at a character boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// The exclusion record (log record type 6) holds one Exclude, Restore or
// Discard:
//
//	0         1        2      3                11
//	+---------+--------+------+----------------+-----------+--------+-----------+----------+
//	| version | action | kind | at             | reason    | reason | count     | ids      |
//	| u8 = 1  | u8     | u8   | i64 LE Unix ms | length    | bytes  | uvarint n | n × 32 B |
//	|         |        |      |                | uvarint   |        |           |          |
//	+---------+--------+------+----------------+-----------+--------+-----------+----------+
//
//	action 1: exclude the ids (kind 1 quarantined, 2 forgotten)
//	action 2: restore them   (kind 0)
//	action 3: discard them   (kind 0; they stay excluded, no longer listed)
//
// The ids are roots: a commit named to Exclude that descends from no other
// commit named with it; their descendants are excluded without being
// named, so a record stays small and Restore brings back what one Exclude
// took out. The record's data checksum (log.go) covers it; the version
// byte lets a later build add fields. Replay folds the records in log
// order into the set of roots before inserting any commit, so the graph
// after recovery depends only on the commits and the roots, as it does
// live.

const exclVersion = 1

type exclAction uint8

const (
	actExclude exclAction = 1
	actRestore exclAction = 2
	actDiscard exclAction = 3
)

// exclOp is one exclusion record.
type exclOp struct {
	action exclAction
	kind   ExcludeKind // actExclude only
	at     int64       // Unix ms
	reason string      // actExclude only
	ids    []commit.ID // sorted
}

// appendExclusionRecord frames an exclusion as a record.
func appendExclusionRecord(b []byte, op *exclOp, claim int64) []byte {
	return appendRecord(b, recExclude, appendExclusion(nil, op), claim)
}

// appendExclusion appends an exclusion record's data.
func appendExclusion(b []byte, op *exclOp) []byte {
	b = append(b, exclVersion, byte(op.action), byte(op.kind))
	b = binary.LittleEndian.AppendUint64(b, uint64(op.at))
	b = binary.AppendUvarint(b, uint64(len(op.reason)))
	b = append(b, op.reason...)
	b = binary.AppendUvarint(b, uint64(len(op.ids)))
	for _, id := range op.ids {
		b = append(b, id[:]...)
	}
	return b
}

var errExclusionFormat = errors.New("malformed")

// decodeExclusion decodes an exclusion record's data.
func decodeExclusion(data []byte) (*exclOp, error) {
	if len(data) < 11 {
		return nil, fmt.Errorf("%w: %d bytes", errExclusionFormat, len(data))
	}
	if data[0] != exclVersion {
		return nil, fmt.Errorf("exclusion record version %d, this build reads %d", data[0], exclVersion)
	}
	op := &exclOp{action: exclAction(data[1]), kind: ExcludeKind(data[2]), at: int64(binary.LittleEndian.Uint64(data[3:]))}
	switch {
	case op.action == actExclude && !op.kind.valid():
		return nil, fmt.Errorf("%w: exclusion kind %d", errExclusionFormat, op.kind)
	case op.action == actRestore || op.action == actDiscard:
		if op.kind != 0 {
			return nil, fmt.Errorf("%w: kind %d for action %d", errExclusionFormat, op.kind, op.action)
		}
	case op.action != actExclude:
		return nil, fmt.Errorf("%w: action %d", errExclusionFormat, op.action)
	}
	rest := data[11:]
	l, k := binary.Uvarint(rest)
	if k <= 0 || l > uint64(len(rest)-k) {
		return nil, fmt.Errorf("%w: reason length", errExclusionFormat)
	}
	if op.action != actExclude && l != 0 {
		return nil, fmt.Errorf("%w: reason for action %d", errExclusionFormat, op.action)
	}
	op.reason = string(rest[k : k+int(l)])
	rest = rest[k+int(l):]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n == 0 || n > uint64(len(rest)-k)/32 || uint64(len(rest)-k) != n*32 {
		return nil, fmt.Errorf("%w: commit ids", errExclusionFormat)
	}
	rest = rest[k:]
	op.ids = make([]commit.ID, n)
	for i := range op.ids {
		copy(op.ids[i][:], rest[32*i:])
	}
	return op, nil
}
