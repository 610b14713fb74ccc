package repo

import (
	"cmp"
	"container/heap"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"unsafe"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
)

// maxChain is how many deltas may share one full snapshot as their base.
const maxChain = 20

// maxMergeLeaves is how many leaves one merge commit joins; more are joined
// by successive merges. paintDown paints with one bit per leaf in a uint64 whose
// top bit means "stale", so it is 63, not 64.
const maxMergeLeaves = 63

// node is a commit in memory with what the graph knows about it: the
// commit's identity and place (c), and where its record is in the log. Its
// encoding is held only for the newest commits, and its decoded form only
// while fresh (h, stored.go); otherwise it is decoded again, or read from
// the log, when asked (commitOf). So history costs a fixed 128 bytes per
// commit here, not its encoded or decoded size.
type node struct {
	c meta
	// h: the commit's encoding and decoded form, while the repository
	// holds either (stored.go); nil for most commits.
	h       *held
	seq     uint64 // log position after the commit's record
	size    uint32 // the length of that record, head included
	idx     uint32 // the commit's place in it (0 unless a group)
	missing int32  // parents and base that are not complete yet
	mark    uint32 // scratch of the compaction planning (compact.go)
	gen     uint32 // 1 + the largest parent generation; set on completion
	depth   uint8  // 0 for a full snapshot, else deltas since its base (at most maxChain)
	// bad: a complete-looking commit is invalid (why: Repo.badWhy); never
	// a leaf.
	bad bool
	out bool // excluded: the commit or an ancestor is (exclude.go); never a leaf
	// shallow: some parents were collected by compaction (horizon.go);
	// gen and depth are those they had with them.
	shallow bool
	base    *node // the full snapshot a delta is relative to
	// schema: the commit's, or its delta base's once complete; shared by
	// the repository's commits of one schema (Repo.internSchema).
	schema *commit.Schema
}

func (n *node) complete() bool { return n.missing == 0 && n.gen > 0 }

// meta is what the graph needs of a commit to place it: its id, item,
// parents, time and delta base. The value or delta is not here.
type meta struct {
	id commit.ID
	// base: a delta's base's id, nil for a full snapshot: once the delta
	// is complete, the base node's own (link), so a delta pays 8 bytes
	// for it, not 32.
	base *commit.ID
	// key: the item's key; once the commit is in the graph, its item's
	// own string (itemState.key), so a commit pays 8 bytes for it.
	key *string
	// par: the first of np parent ids, which follow it in one array
	// (Parents): the commit's, or for one parent here, the parent node's
	// own id (link).
	par  *commit.ID
	time int64
	np   uint16 // at most commit.MaxParents
	full bool
	// ord: 1 + the commit's place in the log order as the last head
	// index encoded numbered it (headindex.go); scratch, in padding.
	ord uint32
}

func metaOf(c *commit.Commit) meta {
	key := c.Key()
	return metaWithKey(c, &key)
}

// metaWithKey is metaOf with key, which holds c's key.
func metaWithKey(c *commit.Commit, key *string) meta {
	m := meta{id: c.ID(), key: key, time: c.Time(), full: c.IsFull()}
	m.setParents(c.Parents())
	if !m.full {
		base := c.Base()
		m.base = &base
	}
	return m
}

func (m *meta) ID() commit.ID        { return m.id }
func (m *meta) Key() string          { return *m.key }
func (m *meta) Parents() []commit.ID { return unsafe.Slice(m.par, m.np) }
func (m *meta) Time() int64          { return m.time }
func (m *meta) IsMerge() bool        { return m.np >= 2 }
func (m *meta) IsFull() bool         { return m.full }
func (m *meta) Base() commit.ID {
	if m.base == nil {
		return commit.ID{}
	}
	return *m.base
}

// setParents makes ps, of at most commit.MaxParents ids, the parents.
func (m *meta) setParents(ps []commit.ID) {
	if len(ps) == 0 {
		m.par, m.np = nil, 0
		return
	}
	m.par, m.np = &ps[0], uint16(len(ps))
}

