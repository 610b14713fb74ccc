package repo

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
)

// Problem is one inconsistency found by Check.
type Problem struct {
	Offset int64     // log offset of the record, or -1
	Item   string    // item key, if known
	Commit commit.ID // commit id, if known
	What   string
}

func (p Problem) String() string {
	s := fmt.Sprintf("offset %d", p.Offset)
	if p.Item != "" {
		s += " item " + p.Item
	}
	if !p.Commit.IsZero() {
		s += " commit " + p.Commit.Short()
	}
	return s + ": " + p.What
}

// Check verifies the repository from its log: framing, every commit's id
// (re-hashed) and signature, every delta and merge (recomputed), every
// exclusion and horizon record, and every item's excluded commits, leaves,
// head and cached value. Pending and excluded commits are not problems (see
// Stats); a commit in the graph over an excluded one is. A complete commit
// may lack parents only if the horizon record lists it (shallow: they were
// collected), and a shallow merge is not recomputed (its collected parents
// are gone). It returns nil when all is well.
func (r *Repo) Check() []Problem {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var ps []Problem
	ps = append(ps, r.checkLog()...)
	ps = append(ps, r.checkIndex()...)
	for _, n := range r.entries {
		ps = append(ps, r.checkNode(n)...)
	}
	byKey := map[string][]*node{}
	for _, n := range r.entries {
		byKey[n.c.Key()] = append(byKey[n.c.Key()], n)
	}
	r.items.all(func(st *itemState) {
		ps = append(ps, r.checkItem(st, byKey[st.key])...)
	})
	slices.SortFunc(ps, func(a, b Problem) int { return cmp.Or(cmp.Compare(a.Offset, b.Offset), cmp.Compare(a.What, b.What)) })
	return ps
}

// checkLog re-reads the durable log and compares it with memory, and
// reports every quarantined range not yet resolved.
func (r *Repo) checkLog() []Problem {
	var ps []Problem
	for _, q := range r.quarantined {
		if !q.Resolved {
			ps = append(ps, Problem{Offset: q.Offset, What: fmt.Sprintf(
				"%d damaged bytes quarantined in %s (%s; %d commits salvaged, %d known missing): sync with a peer that holds the lost commits to restore them",
				q.Length, q.File, q.Reason, q.Salvaged, len(q.Missing))})
		}
	}
	if err := r.Flush(); err != nil {
		return append(ps, Problem{Offset: -1, What: "flush: " + err.Error()})
	}
	data, err := r.opts.FS.ReadFile(r.path)
	if err != nil {
		return append(ps, Problem{Offset: -1, What: "read log: " + err.Error()})
	}
	if neverSynced(data) { // read-only: a new log a crash cut, which a writer creates again
		return ps
	}
	h, err := checkHeader(data)
	if err != nil {
		return append(ps, Problem{Offset: 0, What: err.Error()})
	}
	sc := scanLog(data)
	if h.version == 1 {
		sc = scanLogV1(data)
	}
	for _, d := range sc.damage {
		ps = append(ps, Problem{Offset: d.Offset, What: fmt.Sprintf("%d damaged bytes: %s", d.Length, d.Reason)})
	}
	// A read-only open may run beside a writer: what follows the records
	// it read is a write in flight, not a problem.
	// Nor are zeros after the log: space a writer reserved (logWriter).
	if sc.end < int64(len(data)) && !r.opts.ReadOnly && !bytesAllZero(data[sc.end:]) {
		ps = append(ps, Problem{Offset: sc.end, What: fmt.Sprintf("torn tail of %d bytes", int64(len(data))-sc.end)})
	}
	var hi horizonInfo
	for _, rec := range sc.recs {
		if rec.bad || rec.untrusted || uint64(rec.end) > r.seq {
			continue
		}
		if rec.typ == recExclude {
			if _, err := decodeExclusion(rec.data); err != nil {
				ps = append(ps, Problem{Offset: rec.off, What: "exclusion record: " + err.Error()})
			}
			continue
		}
		if rec.typ == recHorizon {
			if h.version != compactedVersion {
				ps = append(ps, Problem{Offset: rec.off, What: fmt.Sprintf("horizon record in a version %d log", h.version)})
			} else if err := decodeHorizon(rec.data, &hi); err != nil {
				ps = append(ps, Problem{Offset: rec.off, What: err.Error()})
			}
			continue
		}
		cs, err := decodeRecord(rec.typ, rec.data, r.owner)
		if err != nil {
			ps = append(ps, Problem{Offset: rec.off, What: err.Error()})
		}
		for _, c := range cs {
			if r.commits.get(c.ID()) == nil {
				ps = append(ps, Problem{Offset: rec.off, Item: c.Key(), Commit: c.ID(), What: "commit in the log but not in memory"})
			}
		}
	}
	return ps
}

