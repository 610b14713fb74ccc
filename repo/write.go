package repo

import (
	"cmp"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
)

// Current is what an update sees of an item.
type Current struct {
	Key    string
	Value  item.Item
	Schema commit.Schema
	Head   commit.ID // the head the update builds on; zero for a new item
	Exists bool      // the item has at least one commit
}

// Update computes an item's next value and schema from its current one.
// Returning the current value and schema unchanged writes nothing. Fn runs
// without the repository's lock and may run more than once (when another
// writer changes the item meanwhile), so it must have no side effects.
type Update struct {
	Key string
	Fn  func(cur Current) (item.Item, commit.Schema, error)
	// Signer, if set, signs the item's commit instead of the repository's
	// session key: the commit's author is Signer's session (a server
	// writing for a session whose key it holds). Several updates of one
	// key must agree on it.
	Signer ed25519.PrivateKey
	// Admit, if set, is asked about the item's commit once it is built
	// and signed, with the item's value before it (the zero Item for a
	// new item) and after it; an error fails the whole write, which then
	// writes nothing. It may run more than once, like Fn, and must not
	// call into the repository.
	Admit func(c *commit.Commit, before, after item.Item) error
}

// maxOptimistic is how many times Write builds its commits outside the lock
// before it builds them holding it.
const maxOptimistic = 3

// Write applies updates atomically: if any Fn fails, nothing is written and
// the error is returned. Several updates of one key see each other's
// results and make one commit. It returns the new commits, and waits for
// them to be durable under Sync durability.
//
// Commits are built, hashed and signed outside the lock, so writers work in
// parallel; if an item's head moved meanwhile, the write is built again.
func (r *Repo) Write(updates ...Update) ([]*commit.Commit, error) {
	if r.log == nil || r.opts.Key == nil {
		return nil, fmt.Errorf("repo: %s is read-only", r.path)
	}
	for attempt := 0; ; attempt++ {
		locked := attempt >= maxOptimistic
		commits, stages, err := r.prepare(updates, locked)
		if err != nil || len(commits) == 0 {
			return nil, err
		}
		if !locked {
			r.mu.Lock()
			if r.closed {
				r.mu.Unlock()
				return nil, ErrClosed
			}
		}
		t, err := r.commitWriteLocked(commits, stages)
		r.mu.Unlock()
		switch {
		case errors.Is(err, errStaleGen):
			continue
		case err != nil:
			return nil, err
		}
		if err := r.settleDurable(t); err != nil {
			return nil, err
		}
		return commits, nil
	}
}

// commitWriteLocked logs a write's commits unless a staged item's head
// moved since the write read it (errStaleGen: build it again). Under Sync
// they are held until durable, and the items' new heads are pending.
func (r *Repo) commitWriteLocked(commits []*commit.Commit, stages []*staged) (ticket, error) {
	if r.opts.Durability == Async {
		if r.movedLocked(stages) {
			return ticket{}, errStaleGen
		}
		_, err := r.appendLocked(commits)
		return ticket{}, err
	}
	// Read the generation before forgetting what a failure dropped, so
	// that a drop after this point fails the append instead of leaving
	// this write built on a dropped commit.
	gen := r.log.generation()
	r.confirmLocked()
	if r.movedLocked(stages) {
		return ticket{}, errStaleGen
	}
	t, err := r.holdLocked(commits, false, &gen)
	if err != nil {
		return t, err
	}
	for _, s := range stages {
		if s.c != nil {
			r.inflight[s.Key] = &pendingHead{n: r.pendingNode(s.c, s.head), value: s.Value}
		}
	}
	return t, nil
}

// prepare snapshots the items, runs the updates and builds the commits. With
// locked, it takes the write lock and returns holding it (unless it fails);
// otherwise it holds the read lock only while taking the snapshot.
func (r *Repo) prepare(updates []Update, locked bool) ([]*commit.Commit, []*staged, error) {
	if locked {
		r.mu.Lock()
	} else {
		r.mu.RLock()
	}
	unlock := func() {
		if locked {
			r.mu.Unlock()
		}
	}
	if r.closed {
		if locked {
			r.mu.Unlock()
		} else {
			r.mu.RUnlock()
		}
		return nil, nil, ErrClosed
	}
	stages, err := r.stageLocked(updates)
	if !locked {
		r.mu.RUnlock()
	}
	if err != nil {
		unlock()
		return nil, nil, err
	}
	commits, err := r.build(updates, stages)
	if err != nil || len(commits) == 0 {
		unlock()
	}
	return commits, stages.list, err
}

