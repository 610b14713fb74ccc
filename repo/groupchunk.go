package repo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// A group record's data (appendGroup: a count, then each commit's length
// and stored form) longer than groupChunk bytes is compressed as several
// zstd frames rather than one, each holding whole commits, about
// groupChunk bytes of the data, after a directory of the frames kept in a
// zstd skippable frame:
//
//	0                 4                 8
//	+-----------------+-----------------+---------+---------+--------------------+---------+-----+
//	| magic           | directory size  | version | frames  | per frame:         | frame 0 | ... |
//	| u32 LE          | u32 LE = d      | u8 = 2  | uvarint | compressed length, | (zstd)  |     |
//	| 0x184D2A5C      |                 |         | k       | first commit,      |         |     |
//	|                 |                 |         |         | length             |         |     |
//	|                 |                 |         |         | uvarint each       |         |     |
//	+-----------------+-----------------+---------+---------+--------------------+---------+-----+
//	                                    <----------------- d bytes ------------->
//
// Frame 0 holds the count and the first commits; frame j holds the
// commits from the j-th first commit to the next one's (or the count),
// and decompresses to its length, at most maxRecordSize bytes in all. A
// directory of another version, or one that does not hold together, is
// passed over: the data is then read as one stream.
// The record keeps its type (recGroupZstd): the frames, decompressed one
// after the other (skippable frames are skipped, by every zstd decoder),
// are the group's data, so replay, salvage and compaction read it as
// before (decompress decodes the frames one at a time), and so do builds
// that predate the directory; the frames do not declare their size
// (appendFrame), so that those decode them in one call in linear time.
// What the directory adds is reading one
// commit of a large group by decompressing only its frame: a random read
// of a commit written in a batch of thousands costs one frame, not the
// whole group.
//
// A reader that uses the directory checks that it holds together (the
// lengths add up to the record's data, the first commits increase, each
// frame decompresses to its length, each but the last holds as many
// commits as it says) and takes a
// commit only if its frame's own checksum holds and it decodes to the id
// the graph names; it does not read the rest of the record to check the
// record's checksum. Anything else makes it read the whole record and
// check it, as for any record (stored.go).

// groupChunk is about how many bytes of a group's data one frame of a
// chunked group holds.
var groupChunk = 8 << 10

const (
	groupDirMagic   = 0x184D2A5C
	groupDirVersion = 2
	// groupDirHead is the length of the skippable frame's head: magic
	// and size.
	groupDirHead = 8
)

// errGroupDir is a group directory that does not hold together.
var errGroupDir = errors.New("bad group directory")

// appendGroupData frames a group's data (appendGroup's) as a group
// record: chunked when longer than groupChunk, compressed when that pays.
func appendGroupData(b, data []byte, claim int64) []byte {
	if len(data) <= groupChunk {
		return appendFramed(b, recGroup, data, claim)
	}
	if z := chunkGroup(data); len(z) <= len(data)-len(data)/8 {
		return appendRecord(b, recGroupZstd, z, claim)
	}
	return appendRecord(b, recGroup, data, claim)
}

// chunkGroup compresses a group's data, which the caller built, as a
// directory and frames of about groupChunk bytes each.
func chunkGroup(data []byte) []byte {
	type frame struct{ zlen, first, raw int }
	var (
		frames []frame
		z      []byte
	)
	_, p := binary.Uvarint(data)
	start, first, i := 0, 0, 0
	for p < len(data) {
		l, k := binary.Uvarint(data[p:])
		p += k + int(l)
		i++
		if p-start >= groupChunk || p >= len(data) {
			before := len(z)
			z = appendFrame(z, data[start:min(p, len(data))])
			frames = append(frames, frame{len(z) - before, first, min(p, len(data)) - start})
			start, first = p, i
		}
	}
	dir := []byte{groupDirVersion}
	dir = binary.AppendUvarint(dir, uint64(len(frames)))
	for _, f := range frames {
		dir = binary.AppendUvarint(dir, uint64(f.zlen))
		dir = binary.AppendUvarint(dir, uint64(f.first))
		dir = binary.AppendUvarint(dir, uint64(f.raw))
	}
	out := make([]byte, 0, groupDirHead+len(dir)+len(z))
	out = binary.LittleEndian.AppendUint32(out, groupDirMagic)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(dir)))
	out = append(out, dir...)
	return append(out, z...)
}

// frameEncoders compress a chunked group's frames as streams: unlike
// EncodeAll's, their frames do not declare their size, for which a
// decoder (klauspost/compress's DecodeAll among them) sizes its output
// exactly frame by frame, copying everything decoded before at each frame.
// They run at the fastest level, which on frames of 8 KiB compresses as
// well as the default (107.6 against 107.8 log bytes per commit of GoatDB's
// items written 10 times in writes of 1,000) in less time.
var frameEncoders = sync.Pool{New: func() any {
	e, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedFastest))
	return e
}}

// appendFrame appends src compressed as one zstd frame to dst.
func appendFrame(dst, src []byte) []byte {
	e := frameEncoders.Get().(*zstd.Encoder)
	defer frameEncoders.Put(e)
	w := bytes.NewBuffer(dst)
	e.Reset(w)
	// Writes to a bytes.Buffer do not fail. Flush writes the frame's
	// header before its end, which Close would otherwise write with the
	// size.
	_, _ = e.Write(src)
	_ = e.Flush()
	_ = e.Close()
	return w.Bytes()
}

