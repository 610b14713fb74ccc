package repo

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/vfs"
	"github.com/klauspost/compress/zstd"
)

// The log file format.
//
//	file    := header record*
//	header  := magic (8 bytes "goatdbLG") | version (u32 LE, 1) | owner (32 bytes) | epoch (u64 LE) | crc32c of the first 52 bytes (u32 LE)
//	record  := length (uvarint, of payload) | crc32c (u32 LE, over length bytes and payload) | payload
//	payload := type (1 byte) | data
//	  type 1: data is one stored commit
//	  type 2: data is one stored commit, zstd-compressed (used when that saves ≥ 1/8)
//	  type 3: data is a group: uvarint n, n × (uvarint len, stored commit)
//	  type 4: a group, zstd-compressed
//	stored  := 0x00 | commit encoding
//	         | 0x01 | commit encoding without its 32 session bytes, which are the owner's
//
// The owner is the session of the peer that created the log (zero for
// none): its own commits, most of a local log, are stored 31 bytes smaller.
// The epoch is random, chosen when the log is created: a log rewritten
// (compacted) gets a new one, so sequence numbers from before cannot be
// mistaken for positions in the new file.
// The bytes left out are put back before decoding, so commit ids are those
// of the full encoding.
//
// A Write of several commits is one group record, so the checksum makes it
// all-or-nothing across a crash.
// Records are appended and never rewritten in place. A record whose length
// runs past the end of the file, or whose checksum fails with no valid record
// after it, is a torn tail: it was never acknowledged, and recovery cuts the
// file at the record's first byte. A bad record followed by a valid one is
// damage: it is reported with its offset and skipped, and the records after
// it are kept. The checksum covers the length so that a damaged length is
// caught rather than followed.
const (
	// HeaderSize is the length of a log's header.
	HeaderSize    = 56
	logVersion    = 1
	maxRecordSize = 64 << 20

	recCommit     = 1
	recCommitZstd = 2
	recGroup      = 3
	recGroupZstd  = 4

	// compressMin is the smallest commit worth trying to compress.
	compressMin = 512
)

var (
	logMagic   = [8]byte{'g', 'o', 'a', 't', 'd', 'b', 'L', 'G'}
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

// logHeader is what a log's header holds besides its format.
type logHeader struct {
	owner commit.SessionID
	epoch uint64
}

func appendHeader(b []byte, h logHeader) []byte {
	start := len(b)
	b = append(b, logMagic[:]...)
	b = binary.LittleEndian.AppendUint32(b, logVersion)
	b = append(b, h.owner[:]...)
	b = binary.LittleEndian.AppendUint64(b, h.epoch)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// checkHeader validates a log file's first bytes and returns what the
// header holds.
func checkHeader(data []byte) (logHeader, error) {
	var owner logHeader
	switch {
	case len(data) < HeaderSize && string(data) == string(logMagic[:min(len(data), 8)]):
		return owner, fmt.Errorf("%w: header truncated at %d of %d bytes", ErrCorrupt, len(data), HeaderSize)
	case len(data) < 8 || string(data[:8]) != string(logMagic[:]):
		return owner, fmt.Errorf("%w: not a goatdb log (bad magic number)", ErrNotLog)
	case len(data) < HeaderSize:
		return owner, fmt.Errorf("%w: header truncated at %d of %d bytes", ErrCorrupt, len(data), HeaderSize)
	case crc32.Checksum(data[:HeaderSize-4], castagnoli) != binary.LittleEndian.Uint32(data[HeaderSize-4:HeaderSize]):
		return owner, fmt.Errorf("%w: header checksum mismatch", ErrCorrupt)
	}
	if v := binary.LittleEndian.Uint32(data[8:12]); v != logVersion {
		return owner, fmt.Errorf("%w: log format version %d, this build reads %d", ErrVersion, v, logVersion)
	}
	copy(owner.owner[:], data[12:44])
	owner.epoch = binary.LittleEndian.Uint64(data[44:52])
	return owner, nil
}

const (
	storedFull    = 0 // the encoding as it is
	storedByOwner = 1 // the encoding without the owner's session
)

// appendStored appends c in stored form.
func appendStored(b []byte, c *commit.Commit, owner commit.SessionID) []byte {
	off := c.SessionOffset()
	if owner.IsZero() || c.Session() != owner || off < 0 {
		return c.AppendEncoding(append(b, storedFull))
	}
	body := c.Body()
	b = append(b, storedByOwner)
	b = append(b, body[:off]...)
	b = append(b, body[off+len(owner):]...)
	return append(b, c.Signature()...)
}

// storedSize returns the length of c in stored form.
func storedSize(c *commit.Commit, owner commit.SessionID) int {
	if owner.IsZero() || c.Session() != owner || c.SessionOffset() < 0 {
		return 1 + c.Size()
	}
	return 1 + c.Size() - len(owner)
}

// loadStored returns the commit encoding a stored commit holds, restoring
// the owner's session into arena (which it may grow) when it was left out.
func loadStored(stored []byte, owner commit.SessionID, arena *[]byte) ([]byte, error) {
	if len(stored) == 0 {
		return nil, fmt.Errorf("empty stored commit")
	}
	switch stored[0] {
	case storedFull:
		return stored[1:], nil
	case storedByOwner:
	default:
		return nil, fmt.Errorf("unknown stored commit form %d", stored[0])
	}
	enc := stored[1:]
	if owner.IsZero() || !commit.HasSession(enc) {
		return nil, fmt.Errorf("commit stored without its session, but the log has no owner")
	}
	off, err := commit.PrefixLen(enc)
	if err != nil {
		return nil, err
	}
	n := len(enc) + len(owner)
	if cap(*arena)-len(*arena) < n {
		*arena = make([]byte, 0, max(n, 64<<10))
	}
	start := len(*arena)
	a := append(*arena, enc[:off]...)
	a = append(a, owner[:]...)
	a = append(a, enc[off:]...)
	*arena = a
	return a[start:len(a):len(a)], nil
}

// zstd coders are safe for concurrent use.
var (
	zenc, _ = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
	zdec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxRecordSize))
)

