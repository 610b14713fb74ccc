package repo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math"
	"os"
	"slices"
	"strings"
	"unsafe"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/vfs"
)

// The head index, PATH.index beside the log PATH, is the graph as a replay
// of the log's first L bytes leaves it, so that an open reads it instead of
// decoding every commit: per item its key, leaves, head and head value,
// and per commit what places it in its item's graph (id, parents, time,
// delta base, schema, generation, depth) and where it is in the log. The
// commits' contents stay in the log, read when asked (stored.go), and the
// head values stay encoded until first read (itemState.lazy). It is a
// cache: nothing in it is needed to recover a commit, and an index that is
// missing, damaged or does not match the log is ignored (the open replays
// the whole log, and says why in a log line).
//
//	index  := header body crc32c(header body) (u32 LE)
//	header := magic "goatdbIX" | version u32 (2) | log epoch u64 | L u64
//	        | anchor offset u64 | anchor head (23 bytes) | log version u32
//	        | horizon i64 | previous epoch u64          (all LE)
//	body   := nNS uvarint, nNS × string            the schema namespaces
//	        | nItems uvarint, nCommits uvarint
//	        | nCommits × commit                   in log order
//	        | key bytes u64 | value bytes u64     (LE) the items' keys and head values, in all
//	        | nItems × item                       in order of first commit
//	        | nLive uvarint, nLive × item uvarint  the live items, in key order
//	commit := item uvarint | id (32) | flags u8 (1 full, 2 shallow)
//	        | time varint | nParents uvarint, nParents × ref
//	        | full: ns uvarint, version uvarint ; delta: base ref
//	        | end − previous end uvarint | record length uvarint | place uvarint
//	        | generation uvarint | depth uvarint
//	ref    := uvarint k: k > 0 the k-th commit (1-based) ; 0 then the id (32): not here
//	item   := key string | nLeaves uvarint, nLeaves × ref | head ref
//	        | if head: deleted u8 (0 or 1) | value (string: item encoding)
//	string := uvarint length | bytes
//
// The anchor is the record that ends at L, whose head the log must still
// hold at that offset: with the epoch (random per log file, new at every
// rewrite) and L not beyond the log's end, it proves the log's first L
// bytes are those indexed, since the log is only appended to. An open
// replays the records after L as usual. Damage inside the first L bytes is
// not looked for at such an open: a read that meets it (a checksum
// mismatch) reports it and removes the index, so the next open replays,
// quarantines and reports it as recovery always does; Check reads
// everything.
//
// Only a graph without pending, refused or excluded commits, and a log
// without exclusion records, is indexed; others open by replay. The index
// is written when a repository of at least 4,096 commits closes
// (after its last record), atomically (a temporary file, synced, renamed),
// and never when nothing changed since the one it opened with.

// IndexSuffix names the head index beside a log.
const IndexSuffix = ".index"

// indexMinCommits is the fewest commits a repository needs for Close to
// write its head index: a smaller one replays in a few milliseconds.
var indexMinCommits = 4096

// indexWritten, if set, runs after Close wrote an index (tests damage it).
var indexWritten func(fsys vfs.FS, path string)

const (
	indexVersion    = 2
	indexHeaderSize = 8 + 4 + 8 + 8 + 8 + recHeadSize + 4 + 8 + 8
	// maxIndexSize bounds what an open reads as an index.
	maxIndexSize = 1 << 34
)

var indexMagic = [8]byte{'g', 'o', 'a', 't', 'd', 'b', 'I', 'X'}

// errIndex marks an index that cannot be used.
var errIndex = errors.New("head index")

func (r *Repo) indexPath() string { return r.path + IndexSuffix }

// indexHeader is the fixed part of an index.
type indexHeader struct {
	epoch      uint64
	covered    uint64 // L
	anchorOff  uint64
	anchor     [recHeadSize]byte
	logVersion uint32
	horizon    int64
	prevEpoch  uint64
}

// headIndex is a decoded index: the graph's commits in log order and its
// items in order of first commit, linked to each other, with the items'
// head values still encoded.
type headIndex struct {
	h       indexHeader
	nodes   []node
	states  []itemState
	lazies  []lazyValue                      // per item, its head value still encoded (none without a head)
	byKey   []int32                          // the live items in key order
	schemas map[commit.Schema]*commit.Schema // the nodes' schemas, one copy each
}

// indexable reports why the graph cannot be indexed, or "" if it can.
// r.mu must be held.
func (r *Repo) indexableLocked() string {
	switch {
	case len(r.damage) > 0 || r.damageMet.Load():
		return "the log has damage"
	case len(r.waiting) > 0:
		return "commits are pending"
	case len(r.excl) > 0 || len(r.touched) > 0 || r.exclSeq > 0 || len(r.reinstated) > 0:
		return "the log holds exclusions"
	}
	for _, n := range r.entries {
		if n.bad || n.out || !n.complete() {
			return "the graph holds refused commits"
		}
	}
	return ""
}

