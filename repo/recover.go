package repo

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/vfs"
)

// Recovery (the rules are in the log format comment, log.go):
//
//   - A torn tail, debris after the largest claim, is cut.
//   - Corruption, a damaged range within claimed bytes or a damaged header,
//     is copied to the quarantine file beside the log (quarantine.go), the
//     commits that still verify are salvaged, and the log is rebuilt
//     without it under a new epoch. A read-only open changes nothing and
//     reports the same.
//   - Records found by scanning past damage, and commits salvaged from
//     records whose data is damaged, are verified like commits from an
//     unknown peer: signatures checked (a commit stored without its
//     session bytes gets the owner's session back, so only the owner's
//     own signature makes it the owner's), merges recomputed, and in a
//     trusted repository an unsigned commit from damaged data is not taken,
//     since nothing proves its bytes are the ones written.

// load reads the log, recovers it and replays every record.
func (r *Repo) load() error {
	if !r.opts.ReadOnly {
		r.removeCompactLeftover()
	}
	x, done, err := r.loadFromIndex()
	if done || err != nil {
		return err
	}
	data, err := r.opts.FS.ReadFile(r.path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !r.opts.ReadOnly:
		if data, err = r.create(); err != nil {
			return err
		}
	case err != nil:
		return err
	case neverSynced(data) && r.opts.ReadOnly:
		data = appendHeader(nil, logHeader{}) // empty, as a writer would find it
	case neverSynced(data):
		r.opts.Logger.Info("the log's header was never synced, as a crash can leave a log just created: creating it again", "path", r.path, "bytes", len(data))
		if err := r.opts.FS.Remove(r.path); err != nil {
			return err
		}
		if data, err = r.create(); err != nil {
			return err
		}
	}
	h, herr := checkHeader(data)
	var sc scan
	switch {
	case herr == nil && h.version != 1:
		sc = scanLog(data)
	case herr == nil:
		sc = scanLogV1(data)
	case errors.Is(herr, ErrVersion):
		return herr
	default:
		// A damaged header: if sound records follow, they are kept (as
		// untrusted) and the header is quarantined; otherwise this is not
		// a log of ours, and nothing is touched.
		if len(data) < HeaderSize {
			return herr
		}
		sc = scanLog(data)
		if !hasSound(sc.recs) {
			return herr
		}
		for i := range sc.recs {
			sc.recs[i].untrusted = true
		}
		sc.damage = append([]Damage{{Offset: 0, Length: HeaderSize, Reason: herr.Error()}}, sc.damage...)
		h = logHeader{owner: r.session, version: logVersion}
	}
	r.owner, r.epoch, r.logVer = h.owner, h.epoch, h.version
	switch {
	case sc.end == int64(len(data)):
	case r.opts.ReadOnly: // a write in flight, or a tail the next writer cuts
		r.opts.Logger.Debug("reading the log up to its last complete record", "path", r.path, "offset", sc.end, "bytes", int64(len(data))-sc.end)
	case bytesAllZero(data[sc.end:]): // space a writer reserved (logWriter), or pages of a torn write never written
		r.opts.Logger.Info("cut zeros after the log's last record", "path", r.path, "offset", sc.end, "bytes", int64(len(data))-sc.end)
	default:
		r.opts.Logger.Warn("cut torn tail of log", "path", r.path, "offset", sc.end, "bytes", int64(len(data))-sc.end)
	}
	ops, badOps := r.loadExclusions(sc.recs)
	badOps = append(badOps, r.loadHorizon(sc.recs, h.version)...)
	recs := sc.recs
	if x != nil {
		// The index holds the graph of the first bytes: replay the tail.
		if why := indexMatches(x, sc, ops, badOps); why != "" {
			r.indexUnused(why)
		} else if err := r.loadIndexed(x); err != nil {
			r.indexUnused(err.Error())
			r.reset()
			r.noIndex = true
			return r.load()
		} else {
			if i := slices.IndexFunc(recs, func(rec scanned) bool { return uint64(rec.end) > x.h.covered }); i >= 0 {
				recs = recs[i:]
			} else {
				recs = nil
			}
			r.indexed = x.h.covered

		}
	}
	kept, bad := r.replay(recs)
	if r.indexed > 0 && len(bad) > 0 {
		// Damage in the tail: recover from a replay of the whole log.
		r.reset()
		r.noIndex = true
		return r.load()
	}
	r.listed = nil
	r.noteExclusions(ops)
	sc.damage = append(sc.damage, badOps...)
	sc.damage = append(sc.damage, bad...)
	slices.SortFunc(sc.damage, func(a, b Damage) int { return cmp.Compare(a.Offset, b.Offset) })
	r.damage = sc.damage
	r.seq = uint64(sc.end)
	if r.opts.ReadOnly {
		r.loadQuarantine()
		r.warnDamage()
		return r.settle()
	}
	if len(sc.damage) > 0 || h.version == 1 {
		if r.rebuilt {
			return fmt.Errorf("%w: the log still holds damage after it was rebuilt", ErrCorrupt)
		}
		if err := r.quarantine(data, h, sc, kept); err != nil {
			return err
		}
		if err := r.rebuild(h, sc, kept); err != nil {
			return err
		}
		r.reset()
		r.rebuilt = true
		return r.load()
	}
	if err := r.openForAppend(sc.end, int64(len(data)), sc.uncovered); err != nil {
		return err
	}
	r.loadQuarantine()
	r.warnDamage()
	return r.settle()
}

