package repo

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/vfs"
)

// Compaction rewrites the log without the history before a horizon (see
// doc.go, Compaction, for what is kept and why):
//
//  1. Plan, from the graph in memory: the log position E0 it covers, and
//     per item the commits kept. Items are planned a few hundred commits
//     at a time under the read lock, so writers wait at most for one
//     batch; commits that complete after E0 are marked as they do
//     (node.mark) and planned as the pending commits they were at E0. The
//     maps of the graph after the swap are built too, without the lock.
//  2. Copy, without the lock: a new header (new epoch, version 3), the
//     horizon records, the exclusions still in force, then the records
//     before E0 that hold kept commits, in log order (as they are when
//     every commit of the record is kept, else rebuilt from the kept
//     ones), into PATH.compact; fsync.
//  3. Catch up, without the lock: the records appended since are copied
//     as they are (only their heads' claims change), a few times until
//     what is left is small. The copy is synced every 256 KiB, so that
//     no fsync of it holds the disk long while writers sync theirs, and
//     planning batches and syncs of the copy wait for a writer's fsync in
//     flight to end first (compact_pace.go).
//  4. Swap, under the write lock, the only pause: the rest of the tail,
//     then the records buffered and not yet written to the log, are
//     copied, the copy synced, renamed over the log, the directory
//     synced; the log writer goes on in the new file, and the graph takes
//     the maps prepared (dropping the collected commits), maps every
//     sequence number into the new file and takes the new epoch.
//
// Before the rename the old log is whole and PATH.compact is deleted by
// the next open; after it, the new log is whole (synced before the
// rename). A commit written during the copy that builds on a commit the
// plan collects (only a peer's commit can, or a write racing a purge of
// its item) makes the compaction start over, at most three times.

const (
	compactSuffix   = ".compact"
	tailSmall       = 64 << 10 // a tail this small is copied under the lock
	maxTailPasses   = 8
	compactAttempts = 3
	planBatch       = 256       // commits planned per hold of the read lock
	copyBuffer      = 1 << 20   // read-ahead of the log
	syncEvery       = 256 << 10 // see compact_pace.go
)

var errCompactRace = errors.New("a commit written during the compaction builds on history it collects")

func (r *Repo) compactPath() string { return r.path + compactSuffix }

// removeCompactLeftover deletes the copy an unfinished compaction left.
func (r *Repo) removeCompactLeftover() {
	switch err := r.opts.FS.Remove(r.compactPath()); {
	case err == nil:
		r.opts.Logger.Warn("removed the copy of an unfinished compaction", "path", r.compactPath())
	case !errors.Is(err, fs.ErrNotExist):
		r.opts.Logger.Warn("remove the copy of an unfinished compaction", "path", r.compactPath(), "err", err)
	}
}

// Pin holds off the swap of a compaction (the end of Compact, which
// replaces the log and raises the horizon) until release is called, so
// that what its caller reads meanwhile (the horizon, the commits, their
// shallow roots, the epoch) is of one state of the repository. Writers
// and readers are not held; a compaction waits for the pins held when it
// is ready to swap, and new pins wait for its swap. release must be called
// once, and the holder must not call Pin again before it (a swap waiting
// between the two would wait for ever).
func (r *Repo) Pin() (release func()) {
	r.pins.RLock()
	return r.pins.RUnlock
}

// Compact rewrites the log without the history before horizon h (Unix
// milliseconds; raised to the log's current horizon if below it) while
// writers go on writing. It keeps, per item, every commit stamped at or
// after h, every commit that was a leaf at some time at or after h, every
// current leaf however old, every excluded and every pending commit, and
// everything between those and the item's frontier: the newest commit that
// every kept commit descends from and that is an ancestor or a descendant
// of every one of them, taken at or below every kept delta's base. The
// frontier and the kept merges with parents below it are shallow: the
// horizon record lists them with their generation numbers, so that merges
// come out the same as on a peer that holds the whole history. Commits
// opts.Drop names are dropped with every commit descending from them
// (purge). See doc.go, Compaction.
//
// Writers wait only for the swap at the end (CompactStats.Pause), and for
// planning batches of a few hundred commits. Sequence numbers start over
// in the new file, under a new epoch: watchers are woken (Changed, Wait).
// Exclude, Restore, Discard and Reauthor wait for a compaction to finish.
func (r *Repo) Compact(h int64, opts *CompactOptions) (CompactStats, error) {
	if r.log == nil {
		return CompactStats{}, fmt.Errorf("repo: %s is read-only", r.path)
	}
	if h < 0 {
		return CompactStats{}, fmt.Errorf("repo: negative horizon %d", h)
	}
	var drop func(*commit.Commit) bool
	if opts != nil {
		drop = opts.Drop
	}
	start := time.Now()
	r.exclMu.Lock()
	defer r.exclMu.Unlock()
	var peak int64
	for attempt := 1; ; attempt++ {
		st, err := r.compactOnce(h, drop)
		st.Took = time.Since(start)
		peak = max(peak, st.CopyPeak)
		st.CopyPeak = peak
		switch {
		case errors.Is(err, errCompactRace) && attempt < compactAttempts:
			r.opts.Logger.Info("compaction starts over", "path", r.path, "reason", err)
			continue
		case err != nil:
			r.metDamage(err)
			return st, fmt.Errorf("compact %s: %w", r.path, err)
		}
		// Merges the swap wrote (an item a purge left with several
		// leaves) become durable like any other.
		if err := r.Flush(); err != nil {
			return st, fmt.Errorf("compact %s: %w", r.path, err)
		}
		return st, nil
	}
}