// encodeIndexLocked encodes the graph as an index of the log's first L
// bytes, whose last record is the anchor. r.mu must be held.
func (r *Repo) encodeIndexLocked(h indexHeader) ([]byte, error) {
	// Commits are numbered by their place in the log (node.c.ord), items
	// by their first commit's (itemState.ord), in the nodes themselves:
	// no map from either to its number, which would cost more than all
	// the rest.
	r.ordMu.Lock()
	defer r.ordMu.Unlock()
	ents := r.entries
	if len(ents) >= math.MaxUint32 {
		return nil, fmt.Errorf("%w: %d commits", errIndex, len(ents))
	}
	for i, n := range ents {
		if n.seq > h.covered {
			return nil, fmt.Errorf("%w: commit %s is after the indexed bytes", errIndex, n.c.id.Short())
		}
		n.c.ord = uint32(i + 1)
	}
	ref := func(n *node) int {
		if n == nil || n.c.ord == 0 || int(n.c.ord) > len(ents) || ents[n.c.ord-1] != n {
			return 0
		}
		return int(n.c.ord)
	}
	// Items in order of their first commit in the log, as a replay lists
	// them (r.list keeps the order they had before a compaction).
	list := make([]*itemState, 0, len(r.list))
	number := func(st *itemState) uint32 {
		if st.ord == 0 || int(st.ord) > len(list) || list[st.ord-1] != st {
			list = append(list, st)
			st.ord = uint32(len(list))
		}
		return st.ord - 1
	}
	itemOf := make([]uint32, len(ents))
	for i, n := range ents {
		st := r.items.get(n.c.Key())
		if st == nil {
			return nil, fmt.Errorf("%w: commit %s of no item", errIndex, n.c.id.Short())
		}
		itemOf[i] = number(st)
	}
	for _, st := range r.list {
		number(st)
	}
	nsNo := map[string]int{}
	var nss []string
	for _, n := range ents {
		if ns := n.schemaOf().NS; n.c.full && (len(nss) == 0 || ns != nss[len(nss)-1]) {
			if _, ok := nsNo[ns]; !ok {
				nsNo[ns] = len(nss)
				nss = append(nss, ns)
			}
		}
	}
	b := make([]byte, indexHeaderSize, indexHeaderSize+len(ents)*64+len(list)*96)
	copy(b, indexMagic[:])
	le := binary.LittleEndian
	le.PutUint32(b[8:], indexVersion)
	le.PutUint64(b[12:], h.epoch)
	le.PutUint64(b[20:], h.covered)
	le.PutUint64(b[28:], h.anchorOff)
	copy(b[36:], h.anchor[:])
	le.PutUint32(b[59:], h.logVersion)
	le.PutUint64(b[63:], uint64(h.horizon))
	le.PutUint64(b[71:], h.prevEpoch)
	str := func(s string) { b = binary.AppendUvarint(b, uint64(len(s))); b = append(b, s...) }
	bts := func(p []byte) { b = binary.AppendUvarint(b, uint64(len(p))); b = append(b, p...) }
	var scratch []byte
	putRef := func(id commit.ID) {
		if k := ref(r.commits.get(id)); k > 0 {
			b = binary.AppendUvarint(b, uint64(k))
			return
		}
		b = append(b, 0)
		b = append(b, id[:]...)
	}
	b = binary.AppendUvarint(b, uint64(len(nss)))
	for _, ns := range nss {
		str(ns)
	}
	b = binary.AppendUvarint(b, uint64(len(list)))
	b = binary.AppendUvarint(b, uint64(len(ents)))
	var prev uint64
	lastNS, lastNo := "", -1
	for i, n := range ents {
		b = binary.AppendUvarint(b, uint64(itemOf[i]))
		b = append(b, n.c.id[:]...)
		var flags byte
		if n.c.full {
			flags |= 1
		}
		if n.shallow {
			flags |= 2
		}
		b = append(b, flags)
		b = binary.AppendVarint(b, n.c.time)
		ps := n.c.Parents()
		b = binary.AppendUvarint(b, uint64(len(ps)))
		for _, p := range ps {
			putRef(p)
		}
		if n.c.full {
			s := n.schemaOf()
			if lastNo < 0 || s.NS != lastNS {
				lastNS, lastNo = s.NS, nsNo[s.NS]
			}
			b = binary.AppendUvarint(b, uint64(lastNo))
			b = binary.AppendUvarint(b, uint64(s.Version))
		} else {
			k := ref(n.base)
			if k == 0 {
				return nil, fmt.Errorf("%w: delta %s without its base", errIndex, n.c.id.Short())
			}
			b = binary.AppendUvarint(b, uint64(k))
		}
		b = binary.AppendUvarint(b, n.seq-prev)
		prev = n.seq
		b = binary.AppendUvarint(b, uint64(n.size))
		b = binary.AppendUvarint(b, uint64(n.idx))
		b = binary.AppendUvarint(b, uint64(n.gen))
		b = binary.AppendUvarint(b, uint64(n.depth))
	}
	// The bytes of the keys and of the head values, once known.
	sizesAt := len(b)
	b = append(b, make([]byte, 16)...)
	var keyBytes, valueBytes uint64
	for _, st := range list {
		str(st.key)
		keyBytes += uint64(len(st.key))
		leaves := st.leaves()
		b = binary.AppendUvarint(b, uint64(len(leaves)))
		for _, l := range leaves {
			b = binary.AppendUvarint(b, uint64(ref(l)))
		}
		if st.head == nil {
			b = append(b, 0)
			continue
		}
		b = binary.AppendUvarint(b, uint64(ref(st.head)))
		if st.deleted() {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
		if lz := st.lazy.Load(); lz != nil {
			bts(lz.enc) // as the index gave it: checked at open
			valueBytes += uint64(len(lz.enc))
			continue
		}
		var err error
		if scratch, err = item.AppendItem(scratch[:0], st.value); err != nil {
			return nil, fmt.Errorf("%w: value of %s: %w", errIndex, st.key, err)
		}
		bts(scratch)
		valueBytes += uint64(len(scratch))
	}
	le.PutUint64(b[sizesAt:], keyBytes)
	le.PutUint64(b[sizesAt+8:], valueBytes)
	// The live items in key order, so that an open need not sort them.
	b = binary.AppendUvarint(b, uint64(r.live))
	n := 0
	listed := true
	r.ascendLocked(RangeSpec{}, func(st *itemState) bool {
		if st.ord == 0 || int(st.ord) > len(list) || list[st.ord-1] != st {
			listed = false // not numbered above
			return false
		}
		b = binary.AppendUvarint(b, uint64(st.ord-1))
		n++
		return true
	})
	if !listed {
		return nil, fmt.Errorf("%w: a live item is not among the items", errIndex)
	}
	if n != r.live {
		return nil, fmt.Errorf("%w: %d live items in key order, %d counted", errIndex, n, r.live)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

// decodeIndexFrom decodes an index of size bytes read from rd, checking
// everything it can without the log: its checksum, its format, and that
// the graph it describes holds together (references in range, deltas on
// full snapshots, heads among their item's leaves). It reads the index
// through a window (indexDecoder), copying out the keys and head values
// it keeps, so that an open never holds the whole index in memory; the
// checksum, at its end, is checked once the rest is decoded.
func decodeIndexFrom(rd io.Reader, size int64) (*headIndex, error) {
	return decodeIndexWindow(rd, size, indexWindow)
}

// decodeIndexWindow is decodeIndexFrom reading at least win bytes at once.
func decodeIndexWindow(rd io.Reader, size int64, win int) (*headIndex, error) {
	if size < indexHeaderSize+4 {
		return nil, fmt.Errorf("%w: %d bytes, too short", errIndex, size)
	}
	b := make([]byte, indexHeaderSize)
	if _, err := io.ReadFull(rd, b); err != nil {
		return nil, fmt.Errorf("%w: read: %w", errIndex, err)
	}
	if !bytes.Equal(b[:8], indexMagic[:]) {
		return nil, fmt.Errorf("%w: not an index (bad magic)", errIndex)
	}
	d := &indexDecoder{r: rd, win: max(win, 1), left: size - indexHeaderSize - 4, crc: crc32.Checksum(b, castagnoli)}
	x, err := decodeIndexBody(d, b)
	if err != nil {
		// Damage is what went wrong if the checksum says so.
		if ok, rerr := d.sumOK(); rerr == nil && !ok {
			return nil, fmt.Errorf("%w: checksum mismatch", errIndex)
		}
		return nil, err
	}
	return x, nil
}

// decodeIndexBody is decodeIndexFrom after the header's first bytes: the
// rest of the header b, then the body from d.
func decodeIndexBody(d *indexDecoder, b []byte) (*headIndex, error) {
	le := binary.LittleEndian
	if v := le.Uint32(b[8:]); v != indexVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", errIndex, v, indexVersion)
	}
	x := &headIndex{schemas: map[commit.Schema]*commit.Schema{}}
	x.h.epoch = le.Uint64(b[12:])
	x.h.covered = le.Uint64(b[20:])
	x.h.anchorOff = le.Uint64(b[28:])
	copy(x.h.anchor[:], b[36:])
	x.h.logVersion = le.Uint32(b[59:])
	x.h.horizon = int64(le.Uint64(b[63:]))
	x.h.prevEpoch = le.Uint64(b[71:])
	if x.h.anchorOff < HeaderSize || x.h.anchorOff > x.h.covered || x.h.covered-x.h.anchorOff < recHeadSize {
		return nil, fmt.Errorf("%w: anchor at %d does not end by %d", errIndex, x.h.anchorOff, x.h.covered)
	}
	nss := make([]string, d.count(1))
	for i := range nss {
		nss[i] = d.str()
	}
	nItems, nCommits := d.count(1), d.count(34)
	if d.err != nil {
		return nil, d.err
	}
	x.nodes = make([]node, nCommits)
	items := make([]int32, nCommits)   // each commit's item
	var last *commit.Schema            // the last full commit's schema
	bases := make([]int32, nCommits)   // each delta's base (1-based)
	refs := make([]int32, 0, nCommits) // parent references, in order; resolved below
	var ids []commit.ID                // the parents of every commit, packed
	var end uint64
	for i := range x.nodes {
		n := &x.nodes[i]
		items[i] = int32(d.below(nItems))
		n.c.id = d.id()
		flags := d.byte()
		if flags&^3 != 0 {
			d.fail("unknown flags %#x", flags)
		}
		n.c.full, n.shallow = flags&1 != 0, flags&2 != 0
		n.c.time = d.varint()
		np := d.count(1)
		if np > commit.MaxParents {
			d.fail("commit %d with %d parents", i, np)
			np = 0
		}
		if np == 1 {
			// One parent here: the parent's own id (filled in when it
			// is decoded, if after), no copy.
			k, id := d.ref(nCommits)
			refs = append(refs, int32(k))
			if k > 0 {
				n.c.par, n.c.np = &x.nodes[k-1].c.id, 1
			} else {
				if cap(ids) == len(ids) {
					ids = make([]commit.ID, 0, 4096)
				}
				ids = append(ids, id)
				n.c.setParents(ids[len(ids)-1 : len(ids) : len(ids)])
			}
			np = 0
		}
		if cap(ids)-len(ids) < np {
			ids = make([]commit.ID, 0, max(np, 4096))
		}
		start := len(ids)
		for range np {
			k, id := d.ref(nCommits)
			refs = append(refs, int32(k))
			ids = append(ids, id)
		}
		if np > 0 {
			n.c.setParents(ids[start:len(ids):len(ids)])
		}
		if n.c.full {
			var s commit.Schema
			if ns := d.below(len(nss)); d.err == nil {
				s.NS = nss[ns]
			}
			s.Version = uint32(d.below(1 << 32))
			if last == nil || *last != s {
				if last = x.schemas[s]; last == nil {
					last = new(commit.Schema)
					*last = s
					x.schemas[s] = last
				}
			}
			n.schema = last
		} else if k := d.below(nCommits + 1); k > 0 {
			n.base, bases[i] = &x.nodes[k-1], int32(k)
		} else {
			d.fail("delta %s without its base", n.c.id.Short())
		}
		end += uint64(d.below(1 << 40))
		n.seq = end
		n.size = uint32(d.below(maxRecordSize + recHeadSize + 1))
		n.idx = uint32(d.below(1 << 32))
		n.gen = uint32(d.below(1 << 32))
		n.depth = uint8(d.below(maxChain + 1))
		if uint64(n.size) > n.seq || n.seq > x.h.covered || n.size < recHeadSize {
			d.fail("commit %s at %d+%d is outside the indexed bytes", n.c.id.Short(), n.seq, n.size)
		}
		if n.gen == 0 {
			d.fail("commit %s without a generation", n.c.id.Short())
		}
		if d.err != nil {
			return nil, d.err
		}
	}
	x.states = make([]itemState, nItems)
	x.lazies = make([]lazyValue, nItems)
	// Keys and head values are copied out of the window into two arenas of
	// the size the index declares, so that nothing else of the index stays
	// in memory.
	nKeys, nVals := d.u64(), d.u64()
	if nKeys > uint64(d.avail()) || nVals > uint64(d.avail())-nKeys || nKeys+nVals > math.MaxInt {
		d.fail("%d bytes of keys and %d of values, more than the index holds", nKeys, nVals)
		return nil, d.err
	}
	keys, vals := newArena(int(nKeys)), newArena(int(nVals))
	for i := range x.states {
		st := &x.states[i]
		k := d.bytes()
		if len(k) == 0 {
			d.fail("item %d without a key", i)
		}
		if st.key = keys.string(k); len(st.key) != len(k) {
			d.fail("more key bytes than the %d declared", nKeys)
		}
		leaves := st.leaf1[:0]
		for range d.count(1) {
			k := d.below(nCommits + 1)
			if k == 0 {
				d.fail("item %d with a leaf not here", i)
				break
			}
			leaves = append(leaves, &x.nodes[k-1])
		}
		st.setLeaves(leaves)
		if k := d.below(nCommits + 1); k > 0 {
			st.head = &x.nodes[k-1]
			lz := &x.lazies[i]
			switch d.byte() {
			case 0:
			case 1:
				lz.deleted = true
			default:
				d.fail("item %d: bad deletion flag", i)
			}
			v := d.bytes()
			if lz.enc = vals.bytes(v); len(lz.enc) != len(v) {
				d.fail("more value bytes than the %d declared", nVals)
			}
			if !slices.Contains(st.leaves(), st.head) {
				d.fail("the head of item %d is not a leaf", i)
			}
		}
		if d.err != nil {
			return nil, d.err
		}
	}
	x.byKey = make([]int32, d.count(1))
	for i := range x.byKey {
		x.byKey[i] = int32(d.below(nItems))
	}
	if d.err != nil {
		return nil, d.err
	}
	if n := d.avail(); n != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the items", errIndex, n)
	}
	if !keys.full() || !vals.full() {
		return nil, fmt.Errorf("%w: %d key and %d value bytes declared, %d and %d found", errIndex, nKeys, nVals, len(keys.buf), len(vals.buf))
	}
	switch ok, err := d.sumOK(); {
	case err != nil:
		return nil, fmt.Errorf("%w: read: %w", errIndex, err)
	case !ok:
		return nil, fmt.Errorf("%w: checksum mismatch", errIndex)
	}
	// References may point forward: a commit is stored before its parents
	// when it arrived first.
	r := 0
	for i := range x.nodes {
		n := &x.nodes[i]
		n.c.key = &x.states[items[i]].key
		ps := n.c.Parents()
		for j := range ps {
			k := refs[r]
			r++
			if k == 0 {
				continue
			}
			p := &x.nodes[k-1]
			if p == n || items[k-1] != items[i] {
				return nil, fmt.Errorf("%w: commit %s has a parent of its own or of another item", errIndex, n.c.id.Short())
			}
			ps[j] = p.c.id
		}
		if !n.c.full {
			if !n.base.c.full || items[bases[i]-1] != items[i] {
				return nil, fmt.Errorf("%w: the delta base of %s is not a full snapshot of its item", errIndex, n.c.id.Short())
			}
			n.c.base, n.schema = &n.base.c.id, n.base.schema
		}
	}
	return x, nil
}

// indexDecoder reads an index body through a window, remembering the
// first error. b is the unread part of the window buf, which each read
// refills from r (fill) once it holds too little: left is what r still
// holds of the body (rest, once a failure stopped the reads), and crc the
// checksum of what was read before buf.
type indexDecoder struct {
	r          io.Reader
	win        int // the least read at once
	buf        []byte
	b          []byte
	left, rest int64
	crc        uint32
	err        error
	summed     bool // sumOK ran
}

// indexWindow is the least the decoder reads from the index at once.
var indexWindow = 256 << 10

// fill makes at least n bytes unread in the window, or as many as are
// left.
func (d *indexDecoder) fill(n int) {
	if len(d.b) >= n || d.left == 0 || d.err != nil {
		return
	}
	d.crc = crc32.Update(d.crc, castagnoli, d.buf[:len(d.buf)-len(d.b)])
	if want := max(n, d.win); cap(d.buf) < want {
		nb := make([]byte, len(d.b), want)
		copy(nb, d.b)
		d.buf = nb
	} else {
		d.buf = d.buf[:copy(d.buf[:cap(d.buf)], d.b)]
	}
	k := int(min(int64(cap(d.buf)-len(d.buf)), d.left))
	got, err := io.ReadFull(d.r, d.buf[len(d.buf):len(d.buf)+k])
	d.buf = d.buf[:len(d.buf)+got]
	d.b, d.left = d.buf, d.left-int64(got)
	if err != nil {
		d.fail("read: %v", err)
	}
}

// avail is how much of the body is not read yet.
func (d *indexDecoder) avail() int64 { return int64(len(d.b)) + d.left }

// sumOK reads what is left of the index, and reports whether the
// checksum at its end is that of the rest. It reads once: a later call
// reports true, the first call's answer being the one acted on.
func (d *indexDecoder) sumOK() (bool, error) {
	if d.summed {
		return true, nil
	}
	d.summed = true
	crc := crc32.Update(d.crc, castagnoli, d.buf) // all read from r since d.crc
	rest := d.left + d.rest
	d.left, d.rest = 0, 0
	var buf []byte
	for rest > 0 {
		if buf == nil {
			buf = make([]byte, min(rest, int64(max(d.win, 4096))))
		}
		k := int(min(rest, int64(len(buf))))
		if _, err := io.ReadFull(d.r, buf[:k]); err != nil {
			return false, err
		}
		crc = crc32.Update(crc, castagnoli, buf[:k])
		rest -= int64(k)
	}
	var sum [4]byte
	if _, err := io.ReadFull(d.r, sum[:]); err != nil {
		return false, err
	}
	return crc == binary.LittleEndian.Uint32(sum[:]), nil
}

func (d *indexDecoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", errIndex, fmt.Sprintf(format, args...))
	}
	d.b, d.left, d.rest = nil, 0, d.rest+d.left
}