// appendCommitRecord frames one commit as a record, writing it in place
// unless it is large enough to be worth compressing.
func appendCommitRecord(b []byte, c *commit.Commit, owner commit.SessionID) []byte {
	size := storedSize(c, owner)
	if size >= compressMin {
		return appendFramed(b, recCommit, appendStored(nil, c, owner))
	}
	start := len(b)
	b = binary.AppendUvarint(b, uint64(1+size))
	lenEnd := len(b)
	b = append(b, 0, 0, 0, 0, recCommit)
	b = appendStored(b, c, owner)
	crc := crc32.Update(crc32.Checksum(b[start:lenEnd], castagnoli), castagnoli, b[lenEnd+4:])
	binary.LittleEndian.PutUint32(b[lenEnd:], crc)
	return b
}

// appendGroupRecord frames several commits as one record.
func appendGroupRecord(b []byte, commits []*commit.Commit, owner commit.SessionID) []byte {
	data := binary.AppendUvarint(nil, uint64(len(commits)))
	for _, c := range commits {
		data = binary.AppendUvarint(data, uint64(storedSize(c, owner)))
		data = appendStored(data, c, owner)
	}
	return appendFramed(b, recGroup, data)
}

// appendFramed frames data of type typ (recCommit or recGroup), compressing
// it when that pays.
func appendFramed(b []byte, typ byte, enc []byte) []byte {
	if len(enc) >= compressMin {
		if z := zenc.EncodeAll(enc, nil); len(z) <= len(enc)-len(enc)/8 {
			typ, enc = typ+1, z
		}
	}
	start := len(b)
	b = binary.AppendUvarint(b, uint64(1+len(enc)))
	lenEnd := len(b)
	b = append(b, 0, 0, 0, 0)
	b = append(b, typ)
	b = append(b, enc...)
	crc := crc32.Update(crc32.Checksum(b[start:lenEnd], castagnoli), castagnoli, b[lenEnd+4:])
	binary.LittleEndian.PutUint32(b[lenEnd:], crc)
	return b
}

// parseRecord reads the record at data[off:]. It returns the payload, the
// offset after the record, and ok=false if no valid record starts there.
func parseRecord(data []byte, off int) (payload []byte, next int, ok bool) {
	n, k := binary.Uvarint(data[off:])
	if k <= 0 || n == 0 || n > maxRecordSize {
		return nil, 0, false
	}
	if avail := len(data) - off - k - 4; avail < 0 || uint64(avail) < n {
		return nil, 0, false
	}
	lenEnd := off + k
	payload = data[lenEnd+4 : lenEnd+4+int(n)]
	crc := crc32.Update(crc32.Checksum(data[off:lenEnd], castagnoli), castagnoli, payload)
	if crc != binary.LittleEndian.Uint32(data[lenEnd:]) {
		return nil, 0, false
	}
	return payload, lenEnd + 4 + int(n), true
}

// recordCommits returns the stored commits inside a record payload.
func recordCommits(payload []byte) ([][]byte, error) {
	data := payload[1:]
	switch payload[0] {
	case recCommit, recGroup:
	case recCommitZstd, recGroupZstd:
		var err error
		if data, err = zdec.DecodeAll(data, nil); err != nil {
			return nil, fmt.Errorf("decompress: %w", err)
		}
	default:
		return nil, fmt.Errorf("unknown record type %d", payload[0])
	}
	if payload[0] <= recCommitZstd {
		return [][]byte{data}, nil
	}
	return splitGroup(data)
}