// PlanCompact reports what Compact(h, opts) would do, without doing it:
// the commits and the shallow commits it would keep, and the log's size
// after it, estimated from the sizes of the records kept.
func (r *Repo) PlanCompact(h int64, opts *CompactOptions) (CompactStats, error) {
	if h < 0 {
		return CompactStats{}, fmt.Errorf("repo: negative horizon %d", h)
	}
	var drop func(*commit.Commit) bool
	if opts != nil {
		drop = opts.Drop
	}
	start := time.Now()
	r.exclMu.Lock()
	defer r.exclMu.Unlock()
	p, err := r.planCompact(h, drop)
	if err != nil {
		return CompactStats{}, err
	}
	size := r.LogSize() // not the file's: it may reach into space reserved past the log
	r.mu.RLock()
	before := r.commits.len()
	r.mu.RUnlock()
	prefix := int64(len(r.prefixRecords(p, 0)))
	tail := max(0, size-int64(p.end))
	return CompactStats{CommitsBefore: before, CommitsAfter: before - p.removed, BytesBefore: size,
		BytesAfter: prefix + p.keptBytes + tail + recHeadSize, Shallow: len(p.list), Took: time.Since(start)}, nil
}

// compactPlan is what a compaction keeps.
type compactPlan struct {
	h         int64  // the new horizon
	prevEpoch uint64 // the epoch of the log compacted
	end       uint64 // E0: the log position the plan covers
	keep      uint32 // node.mark of the commits kept
	recs      []planRec
	keptIdx   []uint32 // the places of the kept commits of recs in their records, in log order
	list      []listed // the shallow commits
	shallow   []*node
	excl      []*exclOp // the exclusions in force over kept commits
	// kept lists the commits kept, in log order, and keptRec the index in
	// recs of each one's record.
	kept    []*node
	keptRec []int32
	// affected holds the items that lose commits besides collected
	// history (a purge, a refused commit), with the commits they keep;
	// prune the items whose list of pending commits may hold collected
	// ones.
	affected  map[string][]*node
	prune     []*itemState
	removed   int   // commits not kept
	keptBytes int64 // estimated bytes of the records kept
}

// planRec is a record before E0 that holds kept commits.
type planRec struct {
	oldEnd   uint64 // where it ends in the old log: its commits' sequence number
	total    int    // its commits in memory
	from, to int    // its kept commits, keptIdx[from:to] and kept[from:to]
	newEnd   uint64 // where it ends in the new log
	newSize  uint32 // its length there
}

// planCompact computes what a compaction at horizon h keeps. r.exclMu
// must be held.
func (r *Repo) planCompact(h int64, drop func(*commit.Commit) bool) (*compactPlan, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	r.compactions++
	p := &compactPlan{h: max(h, r.horizon), prevEpoch: r.epoch, end: r.seq, affected: map[string][]*node{},
		keep: 1<<31 | (r.compactions%(1<<30))<<1}
	r.planEnd, r.keepMark, r.lateMark = p.end, p.keep, p.keep|1
	count, _ := slices.BinarySearchFunc(r.entries, p.end+1, func(n *node, s uint64) int { return cmp.Compare(n.seq, s) })
	entries, items := r.entries[:count:count], len(r.list)
	r.mu.Unlock()
	planning := true
	done := func() {
		if planning {
			r.mu.Lock()
			r.planEnd, planning = 0, false
			r.mu.Unlock()
		}
	}
	defer done()

	// Group the commits by item. Keys and sequence numbers do not change
	// under a running plan, so this needs no lock.
	byKey := make(map[string]int32, items)
	itemOf := make([]int32, len(entries))
	counts := make([]int32, 0, items)
	keys := make([]string, 0, items)
	for i, n := range entries {
		k := n.c.Key()
		id, ok := byKey[k]
		if !ok {
			id = int32(len(counts))
			byKey[k] = id
			counts = append(counts, 0)
			keys = append(keys, k)
		}
		itemOf[i] = id
		counts[id]++
	}
	starts := make([]int32, len(counts)+1)
	for i, c := range counts {
		starts[i+1] = starts[i] + c
	}
	flat := make([]*node, len(entries))
	fill := slices.Clone(starts[:len(counts)])
	for i, n := range entries {
		flat[fill[itemOf[i]]] = n
		fill[itemOf[i]]++
	}
	itemOf, fill = nil, nil

	p.list, p.shallow = make([]listed, 0, len(counts)), make([]*node, 0, len(counts))
	var s planScratch
	for item := 0; item < len(counts); {
		r.mu.RLock()
		if r.closed {
			r.mu.RUnlock()
			return nil, ErrClosed
		}
		for planned := 0; item < len(counts) && planned < planBatch; item++ {
			nodes := flat[starts[item]:starts[item+1]]
			r.planItem(keys[item], nodes, p, drop, &s)
			planned += len(nodes)
		}
		r.mu.RUnlock()
		r.yieldToWriters()
		runtime.Gosched()
	}

	r.mu.RLock()
	p.excl = r.keptExclusions(p.keep)
	r.mu.RUnlock()
	done()

	// The records to copy. The plan's marks no longer change: every commit
	// was planned, and completions no longer mark.
	prev := uint64(HeaderSize)
	for i := 0; i < len(entries); {
		seq := entries[i].seq
		j, from := i, len(p.keptIdx)
		for j < len(entries) && entries[j].seq == seq {
			j++
		}
		var size int64
		for _, n := range entries[i:j] {
			if n.mark != p.keep {
				p.removed++
				continue
			}
			p.keptIdx = append(p.keptIdx, n.idx)
			p.kept = append(p.kept, n)
			p.keptRec = append(p.keptRec, int32(len(p.recs)))
			if enc := n.encoding(); enc != nil {
				size += int64(binary.MaxVarintLen32 + storedLen(enc, r.owner))
			} else { // not in memory (headindex.go): its share of the record
				size += int64(binary.MaxVarintLen32) + int64(n.size-recHeadSize)/int64(j-i)
			}
		}
		if kept := len(p.keptIdx) - from; kept > 0 {
			if kept == j-i {
				size = int64(seq - prev) // the record as it is
			} else {
				size += recHeadSize + 1
			}
			p.recs = append(p.recs, planRec{oldEnd: seq, total: j - i, from: from, to: len(p.keptIdx)})
			p.keptBytes += size
		}
		prev, i = seq, j
	}
	return p, nil
}