// hasSound reports whether any record is whole.
func hasSound(recs []scanned) bool {
	for _, rec := range recs {
		if !rec.bad {
			return true
		}
	}
	return false
}

// reset forgets everything load built, for a second load.
func (r *Repo) reset() {
	r.commits, r.items, r.list = newCommitIndex(0), newItemIndex(0), nil
	r.badWhy = map[*node]string{}
	r.waiting, r.entries, r.damage = map[commit.ID][]*node{}, nil, nil
	r.slab, r.fresh, r.helds = nil, nil, nil
	r.encFrom, r.encHeld = 0, 0
	r.indexed = 0
	r.seq, r.live = 0, 0
	r.index.clear()
	r.excl, r.touched, r.exclSeq, r.reinstated = map[commit.ID]*exclusion{}, nil, 0, nil
	r.horizon, r.prevEpoch = 0, 0
}

// warnDamage logs every unresolved quarantined range.
func (r *Repo) warnDamage() {
	for _, q := range r.quarantined {
		if !q.Resolved {
			r.opts.Logger.Warn("repository has quarantined damage: commits in it may be lost until a peer that holds them syncs",
				"path", r.path, "quarantine", q.File, "offset", q.Offset, "bytes", q.Length, "reason", q.Reason)
		}
	}
	for _, d := range r.damage {
		r.opts.Logger.Warn("damaged log range", "path", r.path, "offset", d.Offset, "bytes", d.Length, "reason", d.Reason)
	}
}

