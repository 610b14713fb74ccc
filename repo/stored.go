package repo

import (
	"cmp"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"slices"
	"sync"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/vfs"
)

// Commits in memory.
//
// The graph keeps of every commit what places it (node.c: id, item,
// parents, time, delta base) and where its record is in the log. Its
// encoding (held.enc: body and signature) is kept, packed in slabs (the
// arenas replay decoded the log into, or the repository's own slab for
// commits inserted later), only for the newest commits: once the
// encodings held pass encBudget bytes, those of the oldest durable
// commits are dropped, in log order, down to half of it
// (trimEncodingsLocked), and their commits are read from the log when
// asked, as those a head index loaded are. So what a long-lived
// repository holds of its history does not grow with it, while the
// commits a peer most likely asks for next, the newest, are at hand.
// The decoded commit, whose value or delta is several times the size of
// its encoding, is kept only while it is fresh: from its insertion until
// the sequence number next advances (release), so that a write or a
// replay that inserts and then settles an item decodes nothing twice.
// After that, whoever needs a commit's contents (its value at a merge or
// a delta's base, History, Commit and CommitsSince for sync, compaction)
// decodes it from its encoding or reads it from the log (commitOf). A
// commit that is not stored (a write's pending head, tentative.go) keeps
// its decoded form.
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

// commitOf returns n's commit, decoding it from its encoding unless it is
// fresh, or reading it from the log if the graph came from the head index
// (headindex.go) and does not hold it. It does not change n, so it may run
// under the read lock.
func (r *Repo) commitOf(n *node) (*commit.Commit, error) {
	if c := n.decoded(); c != nil {
		return c, nil
	}
	enc := n.encoding()
	if enc == nil {
		return r.readCommit(n)
	}
	r.decodes.Add(1)
	c, err := commit.DecodeShared(enc, nil)
	if err == nil && c.ID() != n.c.id {
		err = fmt.Errorf("decodes as %s", c.ID().Short())
	}
	if err != nil {
		return nil, fmt.Errorf("%w: commit %s in memory: %w", ErrCorrupt, n.c.id.Short(), err)
	}
	return c, nil
}

// encBudget is how many bytes of commit encodings a repository holds
// before it drops the oldest durable ones.
var encBudget = 4 << 20

// trimEncodingsLocked drops the encodings of the oldest commits, in log
// order, while those held pass encBudget, down to half of it: only of
// commits whose record is durable (the log is never rewritten below its
// durable end, except by compaction, which moves the positions), and not
// decoded any longer (a fresh commit's is dropped by releaseLocked
// first). r.mu must be held for writing.
func (r *Repo) trimEncodingsLocked() {
	if r.encHeld <= encBudget {
		return
	}
	durable := r.seq // read-only: the whole log is on disk
	if r.log != nil {
		durable = uint64(r.log.durableSize())
	}
	for ; r.encFrom < len(r.entries) && r.encHeld > encBudget/2; r.encFrom++ {
		n := r.entries[r.encFrom]
		if n.seq > durable || n.decoded() != nil {
			return
		}
		r.encHeld -= len(n.encoding())
		if n.h != nil {
			*n.h = held{} // its chunk's other helds may outlive it
			n.h = nil
		}
	}
}

// held is what a node holds of its commit besides what places it: its
// encoding (stored form, log.go: the owner's session left out), and its
// decoded form while fresh or not stored yet. A node holds it only while
// it holds either, so most nodes (those loaded from the head index, and
// those whose encodings were trimmed) pay a pointer for it, not 32 bytes.
type held struct {
	enc  []byte
	full *commit.Commit
}

// heldChunk is how many helds are allocated at once.
const heldChunk = 256

// newHeld returns a held of enc and full, nil if both are nil, from a
// chunk of heldChunk: whoever drops a node's held clears it, since the
// chunk lives as long as any of its helds. r.mu must be held for writing
// (or the repository not yet shared).
func (r *Repo) newHeld(enc []byte, full *commit.Commit) *held {
	if enc == nil && full == nil {
		return nil
	}
	if len(r.helds) == cap(r.helds) {
		r.helds = make([]held, 0, heldChunk)
	}
	r.helds = append(r.helds, held{enc, full})
	return &r.helds[len(r.helds)-1]
}

