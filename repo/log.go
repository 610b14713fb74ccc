package repo

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/goatdb/goatdb/commit"
	"github.com/klauspost/compress/zstd"
)

// The log file format (version 2, and 3 for a compacted log).
//
//	file    := header record*                   (version 2)
//	         | header horizon+ record*          (version 3: a compacted log)
//	header  := magic (8 bytes "goatdbLG") | version (u32 LE, 2 or 3) | owner (32 bytes) | epoch (u64 LE) | crc32c of the first 52 bytes (u32 LE)
//
//	record:
//	  0       2      3          7                 15         19         23
//	  +-------+------+----------+-----------------+----------+----------+------------+
//	  | A7 0B | type | length   | claim           | data crc | head crc | data       |
//	  |       |  u8  | u32 LE   | u64 LE          | u32 LE   | u32 LE   | length B   |
//	  +-------+------+----------+-----------------+----------+----------+------------+
//
//	  head crc: crc32c of bytes 0..19; data crc: crc32c of data.
//	  claim:    every byte of the log before this offset was on stable
//	            storage (fsynced) when the record was framed; never more
//	            than the record's own offset.
//	  type 1: data is one stored commit
//	  type 2: data is one stored commit, zstd-compressed (used when that saves ≥ 1/8)
//	  type 3: data is a group: uvarint n, n × (uvarint len, stored commit)
//	  type 4: a group, zstd-compressed
//	  type 5: a mark: no data; its claim is the whole log before it
//	  type 6: an exclusion: commits excluded, restored or discarded
//	          (format drawn in exclude.go)
//	  type 7: a horizon: the log was compacted; history before a time
//	          was collected, and these kept commits lost parents to it
//	          (format drawn in horizon.go); only right after the header
//	stored  := 0x00 | commit encoding
//	         | 0x01 | commit encoding without its 32 session bytes, which are the owner's
//
// The owner is the session of the peer that created the log (zero for
// none): its own commits, most of a local log, are stored 31 bytes smaller.
// The bytes left out are put back before decoding, so commit ids are those
// of the full encoding. The epoch is random, chosen when the log is
// created: a log rewritten (compacted, or rebuilt around damage) gets a new
// one, so sequence numbers from before cannot be mistaken for positions in
// the new file.
//
// Why claims. A crash can leave a write torn in any shape: cut short, or
// with a later page on disk and an earlier one not (zeros, then valid
// records). Such debris was never acknowledged, since a write is
// acknowledged only after the fsync that covers it. Corruption of bytes
// that were fsynced (a bad sector, a flipped bit) looks the same byte for
// byte. The claims tell them apart: a damaged range that starts before the
// largest claim of any record in the file lies in bytes that were once
// durable, so it may hold acknowledged data and is corruption, kept in a
// quarantine file and reported; a damaged range at or after every claim is
// debris, and it and everything after it is a torn tail, cut (records
// after it are never resurrected, so what survives a crash is a prefix of
// what was written). Every record carries its claim, a clean Close ends the
// log with a mark, and a writable open that finds data after the last
// claim syncs it and writes a mark, so every acknowledged byte is claimed
// except the last group of writes before a crash, until the next open.
//
// Why two checksums. The head crc makes a record's bounds trustworthy
// without reading its data: damage inside the data of a record is skipped
// exactly, and the next record is found where the head says, with no scan.
// Only a damaged head needs a scan for the next record: candidates are
// found by the magic bytes (a fast byte search) and checked by the head
// crc, and a candidate's data crc is computed from prefix checksums
// (crcseg.go) so that no input, however many candidate heads it plants,
// makes the scan more than linear. Records found by scanning are
// untrusted: what a commit's content holds can look like a record, so
// their commits are verified like commits from an unknown peer.
//
// A Write of several commits is one group record, so the checksum makes it
// all-or-nothing across a crash. Records are appended and never rewritten
// in place. A group's data longer than groupChunk is compressed in frames
// of whole commits after a directory (groupchunk.go), so that a commit of
// a large group is read by decompressing one frame.
//
// Type 6 came after the first version 2 logs. A build that predates it
// takes such a record for damage: it quarantines and reports the bytes,
// loses no commit, and forgets the exclusion (the commits come back into
// its graph), which is why it needs no new version.
//
// Type 7 does need one. A build that took the horizon record for damage
// would quarantine it and rebuild the log without it: the kept commits
// whose parents were collected would then wait for those parents for
// ever, with every commit above them, so the items they hold would leave
// its reads, and the log it rewrote would have lost the record for every
// later build too. So a compacted log is version 3, which every older
// build refuses to open (ErrVersion) without touching it. Compaction is
// the only writer of version 3; a log never compacted stays version 2,
// readable by older builds.
//
// Version 1 logs (records framed as uvarint length | crc32c | type | data,
// with no claims) are read; a writable open rebuilds them as version 2.
const (
	// HeaderSize is the length of a log's header.
	HeaderSize    = 56
	logVersion    = 2
	maxRecordSize = 64 << 20

	// compactedVersion is the version of a log that starts with horizon
	// records.
	compactedVersion = 3

	recCommit     = 1
	recCommitZstd = 2
	recGroup      = 3
	recGroupZstd  = 4
	recMark       = 5
	recExclude    = 6
	recHorizon    = 7

	// recHeadSize is the length of a record's head.
	recHeadSize = 23

	// compressMin is the smallest commit worth trying to compress.
	compressMin = 512
)

