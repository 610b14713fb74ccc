package raftstore

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/hashicorp/raft"
)

// The log file is a header followed by frames, one per write:
//
//	header (24 bytes, written once, atomically, when the file is made)
//	+-----------------+-------------+-------------+-------------+
//	| magic "goatrlog"| version u32 | salt u64    | CRC-32C u32 |
//	+-----------------+-------------+-------------+-------------+
//	 0                 8             12            20            24
//
//	frame
//	+------------+--------------+--------------+---------------------+
//	| length u32 | head CRC u32 | body CRC u32 | body (length bytes) |
//	+------------+--------------+--------------+---------------------+
//	 0            4              8              12
//
//	body
//	+----------+-----------+-------+-------+-----+
//	| prev u64 | count u32 | entry | entry | ... |   count >= 1 entries
//	+----------+-----------+-------+-------+-----+
//
//	entry (37 bytes, then data and extensions)
//	+-----------+----------+---------+---------+----------+
//	| index u64 | term u64 | type u8 | sec i64 | nsec u32 |
//	+-----------+----------+---------+---------+----------+
//	| data length u32 | ext length u32 | data | extensions |
//	+-----------------+----------------+------+------------+
//
// Every integer is little-endian. sec and nsec are AppendedAt as Unix
// seconds and nanoseconds (nsec < 1e9); the zero time round-trips, and a
// decoded time is in UTC. Indexes are at least 1 and strictly increase,
// within a body and from one frame to the next. prev is the last index of
// the frame before (0 in the first frame of a file): raft allows gaps
// between indexes, so without it a frame cut out of the middle of the log
// would read as a gap rather than as damage.
//
// The header CRC covers bytes 0 to 20. Both frame CRCs are CRC-32C started
// from the salt (8 bytes, little-endian): the head CRC then covers the
// length, so a damaged length is found before it is trusted, and the body
// CRC covers the body. The salt is random, chosen each time a log file is
// made, and never leaves the machine. That matters because recovery tells
// a torn tail from damage by looking for a valid frame after a bad one
// (see scan), and entry data comes from peers: bytes inside an entry laid
// out as a frame cannot pass for one, since the peer does not know the
// salt. The offset is deliberately left out of the CRCs: a frame moved by
// damage (bytes cut out before it) is still found, and reported.
//
// A frame is the unit of a write and of a crash: StoreLogs writes one
// frame and fsyncs it before it writes another, so only the last frame of
// the file can be torn. length is at least 12+37 and at most MaxFrame.
const (
	logMagic    = "goatrlog"
	logVersion  = 1
	headerSize  = 24
	frameHeader = 12
	entryHeader = 37
	bodyHeader  = 12
	minBody     = bodyHeader + entryHeader

	// MaxFrame is the largest frame body: an entry whose encoding is over
	// it is refused with ErrTooLarge, and a frame that claims more is
	// damaged or torn. It bounds what one record costs to read.
	MaxFrame = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeHeader returns the header of a log file with the given salt.
func encodeHeader(salt uint64) []byte {
	b := make([]byte, headerSize)
	copy(b, logMagic)
	binary.LittleEndian.PutUint32(b[8:], logVersion)
	binary.LittleEndian.PutUint64(b[12:], salt)
	binary.LittleEndian.PutUint32(b[20:], crc32.Checksum(b[:20], castagnoli))
	return b
}

// decodeHeader returns the salt of the log file data.
func decodeHeader(data []byte) (uint64, error) {
	switch {
	case len(data) < headerSize || string(data[:8]) != logMagic:
		return 0, fmt.Errorf("%w: log: not a raftstore log", ErrCorrupt)
	case crc32.Checksum(data[:20], castagnoli) != binary.LittleEndian.Uint32(data[20:]):
		return 0, fmt.Errorf("%w: log: header checksum mismatch", ErrCorrupt)
	case binary.LittleEndian.Uint32(data[8:]) != logVersion:
		return 0, fmt.Errorf("%w: log version %d", ErrVersion, binary.LittleEndian.Uint32(data[8:]))
	}
	return binary.LittleEndian.Uint64(data[12:]), nil
}

// seed returns the CRC state after the salt.
func seed(salt uint64) uint32 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], salt)
	return crc32.Update(0, castagnoli, b[:])
}

// entrySize returns the encoded size of l.
func entrySize(l *raft.Log) int { return entryHeader + len(l.Data) + len(l.Extensions) }

