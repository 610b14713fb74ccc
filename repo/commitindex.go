package repo

import (
	"hash/maphash"

	"github.com/goatdb/goatdb/commit"
)

// commitIndex finds a commit's node by its id.
//
// The nodes an open loads from the head index sit in one slab, and are
// found through an open-addressing table of their places in it: 4 bytes a
// commit (at a load of at most 2/3), with no pointer for the garbage
// collector to follow, built without hashing into a map. Nodes added later
// (written, received, replayed) are in a map. A node is in one of the two,
// never both, and none is ever removed: compaction builds a new index.
//
// The table hashes ids with a seed of the process's own, so no one who
// chooses commits can choose which slots they collide in.
type commitIndex struct {
	slab  []node   // the nodes loaded from the head index
	table []uint32 // 1 + a node's place in slab, at its id's hash; 0: empty
	mask  uint64   // len(table) - 1
	more  map[commit.ID]*node
}

var commitSeed = maphash.MakeSeed()

func newCommitIndex(n int) commitIndex {
	return commitIndex{more: make(map[commit.ID]*node, n)}
}

// load indexes the nodes of slab, which become the index's, and returns
// false if two of them have the same id. The index must be empty.
func (ci *commitIndex) load(slab []node) bool {
	size := 1
	for size < len(slab)+len(slab)/2+1 {
		size *= 2
	}
	ci.slab, ci.table, ci.mask = slab, make([]uint32, size), uint64(size-1)
	for k := range slab {
		id := &slab[k].c.id
		i := maphash.Comparable(commitSeed, *id) & ci.mask
		for ; ci.table[i] != 0; i = (i + 1) & ci.mask {
			if slab[ci.table[i]-1].c.id == *id {
				return false
			}
		}
		ci.table[i] = uint32(k + 1)
	}
	return true
}

// get returns the node of id, or nil.
func (ci *commitIndex) get(id commit.ID) *node {
	if ci.table != nil {
		for i := maphash.Comparable(commitSeed, id) & ci.mask; ci.table[i] != 0; i = (i + 1) & ci.mask {
			if n := &ci.slab[ci.table[i]-1]; n.c.id == id {
				return n
			}
		}
	}
	return ci.more[id]
}

// add indexes n, whose id get does not find.
func (ci *commitIndex) add(n *node) { ci.more[n.c.id] = n }

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