// groupDirSize returns the length of the directory frame that starts a
// chunked group's data, given at least its first groupDirHead bytes;
// ok is false when the data does not start with one.
func groupDirSize(prefix []byte) (n int, ok bool) {
	if len(prefix) < groupDirHead || binary.LittleEndian.Uint32(prefix) != groupDirMagic {
		return 0, false
	}
	return groupDirHead + int(binary.LittleEndian.Uint32(prefix[4:])), true
}

// groupDir is a chunked group's directory.
type groupDir struct {
	at    []int // where each frame starts in the record's data, and the data's length last
	first []int // each frame's first commit
	raw   []int // each frame's length decompressed
	total int   // the group's data's length: raw's sum
}

// parseGroupDir parses the directory frame dir (groupDirSize bytes) of a
// chunked group whose data is size bytes long, checking that the frames
// it lists fill the data exactly and that their first commits increase.
func parseGroupDir(dir []byte, size int) (*groupDir, error) {
	n, ok := groupDirSize(dir)
	if !ok || n != len(dir) || n > size {
		return nil, fmt.Errorf("%w: directory frame of %d bytes in %d", errGroupDir, len(dir), size)
	}
	b := dir[groupDirHead:]
	if len(b) == 0 || b[0] != groupDirVersion {
		return nil, fmt.Errorf("%w: unknown version", errGroupDir)
	}
	b = b[1:]
	k, m := binary.Uvarint(b)
	if m <= 0 || k == 0 || k > uint64(len(b))/3 {
		return nil, fmt.Errorf("%w: frame count", errGroupDir)
	}
	b = b[m:]
	g := &groupDir{at: make([]int, 0, k+1), first: make([]int, 0, k), raw: make([]int, 0, k)}
	at := n
	for j := range int(k) {
		zlen, m1 := binary.Uvarint(b)
		if m1 <= 0 {
			return nil, fmt.Errorf("%w: frame %d length", errGroupDir, j)
		}
		first, m2 := binary.Uvarint(b[m1:])
		if m2 <= 0 {
			return nil, fmt.Errorf("%w: frame %d first commit", errGroupDir, j)
		}
		raw, m3 := binary.Uvarint(b[m1+m2:])
		if m3 <= 0 || raw == 0 || raw > uint64(maxRecordSize-g.total) {
			return nil, fmt.Errorf("%w: frame %d length", errGroupDir, j)
		}
		b = b[m1+m2+m3:]
		switch {
		case zlen == 0 || zlen > uint64(size-at):
			return nil, fmt.Errorf("%w: frame %d of %d bytes past the data", errGroupDir, j, zlen)
		case j == 0 && first != 0,
			j > 0 && first <= uint64(g.first[j-1]),
			first > uint64(size): // a commit takes a byte at least
			return nil, fmt.Errorf("%w: frame %d starts at commit %d", errGroupDir, j, first)
		}
		g.at = append(g.at, at)
		g.first = append(g.first, int(first))
		g.raw = append(g.raw, int(raw))
		g.total += int(raw)
		at += int(zlen)
	}
	if len(b) != 0 || at != size {
		return nil, fmt.Errorf("%w: frames of %d bytes in %d", errGroupDir, at, size)
	}
	g.at = append(g.at, at)
	return g, nil
}

// frameOf returns the frame that holds commit idx.
func (g *groupDir) frameOf(idx int) int {
	j := len(g.first) - 1
	for j > 0 && g.first[j] > idx {
		j--
	}
	return j
}

// frameCommits splits frame j's decompressed bytes into its commits in
// stored form (frame 0 starts with the group's count), checking that a
// frame before the last holds as many as the directory says.
func (g *groupDir) frameCommits(j int, data []byte) ([][]byte, error) {
	if j == 0 {
		c, k := binary.Uvarint(data)
		if k <= 0 || c == 0 {
			return nil, fmt.Errorf("bad group count")
		}
		data = data[k:]
	}
	var out [][]byte
	for len(data) > 0 {
		l, k := binary.Uvarint(data)
		if k <= 0 || l > uint64(len(data)-k) {
			return nil, fmt.Errorf("bad group member length")
		}
		out = append(out, data[k:k+int(l)])
		data = data[k+int(l):]
	}
	if len(out) == 0 || j+1 < len(g.first) && len(out) != g.first[j+1]-g.first[j] {
		return nil, fmt.Errorf("%w: frame %d holds %d commits", errGroupDir, j, len(out))
	}
	return out, nil
}

// frame appends frame j, whose compressed bytes are z, to dst
// decompressed, checking its length.
func (g *groupDir) frame(dec *zstd.Decoder, z []byte, j int, dst []byte) ([]byte, error) {
	start := len(dst)
	dst = slices.Grow(dst, g.raw[j])
	dst, err := dec.DecodeAll(z, dst)
	if err == nil && len(dst)-start != g.raw[j] {
		err = fmt.Errorf("%w: frame %d decompresses to %d bytes, not %d", errGroupDir, j, len(dst)-start, g.raw[j])
	}
	return dst, err
}

// decompress appends the decompressed zstd data to dst: one frame, or a
// chunked group's frames after their directory, decoded one at a time
// into a dst grown once to their length (at most maxRecordSize), as the
// directory gives it.
func decompress(dec *zstd.Decoder, data, dst []byte) ([]byte, error) {
	n, ok := groupDirSize(data)
	if !ok || n > len(data) {
		return dec.DecodeAll(data, dst)
	}
	g, err := parseGroupDir(data[:n], len(data))
	if err != nil {
		return dec.DecodeAll(data, dst) // the decoder skips the directory
	}
	dst = slices.Grow(dst, g.total)
	for j := range g.first {
		if dst, err = g.frame(dec, data[g.at[j]:g.at[j+1]], j, dst); err != nil {
			return dst, err
		}
	}
	return dst, nil
}