// decodeRecord decodes the commits of one record; any bad one makes the
// whole record damaged.
func decodeRecord(typ byte, data []byte, owner commit.SessionID) ([]*commit.Commit, error) {
	stored, err := recordCommits(typ, data)
	if err != nil {
		return nil, err
	}
	out := make([]*commit.Commit, len(stored))
	var arena []byte
	for i, st := range stored {
		enc, err := loadStored(st, owner, &arena)
		if err == nil {
			out[i], err = commit.Decode(enc)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (r *Repo) checkNode(n *node) []Problem {
	p := Problem{Offset: int64(n.seq), Item: n.c.Key(), Commit: n.c.ID()}
	var ps []Problem
	add := func(format string, args ...any) {
		q := p
		q.What = fmt.Sprintf(format, args...)
		ps = append(ps, q)
	}
	if n.bad {
		// A commit refused when it completed (a forgery a peer sent): the
		// log keeps it as a record, it is never a leaf, never sent to a
		// peer, and no fault of this repository's storage.
		return nil
	}
	c, err := r.commitOf(n)
	if err != nil {
		add("%v", err)
		return ps
	}
	if err := c.VerifySignature(!r.opts.Trusted); err != nil {
		add("%v", err)
	}
	if !n.complete() {
		return ps
	}
	absent := false
	for _, p := range n.c.Parents() {
		if r.commits.get(p) == nil {
			absent = true
			if !n.shallow {
				add("parent %s is missing, yet the commit is complete", p.Short())
			}
		}
	}
	if _, err := r.valueOf(n); err != nil {
		add("delta does not apply: %v", err)
	}
	if n.c.IsMerge() && !absent {
		if why := r.checkMerge(&n.c); why != "" {
			add("%s", why)
		}
	}
	return ps
}

// checkItem recomputes an item's excluded commits, leaves, head and value
// from its commits and the exclusions.
func (r *Repo) checkItem(st *itemState, nodes []*node) []Problem {
	p := Problem{Offset: -1, Item: st.key}
	var out map[*node]bool // nil while nothing is excluded
	if len(r.excl) > 0 {
		out = r.descends(nodes, func(n *node) bool { return r.excl[n.c.ID()] != nil })
	}
	var ps []Problem
	for _, n := range nodes {
		if !n.bad && n.out != out[n] {
			ps = append(ps, Problem{Offset: int64(n.seq), Item: st.key, Commit: n.c.ID(),
				What: fmt.Sprintf("excluded is %v, recomputed from the exclusions %v", n.out, out[n])})
		}
	}
	for _, l := range st.leaves() {
		if out[l] {
			ps = append(ps, Problem{Offset: int64(l.seq), Item: st.key, Commit: l.c.ID(),
				What: "leaf is excluded, or descends from an excluded commit"})
		}
	}
	if len(ps) > 0 {
		return ps
	}
	valid := func(n *node) bool { return n.complete() && !n.bad && !out[n] }
	hasChild := map[commit.ID]bool{}
	for _, n := range nodes {
		if valid(n) {
			for _, id := range n.c.Parents() {
				hasChild[id] = true
			}
		}
	}
	var leaves []*node
	for _, n := range nodes {
		if valid(n) && !hasChild[n.c.ID()] {
			leaves = append(leaves, n)
		}
	}
	slices.SortFunc(leaves, byID)
	if !slices.Equal(leaves, st.leaves()) {
		p.What = fmt.Sprintf("leaves are %d commits, recomputed %d", len(st.leaves()), len(leaves))
		return []Problem{p}
	}
	if st.head == nil {
		if len(leaves) > 0 {
			p.What = "item has leaves but no head"
			return []Problem{p}
		}
		return nil
	}
	if !slices.Contains(leaves, st.head) {
		p.What = "head is not a leaf"
		return []Problem{p}
	}
	if v, err := r.valueOf(st.head); err != nil || !item.ItemsEqual(v, st.val(r)) {
		p.What = "cached head value differs from the head commit's"
		return []Problem{p}
	}
	return nil
}