// keptExclusions returns the exclusion records that put the exclusions in
// force over commits marked keep back in place: one per kind, reason and
// time, then one discarding those no longer listed. r.mu must be held.
func (r *Repo) keptExclusions(keep uint32) []*exclOp {
	type group struct {
		kind   ExcludeKind
		reason string
		at     int64
	}
	byGroup := map[group][]commit.ID{}
	var hidden []commit.ID
	for id, e := range r.excl {
		if n := r.commits.get(id); n == nil || n.mark != keep {
			continue
		}
		g := group{e.kind, e.reason, e.at}
		byGroup[g] = append(byGroup[g], id)
		if e.hidden {
			hidden = append(hidden, id)
		}
	}
	groups := make([]group, 0, len(byGroup))
	for g := range byGroup {
		groups = append(groups, g)
	}
	slices.SortFunc(groups, func(a, b group) int {
		return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.kind, b.kind), cmp.Compare(a.reason, b.reason))
	})
	var ops []*exclOp
	add := func(op exclOp, ids []commit.ID) {
		slices.SortFunc(ids, commit.CompareIDs)
		for len(ids) > 0 {
			n := min(len(ids), maxExcludeIDs)
			o := op
			o.ids, ids = ids[:n], ids[n:]
			ops = append(ops, &o)
		}
	}
	for _, g := range groups {
		add(exclOp{action: actExclude, kind: g.kind, reason: g.reason, at: g.at}, byGroup[g])
	}
	if len(hidden) > 0 {
		add(exclOp{action: actDiscard, at: groups[len(groups)-1].at}, hidden)
	}
	// Quarantined writes a Restore brought back stay known as such (a
	// quarantine lifted at once says so to the new log), and so do the
	// commits kept that build on one collected.
	var back []commit.ID
	keys := map[string]bool{}
	for id := range r.reinstated {
		if n := r.commits.get(id); n != nil {
			keys[n.c.Key()] = true
		}
	}
	for _, key := range sortedKeys(keys) {
		for n, under := range r.descends(r.itemNodes(r.items.get(key)), func(n *node) bool { return r.reinstated[n.c.ID()] }) {
			if under && n.mark == keep && r.excl[n.c.ID()] == nil {
				back = append(back, n.c.ID())
			}
		}
	}
	if len(back) > 0 {
		add(exclOp{action: actExclude, kind: ExcludeQuarantined, reason: "restored"}, slices.Clone(back))
		add(exclOp{action: actRestore}, back)
	}
	return ops
}