// recMagic starts every record.
var recMagic = [2]byte{0xA7, 0x0B}

var (
	logMagic   = [8]byte{'g', 'o', 'a', 't', 'd', 'b', 'L', 'G'}
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

// logHeader is what a log's header holds besides its format.
type logHeader struct {
	owner   commit.SessionID
	epoch   uint64
	version uint32
}

// appendHeader appends a log header of h's version, 2 if it has none.
func appendHeader(b []byte, h logHeader) []byte {
	start := len(b)
	if h.version == 0 {
		h.version = logVersion
	}
	b = append(b, logMagic[:]...)
	b = binary.LittleEndian.AppendUint32(b, h.version)
	b = append(b, h.owner[:]...)
	b = binary.LittleEndian.AppendUint64(b, h.epoch)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// checkHeader validates a log file's first bytes and returns what the
// header holds.
func checkHeader(data []byte) (logHeader, error) {
	var h logHeader
	switch {
	case len(data) < HeaderSize && string(data) == string(logMagic[:min(len(data), 8)]):
		return h, fmt.Errorf("%w: header truncated at %d of %d bytes", ErrCorrupt, len(data), HeaderSize)
	case len(data) < 8 || string(data[:8]) != string(logMagic[:]):
		return h, fmt.Errorf("%w: not a goatdb log (bad magic number)", ErrNotLog)
	case len(data) < HeaderSize:
		return h, fmt.Errorf("%w: header truncated at %d of %d bytes", ErrCorrupt, len(data), HeaderSize)
	case crc32.Checksum(data[:HeaderSize-4], castagnoli) != binary.LittleEndian.Uint32(data[HeaderSize-4:HeaderSize]):
		return h, fmt.Errorf("%w: header checksum mismatch", ErrCorrupt)
	}
	if v := binary.LittleEndian.Uint32(data[8:12]); v != logVersion && v != 1 && v != compactedVersion {
		return h, fmt.Errorf("%w: log format version %d, this build reads 1 to %d", ErrVersion, v, compactedVersion)
	}
	h.version = binary.LittleEndian.Uint32(data[8:12])
	copy(h.owner[:], data[12:44])
	h.epoch = binary.LittleEndian.Uint64(data[44:52])
	return h, nil
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
	// zsalvage reads what it can of damaged data.
	zsalvage, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxRecordSize), zstd.IgnoreChecksum(true))
)

// appendCommitRecord frames one commit as a record, writing it in place
// unless it is large enough to be worth compressing.
func appendCommitRecord(b []byte, c *commit.Commit, owner commit.SessionID, claim int64) []byte {
	size := storedSize(c, owner)
	if size >= compressMin {
		return appendFramed(b, recCommit, appendStored(nil, c, owner), claim)
	}
	start := len(b)
	b = append(b, make([]byte, recHeadSize)...)
	b = appendStored(b, c, owner)
	putHead(b[start:], recCommit, claim)
	return b
}