// placed is what a commit and its meta share: what places it in the graph.
type placed interface {
	ID() commit.ID
	Key() string
	Parents() []commit.ID
	Time() int64
	IsFull() bool
	IsMerge() bool
	Base() commit.ID
}

// placeNode returns a node for c that holds nothing of it but what places
// it, for a check (link) or to stand for it outside the graph.
func (r *Repo) placeNode(c *commit.Commit) *node {
	n := &node{c: metaOf(c)}
	if c.IsFull() {
		n.schema = r.internSchema(c.Schema())
	}
	return n
}

// schemaOf returns the node's schema: zero for a delta not complete yet.
func (n *node) schemaOf() commit.Schema {
	if n.schema == nil {
		return commit.Schema{}
	}
	return *n.schema
}

// internSchema returns the repository's copy of s, shared by its nodes.
// r.mu must be held for writing (or the repository not yet shared).
func (r *Repo) internSchema(s commit.Schema) *commit.Schema {
	if p := r.lastSchema; p != nil && *p == s {
		return p // most commits in a row share one
	}
	p := r.schemas[s]
	if p == nil {
		if r.schemas == nil {
			r.schemas = map[commit.Schema]*commit.Schema{}
		}
		p = new(commit.Schema)
		*p = s
		r.schemas[s] = p
	}
	r.lastSchema = p
	return p
}

// itemState is one item's graph.
type itemState struct {
	key string
	// leaf1 holds the item's leaf when it has one only, as most do; the
	// leaves of one with several are in rare (see leaves).
	leaf1 [1]*node
	rare  *itemRare // what few items have; nil if none
	head  *node     // the leaf whose value is the item's value
	value item.Item // the head's value, unless lazy holds it
	// lazy, if set, holds the head's value still encoded, as the head
	// index gave it (headindex.go): decoded at its first read. Whoever
	// sets value clears it.
	lazy atomic.Pointer[lazyValue]
	// base: when the head is a delta, its full snapshot and that
	// snapshot's value, so that a write's delta and the next head's value
	// need no decoding (stored.go); nil when the head is full, or its
	// value came from the head index and no write has needed it yet. A
	// received delta's base read from the log is kept here too, before
	// the delta becomes the head (receive.go).
	base *knownValue
	ord  uint32 // 1 + the item's place as the last head index encoded numbered it (headindex.go)
}

// itemRare holds what few items have, so that the rest do not pay for it.
type itemRare struct {
	leaves  []*node // the leaves of an item with several (see itemState.leaves)
	pending []*node // commits that were incomplete when inserted (pruned by insert)
	out     []*node // complete commits that are excluded, outside the graph
}

// leaves returns the item's leaves: its complete commits with no complete
// child, sorted by id. The slice is the item's own: a caller that changes
// it (holding r.mu for writing) stores the result with setLeaves.
func (st *itemState) leaves() []*node {
	switch {
	case st.rare != nil && len(st.rare.leaves) > 1:
		return st.rare.leaves
	case st.leaf1[0] != nil:
		return st.leaf1[:]
	}
	return st.leaf1[:0]
}

// setLeaves sets the item's leaves, sorted by id. ls may be built on
// leaf1 (st.leaf1[:0], appended to). r.mu must be held for writing.
func (st *itemState) setLeaves(ls []*node) {
	if len(ls) > 1 {
		st.leaf1[0] = nil
		if st.rare == nil {
			st.rare = &itemRare{}
		}
		st.rare.leaves = ls
		return
	}
	var one *node // ls may be st.leaf1[:]
	if len(ls) == 1 {
		one = ls[0]
	}
	st.leaf1[0] = one
	if st.rare != nil && st.rare.leaves != nil {
		st.rare.leaves = nil
		st.setRare(st.rare.pending, st.rare.out) // drops rare if it holds nothing else
	}
}