// planScratch is the per-item state of planning, reused across items.
type planScratch struct {
	state          []uint8
	seed, hasChild []bool
	kept, qualify  []bool
	childMin       []int64
	inDeg, outDeg  []int32
	order, pos     []int32
	roots          []int32
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

const (
	stGood    = iota // complete, valid: in the graph (or excluded)
	stPending        // waiting for parents (at E0)
	stBad            // refused when it completed
	stDropped        // named by Drop, or descends from one
)

// planItem marks the commits of one item (nodes, in log order, all before
// E0) that the compaction keeps with p.keep, the others 0, and lists the
// shallow ones. r.mu must be held (read).
//
// What an item keeps: the seeds (commits stamped at or after the horizon,
// those whose earliest child is, leaves, excluded commits, what pending
// commits wait on), and everything from the frontier up. The frontier is
// found by a sweep in generation order: a commit is a cut when every
// commit before it is its ancestor and every commit after it its
// descendant (all edges out of the commits before it go into it, each of
// those has a child, and no root comes after it). The frontier is the
// newest cut at or below every seed and every kept delta's base. So every
// collected commit is an ancestor of the frontier, hence of every kept
// commit, and below the common ancestors of any commits a merge will join:
// merges never reach it (see writeStamps for the one exception). An item
// with no such cut keeps everything.
func (r *Repo) planItem(key string, nodes []*node, p *compactPlan, drop func(*commit.Commit) bool, s *planScratch) {
	m := len(nodes)
	s.state, s.seed, s.hasChild, s.kept = grow(s.state, m), grow(s.seed, m), grow(s.hasChild, m), grow(s.kept, m)
	s.childMin, s.inDeg, s.outDeg, s.pos = grow(s.childMin, m), grow(s.inDeg, m), grow(s.outDeg, m), grow(s.pos, m)
	for i, n := range nodes {
		late := n.mark == r.lateMark
		n.mark = uint32(i + 1)
		switch {
		case late || !n.complete() && !n.bad:
			s.state[i] = stPending
		case n.bad:
			s.state[i] = stBad
		default:
			s.state[i] = stGood
		}
		s.childMin[i] = math.MaxInt64
	}
	// local returns the index among nodes of the commit id, or -1.
	local := func(id commit.ID) int {
		if m <= 8 {
			for j, n := range nodes {
				if n.c.ID() == id {
					return j
				}
			}
			return -1
		}
		x := r.commits.get(id)
		if x == nil || x.mark == 0 || int(x.mark) > m || nodes[x.mark-1] != x {
			return -1
		}
		return int(x.mark - 1)
	}
	if drop != nil {
		r.planDrop(nodes, drop, local, s.state)
	}

	for i, n := range nodes {
		if s.state[i] != stGood {
			continue
		}
		for _, id := range n.c.Parents() {
			j := local(id)
			if j < 0 || s.state[j] != stGood {
				continue
			}
			s.outDeg[j]++
			s.inDeg[i]++
			if !n.out {
				s.hasChild[j] = true
				s.childMin[j] = min(s.childMin[j], n.c.Time())
			}
		}
	}
	for i, n := range nodes {
		switch s.state[i] {
		case stGood:
			s.seed[i] = n.out || n.c.Time() >= p.h || !s.hasChild[i] || s.childMin[i] >= p.h
		case stPending:
			s.kept[i] = true
			for _, id := range deps(&n.c) {
				if j := local(id); j >= 0 && s.state[j] == stGood {
					s.seed[j] = true
				}
			}
		}
	}

	order := s.order[:0]
	for i := range nodes {
		if s.state[i] == stGood {
			order = append(order, int32(i))
		}
	}
	slices.SortFunc(order, func(a, b int32) int {
		return cmp.Or(cmp.Compare(nodes[a].gen, nodes[b].gen), byID(nodes[a], nodes[b]))
	})
	s.order = order
	g := len(order)
	s.qualify, s.roots = grow(s.qualify, g), grow(s.roots, g+1)
	limit := g - 1
	for k := g - 1; k >= 0; k-- {
		i := order[k]
		s.pos[i] = int32(k)
		s.roots[k] = s.roots[k+1]
		if s.inDeg[i] == 0 {
			s.roots[k]++
		}
		if s.seed[i] {
			limit = k
		}
	}
	var open, childless int32
	for k, i := range order {
		s.qualify[k] = open == s.inDeg[i] && childless == 0 && s.roots[k+1] == 0
		open += s.outDeg[i] - s.inDeg[i]
		if s.outDeg[i] == 0 {
			childless++
		}
	}
	cut := func(limit int) int {
		for k := limit; k > 0; k-- {
			if s.qualify[k] {
				return k
			}
		}
		return 0
	}
	bpos, scanned := cut(limit), g
	for {
		low := bpos
		for k := bpos; k < scanned; k++ {
			n := nodes[order[k]]
			if n.c.IsFull() {
				continue
			}
			if j := local(n.c.Base()); j >= 0 && s.state[j] == stGood {
				low = min(low, int(s.pos[j]))
			}
		}
		scanned = bpos
		if low >= bpos {
			break
		}
		bpos = cut(low)
	}
	// A parent collected must be named in the horizon record's 64-bit mask.
	for k := bpos; k < g && bpos > 0; k++ {
		n := nodes[order[k]]
		for pi, id := range n.c.Parents() {
			if j := local(id); pi >= 64 && j >= 0 && int(s.pos[j]) < bpos {
				bpos = 0
			}
		}
	}
	for k := bpos; k < g; k++ {
		s.kept[order[k]] = true
	}
	for i, n := range nodes {
		if s.state[i] != stBad {
			continue
		}
		s.kept[i] = true
		for _, id := range deps(&n.c) {
			if j := local(id); j >= 0 && !s.kept[j] {
				s.kept[i] = false
			}
		}
	}

	for k := bpos; k < g; k++ {
		n := nodes[order[k]]
		var absent uint64
		for pi, id := range n.c.Parents() {
			collected := r.commits.get(id) == nil // collected before
			if j := local(id); j >= 0 {
				collected = !s.kept[j]
			}
			if collected && pi < 64 {
				absent |= 1 << pi
			}
		}
		if absent != 0 {
			if ps := len(n.c.Parents()); ps <= 64 && absent == allParents>>(64-ps) {
				absent = allParents
			}
			p.list = append(p.list, listed{prefixOf(n.c.ID()), shallowEntry{gen: n.gen, depth: uint16(n.depth), absent: absent}})
			p.shallow = append(p.shallow, n)
		}
	}
	affected, collected := false, false
	for i, n := range nodes {
		if s.kept[i] {
			n.mark = p.keep
			continue
		}
		n.mark = 0
		affected = affected || s.state[i] != stGood
		collected = true
	}
	if affected {
		var left []*node
		for i, n := range nodes {
			if s.kept[i] {
				left = append(left, n)
			}
		}
		p.affected[key] = left
	} else if st := r.items.get(key); collected && st != nil && len(st.pendingList()) > 0 {
		p.prune = append(p.prune, st)
	}
}

// planDrop marks dropped the commits Drop names and every commit that
// depends on one (a child, or a delta on it).
func (r *Repo) planDrop(nodes []*node, drop func(*commit.Commit) bool, local func(commit.ID) int, state []uint8) {
	var stack []int
	for i, n := range nodes {
		c, err := r.commitOf(n)
		if err != nil {
			// Kept: a purge never drops what it cannot read.
			r.opts.Logger.Error("purge", "path", r.path, "err", err)
			continue
		}
		if drop(c) {
			state[i] = stDropped
			stack = append(stack, i)
		}
	}
	if len(stack) == 0 {
		return
	}
	dependents := make([][]int, len(nodes))
	for i, n := range nodes {
		for _, id := range deps(&n.c) {
			if j := local(id); j >= 0 {
				dependents[j] = append(dependents[j], i)
			}
		}
	}
	for len(stack) > 0 {
		j := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, i := range dependents[j] {
			if state[i] != stDropped {
				state[i] = stDropped
				stack = append(stack, i)
			}
		}
	}
}

// prefixRecords returns the start of the new log: its header, the horizon
// records and the exclusion records, with the ends of the latter.
func (r *Repo) prefixRecords(p *compactPlan, epoch uint64) []byte {
	b := appendHeader(nil, logHeader{owner: r.owner, epoch: epoch, version: compactedVersion})
	b = appendHorizonRecords(b, p.h, p.prevEpoch, p.list)
	for _, op := range p.excl {
		b = appendExclusionRecord(b, op, int64(len(b)))
	}
	return b
}

// compactCopy writes the new log.
type compactCopy struct {
	src  vfs.File // the log, read
	bw   *bufio.Writer
	dst  vfs.File
	off  int64 // the new log's size so far
	data []byte
	zbuf []byte // for recordCount
	// synced is how much of the copy was synced: it is synced every
	// syncEvery bytes, so that no fsync of it holds the disk for long
	// (a writer's fsync waits behind it; see compact_pace.go).
	synced int64
	owner  commit.SessionID
	yield  func() // before each sync of a piece; nil under the lock
}

// records reads the records of the log in [from, to) in order, checking
// their checksums, and calls fn for each.
func (c *compactCopy) records(from, to int64, fn func(end int64, h recHead, data []byte) error) error {
	br := bufio.NewReaderSize(io.NewSectionReader(c.src, from, to-from), copyBuffer)
	var head [recHeadSize]byte
	for off := from; off < to; {
		if _, err := io.ReadFull(br, head[:]); err != nil {
			return fmt.Errorf("read the log at offset %d: %w", off, err)
		}
		h, ok := headAt(head[:], off)
		end := off + recHeadSize + int64(h.length)
		if !ok || end > to {
			return fmt.Errorf("%w: no whole record at offset %d", ErrCorrupt, off)
		}
		if cap(c.data) < h.length {
			c.data = make([]byte, h.length)
		}
		data := c.data[:h.length]
		if _, err := io.ReadFull(br, data); err != nil {
			return fmt.Errorf("read the log at offset %d: %w", off, err)
		}
		if crc32.Checksum(data, castagnoli) != h.dataCRC {
			return fmt.Errorf("%w: record data checksum mismatch at offset %d", ErrCorrupt, off)
		}
		if err := fn(end, h, data); err != nil {
			return err
		}
		off = end
		if c.off-c.synced >= syncEvery {
			if c.yield != nil {
				c.yield()
			}
			if err := c.sync(); err != nil {
				return err
			}
		}
	}
	return nil
}

// verbatim writes a record as it is, with a head claiming its own offset
// (the new log is synced whole before it replaces the old one).
func (c *compactCopy) verbatim(typ byte, data []byte, dataCRC uint32) error {
	var head [recHeadSize]byte
	head[0], head[1], head[2] = recMagic[0], recMagic[1], typ
	binary.LittleEndian.PutUint32(head[3:], uint32(len(data)))
	binary.LittleEndian.PutUint64(head[7:], uint64(c.off))
	binary.LittleEndian.PutUint32(head[15:], dataCRC)
	binary.LittleEndian.PutUint32(head[19:], crc32.Checksum(head[:19], castagnoli))
	if _, err := c.bw.Write(head[:]); err != nil {
		return err
	}
	if _, err := c.bw.Write(data); err != nil {
		return err
	}
	c.off += recHeadSize + int64(len(data))
	return nil
}

func (c *compactCopy) raw(b []byte) error {
	_, err := c.bw.Write(b)
	c.off += int64(len(b))
	return err
}

func (c *compactCopy) sync() error {
	if err := c.bw.Flush(); err != nil {
		return err
	}
	c.synced = c.off
	return c.dst.Sync()
}

// prefix copies the records before E0 that hold kept commits.
func (c *compactCopy) prefix(p *compactPlan) error {
	k := 0
	err := c.records(HeaderSize, int64(p.end), func(end int64, h recHead, data []byte) error {
		switch h.typ {
		case recCommit, recCommitZstd, recGroup, recGroupZstd:
		default:
			return nil // marks, exclusions (written anew), horizons
		}
		if k >= len(p.recs) || p.recs[k].oldEnd != uint64(end) {
			return nil // nothing kept
		}
		rec := &p.recs[k]
		k++
		kept := p.keptIdx[rec.from:rec.to]
		start := c.off
		var err error
		switch {
		case len(kept) == rec.total && c.recordCount(h.typ, data) == rec.total:
			err = c.verbatim(h.typ, data, h.dataCRC)
		default:
			// The kept commits, as the record stores them, in a new record.
			var stored [][]byte
			if stored, err = recordCommits(h.typ, data); err != nil {
				return fmt.Errorf("%w: the record ending at offset %d: %w", ErrCorrupt, end, err)
			}
			picked := make([][]byte, len(kept))
			for i, idx := range kept {
				if int(idx) >= len(stored) {
					return fmt.Errorf("%w: the record ending at offset %d holds %d commits, not %d", ErrCorrupt, end, len(stored), idx+1)
				}
				picked[i] = stored[idx]
			}
			err = c.raw(appendStoredRecord(nil, picked, c.off))
		}
		rec.newEnd, rec.newSize = uint64(c.off), uint32(c.off-start)
		return err
	})
	if err == nil && k != len(p.recs) {
		err = fmt.Errorf("%w: the record ending at offset %d is not in the log", ErrCorrupt, p.recs[k].oldEnd)
	}
	return err
}

// tail copies the records in [from, to) as they are.
func (c *compactCopy) tail(from, to int64) error {
	return c.records(from, to, func(_ int64, h recHead, data []byte) error {
		return c.verbatim(h.typ, data, h.dataCRC)
	})
}

// buffered copies records appended to the log but not written to it yet
// (buf, whose first byte would be at offset base of the log) as they are.
func (c *compactCopy) buffered(buf []byte, base int64) error {
	for off := 0; off < len(buf); {
		h, ok := headAt(buf[off:off+recHeadSize], base+int64(off))
		end := off + recHeadSize + h.length
		if !ok || end > len(buf) {
			return fmt.Errorf("repo: the log's buffer holds no whole record at offset %d", base+int64(off))
		}
		if err := c.verbatim(h.typ, buf[off+recHeadSize:end], h.dataCRC); err != nil {
			return err
		}
		off = end
	}
	return nil
}

// recordCount returns how many commits a commit record holds, or -1.
func (c *compactCopy) recordCount(typ byte, data []byte) int {
	switch typ {
	case recCommit, recCommitZstd:
		return 1
	case recGroupZstd:
		var err error
		if c.zbuf, err = decompress(zdec, data, c.zbuf[:0]); err != nil {
			return -1
		}
		data = c.zbuf
	}
	n, k := binary.Uvarint(data)
	if k <= 0 || n > uint64(len(data)) {
		return -1
	}
	return int(n)
}

// compactOnce plans, copies and swaps. r.exclMu must be held.
func (r *Repo) compactOnce(h int64, drop func(*commit.Commit) bool) (st CompactStats, err error) {
	if err := r.Flush(); err != nil {
		return st, err
	}
	p, err := r.planCompact(h, drop)
	if err != nil {
		return st, err
	}
	// Under Async the log may not be durable up to E0 yet.
	if err := r.log.sync(r.log.ticketTo(int64(p.end))); err != nil {
		return st, err
	}
	fsys := r.opts.FS
	src, err := fsys.OpenFile(r.path, os.O_RDONLY, 0)
	if err != nil {
		return st, err
	}
	defer src.Close()
	dst, err := fsys.OpenFile(r.compactPath(), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644) // the log's file after the swap: no O_APPEND (see logWriter)
	if err != nil {
		return st, err
	}
	swapped := false
	defer func() {
		if !swapped {
			dst.Close()
			if err := fsys.Remove(r.compactPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
				r.opts.Logger.Warn("remove the copy of a failed compaction", "path", r.compactPath(), "err", err)
			}
		}
	}()
	c := &compactCopy{src: src, dst: dst, bw: bufio.NewWriterSize(dst, syncEvery), owner: r.owner, yield: r.yieldToWriters}
	defer func() { st.CopyPeak = c.off }() // the copy only grows
	g := prepareSwap(p)
	epoch := newEpoch()
	pre := r.prefixRecords(p, epoch)
	exclEnds := make([]uint64, len(p.excl))
	if len(p.excl) > 0 { // where each exclusion record ends
		off := len(pre)
		for i := len(p.excl) - 1; i >= 0; i-- {
			exclEnds[i] = uint64(off)
			off -= recHeadSize + len(appendExclusion(nil, p.excl[i]))
		}
	}
	if err := c.raw(pre); err != nil {
		return st, err
	}
	if err := c.prefix(p); err != nil {
		return st, err
	}
	n0 := c.off
	if err := c.sync(); err != nil {
		return st, err
	}
	from := int64(p.end)
	for range maxTailPasses {
		d := r.log.durableTo()
		if d-from <= tailSmall {
			break
		}
		if err := c.tail(from, d); err != nil {
			return st, err
		}
		from = d
		if err := c.sync(); err != nil {
			return st, err
		}
	}

	// The swap: Pin's holders are waited for, then writers wait from
	// here.
	c.yield = nil
	r.pins.Lock()
	r.mu.Lock()
	locked := time.Now()
	unlock := func() {
		st.Pause = time.Since(locked)
		r.mu.Unlock()
		r.pins.Unlock()
	}
	if r.closed {
		unlock()
		return st, ErrClosed
	}
	if err := r.compactRaceLocked(p); err != nil {
		unlock()
		return st, err
	}
	if err := r.log.hold(); err != nil {
		unlock()
		return st, err
	}
	// r.log.mu is held: nothing is being written or synced. The records
	// not written yet go straight to the copy, after the rest of the log.
	st.BytesBefore = r.log.size
	err = c.tail(from, r.log.durable)
	bufAt := c.off // where the buffered records start in the copy
	if err == nil {
		err = c.buffered(r.log.buf, r.log.durable)
	}
	st.BytesTail = c.off - n0
	if err == nil {
		err = c.raw(appendMark(nil, c.off))
	}
	if err == nil {
		err = c.sync()
	}
	if err == nil {
		err = fsys.Rename(r.compactPath(), r.path)
	}
	if err != nil {
		r.log.mu.Unlock()
		unlock()
		return st, err
	}
	swapped = true
	dir := filepath.Dir(r.path)
	dirErr := fsys.SyncDir(dir)
	if dirErr != nil {
		dirErr = fsys.SyncDir(dir)
	}
	durable := c.off
	if dirErr != nil {
		// The new log is the live one, but its name may not survive a
		// crash yet: nothing written to it only is acknowledged before
		// the directory is synced (the old log holds the rest).
		durable = bufAt
	}
	old := r.log.swapLocked(dst, c.off, durable, int64(p.end)-n0)
	if dirErr != nil {
		r.log.failDirSync(func() error { return fsys.SyncDir(dir) }, dirErr)
		r.opts.Logger.Error("sync the directory after compaction", "path", r.path, "err", dirErr)
	}
	r.log.mu.Unlock()
	old.Close()
	st.CommitsBefore = r.commits.len()
	r.applyCompactLocked(p, g, n0, int64(p.end)-n0, epoch, exclEnds)
	st.CommitsAfter, st.BytesAfter, st.Shallow = r.commits.len(), c.off, len(p.list)
	unlock()
	return st, nil
}

// compactRaceLocked returns errCompactRace if a commit written since E0
// builds on a commit the plan does not keep.
func (r *Repo) compactRaceLocked(p *compactPlan) error {
	gone := func(c placed) bool {
		for _, id := range deps(c) {
			if x := r.commits.get(id); x != nil && x.seq <= p.end && x.mark != p.keep {
				return true
			}
		}
		return false
	}
	i, _ := slices.BinarySearchFunc(r.entries, p.end+1, func(n *node, s uint64) int { return cmp.Compare(n.seq, s) })
	for _, n := range r.entries[i:] {
		if gone(&n.c) {
			return fmt.Errorf("%w: %s of %s", errCompactRace, n.c.ID().Short(), n.c.Key())
		}
	}
	for _, b := range r.tentative {
		for _, c := range b.commits {
			if gone(c) {
				return fmt.Errorf("%w: %s of %s", errCompactRace, c.ID().Short(), c.Key())
			}
		}
	}
	return nil
}

// swapGraph is the graph of the new log, prepared before the swap: the
// commits kept, by id, and in log order.
type swapGraph struct {
	commits commitIndex
	entries []*node
}

// prepareSwap builds the maps and lists of the graph after the swap that
// do not depend on what is written meanwhile, so that the swap only adds
// the tail to them.
func prepareSwap(p *compactPlan) swapGraph {
	g := swapGraph{commits: newCommitIndex(len(p.kept) + 1024), entries: make([]*node, len(p.kept), len(p.kept)+1024)}
	for i, n := range p.kept {
		g.commits.add(n)
		g.entries[i] = n
	}
	return g
}

// applyCompactLocked makes the graph that of the new log: the commits not
// kept leave it, every sequence number moves into the new file (a kept
// record's by the plan, the tail's by shift), the shallow commits are
// marked, the items that lost more than collected history are rebuilt,
// and watchers are woken. Its work is in the commits kept and the tail,
// with the maps built before (g). r.mu must be held.
func (r *Repo) applyCompactLocked(p *compactPlan, g swapGraph, n0, shift int64, epoch uint64, exclEnds []uint64) {
	i, _ := slices.BinarySearchFunc(r.entries, p.end+1, func(n *node, s uint64) int { return cmp.Compare(n.seq, s) })
	tail := r.entries[i:]
	for j, n := range p.kept {
		rec := &p.recs[p.keptRec[j]]
		n.seq, n.size = rec.newEnd, rec.newSize
		if rec.to-rec.from < rec.total { // rewritten with the kept commits only, in order
			n.idx = uint32(j - rec.from)
		}
	}
	for _, n := range tail {
		n.seq -= uint64(shift)
		g.commits.add(n)
		g.entries = append(g.entries, n)
	}
	r.commits, r.entries = g.commits, g.entries
	r.encFrom, r.encHeld = 0, 0
	for _, n := range r.entries {
		r.encHeld += len(n.encoding())
	}
	for n := range r.badWhy {
		if r.commits.get(n.c.id) != n {
			delete(r.badWhy, n) // collected
		}
	}
	// Positions are the new file's: commits not in memory are read from it.
	r.logVer, r.indexed = compactedVersion, 0
	if err := r.rd.reset(); err != nil {
		r.opts.Logger.Warn("close the old log", "path", r.path, "err", err)
	}
	for _, n := range p.shallow {
		n.shallow = true
		// Its own copy of its parents' ids, which may have been theirs
		// (link): the collected parents are then freed.
		n.c.setParents(slices.Clone(n.c.Parents()))
	}
	if r.seq > p.end {
		r.seq -= uint64(shift)
	} else {
		r.seq = uint64(n0)
	}
	r.touched, r.exclSeq = nil, 0
	for i, op := range p.excl {
		r.exclSeq = exclEnds[i]
		if op.action != actDiscard {
			r.touched = append(r.touched, touch{seq: exclEnds[i], keys: sortedKeys(r.opKeysLocked(op))})
		}
	}
	for id := range r.excl {
		if r.commits.get(id) == nil {
			delete(r.excl, id)
		}
	}
	r.epoch, r.horizon, r.prevEpoch = epoch, p.h, p.prevEpoch
	for id, ws := range r.waiting {
		ws = slices.DeleteFunc(ws, func(w *node) bool { return r.commits.get(w.c.ID()) != w })
		if len(ws) == 0 {
			delete(r.waiting, id)
		} else {
			r.waiting[id] = ws
		}
	}
	for _, st := range p.prune {
		st.setRare(slices.DeleteFunc(st.pendingList(), func(n *node) bool { return n.complete() || r.commits.get(n.c.ID()) != n }), st.outList())
	}
	if len(p.affected) > 0 {
		for _, n := range tail {
			if left, ok := p.affected[n.c.Key()]; ok {
				p.affected[n.c.Key()] = append(left, n)
			}
		}
		for key, left := range p.affected {
			r.rebuildItemLocked(r.items.get(key), left)
		}
		r.list = slices.DeleteFunc(r.list, func(st *itemState) bool { return r.items.get(st.key) != st })
	}
	r.wakeLocked()
}

// rebuildItemLocked recomputes an item's graph from the commits it has
// left (a purge took some out): excluded commits, leaves, pending commits,
// then its merge and head. An item with none left is forgotten, so its key
// can be written again with a fresh history.
func (r *Repo) rebuildItemLocked(st *itemState, nodes []*node) {
	var out map[*node]bool
	if len(r.excl) > 0 {
		out = r.descends(nodes, func(n *node) bool { return r.excl[n.c.ID()] != nil })
	}
	hasChild := map[*node]bool{}
	for _, n := range nodes {
		n.out = out[n] && !n.bad
		if n.complete() && !n.bad && !n.out {
			for _, id := range n.c.Parents() {
				if pn := r.commits.get(id); pn != nil {
					hasChild[pn] = true
				}
			}
		}
	}
	var pending, outs []*node
	leaves := st.leaf1[:0]
	for _, n := range nodes {
		switch {
		case !n.complete() && !n.bad:
			pending = append(pending, n)
		case !n.complete() || n.bad:
		case n.out:
			outs = append(outs, n)
		case !hasChild[n]:
			leaves = append(leaves, n)
		}
	}
	st.setRare(pending, outs)
	slices.SortFunc(leaves, byID)
	st.setLeaves(leaves)
	r.settleItem(st)
	if len(nodes) == 0 {
		r.items.remove(st.key)
		delete(r.inflight, st.key)
	}
}
