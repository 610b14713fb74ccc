package repo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/goatdb/goatdb/commit"
)

// ErrCollected is returned (wrapped, saying which time) by reads of history
// that compaction collected: before the log's horizon.
var ErrCollected = errors.New("repo: history collected")

// CompactOptions tune a compaction. The zero value (or nil) is valid.
type CompactOptions struct {
	// Drop, if set, names extra commits to drop whatever their time: each
	// one is dropped together with every commit of its item descending
	// from it (purge), even a current head. Nil drops nothing more.
	Drop func(c *commit.Commit) bool
}

// CompactStats describe a compaction (or, from PlanCompact, what one would
// do).
type CompactStats struct {
	// CommitsBefore and CommitsAfter count the commits in the log before
	// and after.
	CommitsBefore, CommitsAfter int
	// BytesBefore and BytesAfter are the log's sizes before and after
	// (PlanCompact estimates BytesAfter from the records' sizes).
	BytesBefore, BytesAfter int64
	// Pause is how long writers were stopped (the graph lock held for the
	// swap); Took is the whole compaction.
	Pause, Took time.Duration
	// Shallow counts the kept commits whose parents were collected: the
	// commits the horizon record lists.
	Shallow int
	// BytesTail is the part of BytesAfter that holds the records written
	// while the compaction ran, copied after the kept ones as they are.
	BytesTail int64
	// CopyPeak is the largest the copy (PATH.compact) grew: the disk a
	// compaction needs besides the log's. The copy only grows and becomes
	// the new log, so it is BytesAfter unless an attempt started over.
	CopyPeak int64
}

// Horizon returns the log's horizon time in Unix milliseconds (the units of
// commit.Commit.Time): history before it was collected, and commits
// stamped before it that this repository does not hold are refused. It is
// 0 for a log never compacted.
func (r *Repo) Horizon() int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.horizon
}

// PreviousEpoch returns the epoch of the log this one was compacted from
// (its lineage), or 0 for a log never compacted.
func (r *Repo) PreviousEpoch() uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.prevEpoch
}

// collectedErr says that history of an item (all items if key is empty)
// before t (Unix ms) was collected.
func collectedErr(key string, t int64) error {
	what := "history"
	if key != "" {
		what = "history of " + key
	}
	return fmt.Errorf("%w: %s before %s was collected", ErrCollected, what,
		time.UnixMilli(t).UTC().Format(time.RFC3339Nano))
}

// shallowFloor returns the time before which an item's history was
// collected: the oldest of its commits whose parents were collected
// (every collected commit is an ancestor of those, so no older than them),
// and false if none of its history was collected.
func (r *Repo) shallowFloor(nodes []*node) (int64, bool) {
	var floor int64
	found := false
	for _, n := range nodes {
		if n.shallow && (!found || n.c.Time() < floor) {
			floor, found = n.c.Time(), true
		}
	}
	return floor, found
}

// ItemHistory is History that says when part of the item's history was
// collected: it returns the commits kept, newest first, and an error
// wrapping ErrCollected that names the time before which history is gone
// (the oldest commit whose parents were collected, Info.Shallow). A key
// with no commits is ErrNotFound.
func (r *Repo) ItemHistory(key string) ([]Info, error) {
	hist := r.History(key)
	if len(hist) == 0 {
		return nil, fmt.Errorf("%w: item %s", ErrNotFound, key)
	}
	var floor int64
	found := false
	for _, h := range hist {
		if h.Shallow && (!found || h.Commit.Time() < floor) {
			floor, found = h.Commit.Time(), true
		}
	}
	if found {
		return hist, collectedErr(key, floor)
	}
	return hist, nil
}

// ItemAsOf is AsOf that tells a time whose answer was collected from one
// before the item existed: for a time before the oldest kept commit whose
// parents were collected it returns an error wrapping ErrCollected (the
// commit current then is gone, or may be); for a time before the item's
// first commit, ErrNotFound.
func (r *Repo) ItemAsOf(key string, t int64) (commit.ID, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	st := r.items.get(key)
	if st == nil {
		if r.horizon > 0 && t < r.horizon {
			return commit.ID{}, collectedErr(key, r.horizon)
		}
		return commit.ID{}, fmt.Errorf("%w: item %s", ErrNotFound, key)
	}
	nodes := r.itemNodes(st)
	if floor, ok := r.shallowFloor(nodes); ok && t < floor {
		return commit.ID{}, collectedErr(key, floor)
	}
	best := r.asOfLocked(nodes, t)
	if best == nil {
		return commit.ID{}, fmt.Errorf("%w: item %s did not exist at %s", ErrNotFound, key,
			time.UnixMilli(t).UTC().Format(time.RFC3339Nano))
	}
	return best.c.ID(), nil
}