// staged is an item as a write found it, and its value as the write's
// updates leave it.
type staged struct {
	Current
	head *node          // the head the write builds on; nil for a new item
	orig item.Item      // the head's value
	base knownValue     // the head's delta base and its value, if the item holds it
	c    *commit.Commit // the commit the write makes, if it changes the item

	signer ed25519.PrivateKey                                    // Update.Signer
	admit  func(c *commit.Commit, before, after item.Item) error // Update.Admit
}

// stageLocked snapshots every item the updates touch, in order of first
// appearance.
func (r *Repo) stageLocked(updates []Update) (stages, error) {
	st := stages{list: make([]*staged, 0, len(updates))}
	for _, u := range updates {
		if st.find(u.Key) != nil {
			continue
		}
		if err := commit.ValidKey(u.Key); err != nil {
			return st, err
		}
		s := &staged{Current: Current{Key: u.Key}}
		if head, v, ok := r.headLocked(u.Key); ok {
			s.head, s.Exists, s.Head = head, true, head.c.ID()
			s.Value, s.Schema, s.orig = v, head.schemaOf(), v
			if it := r.items.get(u.Key); it != nil && it.base != nil && head.base == it.base.n {
				s.base = *it.base
			}
		}
		st.add(s)
	}
	return st, nil
}

// stages are the items of one write, in order of first appearance, found
// by a scan while few and by a map once many.
type stages struct {
	list  []*staged
	byKey map[string]*staged
}

const stagesScanMax = 16

func (st *stages) find(key string) *staged {
	if st.byKey != nil {
		return st.byKey[key]
	}
	for _, s := range st.list {
		if s.Key == key {
			return s
		}
	}
	return nil
}

func (st *stages) add(s *staged) {
	st.list = append(st.list, s)
	if st.byKey == nil && len(st.list) > stagesScanMax {
		st.byKey = make(map[string]*staged, 2*len(st.list))
		for _, x := range st.list {
			st.byKey[x.Key] = x
		}
	} else if st.byKey != nil {
		st.byKey[s.Key] = s
	}
}

// movedLocked reports whether any staged item's head changed since the
// snapshot (a pending head that became durable has not moved).
func (r *Repo) movedLocked(stages []*staged) bool {
	for _, s := range stages {
		head, _, _ := r.headLocked(s.Key)
		if (head == nil) != (s.head == nil) || head != nil && head.c.id != s.head.c.id {
			return true
		}
	}
	return false
}

// build runs the updates in order on the staged items and builds one commit
// per changed item.
func (r *Repo) build(updates []Update, stages stages) ([]*commit.Commit, error) {
	for _, u := range updates {
		s := stages.find(u.Key)
		if u.Signer != nil {
			if len(u.Signer) != ed25519.PrivateKeySize {
				return nil, fmt.Errorf("repo: the signer of %s is %d bytes, want an Ed25519 private key of %d", u.Key, len(u.Signer), ed25519.PrivateKeySize)
			}
			if s.signer != nil && !s.signer.Equal(u.Signer) {
				return nil, fmt.Errorf("repo: updates of %s are signed by different keys", u.Key)
			}
			s.signer = u.Signer
		}
		if u.Admit != nil {
			s.admit = u.Admit
		}
		v, sch, err := safeCall(u.Fn, s.Current)
		if err != nil {
			return nil, err
		}
		s.Value, s.Schema, s.Exists = v, sch, true // the write gives it a commit
	}
	if err := r.commitAll(stages.list); err != nil {
		return nil, err
	}
	var out []*commit.Commit
	for _, s := range stages.list {
		c := s.c
		if c != nil && s.admit != nil {
			if err := safeAdmit(s.admit, c, s.orig, s.Value); err != nil {
				return nil, err
			}
		}
		if c != nil {
			out = append(out, c)
		}
	}
	return out, nil
}