func (d *indexDecoder) uvarint() uint64 {
	d.fill(binary.MaxVarintLen64)
	v, k := binary.Uvarint(d.b)
	if k <= 0 {
		d.fail("bad number")
		return 0
	}
	d.b = d.b[k:]
	return v
}

func (d *indexDecoder) varint() int64 {
	d.fill(binary.MaxVarintLen64)
	v, k := binary.Varint(d.b)
	if k <= 0 {
		d.fail("bad number")
		return 0
	}
	d.b = d.b[k:]
	return v
}

// below reads a number under n.
func (d *indexDecoder) below(n int) int {
	v := d.uvarint()
	if v >= uint64(n) {
		d.fail("number %d out of range", v)
		return 0
	}
	return int(v)
}

// count reads a count of things of at least size bytes each.
func (d *indexDecoder) count(size int) int {
	v := d.uvarint()
	if v > uint64(d.avail()/int64(size)) || v > math.MaxInt {
		d.fail("count %d exceeds the data", v)
		return 0
	}
	return int(v)
}

func (d *indexDecoder) byte() byte {
	d.fill(1)
	if len(d.b) < 1 {
		d.fail("cut short")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *indexDecoder) u64() uint64 {
	d.fill(8)
	if len(d.b) < 8 {
		d.fail("cut short")
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *indexDecoder) id() commit.ID {
	var id commit.ID
	d.fill(len(id))
	if len(d.b) < len(id) {
		d.fail("cut short")
		return id
	}
	copy(id[:], d.b)
	d.b = d.b[len(id):]
	return id
}

func (d *indexDecoder) str() string { return string(d.bytes()) }

// bytes reads a string's bytes, in the window: valid until the next
// read.
func (d *indexDecoder) bytes() []byte {
	n := d.count(1)
	d.fill(n)
	if len(d.b) < n {
		d.fail("cut short")
		return nil
	}
	s := d.b[:n:n]
	d.b = d.b[n:]
	return s
}

// arena holds copies of byte strings in one allocation of the size
// declared, never written again once written: each is its own slice, or
// string, of it.
type arena struct{ buf []byte }

func newArena(n int) arena { return arena{buf: make([]byte, 0, n)} }

// bytes returns a copy of b in the arena (nil for nil), or a shorter
// slice if the arena has no room for it.
func (a *arena) bytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	if cap(a.buf)-len(a.buf) < len(b) {
		return b[:0:0]
	}
	a.buf = append(a.buf, b...)
	return a.buf[len(a.buf)-len(b) : len(a.buf) : len(a.buf)]
}

// string is bytes as a string: its bytes are never written again.
func (a *arena) string(b []byte) string {
	c := a.bytes(b)
	if len(c) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(c), len(c))
}

