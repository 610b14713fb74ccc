package repo

import (
	"cmp"
	"fmt"
	"iter"
	"slices"
	"strings"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
)

// Get returns an item's current value and schema.
func (r *Repo) Get(key string) (item.Item, commit.Schema, bool) {
	r.mu.RLock()
	st := r.items.get(key)
	if st == nil || st.head == nil {
		r.mu.RUnlock()
		return item.Item{}, commit.Schema{}, false
	}
	v, s := st.val(r), st.head.schemaOf()
	r.mu.RUnlock()
	return v, s, true
}

// Lookup returns an item's current value, schema and head commit id, read
// together under one lock.
func (r *Repo) Lookup(key string) (Entry, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	st := r.items.get(key)
	if st == nil || st.head == nil {
		return Entry{}, false
	}
	return Entry{key, st.val(r), st.head.schemaOf(), st.head.c.ID()}, true
}

// Head returns the id of an item's head commit.
func (r *Repo) Head(key string) (commit.ID, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	st := r.items.get(key)
	if st == nil || st.head == nil {
		return commit.ID{}, false
	}
	return st.head.c.ID(), true
}

// Heads returns the head commit ids of the items with the given keys (the
// zero id for an item without a head), read together under one lock.
func (r *Repo) Heads(keys []string) []commit.ID {
	out := make([]commit.ID, len(keys))
	r.mu.RLock()
	defer r.mu.RUnlock()
	for i, k := range keys {
		if st := r.items.get(k); st != nil && st.head != nil {
			out[i] = st.head.c.ID()
		}
	}
	return out
}

// Leaves returns the ids of an item's complete leaves, excluded commits
// left out (more than one only while a merge is impossible).
func (r *Repo) Leaves(key string) []commit.ID {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []commit.ID
	if st := r.items.get(key); st != nil {
		for _, l := range st.leaves() {
			out = append(out, l.c.ID())
		}
	}
	return out
}

// Count returns the number of items whose head is not deleted.
func (r *Repo) Count() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.live
}

// Keys iterates over the keys of items with a head, in no particular order;
// deleted items are included only if withDeleted.
func (r *Repo) Keys(withDeleted bool) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, r.items.len())
	r.items.all(func(st *itemState) {
		if st.head != nil && (withDeleted || !st.deleted()) {
			out = append(out, st.key)
		}
	})
	return out
}

// Entry is an item's key, value and schema.
type Entry struct {
	Key    string
	Value  item.Item
	Schema commit.Schema
	Head   commit.ID
}

// All iterates over the items with a head, deleted ones included, in order
// of their first commit, holding a read lock throughout: do not write to
// the repository from the loop.
func (r *Repo) All() iter.Seq[Entry] {
	return func(yield func(Entry) bool) {
		r.mu.RLock()
		defer r.mu.RUnlock()
		for _, st := range r.list {
			if st.head != nil && !yield(Entry{st.key, st.val(r), st.head.schemaOf(), st.head.c.ID()}) {
				return
			}
		}
	}
}

// Commit returns a commit by id (not one refused when it completed, nor an
// excluded one).
func (r *Repo) Commit(id commit.ID) (*commit.Commit, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := r.commits.get(id)
	if n == nil || n.bad || n.out {
		return nil, false
	}
	c, err := r.commitOf(n)
	if err != nil {
		r.opts.Logger.Error("read commit", "path", r.path, "err", err)
		return nil, false
	}
	return c, true
}

// Has reports whether the repository holds a commit (excluded ones too, so
// that sync does not ask for them again).
func (r *Repo) Has(id commit.ID) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.commits.get(id) != nil
}