// safeCall runs an update function, turning a panic into an error.
func safeCall(fn func(Current) (item.Item, commit.Schema, error), cur Current) (v item.Item, s commit.Schema, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("repo: update of %s panicked: %v", cur.Key, p)
		}
	}()
	return fn(cur)
}

// parallelMin is the fewest commits a write builds (hashes and signs) on
// several cores: below it, starting goroutines costs more than it saves.
const parallelMin = 8

// commitAll builds each staged item's commit (commitFor) into its c: on
// every core for a write of many items, since signing dominates. It
// reads only the staged items and the immutable nodes they build on.
func (r *Repo) commitAll(list []*staged) error {
	workers := min(runtime.GOMAXPROCS(0), len(list)/parallelMin+1)
	if workers <= 1 {
		for _, s := range list {
			c, err := r.commitFor(s)
			if err != nil {
				return err
			}
			s.c = c
		}
		return nil
	}
	errs := make([]error, len(list))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(list) {
					return
				}
				list[i].c, errs[i] = r.commitFor(list[i])
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// safeAdmit runs an Admit hook, turning a panic into an error.
func safeAdmit(fn func(c *commit.Commit, before, after item.Item) error, c *commit.Commit, before, after item.Item) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("repo: admission of %s panicked: %v", c.Key(), p)
		}
	}()
	return fn(c, before, after)
}

// commitFor builds the commit that moves a staged item from its head to its
// staged value, or returns nil if nothing changed.
func (r *Repo) commitFor(s *staged) (*commit.Commit, error) {
	var parents []*node
	t := r.opts.Now().UnixMilli()
	s.Value = r.withListIDs(s, t)
	if s.head != nil {
		if s.head.schemaOf() == s.Schema && item.ItemsEqual(s.Value, s.orig) {
			return nil, nil
		}
		parents = []*node{s.head}
		t = max(t, s.head.c.Time())
	}
	f, err := r.contents(parents, s.Value, s.Schema, knownValue{s.head, s.orig}, s.base)
	if err != nil {
		return nil, err
	}
	f.Repo, f.Key, f.Time, f.Session = r.opts.Name, s.Key, t, r.session
	for _, p := range parents {
		f.Parents = append(f.Parents, p.c.ID())
	}
	key := r.opts.Key
	if r.opts.Trusted {
		key = nil
	}
	if s.signer != nil {
		key = s.signer
		copy(f.Session[:], s.signer.Public().(ed25519.PublicKey))
	}
	return commit.New(f, key)
}

// knownValue is a commit's value a caller holds decoded.
type knownValue struct {
	n *node
	v item.Item
}

// contents chooses a full snapshot or a delta for a new commit with the
// given parents (the delta rule): a delta against the nearest full-snapshot
// ancestor, reached through the parent with the shortest chain (ties: the
// smallest id), when the schema is unchanged, the chain stays under
// maxChain, and the delta's encoding is at most 85% of the snapshot's.
//
// known holds the values of commits the caller has decoded (the staged
// head, its delta base), so that a write decodes nothing.
func (r *Repo) contents(parents []*node, v item.Item, s commit.Schema, known ...knownValue) (commit.Fields, error) {
	full := commit.Fields{Full: true, Schema: s, Value: v}
	var via *node
	for _, p := range parents {
		if via == nil || p.depth < via.depth {
			via = p
		}
	}
	if via == nil || via.depth+1 >= maxChain || via.schemaOf() != s {
		return full, nil
	}
	base := via.base
	if via.c.IsFull() {
		base = via
	}
	snap, err := item.AppendItem(nil, v)
	if err != nil {
		return full, err
	}
	var bv item.Item
	found := false
	for _, k := range known {
		if k.n == base {
			bv, found = k.v, true
			break
		}
	}
	if !found {
		bc, err := r.commitOf(base)
		if err != nil {
			return full, err
		}
		bv = bc.Value()
	}
	d := item.Diff(bv, v)
	enc, err := item.AppendDelta(nil, d)
	if err != nil {
		return full, err
	}
	if (len(enc)+32)*100 > (len(snap)+len(s.NS)+3)*85 {
		return full, nil
	}
	return commit.Fields{Base: base.c.ID(), Delta: d}, nil
}