// full reports whether the arena holds all it was made for.
func (a *arena) full() bool { return len(a.buf) == cap(a.buf) }

// ref reads a reference to one of n commits, returning its number
// (1-based), or 0 and the id of a commit not here.
func (d *indexDecoder) ref(n int) (int, commit.ID) {
	k := d.below(n + 1)
	if k == 0 {
		return 0, d.id()
	}
	return k, commit.ID{}
}

// readIndex reads and decodes the index, and checks it against the log's
// header and against the anchor record in the log: nil and why if it
// cannot be used. size is the log's length.
func (r *Repo) readIndex(h logHeader, size int64, logf vfs.File) (*headIndex, string) {
	f, err := r.opts.FS.OpenFile(r.indexPath(), os.O_RDONLY, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, ""
	case err != nil:
		return nil, err.Error()
	}
	defer f.Close()
	info, err := f.Stat()
	switch {
	case err != nil:
		return nil, err.Error()
	case info.Size() > maxIndexSize:
		return nil, "index too large"
	}
	x, err := decodeIndexFrom(f, info.Size())
	if err != nil {
		return nil, err.Error()
	}
	switch {
	case x.h.epoch != h.epoch:
		return nil, "the log was rewritten since (another epoch)"
	case x.h.logVersion != h.version:
		return nil, "the log's version changed"
	case x.h.covered > uint64(size):
		return nil, fmt.Sprintf("the log is %d bytes, shorter than the %d indexed", size, x.h.covered)
	}
	var head [recHeadSize]byte
	if _, err := logf.ReadAt(head[:], int64(x.h.anchorOff)); err != nil {
		return nil, fmt.Sprintf("read the anchor record: %v", err)
	}
	rh, ok := headAt(head[:], int64(x.h.anchorOff))
	if !ok || head != x.h.anchor || x.h.anchorOff+recHeadSize+uint64(rh.length) != x.h.covered {
		return nil, "the log does not hold the indexed record where the index says"
	}
	return x, ""
}