// encoding returns the commit's encoding if the node holds it, else nil.
func (n *node) encoding() []byte {
	if n.h == nil {
		return nil
	}
	return n.h.enc
}

// decoded returns the commit decoded if the node holds it, else nil.
func (n *node) decoded() *commit.Commit {
	if n.h == nil {
		return nil
	}
	return n.h.full
}

// release drops the node's decoded form; the held goes with it if it
// held no encoding.
func (n *node) release() {
	switch {
	case n.h == nil:
	case n.h.enc == nil:
		*n.h = held{} // its chunk's other helds may outlive it
		n.h = nil
	default:
		n.h.full = nil
	}
}

// releaseReplayedLocked drops, during a replay that holds replayHeld
// decoded commits, the decoded form of those that are no longer leaves:
// settling at the end of the replay needs the leaves' (their values), and
// the rest would hold a long log's whole history decoded at once.
func (r *Repo) releaseReplayedLocked() {
	keep := r.fresh[:0]
	for _, n := range r.fresh {
		if n.decoded() == nil {
			continue
		}
		if st := r.items.get(n.c.Key()); n.encoding() == nil || st != nil && slices.Contains(st.leaves(), n) {
			keep = append(keep, n)
			continue
		}
		n.release()
	}
	clear(r.fresh[len(keep):])
	r.fresh = keep
}

// releaseLocked drops the decoded form of the commits inserted since the
// last release: their stored form is what stays. r.mu must be held for
// writing.
func (r *Repo) releaseLocked() {
	for _, n := range r.fresh {
		if n != nil && n.encoding() != nil {
			n.release()
		}
	}
	if cap(r.fresh) > 4096 {
		r.fresh = nil
	} else {
		clear(r.fresh)
		r.fresh = r.fresh[:0]
	}
}

// logReader reads the records of commits the graph does not hold (loaded
// from the head index) from the log, keeping the last record read, since
// sync and history read the commits of one record together.
//
// Reads in log order (sync sending every commit, a first contact) read
// ahead: when a record starts where the last one read ended, or just
// after, the reader reads readAhead bytes at once and serves the records
// that follow from them, so a scan of the whole log costs one read per
// readAhead bytes, not one per record. Only bytes below the log's durable
// end are read ahead, since those never change until the log is replaced
// (reset).
type logReader struct {
	mu     sync.Mutex // guards the fields below
	f      vfs.File   // nil until the first read
	off    int64      // the cached record's offset, or -1
	stored [][]byte   // its commits in stored form
	win    []byte     // bytes of the log from winOff, read ahead
	winOff int64
	next   int64 // where the last record read ends

	// The frame of a chunked group read last (groupchunk.go): the
	// record's offset, or -1, the frame's first commit and its commits;
	// and the directory read last, and its record's offset.
	frameOff   int64
	frameFirst int
	frame      [][]byte
	dirOff     int64
	dir        *groupDir
}

// Read-ahead: how much, and how far past the last record read a record
// may start and still be read ahead.
const (
	readAhead    = 1 << 20
	readAheadGap = 64 << 10
)

// reset closes the file and forgets the cached record: the log was
// replaced (compaction) or is closing.
func (lr *logReader) reset() error {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	var err error
	if lr.f != nil {
		err = lr.f.Close()
	}
	lr.f, lr.off, lr.stored, lr.win, lr.next = nil, -1, nil, nil, 0
	lr.frameOff, lr.frame, lr.dirOff, lr.dir = -1, nil, -1, nil
	return err
}

// readLimit returns how much of the log's file holds bytes that never
// change: the durable log of a writable repository; what the open read of
// a read-only one.
func (r *Repo) readLimit() int64 {
	if r.log == nil {
		return int64(r.seq)
	}
	return r.log.durableSize()
}