// appendLocked logs commits and inserts them at once (Async durability),
// merges the items that now have several leaves, and wakes waiters.
func (r *Repo) appendLocked(commits []*commit.Commit) (int64, error) {
	if _, err := r.logLocked(commits); err != nil {
		return 0, err
	}
	if len(commits) == 1 {
		r.settleItem(r.items.get(commits[0].Key()))
	} else {
		keys := map[string]bool{}
		for _, c := range commits {
			keys[c.Key()] = true
		}
		r.settleKeys(keys)
	}
	r.wakeLocked()
	return int64(r.seq), nil
}

// wakeLocked wakes everyone waiting for the sequence number to advance,
// releases the decoded form of the commits inserted since it last ran, and
// drops the encodings of the oldest durable ones past the budget
// (stored.go). r.mu must be held for writing.
func (r *Repo) wakeLocked() {
	r.releaseLocked()
	r.trimEncodingsLocked()
	r.maybeIndexLocked()
	if r.watched.Swap(false) {
		close(r.changed)
		r.changed = make(chan struct{})
	}
}

// logLocked appends commits to the log buffer and inserts them, with the
// log position after their record as their sequence number (Async
// durability). Several commits go in one group record, so a crash keeps
// all or none.
func (r *Repo) logLocked(commits []*commit.Commit) (int64, error) {
	var size int
	t, err := r.log.appendWith(func(b []byte, claim int64) []byte {
		n := len(b)
		if len(commits) == 1 {
			b = appendCommitRecord(b, commits[0], r.owner, claim)
		} else {
			b = appendGroupRecord(b, commits, r.owner, claim)
		}
		size = len(b) - n
		return b
	})
	if err != nil {
		return 0, err
	}
	for i, c := range commits {
		r.insert(c, logPos{uint64(t.end), uint32(size), uint32(i)})
	}
	r.seq = uint64(t.end)
	return t.end, nil
}

// settle merges every item with several leaves and sets every head; open
// calls it once after replay.
func (r *Repo) settle() error {
	for _, st := range slices.Clone(r.list) {
		r.settleItem(st)
	}
	return nil
}

// settleKeys merges the given items where needed and updates their heads.
// Merge commits go to the log but nobody waits for them to be durable: any
// peer can recompute them. A merge that fails is logged and leaves the item
// with several leaves; its head is then the newest leaf.
func (r *Repo) settleKeys(keys map[string]bool) {
	for k := range keys {
		r.settleItem(r.items.get(k))
	}
}

func (r *Repo) settleItem(st *itemState) {
	for len(st.leaves()) > 1 && r.log != nil {
		leaves := st.leaves()
		mc, err := r.computeMerge(st.key, leaves[:min(len(leaves), maxMergeLeaves)])
		if err == nil && r.held[mc.ID()] {
			break // written, joins the graph when durable
		}
		if err == nil && r.commits.get(mc.ID()) != nil {
			// Stored already, yet its parents are leaves: it is excluded,
			// which Exclude never lets a merge be alone. Writing it again
			// would change nothing, and loop.
			err = fmt.Errorf("merge %s is stored but out of the graph", mc.ID().Short())
		}
		if err == nil && r.opts.Durability == Sync {
			if _, err = r.holdLocked([]*commit.Commit{mc}, false, nil); err == nil {
				break
			}
		} else if err == nil {
			_, err = r.logLocked([]*commit.Commit{mc})
		}
		if err != nil {
			r.opts.Logger.Error("merge", "path", r.path, "item", st.key, "err", err)
			break
		}
	}
	r.setHead(st)
}

// setHead points the item at its newest leaf by (timestamp, id) and caches
// its value; an item without leaves (every commit excluded) has no head.
func (r *Repo) setHead(st *itemState) {
	var head *node
	for _, l := range st.leaves() {
		if head == nil || cmp.Or(cmp.Compare(l.c.Time(), head.c.Time()), byID(l, head)) > 0 {
			head = l
		}
	}
	if head == st.head {
		return
	}
	if head == nil {
		if !st.deleted() {
			r.live--
			r.index.update(st, false)
		}
		st.head, st.base = nil, nil
		st.setValue(item.Item{})
		return
	}
	v, err := r.headValue(st, head)
	if err != nil {
		r.opts.Logger.Error("read head", "path", r.path, "item", st.key, "err", err)
		return
	}
	was := st.head != nil && !st.deleted()
	if was {
		r.live--
	}
	st.head = head
	st.setValue(v)
	if !v.Deleted() {
		r.live++
	}
	if was != !v.Deleted() {
		r.index.update(st, !v.Deleted())
	}
}