// loadFromIndex opens the log from its head index alone when the index
// covers the whole log: it reads the log's header and the anchor record's
// head, and nothing else. It returns the index if it is valid but the log
// goes on after it (load replays the tail), and done if it loaded the log.
func (r *Repo) loadFromIndex() (x *headIndex, done bool, err error) {
	if r.noIndex {
		return nil, false, nil
	}
	f, err := r.opts.FS.OpenFile(r.path, os.O_RDONLY, 0)
	if err != nil {
		return nil, false, nil // load reports it
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, false, nil
	}
	hb := make([]byte, HeaderSize)
	if _, err := f.ReadAt(hb, 0); err != nil {
		return nil, false, nil
	}
	h, err := checkHeader(hb)
	if err != nil {
		return nil, false, nil
	}
	x, why := r.readIndex(h, st.Size(), f)
	if x == nil {
		if why != "" {
			r.indexUnused(why)
		}
		return nil, false, nil
	}
	if x.h.covered != uint64(st.Size()) {
		return x, false, nil
	}
	r.owner, r.epoch, r.logVer = h.owner, h.epoch, h.version
	if err := r.loadIndexed(x); err != nil {
		r.indexUnused(err.Error())
		r.reset()
		return nil, false, nil
	}
	r.seq, r.indexed = x.h.covered, x.h.covered
	if !r.opts.ReadOnly {
		// Data after the last claim (the anchor is not a mark) is synced
		// and marked, as after a replay.
		ah, _ := headAt(x.h.anchor[:], int64(x.h.anchorOff))
		if err := r.openForAppend(st.Size(), st.Size(), ah.typ != recMark); err != nil {
			return nil, true, err
		}
	}
	r.loadQuarantine()
	r.warnDamage()
	return nil, true, r.settle()
}