// create writes a new log holding only the header, atomically, with its
// directory made durable first, and returns its bytes.
//
// Nothing is synced: a log with no record holds nothing acknowledged, so
// its header and the directory entries that lead to it are made durable
// by the first flush of a record, before the record is acknowledged, or
// by Close (r.unsynced, run as the log writer's pre). A crash before that
// loses the file, or leaves its header lost or cut (neverSynced),
// and the next open creates it again. So opening a new repository costs
// no fsync.
func (r *Repo) create() ([]byte, error) {
	dir := filepath.Dir(r.path)
	syncDirs, err := vfs.MkdirAllDeferred(r.opts.FS, dir, 0o755)
	if err != nil {
		return nil, err
	}
	data := appendHeader(nil, logHeader{owner: r.session, epoch: newEpoch()})
	f, err := r.opts.FS.OpenFile(r.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	_, err = f.Write(data)
	if err = errors.Join(err, f.Close()); err != nil {
		if rerr := r.opts.FS.Remove(r.path); rerr != nil {
			err = errors.Join(err, rerr) // torn within its header: the next open creates it again
		}
		return nil, err
	}
	r.unsynced = func() error {
		if err := syncDirs(); err != nil {
			return err
		}
		return r.opts.FS.SyncDir(dir)
	}
	return data, nil
}

// neverSynced reports whether data, a log's whole file, is what a crash
// can leave of a log whose first flush never completed (see create): its
// header lost (zeros) or cut short (the start of the magic and version a
// new log has), and no sound
// record before the torn tail, nor any record claiming a byte past the
// header. Nothing in such a file was acknowledged. A header damaged in
// any other way, or followed by records, is left to the rules for damage.
func neverSynced(data []byte) bool {
	head := data[:min(len(data), HeaderSize)]
	fresh := appendHeader(nil, logHeader{})[:len(logMagic)+4] // the magic and version create writes
	cut := len(data) < HeaderSize && bytes.HasPrefix(fresh, head[:min(len(head), len(fresh))])
	switch {
	case !bytesAllZero(head) && !cut:
		return false
	case len(data) <= HeaderSize:
		return true
	}
	sc := scanLog(data)
	return !hasSound(sc.recs) && sc.claim <= HeaderSize
}

// newEpoch returns a random log epoch.
func newEpoch() uint64 {
	var e [8]byte
	rand.Read(e[:]) // never fails (crypto/rand)
	return binary.LittleEndian.Uint64(e[:])
}

// openForAppend opens the log for writing, cutting it at end if the file is
// longer (a torn tail). If data follows the log's last claim it is synced
// (it may still sit in the page cache of a process that was killed) and a
// mark claiming it is written, so a later damage to it cannot be taken for
// a torn tail.
func (r *Repo) openForAppend(end, size int64, uncovered bool) error {
	f, err := r.opts.FS.OpenFile(r.path, os.O_RDWR, 0o644) // written at offsets: see logWriter
	if err != nil {
		return err
	}
	if end < size {
		if err := f.Truncate(end); err != nil {
			return errors.Join(fmt.Errorf("cut torn tail at offset %d: %w", end, err), f.Close())
		}
	}
	if end < size || uncovered {
		if err := f.Sync(); err != nil {
			return errors.Join(err, f.Close())
		}
	}
	r.log = newLogWriter(f, end, !uncovered, r.opts.Durability == Async, r.opts.Logger)
	r.log.pre, r.unsynced = r.unsynced, nil // a new log's directory entries: synced before its first record
	if uncovered {
		mark, err := r.log.appendWith(appendMark)
		if err == nil {
			err = r.log.sync(mark)
		}
		if err != nil {
			return errors.Join(fmt.Errorf("mark the log's end: %w", err), f.Close())
		}
	}
	return nil
}

// rebuild writes the log anew, atomically: the sound trusted records as
// they are (a compacted log's horizon records first, as they were), and
// for every other record the commits replay kept from it, each record
// claiming everything before it (the whole file is synced before it
// replaces the old one), under a new epoch.
func (r *Repo) rebuild(h logHeader, sc scan, kept map[int][]*commit.Commit) error {
	version := uint32(logVersion)
	if h.version == compactedVersion {
		version = compactedVersion
	}
	b := appendHeader(nil, logHeader{owner: h.owner, epoch: newEpoch(), version: version})
	for i, rec := range sc.recs {
		switch {
		case rec.typ == recMark:
		case !rec.untrusted && !rec.bad: // format 1 data is the same as 2's
			b = appendRecord(b, rec.typ, rec.data, int64(len(b)))
		case len(kept[i]) == 1:
			b = appendCommitRecord(b, kept[i][0], h.owner, int64(len(b)))
		case len(kept[i]) > 1:
			b = appendGroupRecord(b, kept[i], h.owner, int64(len(b)))
		}
	}
	b = appendMark(b, int64(len(b)))
	if err := vfs.WriteFileAtomic(r.opts.FS, r.path, b, 0o644); err != nil {
		return fmt.Errorf("rebuild the log without its damage: %w", err)
	}
	r.opts.Logger.Warn("rebuilt log without its damaged ranges", "path", r.path, "quarantine", r.quarantinePath())
	return nil
}

// replay decodes the records in parallel, commit by commit, and inserts
// them in log order. Sound trusted records are taken as they are (a record
// with any commit that does not decode is damage as a whole); untrusted
// and damaged ones are verified commit by commit. It returns, for each
// record that was not sound and trusted, the commits it kept from it, and
// the sound records whose commits do not decode (marked bad), as damage.
func (r *Repo) replay(recs []scanned) (map[int][]*commit.Commit, []Damage) {
	encs := make([][][]byte, len(recs))
	errs := make([]error, len(recs))
	parallel(len(recs), func(i int, _ *item.Interner, _ *[]byte) {
		if rec := recs[i]; rec.bad {
			encs[i] = salvageCommits(rec.typ, rec.data)
		} else {
			encs[i], errs[i] = recordCommits(rec.typ, rec.data)
		}
	})
	type job struct{ rec, idx int }
	var jobs []job
	for i, es := range encs {
		for j := range es {
			jobs = append(jobs, job{i, j})
		}
	}
	if r.commits.len() == 0 { // else the head index loaded the first records' (headindex.go)
		r.commits = newCommitIndex(len(jobs))
		r.items = newItemIndex(len(jobs))
		r.entries = make([]*node, 0, len(jobs))
		r.list = make([]*itemState, 0, len(jobs))
	}
	decoded := make([]*commit.Commit, len(jobs))
	encoded := make([][]byte, len(jobs)) // in the workers' arenas, which the graph keeps (stored.go)
	jobErrs := make([]error, len(jobs))
	decode := func(k int, in *item.Interner, arena *[]byte) {
		rec := recs[jobs[k].rec]
		stored := encs[jobs[k].rec][jobs[k].idx]
		enc, err := loadStored(stored, r.owner, arena)
		if err == nil && stored[0] == storedFull { // enc is in the record's data: copy it
			enc = packEncoding(arena, len(enc), func(b []byte) []byte { return append(b, enc...) })
		}
		if err == nil {
			encoded[k] = enc
			decoded[k], err = commit.DecodeShared(enc, in)
		}
		if err == nil && (rec.untrusted || rec.bad) {
			err = decoded[k].VerifySignature(rec.bad || !r.opts.Trusted)
			if err == nil {
				err = r.fits(decoded[k], math.MaxInt64) // history has no clock bound
			}
		}
		jobErrs[k] = err
	}
	// Workers decode chunks of whole records in order while this goroutine
	// inserts the chunks already decoded.
	bounds := []int{0}
	for k := 0; k < len(jobs); {
		end := min(k+replayChunk, len(jobs))
		for end < len(jobs) && jobs[end].rec == jobs[end-1].rec {
			end++
		}
		bounds = append(bounds, end)
		k = end
	}
	chunks := len(bounds) - 1
	done := make([]chan struct{}, chunks)
	for c := range done {
		done[c] = make(chan struct{})
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), chunks) {
		wg.Go(func() {
			in := new(item.Interner)
			var arena []byte
			for c := int(next.Add(1) - 1); c < chunks; c = int(next.Add(1) - 1) {
				for k := bounds[c]; k < bounds[c+1]; k++ {
					decode(k, in, &arena)
				}
				close(done[c])
			}
		})
	}
	r.nodeSlab = make([]node, 0, len(jobs)) // the nodes, allocated at once
	defer func() { r.nodeSlab = nil }()
	kept := map[int][]*commit.Commit{}
	for c := range chunks {
		<-done[c]
		for k := bounds[c]; k < bounds[c+1]; k++ {
			if i := jobs[k].rec; jobErrs[k] != nil && errs[i] == nil && !recs[i].untrusted && !recs[i].bad {
				errs[i] = jobErrs[k]
			}
		}
		for k := bounds[c]; k < bounds[c+1]; k++ {
			i := jobs[k].rec
			rec := recs[i]
			switch {
			case !rec.untrusted && !rec.bad:
				if errs[i] == nil {
					r.insertEncoded(decoded[k], encoded[k], logPos{uint64(rec.end), uint32(rec.end - rec.off), uint32(jobs[k].idx)})
				}
			case jobErrs[k] != nil:
				r.opts.Logger.Warn("refused a commit found in a damaged log", "path", r.path, "offset", rec.off, "err", jobErrs[k])
			default:
				if n := r.insertUntrusted(decoded[k], logPos{uint64(rec.end), uint32(rec.end - rec.off), uint32(jobs[k].idx)}); n != nil {
					kept[i] = append(kept[i], decoded[k])
				}
			}
			decoded[k] = nil // the node holds it while it needs it
		}
		if len(r.fresh) >= replayHeld {
			r.releaseReplayedLocked()
		}
	}
	wg.Wait()
	var bad []Damage
	for i, err := range errs {
		if err != nil {
			bad = append(bad, Damage{Offset: recs[i].off, Length: recs[i].end - recs[i].off, Reason: err.Error()})
			kept[i] = nil
			recs[i].bad = true
		}
	}
	return kept, bad
}