// storedCommit returns commit idx of the record [off, off+size) in
// stored form, from the whole record (recordLocked), which is kept, as
// sync and history read the commits of one record together, or for a
// chunked group (groupchunk.go) from the one frame that holds it, which is
// kept likewise, unless whole is set or the frame does not give it.
func (r *Repo) storedCommit(off int64, size uint32, idx int, whole bool) (b []byte, fromFrame bool, err error) {
	lr := &r.rd
	lr.mu.Lock()
	defer lr.mu.Unlock()
	switch {
	case lr.f != nil && lr.off == off && lr.stored != nil:
	case !whole && lr.f != nil && lr.frameOff == off && idx >= lr.frameFirst && idx-lr.frameFirst < len(lr.frame):
		return lr.frame[idx-lr.frameFirst], true, nil
	default:
		if lr.f == nil {
			f, err := r.opts.FS.OpenFile(r.path, os.O_RDONLY, 0)
			if err != nil {
				return nil, false, err
			}
			lr.f = f
		}
		inOrder := off >= lr.next && off-lr.next <= readAheadGap
		var limit int64 // how far reading ahead may go; 0: not in log order
		if inOrder {
			limit = r.readLimit()
		}
		if !whole && int(size) > recHeadSize+groupChunk {
			if b, ok := r.frameCommitLocked(off, size, idx); ok {
				return b, true, nil
			}
		}
		if err := r.recordLocked(off, size, limit); err != nil {
			return nil, false, err
		}
	}
	if idx >= len(lr.stored) {
		return nil, false, fmt.Errorf("%w: the record at offset %d holds %d commits, not %d", ErrCorrupt, off, len(lr.stored), idx+1)
	}
	return lr.stored[idx], false, nil
}

// frameCommitLocked reads commit idx of the chunked group record [off,
// off+size) from the one frame that holds it, and keeps the frame's
// commits. ok is false when the record is not a chunked group, or its
// directory or frame does not give the commit: the whole record is then
// read, and checked. lr.mu must be held.
func (r *Repo) frameCommitLocked(off int64, size uint32, idx int) (b []byte, ok bool) {
	lr := &r.rd
	g := lr.dir
	if lr.dirOff != off || g == nil {
		head := make([]byte, recHeadSize+groupDirHead)
		if err := lr.readAt(head, off); err != nil {
			return nil, false
		}
		h, ok := headAt(head[:recHeadSize], off)
		if !ok || h.typ != recGroupZstd || recHeadSize+h.length != int(size) {
			return nil, false
		}
		n, ok := groupDirSize(head[recHeadSize:])
		if !ok || n > h.length {
			return nil, false
		}
		dir := make([]byte, n)
		if err := lr.readAt(dir, off+recHeadSize); err != nil {
			return nil, false
		}
		var err error
		if g, err = parseGroupDir(dir, h.length); err != nil {
			return nil, false
		}
		lr.dirOff, lr.dir = off, g
	}
	j := g.frameOf(idx)
	z := make([]byte, g.at[j+1]-g.at[j])
	if err := lr.readAt(z, off+recHeadSize+int64(g.at[j])); err != nil {
		return nil, false
	}
	data, err := g.frame(zdec, z, j, nil)
	if err != nil {
		return nil, false
	}
	commits, err := g.frameCommits(j, data)
	if err != nil || idx-g.first[j] >= len(commits) {
		return nil, false
	}
	lr.frameOff, lr.frameFirst, lr.frame = off, g.first[j], commits
	lr.next = off + int64(size)
	return commits[idx-g.first[j]], true
}

// readAt fills p from the log at off: from the bytes read ahead when
// they hold it. lr.mu must be held.
func (lr *logReader) readAt(p []byte, off int64) error {
	if lr.win != nil && off >= lr.winOff && off+int64(len(p)) <= lr.winOff+int64(len(lr.win)) {
		copy(p, lr.win[off-lr.winOff:])
		return nil
	}
	_, err := lr.f.ReadAt(p, off)
	return err
}