// ValueAt returns the item value and schema a complete commit holds; a
// quarantined commit's too, not a forgotten one's. A commit not here, in a
// log compacted at some horizon, is an error wrapping ErrCollected (it may
// have been collected) rather than ErrNotFound.
func (r *Repo) ValueAt(id commit.ID) (item.Item, commit.Schema, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := r.commits.get(id)
	if n == nil && r.horizon > 0 {
		return item.Item{}, commit.Schema{}, fmt.Errorf("commit %s is not here: %w", id.Short(), collectedErr("", r.horizon))
	}
	if n == nil || r.excludedKindLocked(n) == ExcludeForgotten {
		return item.Item{}, commit.Schema{}, fmt.Errorf("%w: commit %s", ErrNotFound, id.Short())
	}
	if !n.complete() {
		return item.Item{}, commit.Schema{}, fmt.Errorf("%w: commit %s is pending (its history is incomplete)", ErrNotFound, id.Short())
	}
	v, err := r.valueOf(n)
	return v, n.schemaOf(), err
}

// Info describes one commit of an item's history.
type Info struct {
	Commit   *commit.Commit
	Seq      uint64
	Pending  bool        // parents or base missing
	Bad      string      // why the commit is invalid, if it is
	Excluded ExcludeKind // why it is out of the graph (see Excluded), or 0
	// Shallow: some of the commit's parents were collected by compaction
	// (see Repo.Compact); the history before it is gone.
	Shallow bool
}

// History returns every commit of an item, newest first: by generation,
// then timestamp, then id, so a commit always comes before its parents.
// Quarantined commits are included, forgotten ones are not.
func (r *Repo) History(key string) []Info {
	r.mu.RLock()
	defer r.mu.RUnlock()
	st := r.items.get(key)
	if st == nil {
		return nil
	}
	nodes := r.itemNodes(st)
	var by map[*node]*node
	if len(r.excl) > 0 {
		by = r.exclusionsOf(nodes)
	}
	slices.SortFunc(nodes, func(a, b *node) int { return -cmpNode(a, b) })
	out := make([]Info, 0, len(nodes))
	for _, n := range nodes {
		c, err := r.commitOf(n)
		if err != nil {
			r.opts.Logger.Error("read history", "path", r.path, "item", key, "err", err)
			continue
		}
		info := Info{Commit: c, Seq: n.seq, Pending: !n.complete() && !n.bad, Bad: r.badWhy[n], Shallow: n.shallow}
		if root := by[n]; root != nil {
			if info.Excluded = r.excl[root.c.ID()].kind; info.Excluded == ExcludeForgotten {
				continue
			}
		}
		out = append(out, info)
	}
	return out
}

// AsOf returns the id of the newest commit of an item (by timestamp, then
// id) at or before t (Unix ms) on the path from its head: the item as it
// was then on this peer's history. It returns false for a time whose
// commit was collected by compaction, too (ItemAsOf tells the two apart).
func (r *Repo) AsOf(key string, t int64) (commit.ID, bool) {
	id, err := r.ItemAsOf(key, t)
	return id, err == nil
}

// asOfLocked returns the newest of nodes at or before t.
func (r *Repo) asOfLocked(nodes []*node, t int64) *node {
	var best *node
	for _, n := range nodes {
		if n.complete() && !n.out && n.c.Time() <= t && (best == nil || cmp.Or(cmp.Compare(n.c.Time(), best.c.Time()), cmp.Compare(n.gen, best.gen), byID(n, best)) > 0) {
			best = n
		}
	}
	return best
}

// Seq returns the repository's sequence number: the log position after the
// last commit or exclusion record. It only grows while the repository is
// open.
func (r *Repo) Seq() uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.seq
}

// LogSize returns the length of the log in bytes, including records
// written and not yet durable. The log's file may be longer: a writable
// repository reserves space past the log's end (zeros, given back at
// Close).
func (r *Repo) LogSize() int64 {
	if r.log == nil { // read-only
		return int64(r.Seq())
	}
	r.log.mu.Lock()
	defer r.log.mu.Unlock()
	return r.log.size
}