// pendingList returns the item's commits that were incomplete when
// inserted.
func (st *itemState) pendingList() []*node {
	if st.rare == nil {
		return nil
	}
	return st.rare.pending
}

// outList returns the item's complete commits that are excluded.
func (st *itemState) outList() []*node {
	if st.rare == nil {
		return nil
	}
	return st.rare.out
}

// setRare sets the item's pending and excluded commits, keeping its
// leaves, and nothing out of line for an item with none of the three.
func (st *itemState) setRare(pending, out []*node) {
	var leaves []*node
	if st.rare != nil && len(st.rare.leaves) > 1 {
		leaves = st.rare.leaves
	}
	switch {
	case len(pending) == 0 && len(out) == 0 && leaves == nil:
		st.rare = nil
	case st.rare == nil:
		st.rare = &itemRare{pending: pending, out: out}
	default:
		st.rare.leaves, st.rare.pending, st.rare.out = leaves, pending, out
	}
}

// lazyValue is a head value decoded at its first read.
type lazyValue struct {
	enc     []byte
	deleted bool                      // the value is a deletion (the index says so)
	dec     atomic.Pointer[item.Item] // the value, once decoded
}

// val returns the head's value. r.mu must be held (read or write).
func (st *itemState) val(r *Repo) item.Item {
	lz := st.lazy.Load()
	if lz == nil {
		return st.value
	}
	if v := lz.dec.Load(); v != nil {
		return *v
	}
	return st.decode(r, lz)
}

// decode decodes a lazy head value. Readers that meet it undecoded at
// once decode it each, and all return the first one stored. A copy that
// does not decode is read from the head commit in the log instead, once,
// under r.lazyMu.
func (st *itemState) decode(r *Repo, lz *lazyValue) item.Item {
	d := item.NewSharingDecoder(lz.enc, nil)
	v := d.Item()
	d.End()
	err := d.Err()
	if err == nil {
		lz.dec.CompareAndSwap(nil, &v)
		return *lz.dec.Load()
	}
	r.lazyMu.Lock()
	defer r.lazyMu.Unlock()
	if v := lz.dec.Load(); v != nil {
		return *v
	}
	// The index's copy does not decode: the head commit in the log holds
	// the value.
	r.opts.Logger.Error("head index: value does not decode; reading it from the log", "path", r.path, "item", st.key, "err", err)
	r.removeIndex()
	if v, err = r.valueOf(st.head); err != nil {
		r.opts.Logger.Error("read head", "path", r.path, "item", st.key, "err", err)
	}
	lz.dec.Store(&v)
	return v
}

// deleted reports whether the head's value is a deletion, without
// decoding a lazy one.
func (st *itemState) deleted() bool {
	if lz := st.lazy.Load(); lz != nil {
		return lz.deleted
	}
	return st.value.Deleted()
}

// setValue sets the head's value. r.mu must be held for writing.
func (st *itemState) setValue(v item.Item) {
	st.value = v
	st.lazy.Store(nil)
}

func (r *Repo) itemLocked(key string) *itemState {
	st := r.items.get(key)
	if st == nil {
		st = &itemState{key: key}
		r.items.add(st)
		r.list = append(r.list, st)
	}
	return st
}

// logPos is where a commit is in the log: the end of its record (its
// sequence number), the record's length and the commit's place in it.
type logPos struct {
	end       uint64
	size, idx uint32
}

// insert adds a decoded commit; duplicates are ignored. It returns the node
// and whether it was new. r.mu must be held (or the repo not yet shared).
func (r *Repo) insert(c *commit.Commit, at logPos) (*node, bool) {
	return r.insertEncoded(c, nil, at)
}

