package query

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unsafe"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/vfs"
	"github.com/tidwall/btree"
	"github.com/zeebo/blake3"
)

// A state file holds a query's matching items as of a log position, in
// index order, so that a reopened query resumes instead of rescanning.
// Integers are little endian; uvarints are LEB128 in shortest form.
//
//	offset  size
//	     0     8  magic "goatdbQS"
//	     8     1  format version (1)
//	     9    32  definition hash (Query.Definition): name, version string,
//	              schema, sort, Where/Less presence, salt, upstream's hash
//	    41     8  seq: the log position the entries reflect
//	    49    32  log fingerprint: blake3-256 of the log's bytes
//	              [max(0, seq-256), seq)
//	    81     …  uvarint n, then n entries in key order (strictly
//	              increasing): uvarint len, key, 32-byte head commit id,
//	              uvarint position in index order (a permutation of
//	              0..n-1), sort value: byte 0 (absent) | byte 1, item
//	              value encoding
//	  end-4    4  CRC-32C (Castagnoli) of every byte before it
//
// The checksum catches a damaged file; the definition hash a query whose
// Where, Less, Version, sort or schemas changed; seq against the log's
// length and the fingerprint against its bytes a log that was cut,
// replaced or rewritten (compaction moves every position). Any of these
// makes the query rescan. A query whose results predate a compaction (an
// older Source.Epoch) saves no state. Entries store heads, not values: values are
// read from the log at those heads when first needed, so resuming costs
// one pass over the file and no item reads. Key order lets the resumed
// entries serve lookups by binary search in place, with no map to build;
// the positions rebuild the index by appending. The file is written to a
// temporary name, synced and renamed (vfs.WriteFileAtomic), after the log
// is flushed up to seq.
const (
	stateMagic   = "goatdbQS"
	stateVersion = 1
	stateHeader  = 8 + 1 + 32 + 8 + 32
	fingerprintN = 256
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// fingerprint hashes the log's bytes just before seq.
func fingerprint(fsys vfs.FS, log string, seq uint64) ([32]byte, error) {
	f, err := fsys.OpenFile(log, os.O_RDONLY, 0)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	start := seq - min(seq, fingerprintN)
	buf := make([]byte, seq-start)
	if _, err := f.ReadAt(buf, int64(start)); err != nil {
		return [32]byte{}, fmt.Errorf("read log %s before %d: %w", log, seq, err)
	}
	return blake3.Sum256(buf), nil
}

// Save writes the query's published results to its state file.
func (q *Query) Save() error {
	q.mu.Lock()
	closed := q.closed
	q.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return q.save()
}

func (q *Query) save() error {
	lg, ok := q.src.(Log)
	if q.spec.StateFile == "" || !ok {
		return ErrNotPersistent
	}
	q.saveMu.Lock()
	defer q.saveMu.Unlock()
	q.mu.Lock()
	snap, seq, epoch := q.snap, q.pubSeq, q.pubEpoch
	q.mu.Unlock()
	if seq == 0 { // never ran: nothing worth saving
		return nil
	}
	fsys, log := lg.LogFile()
	if q.src.Epoch() != epoch {
		return q.dropState(fsys)
	}
	if err := lg.Flush(); err != nil {
		return fmt.Errorf("save query %s: %w", q.spec.Name, err)
	}
	sum, err := fingerprint(fsys, log, seq)
	if err != nil {
		return fmt.Errorf("save query %s: %w", q.spec.Name, err)
	}
	if q.src.Epoch() != epoch { // compacted meanwhile: the bytes read may be the new log's
		return q.dropState(fsys)
	}
	data, err := encodeState(q.def, seq, sum, snap)
	if err == nil {
		err = vfs.MkdirAllSync(fsys, filepath.Dir(q.spec.StateFile), 0o755)
	}
	if err == nil {
		err = vfs.WriteFileAtomic(fsys, q.spec.StateFile, data, 0o644)
	}
	if err != nil {
		return fmt.Errorf("save query %s: %w", q.spec.Name, err)
	}
	return nil
}

// dropState removes the state file of a query whose published results
// are positions of a log since compacted (see Source.Epoch): no state can
// describe them, so the next open rescans, unless an update catches the
// query up and it saves again first.
func (q *Query) dropState(fsys vfs.FS) error {
	if err := fsys.Remove(q.spec.StateFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("save query %s: remove the state of a compacted log: %w", q.spec.Name, err)
	}
	return nil
}

func encodeState(def [32]byte, seq uint64, sum [32]byte, snap *btree.BTreeG[*entry]) ([]byte, error) {
	ents := make([]*entry, 0, snap.Len())
	snap.Scan(func(e *entry) bool { ents = append(ents, e); return true })
	byKey := make([]int32, len(ents))
	for i := range byKey {
		byKey[i] = int32(i)
	}
	slices.SortFunc(byKey, func(a, b int32) int { return strings.Compare(ents[a].it.Key, ents[b].it.Key) })
	b := make([]byte, 0, stateHeader+16+len(ents)*64)
	b = append(b, stateMagic...)
	b = append(b, stateVersion)
	b = append(b, def[:]...)
	b = binary.LittleEndian.AppendUint64(b, seq)
	b = append(b, sum[:]...)
	b = binary.AppendUvarint(b, uint64(len(ents)))
	for _, pos := range byKey {
		e := ents[pos]
		b = binary.AppendUvarint(b, uint64(len(e.it.Key)))
		b = append(b, e.it.Key...)
		b = append(b, e.it.Head[:]...)
		b = binary.AppendUvarint(b, uint64(pos))
		if e.sort.Type() == item.TypeInvalid {
			b = append(b, 0)
			continue
		}
		b = append(b, 1)
		var err error
		if b, err = item.AppendValue(b, e.sort); err != nil {
			return nil, err
		}
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

// savedState is a decoded state file.
type savedState struct {
	def, sum [32]byte
	seq      uint64
	byKey    []entry  // in key order
	inOrder  []*entry // the same, in index order
}

// errStale wraps every reason a state file is not used.
var errStale = errors.New("stale query state")

func decodeState(data []byte) (*savedState, error) {
	if len(data) < stateHeader+1+4 || string(data[:8]) != stateMagic {
		return nil, fmt.Errorf("%w: not a query state file", errStale)
	}
	body := data[:len(data)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(data[len(data)-4:]) {
		return nil, fmt.Errorf("%w: checksum mismatch (damaged)", errStale)
	}
	if data[8] != stateVersion {
		return nil, fmt.Errorf("%w: format version %d", errStale, data[8])
	}
	st := &savedState{seq: binary.LittleEndian.Uint64(data[41:49])}
	copy(st.def[:], data[9:41])
	copy(st.sum[:], data[49:81])
	d := item.NewSharingDecoder(body[stateHeader:], nil)
	n := d.Count(1 + 32 + 1 + 1)
	st.byKey = make([]entry, n)
	st.inOrder = make([]*entry, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		e := &st.byKey[i]
		if k := d.Bytes(d.Count(1)); len(k) > 0 { // the checksum vouches for the bytes
			e.it.Key = unsafe.String(&k[0], len(k))
		}
		copy(e.it.Head[:], d.Bytes(len(commit.ID{})))
		pos := d.Uvarint()
		if d.Byte() == 1 {
			e.sort = d.Value()
		}
		switch {
		case pos >= uint64(n) || st.inOrder[pos] != nil:
			d.Fail("entry %d: bad position %d", i, pos)
		case i > 0 && st.byKey[i-1].it.Key >= e.it.Key:
			d.Fail("entry %d: keys out of order", i)
		}
		if d.Err() == nil {
			e.ord = int32(pos)
			st.inOrder[pos] = e
		}
	}
	d.End()
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", errStale, err)
	}
	return st, nil
}

// resume loads the state file if it is valid for this query and log;
// otherwise the query stays fresh and logs why.
func (q *Query) resume() {
	lg := q.src.(Log)
	fsys, log := lg.LogFile()
	epoch := q.src.Epoch()
	data, err := fsys.ReadFile(q.spec.StateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err == nil {
		var st *savedState
		if st, err = decodeState(data); err == nil {
			err = q.check(st, fsys, log)
		}
		if err == nil && q.src.Epoch() != epoch {
			err = fmt.Errorf("%w: the log was compacted while the state was checked", errStale)
		}
		if err == nil {
			q.load(st, epoch)
			return
		}
	}
	q.log.Warn("query rescans: its state file is not usable", "query", q.spec.Name, "file", q.spec.StateFile, "reason", err.Error())
}

// check decides whether a decoded state describes this query and log.
func (q *Query) check(st *savedState, fsys vfs.FS, log string) error {
	if st.def != q.def {
		return fmt.Errorf("%w: the query's definition changed", errStale)
	}
	if cur := q.src.Seq(); st.seq > cur {
		return fmt.Errorf("%w: the log ends at %d, before the state's position %d (cut or replaced)", errStale, cur, st.seq)
	}
	sum, err := fingerprint(fsys, log, st.seq)
	if err != nil {
		return fmt.Errorf("%w: %w", errStale, err)
	}
	if !bytes.Equal(sum[:], st.sum[:]) {
		return fmt.Errorf("%w: the log's bytes before position %d differ (replaced or rewritten)", errStale, st.seq)
	}
	return nil
}

// load builds the index from a state's entries, which are in index order
// and positions of epoch.
func (q *Query) load(st *savedState, epoch uint64) {
	q.bulk = true
	for _, e := range st.inOrder {
		q.tree.Load(e)
	}
	q.bulk = false
	q.byKey = keyIndex{base: st.byKey}
	q.seq, q.epoch, q.fresh = st.seq, epoch, false
	q.bound = q.boundary()
	q.snap = q.tree.Copy()
	q.pubSeq, q.pubEpoch, q.resumed = st.seq, epoch, true
}