// splitGroup splits a group's data into stored commits.
func splitGroup(data []byte) ([][]byte, error) {
	n, k := binary.Uvarint(data)
	if k <= 0 || n == 0 || n > uint64(len(data)) {
		return nil, fmt.Errorf("bad group count")
	}
	data = data[k:]
	out := make([][]byte, 0, n)
	for range n {
		l, k := binary.Uvarint(data)
		if k <= 0 || l > uint64(len(data)-k) {
			return nil, fmt.Errorf("bad group member length")
		}
		out = append(out, data[k:k+int(l)])
		data = data[k+int(l):]
	}
	if len(data) != 0 {
		return nil, fmt.Errorf("%d trailing bytes in group", len(data))
	}
	return out, nil
}

// Damage describes bytes of a log that hold no valid record.
type Damage struct {
	Offset int64  // first damaged byte
	Length int64  // damaged bytes skipped
	Reason string // what is wrong
}

func (d Damage) String() string {
	return fmt.Sprintf("offset %d: %d bytes skipped: %s", d.Offset, d.Length, d.Reason)
}

// scanned is one valid record found by scanLog.
type scanned struct {
	off, end int64 // record bounds in the file
	payload  []byte
}

// scanLog walks the records after the header. It returns the valid records,
// the damaged ranges between them, and the offset where the valid log ends
// (everything after it is a torn tail).
func scanLog(data []byte) (recs []scanned, damage []Damage, end int64) {
	off := HeaderSize
	for off < len(data) {
		payload, next, ok := parseRecord(data, off)
		if ok {
			recs = append(recs, scanned{int64(off), int64(next), payload})
			off = next
			continue
		}
		resume := resync(data, off+1)
		if resume < 0 {
			return recs, damage, int64(off) // torn tail
		}
		damage = append(damage, Damage{Offset: int64(off), Length: int64(resume - off), Reason: "bad record checksum or length"})
		off = resume
	}
	return recs, damage, int64(off)
}

// resync finds the next offset at or after from where a valid record starts,
// or -1.
func resync(data []byte, from int) int {
	for p := from; p < len(data); p++ {
		if _, _, ok := parseRecord(data, p); ok {
			return p
		}
	}
	return -1
}

// logWriter appends records to a log file and makes them durable, sharing
// one fsync among all writers waiting at the same time (group commit).
type logWriter struct {
	f vfs.File

	mu      sync.Mutex // guards the fields below
	cond    sync.Cond  // signalled when durable, written or err change
	buf     []byte     // records appended but not yet written to f
	spare   []byte     // a drained buffer kept for reuse
	size    int64      // logical size of the log: file plus buf
	durable int64      // bytes known to be on stable storage
	busy    bool       // a writer is writing and syncing outside mu
	err     error      // first write or sync failure; the log takes no more writes
}

func newLogWriter(f vfs.File, size int64) *logWriter {
	w := &logWriter{f: f, size: size, durable: size}
	w.cond.L = &w.mu
	return w
}

// append adds records to the buffer and returns the log's new end offset.
func (w *logWriter) append(recs []byte) (int64, error) {
	return w.appendWith(func(b []byte) []byte { return append(b, recs...) })
}

// appendWith lets add append records to the buffer in place and returns
// the log's new end offset.
func (w *logWriter) appendWith(add func([]byte) []byte) (int64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	n := len(w.buf)
	w.buf = add(w.buf)
	w.size += int64(len(w.buf) - n)
	return w.size, nil
}

// pending returns how many bytes are buffered.
func (w *logWriter) pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.buf)
}

// sync makes every byte up to end durable. Writers that call it while
// another writer is syncing wait and then sync everything buffered in the
// meantime with a single fsync.
func (w *logWriter) sync(end int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.durable < end && w.err == nil {
		if w.busy {
			w.cond.Wait()
			continue
		}
		w.flushLocked()
	}
	if w.durable >= end {
		return nil
	}
	return w.err
}

// flushLocked writes and syncs the buffer with mu released during the I/O.
func (w *logWriter) flushLocked() {
	w.busy = true
	buf, target := w.buf, w.size
	w.buf = w.spare[:0]
	w.mu.Unlock()
	_, err := w.f.Write(buf)
	if err == nil {
		err = w.f.Sync()
	}
	w.mu.Lock()
	w.busy = false
	if err != nil {
		w.err = fmt.Errorf("%w: %w", ErrLogFailed, err)
	} else {
		w.durable = target
	}
	w.spare = buf[:0]
	w.cond.Broadcast()
}

// syncAll makes everything appended so far durable.
func (w *logWriter) syncAll() error {
	w.mu.Lock()
	end := w.size
	w.mu.Unlock()
	return w.sync(end)
}

// close syncs and closes the file.
func (w *logWriter) close() error {
	err := w.syncAll()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = ErrClosed
	}
	return errors.Join(err, w.f.Close())
}