// insertEncoded is insert for a commit decoded from enc, its encoding in
// memory that is never written again (a replay arena), which the node
// keeps instead of a copy; nil means copy c's.
func (r *Repo) insertEncoded(c *commit.Commit, enc []byte, at logPos) (*node, bool) {
	if n := r.commits.get(c.ID()); n != nil {
		return n, false
	}
	if enc == nil {
		enc = r.storeLocked(c)
	}
	st := r.itemLocked(c.Key())
	var n *node
	if len(r.nodeSlab) < cap(r.nodeSlab) { // a replay: nodes allocated at once
		r.nodeSlab = r.nodeSlab[:len(r.nodeSlab)+1]
		n = &r.nodeSlab[len(r.nodeSlab)-1]
	} else {
		n = new(node)
	}
	// The item's own key: one string per item, not one per commit (nor
	// its arena).
	*n = node{c: metaWithKey(c, &st.key), h: r.newHeld(enc, c)}
	if c.IsFull() {
		n.schema = r.internSchema(c.Schema())
	}
	n.seq, n.size, n.idx = at.end, at.size, at.idx
	r.fresh = append(r.fresh, n)
	r.commits.add(n)
	r.entries = append(r.entries, n)
	r.encHeld += len(enc)
	e, listed := r.listedEntry(c)
	for i, p := range c.Parents() {
		if listed && i < 64 && e.absent&(1<<i) != 0 && r.commits.get(p) == nil {
			n.shallow = true // collected: completes without it (horizon.go)
			continue
		}
		r.await(n, p)
	}
	if !c.IsFull() {
		r.await(n, c.Base())
	}
	if n.missing == 0 {
		r.completeChain(n)
	} else {
		n.out = r.outLocked(n)
		pending := st.pendingList()
		if len(pending) == cap(pending) { // prune before growing: amortised O(1)
			pending = slices.DeleteFunc(pending, (*node).complete)
		}
		st.setRare(append(pending, n), st.outList())
	}
	return n, true
}

// await registers that n needs commit id to be complete.
func (r *Repo) await(n *node, id commit.ID) {
	if p := r.commits.get(id); p != nil && p.complete() {
		return
	}
	n.missing++
	r.waiting[id] = append(r.waiting[id], n)
}

// completeChain completes n and every waiting commit that becomes complete
// with it.
func (r *Repo) completeChain(n *node) {
	if len(r.waiting) == 0 { // the usual case: nothing waits for anything
		r.completeOne(n, false)
		return
	}
	first := n
	stack := []*node{n}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if !r.completeOne(n, n != first) {
			continue
		}
		for _, w := range r.waiting[n.c.ID()] {
			if w.missing--; w.missing == 0 {
				stack = append(stack, w)
			}
		}
		delete(r.waiting, n.c.ID())
	}
}

// completeOne validates n against its (complete) parents and base and makes
// it a leaf. An invalid commit is marked bad and stays out of the graph, so
// commits waiting on it stay pending. A merge that was pending (it arrived
// before its parents, so Receive could not check it) is recomputed here.
func (r *Repo) completeOne(n *node, wasPending bool) bool {
	if r.planEnd > 0 && n.seq <= r.planEnd && n.mark != r.keepMark {
		n.mark = r.lateMark // pending when the compaction being planned began
	}
	err := r.link(n)
	if err == nil && (wasPending || r.untrusted[n.c.ID()]) && n.c.IsMerge() {
		if why := r.checkMerge(&n.c); why != "" {
			err = errors.New(why)
		}
	}
	if err == nil && r.validating[n.c.ID()] && !n.c.IsMerge() {
		err = r.validate(n)
	}
	if err != nil {
		n.bad = true
		r.badWhy[n] = err.Error()
		r.opts.Logger.Warn("invalid commit", "path", r.path, "commit", n.c.ID().Short(), "item", n.c.Key(), "err", err)
		return false
	}
	st := r.items.get(n.c.Key())
	if n.out = r.outLocked(n); n.out {
		// Excluded: not a leaf, and its parents keep their place. Its
		// children complete and are excluded with it.
		st.setRare(st.pendingList(), append(st.outList(), n))
		r.outPending(n)
		return true
	}
	leaves := slices.DeleteFunc(st.leaves(), func(l *node) bool {
		_, isParent := slices.BinarySearchFunc(n.c.Parents(), l.c.ID(), commit.CompareIDs)
		return isParent
	})
	// A child waits for its parents to complete, so n has no complete child
	// yet: it is a leaf.
	i, _ := slices.BinarySearchFunc(leaves, n, byID)
	st.setLeaves(slices.Insert(leaves, i, n))
	return true
}