// headValue returns the value of head, the new head of st, and keeps in st
// the value of its delta base, decoded only when the base changed.
func (r *Repo) headValue(st *itemState, head *node) (item.Item, error) {
	c, err := r.commitOf(head)
	if err != nil {
		return item.Item{}, err
	}
	if c.IsFull() {
		st.base = nil
		return c.Value(), nil
	}
	bv, err := r.baseValue(st, head.base)
	if err != nil {
		return item.Item{}, err
	}
	v, err := item.Patch(bv, c.Delta())
	if err == nil {
		if st.base == nil || st.base.n != head.base {
			st.base = &knownValue{head.base, bv}
		}
	}
	return v, err
}

// baseValue returns the value of n, a delta's base: st's if it holds it
// (st may be nil), else read from the log. r.mu must be held.
func (r *Repo) baseValue(st *itemState, n *node) (item.Item, error) {
	if st != nil {
		if v, ok := st.knownValue(r, n); ok {
			return v, nil
		}
	}
	b, err := r.commitOf(n)
	if err != nil {
		return item.Item{}, err
	}
	return b.Value(), nil
}

// knownValue returns the value of n if st holds it: n is its head or its
// head's delta base. r.mu must be held.
func (st *itemState) knownValue(r *Repo, n *node) (item.Item, bool) {
	switch {
	case n == nil:
	case n == st.head:
		return st.val(r), true
	case st.base != nil && n == st.base.n:
		return st.base.v, true
	}
	return item.Item{}, false
}

// computeMerge builds the deterministic merge commit of leaves (sorted by id).
func (r *Repo) computeMerge(key string, leaves []*node) (*commit.Commit, error) {
	target := newestSchema(leaves)
	merged, err := r.mergeValues(leaves, target)
	if err != nil {
		return nil, err
	}
	f, err := r.contents(leaves, merged, target)
	if err != nil {
		return nil, err
	}
	commits := make([]*meta, len(leaves))
	for i, l := range leaves {
		commits[i] = &l.c
	}
	f.Repo = r.opts.Name
	return commit.NewMerge(key, commits, f)
}

// newestSchema returns the schema a merge of nodes is written in: the
// largest namespace among theirs, at its newest version.
func newestSchema(nodes []*node) commit.Schema {
	target := nodes[0].schemaOf()
	for _, l := range nodes[1:] {
		if s := l.schemaOf(); s.NS == target.NS && s.Version > target.Version || s.NS > target.NS {
			target = s
		}
	}
	return target
}

// mergeValues merges the values of nodes: each node's changes since their
// common history are merged onto the value of that history, which is their
// lowest common ancestor's, or, in a criss-cross history with several, the
// merge of those computed the same way (git's recursive strategy), so that
// changes both sides already hold do not count as new ones. Without common
// history the base is the empty item.
func (r *Repo) mergeValues(nodes []*node, target commit.Schema) (item.Item, error) {
	cas, paint := r.paintDown(nodes)
	var base item.Item
	switch {
	case len(cas) == 0:
	case len(cas) == 1 || len(cas) > maxMergeLeaves:
		best := cas[len(cas)-1]
		v, err := r.valueOf(best)
		if err == nil {
			base, err = r.upgrade(v, best.schemaOf(), target)
		}
		if err != nil {
			return item.Item{}, err
		}
	default:
		var err error
		if base, err = r.mergeValues(cas, target); err != nil {
			return item.Item{}, err
		}
	}
	return r.mergeOnto(base, nodes, target, paint, len(cas) == 0)
}