// indexMatches reports why an index that fits the log's header and
// anchor cannot be used with what the scan of the whole log found, or "".
func indexMatches(x *headIndex, sc scan, ops []loggedOp, bad []Damage) string {
	switch {
	case len(sc.damage) > 0 || len(bad) > 0:
		return "the log has damage"
	case len(ops) > 0:
		return "the log holds exclusions"
	case !slices.ContainsFunc(sc.recs, func(rec scanned) bool { return uint64(rec.end) == x.h.covered }):
		return "no record ends where the index does"
	}
	return ""
}

// indexUnused logs that the head index is not used, and why, and removes
// it.
func (r *Repo) indexUnused(why string) {
	r.opts.Logger.Warn("head index not used: replaying the whole log", "path", r.path, "reason", why)

	r.removeIndex()
}

// loadIndexed builds the graph from an index: what a replay of the log's
// first x.h.covered bytes builds, without decoding any commit or value.
func (r *Repo) loadIndexed(x *headIndex) error {
	r.commits = commitIndex{}
	r.items = itemIndex{}
	r.schemas, r.lastSchema = x.schemas, nil
	r.entries = make([]*node, len(x.nodes))
	r.list = make([]*itemState, len(x.states))
	var live []*itemState
	for i := range x.states {
		st := &x.states[i]
		r.list[i] = st
		if st.head == nil {
			continue
		}
		lz := &x.lazies[i]
		st.lazy.Store(lz)
		if !lz.deleted {
			r.live++
		}
	}
	for i := range x.nodes {
		r.entries[i] = &x.nodes[i]
	}
	switch {
	case !r.items.load(x.states):
		return fmt.Errorf("%w: an item is listed twice", errIndex)
	case !r.commits.load(x.nodes):
		return fmt.Errorf("%w: a commit is listed twice", errIndex)
	}
	// The live items in key order, as the index lists them: checked, and
	// sorted here only if the list does not hold.
	live = make([]*itemState, 0, r.live)
	for _, i := range x.byKey {
		st := &x.states[i]
		if st.head == nil || x.lazies[i].deleted || len(live) > 0 && live[len(live)-1].key >= st.key {
			live = nil
			break
		}
		live = append(live, st)
	}
	if len(live) != r.live {
		live = live[:0]
		for i := range x.states {
			if st := &x.states[i]; st.head != nil && !x.lazies[i].deleted {
				live = append(live, st)
			}
		}
		slices.SortFunc(live, func(a, b *itemState) int { return strings.Compare(a.key, b.key) })
	}
	r.index.load(live)
	r.horizon, r.prevEpoch = x.h.horizon, x.h.prevEpoch
	return nil
}