// itemNodes returns every commit of an item: the complete ones, reached
// from the leaves and the excluded commits through their parents, and
// those still pending or bad.
func (r *Repo) itemNodes(st *itemState) []*node {
	seen := map[*node]bool{}
	stack := slices.Concat(st.leaves(), st.outList())
	var out []*node
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, n)
		for _, p := range n.c.Parents() {
			if pn := r.commits.get(p); pn != nil { // nil: collected
				stack = append(stack, pn)
			}
		}
	}
	for _, n := range st.pendingList() {
		if !n.complete() {
			out = append(out, n)
		}
	}
	return out
}

func byID(a, b *node) int { return commit.CompareIDs(a.c.ID(), b.c.ID()) }

// link sets n's generation, delta base, depth and schema, checking the
// commit against its parents. A shallow commit (its collected parents
// absent) takes its generation and depth from the horizon record.
func (r *Repo) link(n *node) error {
	c := &n.c
	var gen uint32
	for _, p := range c.Parents() {
		pn := r.commits.get(p)
		if pn == nil { // collected: n is shallow
			continue
		}
		if pn.c.Key() != c.Key() {
			return fmt.Errorf("parent %s belongs to item %s", p.Short(), pn.c.Key())
		}
		if pn.c.Time() > c.Time() {
			return fmt.Errorf("timestamp %d is before parent %s's %d", c.Time(), p.Short(), pn.c.Time())
		}
		gen = max(gen, pn.gen)
		if c.np == 1 {
			// The parent's own id: a commit of one parent holds no copy.
			c.par = &pn.c.id
		}
	}
	n.gen = gen + 1
	var e shallowEntry
	if n.shallow {
		var ok bool
		if e, ok = r.listedEntry(c); !ok || e.gen <= gen {
			n.gen = 0
			return fmt.Errorf("shallow commit without a generation above its parents' in the horizon record")
		}
		n.gen = e.gen
	}
	if c.IsFull() {
		return nil // n.schema is the commit's own (insertEncoded, placeNode)
	}
	b := r.commits.get(c.Base())
	switch {
	case !b.c.IsFull():
		return fmt.Errorf("delta base %s is not a full snapshot", c.Base().Short())
	case !r.isAncestor(b, n):
		return fmt.Errorf("delta base %s is not an ancestor", c.Base().Short())
	}
	n.base, n.schema, n.c.base = b, b.schema, &b.c.id
	if n.shallow {
		n.depth = uint8(e.depth) // at most maxChain (decodeHorizon)
	} else {
		n.depth = min(maxChain, 1+r.minParentDepth(c))
	}
	return nil
}

func (r *Repo) minParentDepth(c *meta) uint8 {
	d := uint8(maxChain)
	for _, p := range c.Parents() {
		if pn := r.commits.get(p); pn != nil {
			d = min(d, pn.depth)
		}
	}
	return d
}

// isAncestor reports whether a is a proper ancestor of n, visiting only
// commits whose generation is above a's.
func (r *Repo) isAncestor(a, n *node) bool {
	seen := map[*node]bool{}
	stack := []*node{n}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, p := range x.c.Parents() {
			pn := r.commits.get(p)
			if pn == a {
				return true
			}
			if pn != nil && pn.gen > a.gen && !seen[pn] {
				seen[pn] = true
				stack = append(stack, pn)
			}
		}
	}
	return false
}