// mergeOnto merges each node's changes since base. The last writer of a
// field is decided by when the field was written: the newest (timestamp,
// id) of the commits in that node's own history since the common ancestors
// (as painted by paintDown) that changed the field, not by the node's own
// timestamp, which for a merge is just its newest parent's. So the result
// does not depend on which merges a peer happened to make on the way.
// disjoint says the nodes have no common ancestor.
func (r *Repo) mergeOnto(base item.Item, nodes []*node, target commit.Schema, paint map[*node]uint64, disjoint bool) (item.Item, error) {
	deltas := make([]item.Delta, len(nodes))
	stamps := make([]map[string]item.Stamp, len(nodes))
	for i, n := range nodes {
		v, err := r.targetValue(n, target)
		if err != nil {
			return item.Item{}, err
		}
		deltas[i] = item.Diff(base, v)
		if stamps[i], err = r.writeStamps(i, len(nodes), target, paint, disjoint); err != nil {
			return item.Item{}, err
		}
	}
	return item.MergeStamped(base, deltas, func(i int, field string) item.Stamp {
		if st, ok := stamps[i][field]; ok {
			return st
		}
		return stampOf(nodes[i])
	})
}

func stampOf(n *node) item.Stamp { return item.Stamp{Time: n.c.Time(), Tie: n.c.ID()} }

// targetValue returns a commit's value upgraded to the target schema.
func (r *Repo) targetValue(n *node, target commit.Schema) (item.Item, error) {
	v, err := r.valueOf(n)
	if err != nil {
		return item.Item{}, err
	}
	return r.upgrade(v, n.schemaOf(), target)
}

// writeStamps returns, for each field that a commit in node i's own history
// (painted with bit i but not by every node) changed relative to its
// parent, the stamp of the newest such commit. Merge commits write nothing
// of their own and are skipped.
//
// A shallow commit's collected parents (compaction) are ancestors of every
// kept commit of its item, so they are in node i's own history only when
// the nodes have no common ancestor at all (disjoint: an item written anew
// by a peer that never saw it). A peer holding them then stamps each field
// of the collected history with when it was written there, which is
// before every kept commit and before the horizon, so older than any
// stamp a leaf can bring besides; the shallow commit stands for them with
// the oldest stamp there is on every field of its value, which orders each
// field against the other leaves' stamps the same way (down to commits of
// the same millisecond). Otherwise they are stale paint, as on that peer.
func (r *Repo) writeStamps(i, count int, target commit.Schema, paint map[*node]uint64, disjoint bool) (map[string]item.Stamp, error) {
	all := uint64(1)<<count - 1
	out := map[string]item.Stamp{}
	for c, p := range paint {
		if p&(1<<i) == 0 || p&all == all {
			continue
		}
		if c.shallow && disjoint && slices.ContainsFunc(c.c.Parents(), func(id commit.ID) bool { return r.commits.get(id) == nil }) {
			v, err := r.targetValue(c, target)
			if err != nil {
				return nil, err
			}
			d := item.Diff(item.Item{}, v)
			collected := item.Stamp{Time: math.MinInt64}
			for _, e := range d.Edits {
				if _, ok := out[e.Field]; !ok {
					out[e.Field] = collected
				}
			}
			if _, ok := out[item.DeletedField]; !ok && d.Deleted != item.FlagKeep {
				out[item.DeletedField] = collected
			}
		}
		if c.c.IsMerge() {
			continue
		}
		v, err := r.targetValue(c, target)
		if err != nil {
			return nil, err
		}
		var prev item.Item
		if ps := c.c.Parents(); len(ps) == 1 {
			pn := r.commits.get(ps[0])
			if pn == nil {
				continue // shallow: its fields were stamped above
			}
			if prev, err = r.targetValue(pn, target); err != nil {
				return nil, err
			}
		}
		d := item.Diff(prev, v)
		st := stampOf(c)
		mark := func(field string) {
			if old, ok := out[field]; !ok || st.Compare(old) > 0 {
				out[field] = st
			}
		}
		for _, e := range d.Edits {
			mark(e.Field)
		}
		if d.Deleted != item.FlagKeep {
			mark(item.DeletedField)
		}
	}
	return out, nil
}

func (r *Repo) upgrade(v item.Item, from, to commit.Schema) (item.Item, error) {
	if from == to || from.NS != to.NS || r.opts.Schemas == nil {
		return v, nil
	}
	return r.opts.Schemas.Upgrade(v, from, to.Version)
}
