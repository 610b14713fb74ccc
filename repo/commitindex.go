package repo

import (
	"hash/maphash"
	"math/bits"

	"github.com/goatdb/goatdb/commit"
)

// commitIndex finds a commit's node by its id.
//
// One open-addressing table (linear probing, at a load of at most 2/3)
// holds every node's reference: its place in slab, the nodes an open
// loaded from the head index, or after them in more, the nodes added
// later (written, received, replayed). A slot is 4 bytes: the reference in
// its low bits (as many as the table's size takes) and bits of the id's
// hash above it, which a probe compares before it reads the node, so that
// looking up an absent id (every insert asks) seldom reads a node. The
// table doubles as nodes are added, and holds no pointer for the garbage
// collector to follow: a node costs 6 to 12 bytes of it, and 8 of more if
// added later, against about 60 in a map. None is ever removed:
// compaction builds a new index.
//
// The table hashes ids with a seed of the process's own, so no one who
// chooses commits can choose which slots they collide in.
type commitIndex struct {
	slab  []node   // the nodes loaded from the head index
	more  []*node  // the nodes added later
	table []uint32 // tag | ref, ref = 1 + the node's place in slab then more; 0: empty
	mask  uint64   // len(table) - 1
	tags  uint32   // the bits of a slot that hold the tag, above the reference's
}

var commitSeed = maphash.MakeSeed()

// newCommitIndex returns an empty index with room for n nodes added.
func newCommitIndex(n int) commitIndex {
	var ci commitIndex
	ci.more = make([]*node, 0, n)
	ci.resize(n)
	return ci
}

// resize makes the table of a size for n nodes (a power of two, at least
// 8, above 3n/2) and puts every node in it; it returns false if two have
// the same id.
func (ci *commitIndex) resize(n int) bool {
	size := 8
	for size < n+n/2+1 {
		size *= 2
	}
	ci.table, ci.mask = make([]uint32, size), uint64(size-1)
	ci.tags = ^uint32(0) << bits.Len(uint(size-1))
	for k := range ci.len() {
		id := &ci.at(uint32(k + 1)).c.id
		i, tag := ci.hash(id)
		for ; ci.table[i] != 0; i = (i + 1) & ci.mask {
			if e := ci.table[i]; e&ci.tags == tag && ci.at(e&^ci.tags).c.id == *id {
				return false
			}
		}
		ci.table[i] = tag | uint32(k+1)
	}
	return true
}

// hash returns id's first slot and its tag.
func (ci *commitIndex) hash(id *commit.ID) (uint64, uint32) {
	h := maphash.Comparable(commitSeed, *id)
	return h & ci.mask, uint32(h>>32) & ci.tags
}

// at returns the node of reference ref (1-based).
func (ci *commitIndex) at(ref uint32) *node {
	if k := int(ref) - 1; k < len(ci.slab) {
		return &ci.slab[k]
	}
	return ci.more[int(ref)-1-len(ci.slab)]
}

// load indexes the nodes of slab, which become the index's, and returns
// false if two of them have the same id. The index must be empty.
func (ci *commitIndex) load(slab []node) bool {
	ci.slab, ci.more = slab, nil
	return ci.resize(len(slab))
}

// get returns the node of id, or nil.
func (ci *commitIndex) get(id commit.ID) *node {
	if ci.table == nil {
		return nil
	}
	i, tag := ci.hash(&id)
	for ; ci.table[i] != 0; i = (i + 1) & ci.mask {
		if e := ci.table[i]; e&ci.tags == tag {
			if n := ci.at(e &^ ci.tags); n.c.id == id {
				return n
			}
		}
	}
	return nil
}

// add indexes n, whose id get does not find.
func (ci *commitIndex) add(n *node) {
	k := ci.len()
	ci.more = append(ci.more, n)
	if (k+1)+(k+1)/2 >= len(ci.table) {
		ci.resize(2 * (k + 1))
		return
	}
	i, tag := ci.hash(&n.c.id)
	for ci.table[i] != 0 {
		i = (i + 1) & ci.mask
	}
	ci.table[i] = tag | uint32(k+1)
}

// len returns how many nodes the index holds.
func (ci *commitIndex) len() int { return len(ci.slab) + len(ci.more) }

// all calls fn with every node, in no order.
func (ci *commitIndex) all(fn func(*node)) {
	for i := range ci.slab {
		fn(&ci.slab[i])
	}
	for _, n := range ci.more {
		fn(n)
	}
}

// itemIndex finds an item's state by its key, as commitIndex finds
// nodes: the items an open loads from the head index through a table of
// their places in one slab, items added later in a map. An item that
// compaction collected whole is removed (from the table, by a mark that
// lookups pass over).
type itemIndex struct {
	slab  []itemState // the items loaded from the head index
	table []uint32    // 1 + an item's place in slab, at its key's hash; 0: empty; itemGone: removed
	mask  uint64
	n     int // the slab's items not removed
	more  map[string]*itemState
}

const itemGone = ^uint32(0)

func newItemIndex(n int) itemIndex {
	return itemIndex{more: make(map[string]*itemState, n)}
}

// load indexes the items of slab, which become the index's, and returns
// false if two of them have the same key. The index must be empty.
func (ix *itemIndex) load(slab []itemState) bool {
	size := 1
	for size < len(slab)+len(slab)/2+1 {
		size *= 2
	}
	ix.slab, ix.table, ix.mask, ix.n = slab, make([]uint32, size), uint64(size-1), len(slab)
	for k := range slab {
		key := slab[k].key
		i := maphash.String(commitSeed, key) & ix.mask
		for ; ix.table[i] != 0; i = (i + 1) & ix.mask {
			if slab[ix.table[i]-1].key == key {
				return false
			}
		}
		ix.table[i] = uint32(k + 1)
	}
	return true
}

// slot returns where key's item is in the table, or -1.
func (ix *itemIndex) slot(key string) int {
	if ix.table == nil {
		return -1
	}
	for i := maphash.String(commitSeed, key) & ix.mask; ix.table[i] != 0; i = (i + 1) & ix.mask {
		if j := ix.table[i]; j != itemGone && ix.slab[j-1].key == key {
			return int(i)
		}
	}
	return -1
}

// get returns the state of the item key, or nil.
func (ix *itemIndex) get(key string) *itemState {
	if i := ix.slot(key); i >= 0 {
		return &ix.slab[ix.table[i]-1]
	}
	return ix.more[key]
}

// add indexes st, whose key get does not find.
func (ix *itemIndex) add(st *itemState) { ix.more[st.key] = st }

// remove forgets the item key.
func (ix *itemIndex) remove(key string) {
	if i := ix.slot(key); i >= 0 {
		ix.table[i] = itemGone
		ix.n--
		return
	}
	delete(ix.more, key)
}

// len returns how many items the index holds.
func (ix *itemIndex) len() int { return ix.n + len(ix.more) }

// all calls fn with every item, in no order.
func (ix *itemIndex) all(fn func(*itemState)) {
	for _, j := range ix.table {
		if j != 0 && j != itemGone {
			fn(&ix.slab[j-1])
		}
	}
	for _, st := range ix.more {
		fn(st)
	}
}