// recordLocked reads the record [off, off+size), checks it and keeps its
// stored commits as lr.stored; limit is how far the log may be read
// ahead, 0 if not. lr.mu must be held.
func (r *Repo) recordLocked(off int64, size uint32, limit int64) error {
	lr := &r.rd
	end := off + int64(size)
	var buf []byte
	switch {
	case lr.win != nil && off >= lr.winOff && end <= lr.winOff+int64(len(lr.win)):
		buf = lr.win[off-lr.winOff : end-lr.winOff]
	case end <= limit:
		n := min(max(readAhead, int64(size)), limit-off)
		win := make([]byte, n)
		k, err := lr.f.ReadAt(win, off)
		if k < int(size) {
			return fmt.Errorf("%w: read the record at offset %d: %w", ErrCorrupt, off, cmp.Or(err, io.ErrUnexpectedEOF))
		}
		lr.win, lr.winOff = win[:k], off
		buf = win[:size]
	default:
		buf = make([]byte, size)
		if _, err := lr.f.ReadAt(buf, off); err != nil {
			return fmt.Errorf("%w: read the record at offset %d: %w", ErrCorrupt, off, err)
		}
	}
	lr.next = end
	var h recHead
	ok := len(buf) >= recHeadSize
	if ok {
		h, ok = headAt(buf[:recHeadSize], off)
	}
	switch {
	case !ok:
		return fmt.Errorf("%w: no sound record at offset %d", ErrCorrupt, off)
	case recHeadSize+h.length != int(size):
		return fmt.Errorf("%w: the record at offset %d is %d bytes, not %d", ErrCorrupt, off, recHeadSize+h.length, size)
	case crc32.Checksum(buf[recHeadSize:], castagnoli) != h.dataCRC:
		return fmt.Errorf("%w: record data checksum mismatch at offset %d", ErrCorrupt, off)
	}
	stored, err := recordCommits(h.typ, buf[recHeadSize:])
	if err != nil {
		return fmt.Errorf("%w: the record at offset %d: %w", ErrCorrupt, off, err)
	}
	lr.off, lr.stored = off, stored
	return nil
}

// readCommit reads n's commit from the log, checks it is the one the graph
// names and decodes it. Damage found removes the head index, so that the
// next open replays the log and recovers from it.
func (r *Repo) readCommit(n *node) (*commit.Commit, error) {
	c, fromFrame, err := r.readCommitFrom(n, false)
	if err != nil && fromFrame {
		// Only what the record's checksum covers decides: a frame that
		// gave another commit is read again from the whole record.
		c, _, err = r.readCommitFrom(n, true)
	}
	if err != nil {
		r.metDamage(err)
	}
	return c, err
}

// readCommitFrom is readCommit; whole makes it read the whole record.
func (r *Repo) readCommitFrom(n *node, whole bool) (*commit.Commit, bool, error) {
	stored, fromFrame, err := r.storedCommit(int64(n.seq)-int64(n.size), n.size, int(n.idx), whole)
	if err != nil {
		return nil, false, err
	}
	// The commit gets memory of its own, exactly its size: it may
	// outlive the record read.
	arena := make([]byte, 0, len(stored)+len(r.owner))
	enc, err := loadStored(stored, r.owner, &arena)
	if err != nil {
		return nil, fromFrame, fmt.Errorf("%w: commit %s in the log: %w", ErrCorrupt, n.c.id.Short(), err)
	}
	if stored[0] == storedFull {
		enc = append(arena, enc...)
	}
	r.decodes.Add(1)
	c, err := commit.DecodeShared(enc, nil)
	if err == nil && c.ID() != n.c.id {
		err = fmt.Errorf("the log holds %s where the index says", c.ID().Short())
	}
	if err != nil {
		return nil, fromFrame, fmt.Errorf("%w: commit %s in the log: %w", ErrCorrupt, n.c.id.Short(), err)
	}
	return c, fromFrame, nil
}