// The horizon record (log record type 7) says that the log was compacted
// and what that left out. One or more of them follow the header of a
// compacted (version 3) log, before any other record:
//
//	0         1                 9             17
//	+---------+-----------------+-------------+-----------+-----------------+
//	| version | horizon         | old epoch   | count     | entries         |
//	| u8 = 1  | i64 LE Unix ms  | u64 LE      | uvarint n | n × entry       |
//	+---------+-----------------+-------------+-----------+-----------------+
//
//	entry := id prefix (8 B) | uvarint (generation << 1 | more) [ | depth (uvarint) | absent (uvarint) ]
//
// Horizon: history before it was collected; a commit stamped before it
// that the log does not hold is refused (it can never be valid again). Old
// epoch: the epoch of the log this one was compacted from (lineage). The
// entries, sorted by id prefix, are the shallow commits: kept commits some
// of whose parents were collected, with their original generation number
// (1 + the largest of all their parents', so merges order common
// ancestors, and so compute merge commits, exactly as a peer holding the
// whole history does), their delta depth (the chain length the delta rule
// continues from), and a bit mask of which of their parents, by index in
// the commit, were collected. more = 0 stands for the usual entry, a full
// snapshot (depth 0) whose parents were all collected; more = 1 gives depth
// and mask. Replay takes those parents as absent rather than missing: the
// commit completes without them, with the stored generation and depth. Its
// delta base is always kept (compaction keeps every kept delta's base), so
// it is awaited as usual.
//
// A commit is named by the first 8 bytes of its id: most compacted items
// keep a single commit, a snapshot of 100-250 bytes in the log, and its
// entry is about 9 bytes this way, against 35 with the whole id, which
// keeps the log after compaction within a tenth of the kept commits. An
// entry only applies to a commit whose parents named by the mask are
// absent when it is replayed: a shallow commit, or a pending one, which a
// server takes only from a trusted peer (ReceiveComplete refuses commits
// without their parents). A pending commit matches by accident with odds
// of about one in 2^64 per pair, and on purpose only after some 2^64
// hashes (a second preimage), by an author who could write to the item
// anyway; it would then join its item's graph without its parents.
//
// A long list is split over several records (at most horizonChunk entries
// each), all with the same horizon and old epoch.

const (
	horizonVersion = 1
	horizonPrefix  = 8

	// allParents is the absent mask of a commit whose parents were all
	// collected.
	allParents = ^uint64(0)
)

// horizonChunk is how many entries one horizon record holds at most (a
// variable for the tests).
var horizonChunk = 1 << 20

// shallowEntry is one entry of the horizon record.
type shallowEntry struct {
	gen    uint32
	depth  uint16
	absent uint64 // bit i: parent i was collected (allParents: all were)
}

type idPrefix [horizonPrefix]byte

func prefixOf(id commit.ID) idPrefix {
	var p idPrefix
	copy(p[:], id[:])
	return p
}

// horizonInfo is what the horizon records of a log hold.
type horizonInfo struct {
	horizon   int64
	prevEpoch uint64
	shallow   map[idPrefix]shallowEntry
}

// listed is one shallow commit to write in a horizon record.
type listed struct {
	prefix idPrefix
	shallowEntry
}