// ownerOffset returns where the owner's session is in a commit encoding,
// or -1 if the commit is not the owner's (stored whole).
func ownerOffset(enc []byte, owner commit.SessionID) int {
	off, err := commit.PrefixLen(enc)
	if err != nil || owner.IsZero() || !commit.HasSession(enc) || len(enc) < off+len(owner) ||
		commit.SessionID(enc[off:off+len(owner)]) != owner {
		return -1
	}
	return off
}

// storedLen returns the length of a commit encoding's stored form.
func storedLen(enc []byte, owner commit.SessionID) int {
	if ownerOffset(enc, owner) < 0 {
		return 1 + len(enc)
	}
	return 1 + len(enc) - len(owner)
}

// appendStoredRecord frames commits in stored form as appendCommitRecord
// (one) or appendGroupRecord (several) frames commits.
func appendStoredRecord(b []byte, stored [][]byte, claim int64) []byte {
	if len(stored) == 1 {
		if len(stored[0]) >= compressMin {
			return appendFramed(b, recCommit, stored[0], claim)
		}
		return appendRecord(b, recCommit, stored[0], claim)
	}
	data := binary.AppendUvarint(nil, uint64(len(stored)))
	for _, s := range stored {
		data = binary.AppendUvarint(data, uint64(len(s)))
		data = append(data, s...)
	}
	return appendGroupData(b, data, claim)
}

// appendGroupRecord frames several commits as one record.
func appendGroupRecord(b []byte, commits []*commit.Commit, owner commit.SessionID, claim int64) []byte {
	return appendGroupData(b, appendGroup(nil, commits, owner), claim)
}

// appendGroup appends a group's data: the commits in stored form.
func appendGroup(b []byte, commits []*commit.Commit, owner commit.SessionID) []byte {
	b = binary.AppendUvarint(b, uint64(len(commits)))
	for _, c := range commits {
		b = binary.AppendUvarint(b, uint64(storedSize(c, owner)))
		b = appendStored(b, c, owner)
	}
	return b
}

// appendFramed frames data of type typ (recCommit or recGroup), compressing
// it when that pays.
func appendFramed(b []byte, typ byte, data []byte, claim int64) []byte {
	if len(data) >= compressMin {
		if z := zenc.EncodeAll(data, nil); len(z) <= len(data)-len(data)/8 {
			typ, data = typ+1, z
		}
	}
	return appendRecord(b, typ, data, claim)
}

// appendRecord frames data as a record of type typ as it is.
func appendRecord(b []byte, typ byte, data []byte, claim int64) []byte {
	start := len(b)
	b = append(b, make([]byte, recHeadSize)...)
	b = append(b, data...)
	putHead(b[start:], typ, claim)
	return b
}

// appendMark frames a mark record claiming everything before claim.
func appendMark(b []byte, claim int64) []byte { return appendRecord(b, recMark, nil, claim) }

// putHead fills in the head of the record rec, whose data follows the head.
func putHead(rec []byte, typ byte, claim int64) {
	data := rec[recHeadSize:]
	rec[0], rec[1], rec[2] = recMagic[0], recMagic[1], typ
	binary.LittleEndian.PutUint32(rec[3:], uint32(len(data)))
	binary.LittleEndian.PutUint64(rec[7:], uint64(claim))
	binary.LittleEndian.PutUint32(rec[15:], crc32.Checksum(data, castagnoli))
	binary.LittleEndian.PutUint32(rec[19:], crc32.Checksum(rec[:19], castagnoli))
}

// recHead is a record's head.
type recHead struct {
	typ     byte
	length  int
	claim   int64
	dataCRC uint32
}

// parseHead reads the record head at data[off:]; ok is false unless a
// well-formed head starts there. It does not look at the record's data,
// which may run past the end of data.
func parseHead(data []byte, off int) (h recHead, ok bool) {
	if len(data)-off < recHeadSize {
		return h, false
	}
	return headAt(data[off:off+recHeadSize], int64(off))
}