// Since returns the keys of items with commits, or commits excluded or
// restored, after sequence number seq, sorted, and the current sequence
// number.
func (r *Repo) Since(seq uint64) ([]string, uint64) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	i, _ := slices.BinarySearchFunc(r.entries, seq+1, func(n *node, s uint64) int { return cmp.Compare(n.seq, s) })
	seen := map[string]bool{}
	var keys []string
	add := func(k string) {
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	for _, n := range r.entries[i:] {
		add(n.c.Key())
	}
	j, _ := slices.BinarySearchFunc(r.touched, seq+1, func(t touch, s uint64) int { return cmp.Compare(t.seq, s) })
	for _, t := range r.touched[j:] {
		for _, k := range t.keys {
			add(k)
		}
	}
	slices.SortFunc(keys, strings.Compare)
	return keys, r.seq
}

// Missing returns the ids that pending commits wait for and that this
// repository does not hold: what the next sync should ask for. Ids only
// excluded commits wait for are left out.
func (r *Repo) Missing() []commit.ID {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.missingLocked()
}

func (r *Repo) missingLocked() []commit.ID {
	var out []commit.ID
	for id, ws := range r.waiting {
		if r.commits.get(id) == nil && slices.ContainsFunc(ws, func(w *node) bool { return !w.out }) {
			out = append(out, id)
		}
	}
	slices.SortFunc(out, commit.CompareIDs)
	return out
}

// Damage returns the damaged ranges of the log skipped at open.
func (r *Repo) Damage() []Damage {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.damage)
}

// Stats summarises the repository.
type Stats struct {
	Items, Live, Commits, Pending int
	Excluded                      int // commits excluded (see Exclude), counted in Commits
	Seq                           uint64
}

// Stats returns counts of items and commits.
func (r *Repo) Stats() Stats {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s := Stats{Items: r.items.len(), Live: r.live, Commits: r.commits.len(), Seq: r.seq}
	r.commits.all(func(n *node) {
		if !n.complete() {
			s.Pending++
		}
		if n.out {
			s.Excluded++
		}
	})
	return s
}

// Epoch returns the log's epoch: a random number chosen when the log was
// created. A log rewritten by compaction has a new one, so a (epoch, seq)
// pair kept by a peer names a position in one file only.
func (r *Repo) Epoch() uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.epoch
}

// IDs returns the id of every commit the repository holds, pending ones
// included, in log order; commits refused when they completed (see
// Info.Bad) and excluded ones (see Exclude) are left out, so they are
// never offered to a peer.
func (r *Repo) IDs() []commit.ID {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]commit.ID, 0, len(r.entries))
	for _, n := range r.entries {
		if !n.bad && !n.out {
			out = append(out, n.c.ID())
		}
	}
	return out
}

// Stamp is what a sync compares of a commit without decoding it: its id,
// item and time.
type Stamp struct {
	ID   commit.ID
	Key  string
	Time int64
}

// StampsSince is CommitsSince without decoding a commit: the stamps of
// the same commits, in log order, and the current sequence number. It
// reads nothing from the log, so a caller that needs a few of the
// commits (those a peer lacks) reads only those, with Commit.
func (r *Repo) StampsSince(seq uint64) ([]Stamp, uint64) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	i, _ := slices.BinarySearchFunc(r.entries, seq+1, func(n *node, s uint64) int { return cmp.Compare(n.seq, s) })
	out := make([]Stamp, 0, len(r.entries)-i)
	for _, n := range r.entries[i:] {
		if n.bad || n.out {
			continue
		}
		out = append(out, Stamp{n.c.id, *n.c.key, n.c.time})
	}
	return out, r.seq
}

// CommitsSince returns the commits with sequence numbers after seq, in log
// order, and the current sequence number; refused and excluded commits are
// left out (see ExcludedSeq for a digest kept from CommitsSince).
func (r *Repo) CommitsSince(seq uint64) ([]*commit.Commit, uint64) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	i, _ := slices.BinarySearchFunc(r.entries, seq+1, func(n *node, s uint64) int { return cmp.Compare(n.seq, s) })
	out := make([]*commit.Commit, 0, len(r.entries)-i)
	for _, n := range r.entries[i:] {
		if n.bad || n.out {
			continue
		}
		c, err := r.commitOf(n)
		if err != nil {
			r.opts.Logger.Error("read commit", "path", r.path, "err", err)
			continue
		}
		out = append(out, c)
	}
	return out, r.seq
}
