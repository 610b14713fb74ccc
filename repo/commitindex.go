package repo

import (
	"hash/maphash"
	"math/bits"
	"slices"

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
// nodes: one table of 4-byte tagged references to the items an open
// loaded from the head index (slab) and, after them, those added later
// (more). An item that compaction collected whole is removed: its slot
// keeps a mark that lookups pass over (and its place in more is cleared),
// until the table is next rebuilt.
type itemIndex struct {
	slab  []itemState  // the items loaded from the head index
	more  []*itemState // the items added later; nil where removed
	table []uint32     // tag | ref, ref = 1 + the item's place in slab then more; 0: empty; itemGone: removed
	mask  uint64
	tags  uint32
	n     int // the items not removed
	used  int // the slots not empty (items and removal marks)
}

const itemGone = ^uint32(0)

// newItemIndex returns an empty index with room for n items added.
func newItemIndex(n int) itemIndex {
	ix := itemIndex{more: make([]*itemState, 0, n)}
	ix.resize(n)
	return ix
}

// at returns the item of reference ref (1-based), nil if removed from
// more.
func (ix *itemIndex) at(ref uint32) *itemState {
	if k := int(ref) - 1; k < len(ix.slab) {
		return &ix.slab[k]
	}
	return ix.more[int(ref)-1-len(ix.slab)]
}

// hash returns key's first slot and its tag.
func (ix *itemIndex) hash(key string) (uint64, uint32) {
	h := maphash.String(commitSeed, key)
	return h & ix.mask, uint32(h>>32) & ix.tags
}

// resize makes the table of a size for n items and puts every item not
// removed in it, dropping the removed from more (references change); it
// returns false if two have the same key.
func (ix *itemIndex) resize(n int) bool {
	size := 8
	for size < n+n/2+1 {
		size *= 2
	}
	// Items of the slab removed stay in it, unreferenced.
	var gone []bool
	if len(ix.slab) > 0 && ix.table != nil {
		gone = make([]bool, len(ix.slab))
		for k := range gone {
			gone[k] = true
		}
		for _, e := range ix.table {
			if e != 0 && e != itemGone {
				if k := int(e&^ix.tags) - 1; k < len(ix.slab) {
					gone[k] = false
				}
			}
		}
	}
	ix.more = slices.DeleteFunc(ix.more, func(st *itemState) bool { return st == nil })
	ix.table, ix.mask = make([]uint32, size), uint64(size-1)
	ix.tags = ^uint32(0) << bits.Len(uint(size-1))
	ix.n, ix.used = 0, 0
	for k := range len(ix.slab) + len(ix.more) {
		if k < len(gone) && gone[k] {
			continue
		}
		key := ix.at(uint32(k + 1)).key
		i, tag := ix.hash(key)
		for ; ix.table[i] != 0; i = (i + 1) & ix.mask {
			if e := ix.table[i]; e&ix.tags == tag && ix.at(e&^ix.tags).key == key {
				return false
			}
		}
		ix.table[i] = tag | uint32(k+1)
		ix.n++
		ix.used++
	}
	return true
}

// load indexes the items of slab, which become the index's, and returns
// false if two of them have the same key. The index must be empty.
func (ix *itemIndex) load(slab []itemState) bool {
	ix.slab, ix.more, ix.table = slab, nil, nil
	return ix.resize(len(slab))
}

// slot returns where key's item is in the table, or -1.
func (ix *itemIndex) slot(key string) int {
	if ix.table == nil {
		return -1
	}
	i, tag := ix.hash(key)
	for ; ix.table[i] != 0; i = (i + 1) & ix.mask {
		if e := ix.table[i]; e != itemGone && e&ix.tags == tag && ix.at(e&^ix.tags).key == key {
			return int(i)
		}
	}
	return -1
}

// get returns the state of the item key, or nil.
func (ix *itemIndex) get(key string) *itemState {
	if i := ix.slot(key); i >= 0 {
		return ix.at(ix.table[i] &^ ix.tags)
	}
	return nil
}

// add indexes st, whose key get does not find.
func (ix *itemIndex) add(st *itemState) {
	ix.more = append(ix.more, st)
	if ix.used+1+(ix.used+1)/2 >= len(ix.table) {
		ix.resize(2 * (ix.n + 1))
		return
	}
	i, tag := ix.hash(st.key)
	for ix.table[i] != 0 {
		i = (i + 1) & ix.mask
	}
	ix.table[i] = tag | uint32(len(ix.slab)+len(ix.more))
	ix.n++
	ix.used++
}

// remove forgets the item key.
func (ix *itemIndex) remove(key string) {
	if i := ix.slot(key); i >= 0 {
		if k := int(ix.table[i]&^ix.tags) - 1; k >= len(ix.slab) {
			ix.more[k-len(ix.slab)] = nil
		}
		ix.table[i] = itemGone
		ix.n--
	}
}

// len returns how many items the index holds.
func (ix *itemIndex) len() int { return ix.n }

// all calls fn with every item, in no order.
func (ix *itemIndex) all(fn func(*itemState)) {
	for _, e := range ix.table {
		if e != 0 && e != itemGone {
			fn(ix.at(e &^ ix.tags))
		}
	}
}