// headAt reads the record head b, found at offset off of its file.
func headAt(b []byte, off int64) (h recHead, ok bool) {
	if b[0] != recMagic[0] || b[1] != recMagic[1] || crc32.Checksum(b[:19], castagnoli) != binary.LittleEndian.Uint32(b[19:]) {
		return h, false
	}
	h = recHead{typ: b[2], length: int(binary.LittleEndian.Uint32(b[3:])),
		claim: int64(binary.LittleEndian.Uint64(b[7:])), dataCRC: binary.LittleEndian.Uint32(b[15:])}
	switch {
	case h.typ < recCommit || h.typ > recHorizon, h.length > maxRecordSize,
		h.typ == recMark && h.length != 0, h.claim < 0, h.claim > off:
		return h, false
	}
	return h, true
}

// parseRecordV1 reads the version 1 record at data[off:]. It returns the
// payload (type byte, then data), the offset after the record, and
// ok=false if no valid record starts there.
func parseRecordV1(data []byte, off int) (payload []byte, next int, ok bool) {
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

// recordCommits returns the stored commits inside a record's data. Damaged
// data may still yield commits (salvage): a zstd frame is decoded without
// its checksum, and the caller verifies each commit.
func recordCommits(typ byte, data []byte) ([][]byte, error) {
	switch typ {
	case recCommit, recGroup:
	case recCommitZstd, recGroupZstd:
		var err error
		// A copy: the decoder keeps a reference to its last input, which
		// would keep the whole log read at open alive.
		if data, err = decompress(zdec, bytes.Clone(data), nil); err != nil {
			return nil, fmt.Errorf("decompress: %w", err)
		}
	case recMark, recExclude, recHorizon:
		return nil, nil
	default:
		return nil, fmt.Errorf("unknown record type %d", typ)
	}
	if typ <= recCommitZstd {
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

// Damage describes bytes of a log that hold no valid record and may hold
// acknowledged data: corruption, kept in the quarantine file.
type Damage struct {
	Offset int64  // first damaged byte
	Length int64  // damaged bytes
	Reason string // what is wrong
}

func (d Damage) String() string {
	return fmt.Sprintf("offset %d: %d bytes damaged: %s", d.Offset, d.Length, d.Reason)
}

// scanned is one record found by scanLog.
type scanned struct {
	off, end  int64 // record bounds in the file
	typ       byte
	claim     int64
	data      []byte
	untrusted bool // found by scanning past damage, not by following heads from the file's header
	bad       bool // the head is sound but the data fails its checksum
}

// scan is what scanLog finds in a log.
type scan struct {
	recs   []scanned // records before end, in file order, bad ones included
	damage []Damage  // damaged ranges before end: corruption
	end    int64     // where the log ends: everything after is a torn tail
	claim  int64     // the largest claim of any sound head in the file
	// uncovered reports data records at or after the largest claim: the
	// writes since the last claim, which a writable open syncs and marks.
	uncovered bool
}

// scanLog walks the records after the header of a version 2 log, following
// each sound head to the next record and scanning past damaged heads, then
// tells corruption from debris by the largest claim (see the format
// comment): the first damaged range at or after it starts the torn tail.
func scanLog(data []byte) scan {
	var s scan
	var recs []scanned
	var damage []Damage
	var idx *lazyCRC
	trusted := true
	off := HeaderSize
	for off < len(data) {
		if h, ok := parseHead(data, off); ok {
			s.claim = max(s.claim, h.claim)
			end := off + recHeadSize + h.length
			if end > len(data) {
				damage = append(damage, Damage{int64(off), int64(len(data) - off), "record cut short by the end of the file"})
				break
			}
			rec := scanned{off: int64(off), end: int64(end), typ: h.typ, claim: h.claim, data: data[off+recHeadSize : end], untrusted: !trusted}
			if crc32.Checksum(rec.data, castagnoli) != h.dataCRC {
				rec.bad = true
				damage = append(damage, Damage{int64(off), int64(end - off), "record data checksum mismatch"})
			}
			recs = append(recs, rec)
			off = end
			continue
		}
		if idx == nil {
			idx = &lazyCRC{data: data}
		}
		next, claim := resync(data, idx, off+1)
		s.claim = max(s.claim, claim)
		stop := next
		if next < 0 {
			stop = len(data)
		}
		damage = append(damage, Damage{int64(off), int64(stop - off), damageReason(data[off:stop])})
		if next < 0 {
			break
		}
		trusted = false
		off = next
	}
	// The first damaged range at or after every claim starts the torn tail.
	s.end = int64(len(data))
	for _, d := range damage {
		if d.Offset >= s.claim {
			s.end = d.Offset
			break
		}
		s.damage = append(s.damage, d)
	}
	for _, r := range recs {
		if r.off >= s.end {
			break
		}
		s.recs = append(s.recs, r)
		if r.off >= s.claim && r.typ != recMark {
			s.uncovered = true
		}
	}
	return s
}

// damageReason describes a damaged range with no sound record head.
func damageReason(b []byte) string {
	if bytesAllZero(b) {
		return "zeroed bytes"
	}
	return "no valid record head"
}

var zeroPage [64 << 10]byte

// bytesAllZero reports whether b holds only zeros.
func bytesAllZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeroPage))
		if !bytes.Equal(b[:n], zeroPage[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// lazyCRC checks candidate records' data checksums: directly for the first
// few, through a crcIndex once they cost as much as indexing the data,
// which bounds the work of any number of candidates.
type lazyCRC struct {
	data    []byte
	direct  int // bytes checksummed directly so far
	indexed *crcIndex
}

func (l *lazyCRC) sum(i, j int) uint32 {
	if l.indexed == nil && l.direct+(j-i) <= len(l.data) {
		l.direct += j - i
		return crc32.Checksum(l.data[i:j], castagnoli)
	}
	if l.indexed == nil {
		l.indexed = newCRCIndex(l.data)
	}
	return l.indexed.sum(i, j)
}

// resync returns the offset of the next record at or after from whose head
// and data are both sound, or -1, and the largest claim of the sound heads
// it passed. Every offset is visited once and every candidate's data
// checksum costs O(crcStride + log n), so the scan is linear in the bytes
// scanned however many candidate heads they hold.
func resync(data []byte, idx *lazyCRC, from int) (next int, claim int64) {
	for p := from; p < len(data); p++ {
		i := bytes.Index(data[p:], recMagic[:])
		if i < 0 {
			return -1, claim
		}
		p += i
		h, ok := parseHead(data, p)
		if !ok {
			continue
		}
		claim = max(claim, h.claim)
		start, end := p+recHeadSize, p+recHeadSize+h.length
		if end <= len(data) && idx.sum(start, end) == h.dataCRC {
			return p, claim
		}
	}
	return -1, claim
}

// scanLogV1 walks a version 1 log: the records, the damaged ranges between
// them (kept as corruption) and the offset where the valid log ends.
// Version 1 has no claims, so a bad range followed by a valid record is
// corruption and one followed by nothing valid is a torn tail.
func scanLogV1(data []byte) scan {
	var s scan
	off := HeaderSize
	trusted := true
	for off < len(data) {
		payload, next, ok := parseRecordV1(data, off)
		if ok {
			s.recs = append(s.recs, scanned{off: int64(off), end: int64(next), typ: payload[0], data: payload[1:], untrusted: !trusted})
			off = next
			continue
		}
		resume := -1
		for p := off + 1; p < len(data); p++ {
			if _, _, ok := parseRecordV1(data, p); ok {
				resume = p
				break
			}
		}
		if resume < 0 {
			break
		}
		s.damage = append(s.damage, Damage{Offset: int64(off), Length: int64(resume - off), Reason: "bad record checksum or length"})
		trusted = false
		off = resume
	}
	s.end = int64(off)
	s.uncovered = true
	return s
}

// endsWithMark reports whether the last record in buf, a run of whole
// records, is a mark, or returns prev if buf is empty.
func endsWithMark(buf []byte, prev bool) bool {
	for off := 0; off < len(buf); {
		n := recHeadSize + int(binary.LittleEndian.Uint32(buf[off+3:]))
		if off+n == len(buf) {
			return buf[off+2] == recMark
		}
		off += n
	}
	return prev
}