// writeIndex writes the head index of the closed log, if the graph can be
// indexed and changed since the index it opened with. It is best effort:
// a failure is logged, and the next open replays.
func (r *Repo) writeIndex() {
	if r.opts.ReadOnly || len(r.entries) < indexMinCommits || r.indexed == r.seq {
		return
	}
	why := r.indexableLocked()
	if why == "" && len(r.tentative) > 0 {
		// Writes durable in the log but not in the graph yet: an index
		// ending at the log's end would leave them out.
		why = "writes are in flight"
	}
	if why != "" {
		r.opts.Logger.Debug("no head index", "path", r.path, "reason", why)
		r.removeIndex()
		return
	}
	err := func() error {
		f, err := r.opts.FS.OpenFile(r.path, os.O_RDONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		size := st.Size()
		// Close ends the log with a mark: the anchor.
		h := indexHeader{epoch: r.epoch, covered: uint64(size), anchorOff: uint64(size - recHeadSize),
			logVersion: r.logVer, horizon: r.horizon, prevEpoch: r.prevEpoch}
		if size < HeaderSize+recHeadSize {
			return fmt.Errorf("log of %d bytes", size)
		}
		if _, err := f.ReadAt(h.anchor[:], size-recHeadSize); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if rh, ok := headAt(h.anchor[:], int64(h.anchorOff)); !ok || rh.typ != recMark || rh.length != 0 {
			return fmt.Errorf("the log does not end with a mark")
		}
		b, err := r.encodeIndexLocked(h)
		if err != nil {
			return err
		}
		return r.writeIndexFile(b)
	}()
	if err != nil {
		r.opts.Logger.Warn("write head index", "path", r.path, "err", err)
		r.removeIndex()
	}
}

// writeIndexFile replaces the index with b, atomically.
func (r *Repo) writeIndexFile(b []byte) error {
	if err := vfs.WriteFileAtomic(r.opts.FS, r.indexPath(), b, 0o644); err != nil {
		return err
	}
	if indexWritten != nil {
		indexWritten(r.opts.FS, r.indexPath())
	}
	return nil
}

// indexGrowth is how many bytes the log grows by, at least, before a
// head index is written in the background; a log twice as long as the
// bytes the last index covered is indexed again too, so that an open
// after a crash replays at most half of it.
var indexGrowth uint64 = 16 << 20

// maybeIndexLocked starts writing the head index in the background when
// the log grew enough since the last one. r.mu must be held for writing.
func (r *Repo) maybeIndexLocked() {
	if r.log == nil || r.indexing || r.closed || len(r.entries) < indexMinCommits ||
		r.seq < r.indexed+max(indexGrowth, r.indexed) {
		return
	}
	r.indexing = true
	r.wg.Go(r.indexInBackground)
}

// indexInBackground makes the log durable and writes the head index of
// the graph, which then covers the log up to its last commit record. The
// graph is encoded under the read lock; the file is written without it.
// It gives up (to try again later) when writes came in meanwhile.
func (r *Repo) indexInBackground() {
	defer func() {
		r.mu.Lock()
		r.indexing = false
		r.mu.Unlock()
	}()
	if err := r.Flush(); err != nil {
		return
	}
	r.mu.RLock()
	b, epoch, covered, err := r.encodeDurableLocked()
	r.mu.RUnlock()
	if err != nil || b == nil {
		if err != nil {
			r.opts.Logger.Warn("write head index", "path", r.path, "err", err)
		}
		return
	}
	if err := r.writeIndexFile(b); err != nil {
		r.opts.Logger.Warn("write head index", "path", r.path, "err", err)
		r.removeIndex()
		return
	}
	r.mu.Lock()
	if r.epoch == epoch {
		r.indexed = covered
	}
	r.mu.Unlock()
}

// encodeDurableLocked encodes the index of the graph if all of it is
// durable and it can be indexed, anchored on the last commit record;
// nil if not. r.mu must be held.
func (r *Repo) encodeDurableLocked() (b []byte, epoch, covered uint64, err error) {
	if r.closed || len(r.entries) == 0 || r.indexableLocked() != "" {
		return nil, 0, 0, nil
	}
	last := r.entries[len(r.entries)-1]
	if last.seq != r.seq {
		return nil, 0, 0, nil // the log ends with an exclusion record
	}
	// Writes that came in since the flush wait for the read lock: what
	// the graph holds is all the log holds (Sync keeps writes in flight
	// out of the graph until durable).
	if int64(r.seq) > r.log.durableSize() {
		if err := r.log.syncAll(); err != nil {
			return nil, 0, 0, err
		}
	}
	h := indexHeader{epoch: r.epoch, covered: last.seq, anchorOff: last.seq - uint64(last.size),
		logVersion: r.logVer, horizon: r.horizon, prevEpoch: r.prevEpoch}
	f, err := r.opts.FS.OpenFile(r.path, os.O_RDONLY, 0)
	if err != nil {
		return nil, 0, 0, err
	}
	_, err = f.ReadAt(h.anchor[:], int64(h.anchorOff))
	f.Close()
	if err != nil {
		return nil, 0, 0, err
	}
	if _, ok := headAt(h.anchor[:], int64(h.anchorOff)); !ok {
		return nil, 0, 0, fmt.Errorf("no record head at offset %d", h.anchorOff)
	}
	b, err = r.encodeIndexLocked(h)
	return b, r.epoch, h.covered, err
}

// metDamage records that a read or a compaction met damage in the log
// (err wraps ErrCorrupt): the head index is removed and never written
// again by this open, so that the next open replays the log, which
// quarantines and reports the damage as recovery does.
func (r *Repo) metDamage(err error) {
	if !errors.Is(err, ErrCorrupt) {
		return
	}
	r.damageMet.Store(true)
	r.opts.Logger.Error("damaged log: the next open replays it and quarantines the damage", "path", r.path, "err", err)
	r.removeIndex()
}

// removeIndex removes the head index, if any, so that the next open
// replays the log.
func (r *Repo) removeIndex() {
	if r.opts.ReadOnly {
		return
	}
	if err := r.opts.FS.Remove(r.indexPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.opts.Logger.Warn("remove head index", "path", r.path, "err", err)
	}
}