// insertUntrusted inserts a verified commit from a record found by
// scanning or salvaged from damaged data, so that a merge among such
// commits is recomputed when it completes. It returns nil if the commit
// does not fit the graph.
func (r *Repo) insertUntrusted(c *commit.Commit, at logPos) *node {
	if r.untrusted == nil {
		r.untrusted = map[commit.ID]bool{}
	}
	r.untrusted[c.ID()] = true
	n, _ := r.insert(c, at)
	delete(r.untrusted, c.ID())
	if n.bad {
		return nil
	}
	return n
}

// salvageCommits returns the stored commits that can still be read from
// a record whose data fails its checksum: a compressed record is
// decompressed without its checksum, and a group is split up to its first
// bad member length; a chunked group whose directory holds together is
// salvaged frame by frame, so that damage in one frame costs only its
// commits. Each one is verified before it is taken.
func salvageCommits(typ byte, data []byte) [][]byte {
	if typ == recGroupZstd {
		if out, ok := salvageFrames(data); ok {
			return out
		}
	}
	switch typ {
	case recCommitZstd, recGroupZstd:
		d, err := zsalvage.DecodeAll(data, nil)
		if err != nil && len(d) == 0 {
			return nil
		}
		data, typ = d, typ-1
	}
	switch typ {
	case recCommit:
		return [][]byte{data}
	case recGroup:
		n, k := binary.Uvarint(data)
		if k <= 0 {
			return nil
		}
		return salvageMembers(nil, data[k:], n)
	}
	return nil
}

// salvageMembers appends to out the first limit members of a group's data
// (after its count) up to the first bad member length.
func salvageMembers(out [][]byte, data []byte, limit uint64) [][]byte {
	for range min(limit, uint64(len(data))) {
		l, k := binary.Uvarint(data)
		if k <= 0 || l > uint64(len(data)-k) {
			break
		}
		out = append(out, data[k:k+int(l)])
		data = data[k+int(l):]
	}
	return out
}

// salvageFrames salvages a chunked group (groupchunk.go) frame by frame,
// each decompressed without its checksum; ok is false when the data has
// no directory that holds together.
func salvageFrames(data []byte) (out [][]byte, ok bool) {
	n, ok := groupDirSize(data)
	if !ok || n > len(data) {
		return nil, false
	}
	g, err := parseGroupDir(data[:n], len(data))
	if err != nil {
		return nil, false
	}
	for j := range g.first {
		d, _ := zsalvage.DecodeAll(data[g.at[j]:g.at[j+1]], nil)
		if j == 0 {
			if _, k := binary.Uvarint(d); k > 0 {
				d = d[k:]
			} else {
				d = nil
			}
		}
		out = salvageMembers(out, d, uint64(len(d)))
	}
	return out, true
}
