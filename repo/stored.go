package repo

import (
	"fmt"

	"github.com/goatdb/goatdb/commit"
)

// Commits in memory.
//
// The graph keeps of every commit what places it (node.c: id, item,
// parents, time, delta base) and its encoding (node.enc: body and
// signature), packed in slabs: the arenas replay decoded the log into, or
// the repository's own slab for commits inserted later.
// The decoded commit, whose value or delta is several times the size of
// its encoding, is kept only while it is fresh: from its insertion until
// the sequence number next advances (release), so that a write or a
// replay that inserts and then settles an item decodes nothing twice.
// After that, whoever needs a commit's contents (its value at a merge or
// a delta's base, History, Commit and CommitsSince for sync, compaction)
// decodes it from enc (commitOf). A commit that is not stored (a write's
// pending head, tentative.go) keeps its decoded form.
//
// Slabs are append-only and never written again once a commit's bytes are
// in them, so a decoded commit, and the values and keys the graph keeps,
// share their memory (commit.DecodeShared) instead of copying it.

// slabSize is the size of the slabs encodings are packed in; an encoding
// larger than a quarter of it gets its own allocation.
const slabSize = 64 << 10

// storeLocked returns c's encoding, packed in the current slab. r.mu must
// be held (or the repository not yet shared).
func (r *Repo) storeLocked(c *commit.Commit) []byte {
	return packEncoding(&r.slab, c.Size(), c.AppendEncoding)
}

// packEncoding appends size bytes with add to the slab *s (a new one when
// it is full) and returns them, capacity clipped.
func packEncoding(s *[]byte, size int, add func([]byte) []byte) []byte {
	if size > slabSize/4 {
		return add(make([]byte, 0, size))
	}
	if cap(*s)-len(*s) < size {
		*s = make([]byte, 0, slabSize)
	}
	start := len(*s)
	*s = add(*s)
	return (*s)[start:len(*s):len(*s)]
}

// commitOf returns n's commit, decoding it from its stored form unless it
// is fresh. It does not change n, so it may run under the read lock.
func (r *Repo) commitOf(n *node) (*commit.Commit, error) {
	if n.full != nil {
		return n.full, nil
	}
	r.decodes.Add(1)
	c, err := commit.DecodeShared(n.enc, nil)
	if err == nil && c.ID() != n.c.id {
		err = fmt.Errorf("decodes as %s", c.ID().Short())
	}
	if err != nil {
		return nil, fmt.Errorf("%w: commit %s in memory: %w", ErrCorrupt, n.c.id.Short(), err)
	}
	return c, nil
}

// releaseLocked drops the decoded form of the commits inserted since the
// last release: their stored form is what stays. r.mu must be held for
// writing.
func (r *Repo) releaseLocked() {
	for _, n := range r.fresh {
		if n != nil && n.enc != nil {
			n.full = nil
		}
	}
	if cap(r.fresh) > 4096 {
		r.fresh = nil
	} else {
		clear(r.fresh)
		r.fresh = r.fresh[:0]
	}
}