// appendHorizonRecords frames the horizon records of a compacted log:
// claim is the offset of the first (the header's end); each claims itself.
func appendHorizonRecords(b []byte, horizon int64, prevEpoch uint64, list []listed) []byte {
	slices.SortFunc(list, func(a, b listed) int { return bytes.Compare(a.prefix[:], b.prefix[:]) })
	for first := true; first || len(list) > 0; first = false {
		chunk := list[:min(len(list), horizonChunk)]
		list = list[len(chunk):]
		data := []byte{horizonVersion}
		data = binary.LittleEndian.AppendUint64(data, uint64(horizon))
		data = binary.LittleEndian.AppendUint64(data, prevEpoch)
		data = binary.AppendUvarint(data, uint64(len(chunk)))
		for _, e := range chunk {
			data = append(data, e.prefix[:]...)
			if e.depth == 0 && e.absent == allParents {
				data = binary.AppendUvarint(data, uint64(e.gen)<<1)
				continue
			}
			data = binary.AppendUvarint(data, uint64(e.gen)<<1|1)
			data = binary.AppendUvarint(data, uint64(e.depth))
			data = binary.AppendUvarint(data, e.absent)
		}
		b = appendRecord(b, recHorizon, data, int64(len(b)))
	}
	return b
}

var errHorizonFormat = errors.New("malformed horizon record")

// decodeHorizon decodes a horizon record's data into hi, which it starts
// or, for a later record of a split list, extends.
func decodeHorizon(data []byte, hi *horizonInfo) error {
	if len(data) < 18 {
		return fmt.Errorf("%w: %d bytes", errHorizonFormat, len(data))
	}
	if data[0] != horizonVersion {
		return fmt.Errorf("horizon record version %d, this build reads %d", data[0], horizonVersion)
	}
	h, prev := int64(binary.LittleEndian.Uint64(data[1:])), binary.LittleEndian.Uint64(data[9:])
	switch {
	case h < 0:
		return fmt.Errorf("%w: negative horizon", errHorizonFormat)
	case hi.shallow == nil:
		hi.horizon, hi.prevEpoch, hi.shallow = h, prev, map[idPrefix]shallowEntry{}
	case hi.horizon != h || hi.prevEpoch != prev:
		return fmt.Errorf("%w: horizon records disagree", errHorizonFormat)
	}
	rest := data[17:]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > uint64(len(rest))/(horizonPrefix+1) {
		return fmt.Errorf("%w: entry count", errHorizonFormat)
	}
	rest = rest[k:]
	for range n {
		if len(rest) < horizonPrefix {
			return fmt.Errorf("%w: entry cut short", errHorizonFormat)
		}
		var p idPrefix
		copy(p[:], rest)
		rest = rest[horizonPrefix:]
		vals := [3]uint64{0, 0, allParents}
		for i := range vals {
			v, k := binary.Uvarint(rest)
			if k <= 0 {
				return fmt.Errorf("%w: entry cut short", errHorizonFormat)
			}
			vals[i], rest = v, rest[k:]
			if i == 0 && v&1 == 0 {
				break
			}
		}
		gen := vals[0] >> 1
		if gen == 0 || gen > 1<<32-1 || vals[1] > maxChain || vals[2] == 0 {
			return fmt.Errorf("%w: entry out of range", errHorizonFormat)
		}
		hi.shallow[p] = shallowEntry{gen: uint32(gen), depth: uint16(vals[1]), absent: vals[2]}
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errHorizonFormat, len(rest))
	}
	return nil
}

// loadHorizon reads the horizon records at the start of a compacted log
// into r before replay. A horizon record anywhere else, or in a log that is
// not version 3, is ignored with a warning (a commit's content can look
// like one); one that does not decode is damage.
func (r *Repo) loadHorizon(recs []scanned, version uint32) []Damage {
	var hi horizonInfo
	var bad []Damage
	leading := version == compactedVersion
	for i := range recs {
		rec := &recs[i]
		if rec.typ != recHorizon {
			if rec.typ != recMark {
				leading = false
			}
			continue
		}
		if rec.bad {
			continue
		}
		if !leading || rec.untrusted {
			r.opts.Logger.Warn("ignored a horizon record that does not follow the header", "path", r.path, "offset", rec.off)
			continue
		}
		if err := decodeHorizon(rec.data, &hi); err != nil {
			rec.bad = true
			bad = append(bad, Damage{Offset: rec.off, Length: rec.end - rec.off, Reason: err.Error()})
		}
	}
	r.horizon, r.prevEpoch = hi.horizon, hi.prevEpoch
	r.listed = hi.shallow
	return bad
}

// listedEntry returns the horizon record's entry for c, if it has one.
func (r *Repo) listedEntry(c placed) (shallowEntry, bool) {
	if len(r.listed) == 0 {
		return shallowEntry{}, false
	}
	e, ok := r.listed[prefixOf(c.ID())]
	return e, ok
}