// valueOf returns the item value a complete commit holds.
func (r *Repo) valueOf(n *node) (item.Item, error) {
	c, err := r.commitOf(n)
	if err != nil {
		return item.Item{}, err
	}
	if c.IsFull() {
		return c.Value(), nil
	}
	b, err := r.commitOf(n.base)
	if err != nil {
		return item.Item{}, err
	}
	return item.Patch(b.Value(), c.Delta())
}

// valueKnown is valueOf, taking n's value, or its delta base's, from
// what its item holds decoded (its head's value, the head's delta base's)
// rather than from the log, where reading one commit may mean
// decompressing the group record that holds it. r.mu must be held.
func (r *Repo) valueKnown(n *node) (item.Item, error) {
	st := r.items.get(n.c.Key())
	if st == nil {
		return r.valueOf(n)
	}
	if v, ok := st.knownValue(r, n); ok {
		return v, nil
	}
	c, err := r.commitOf(n)
	if err != nil {
		return item.Item{}, err
	}
	if c.IsFull() {
		return c.Value(), nil
	}
	bv, err := r.baseValue(st, n.base)
	if err != nil {
		return item.Item{}, err
	}
	return item.Patch(bv, c.Delta())
}

// paintDown walks down from the leaves in generation order, painting every
// commit with a bit per leaf that reaches it, until only commits below the
// common ancestors remain. It returns the lowest common ancestors, sorted by
// (generation, timestamp, id), and the paint: a commit painted with some
// leaves' bits but not all of them belongs to those leaves' own history
// since the common ancestors.
func (r *Repo) paintDown(leaves []*node) ([]*node, map[*node]uint64) {
	all := uint64(1)<<len(leaves) - 1
	const stale = uint64(1) << 63
	paint := map[*node]uint64{}
	q := &genHeap{}
	for i, l := range leaves {
		paint[l] |= 1 << i
		heap.Push(q, l)
	}
	var common []*node
	for q.Len() > 0 && q.anyActive(paint, stale) {
		n := heap.Pop(q).(*node)
		f := paint[n]
		if f&all == all && f&stale == 0 {
			common = append(common, n)
			f |= stale
		}
		for _, p := range n.c.Parents() {
			pn := r.commits.get(p)
			if pn == nil {
				// Collected by compaction: an ancestor of every kept
				// commit of the item, so painted by every leaf and
				// stale by now on a peer that holds it (see
				// writeStamps for leaves with no common ancestor).
				continue
			}
			if paint[pn]|f != paint[pn] {
				if paint[pn] == 0 {
					heap.Push(q, pn)
				}
				paint[pn] |= f
			}
		}
	}
	slices.SortFunc(common, cmpNode)
	return common, paint
}

// cmpNode orders commits by (generation, timestamp, id).
func cmpNode(a, b *node) int {
	if c := cmp.Compare(a.gen, b.gen); c != 0 {
		return c
	}
	if c := cmp.Compare(a.c.Time(), b.c.Time()); c != 0 {
		return c
	}
	return byID(a, b)
}

// genHeap pops the highest generation first.
type genHeap []*node

func (h genHeap) Len() int           { return len(h) }
func (h genHeap) Less(i, j int) bool { return cmpNode(h[i], h[j]) > 0 }
func (h genHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *genHeap) Push(x any)        { *h = append(*h, x.(*node)) }
func (h *genHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (h genHeap) anyActive(paint map[*node]uint64, stale uint64) bool {
	for _, n := range h {
		if paint[n]&stale == 0 {
			return true
		}
	}
	return false
}

// validate checks a complete commit's value against its schema.
func (r *Repo) validate(n *node) error {
	v, err := r.valueKnown(n)
	if err == nil {
		err = r.opts.Validator.Validate(v, n.schemaOf())
	}
	if err != nil {
		return fmt.Errorf("does not fit its schema: %w", err)
	}
	return nil
}