// appendFrame appends to dst the frame holding logs, which follow the
// index prev. The caller has checked that the body fits in MaxFrame.
func appendFrame(dst []byte, salt, prev uint64, logs []*raft.Log) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, frameHeader)...)
	dst = binary.LittleEndian.AppendUint64(dst, prev)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(logs)))
	for _, l := range logs {
		dst = appendEntry(dst, l)
	}
	body := dst[start+frameHeader:]
	s := seed(salt)
	h := dst[start:]
	binary.LittleEndian.PutUint32(h, uint32(len(body)))
	binary.LittleEndian.PutUint32(h[4:], crc32.Update(s, castagnoli, h[:4]))
	binary.LittleEndian.PutUint32(h[8:], crc32.Update(s, castagnoli, body))
	return dst
}

func appendEntry(dst []byte, l *raft.Log) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, l.Index)
	dst = binary.LittleEndian.AppendUint64(dst, l.Term)
	dst = append(dst, byte(l.Type))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(l.AppendedAt.Unix()))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(l.AppendedAt.Nanosecond()))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(l.Data)))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(l.Extensions)))
	dst = append(dst, l.Data...)
	return append(dst, l.Extensions...)
}

// readFrame returns the body of the frame at offset off of data and the
// offset after it, or ok false if there is no whole, valid frame there.
func readFrame(data []byte, salt uint64, off int64) (body []byte, next int64, ok bool) {
	if off < 0 || int64(len(data))-off < frameHeader {
		return nil, 0, false
	}
	h := data[off : off+frameHeader]
	n := int64(binary.LittleEndian.Uint32(h))
	s := seed(salt)
	switch {
	case n < minBody || n > MaxFrame || n > int64(len(data))-off-frameHeader:
		return nil, 0, false
	case crc32.Update(s, castagnoli, h[:4]) != binary.LittleEndian.Uint32(h[4:]):
		return nil, 0, false
	}
	next = off + frameHeader + n
	body = data[off+frameHeader : next : next]
	if crc32.Update(s, castagnoli, body) != binary.LittleEndian.Uint32(h[8:]) {
		return nil, 0, false
	}
	return body, next, true
}

// decodeBody returns the index before a frame body and its entries,
// whose Data and Extensions alias body. It never panics, and allocates at
// most one Log per 37 bytes of body.
func decodeBody(body []byte) (prev uint64, logs []raft.Log, err error) {
	if len(body) < bodyHeader {
		return 0, nil, fmt.Errorf("body of %d bytes", len(body))
	}
	prev = binary.LittleEndian.Uint64(body)
	count := binary.LittleEndian.Uint32(body[8:])
	if count == 0 || uint64(count) > uint64(len(body)-bodyHeader)/entryHeader {
		return 0, nil, fmt.Errorf("%d entries in %d bytes", count, len(body))
	}
	logs = make([]raft.Log, count)
	rest := body[bodyHeader:]
	for i := range logs {
		if rest, err = decodeEntry(rest, &logs[i]); err != nil {
			return 0, nil, fmt.Errorf("entry %d: %w", i, err)
		}
		if i == 0 && logs[i].Index <= prev || i > 0 && logs[i].Index <= logs[i-1].Index {
			return 0, nil, fmt.Errorf("entry %d: index %d out of order", i, logs[i].Index)
		}
	}
	if len(rest) != 0 {
		return 0, nil, fmt.Errorf("%d bytes after the last entry", len(rest))
	}
	return prev, logs, nil
}

// decodeEntry decodes one entry from the front of b into l and returns
// the rest of b.
func decodeEntry(b []byte, l *raft.Log) ([]byte, error) {
	if len(b) < entryHeader {
		return nil, fmt.Errorf("%d bytes, want %d", len(b), entryHeader)
	}
	nsec := binary.LittleEndian.Uint32(b[25:])
	dataLen := uint64(binary.LittleEndian.Uint32(b[29:]))
	extLen := uint64(binary.LittleEndian.Uint32(b[33:]))
	if nsec >= 1e9 {
		return nil, fmt.Errorf("nanoseconds %d", nsec)
	}
	if dataLen+extLen > uint64(len(b)-entryHeader) {
		return nil, fmt.Errorf("lengths %d+%d over the %d bytes left", dataLen, extLen, len(b)-entryHeader)
	}
	*l = raft.Log{
		Index:      binary.LittleEndian.Uint64(b),
		Term:       binary.LittleEndian.Uint64(b[8:]),
		Type:       raft.LogType(b[16]),
		AppendedAt: time.Unix(int64(binary.LittleEndian.Uint64(b[17:])), int64(nsec)).UTC(),
		Data:       field(b[entryHeader:], dataLen),
		Extensions: field(b[entryHeader+dataLen:], extLen),
	}
	return b[entryHeader+dataLen+extLen:], nil
}

// field returns the first n bytes of b, capped so appending to them
// cannot overwrite what follows, or nil if n is 0.
func field(b []byte, n uint64) []byte {
	if n == 0 {
		return nil
	}
	return b[:n:n]
}
