package repo

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/goatdb/goatdb/commit"
)

// The quarantine file, PATH.quarantine beside the log PATH, keeps every
// damaged range recovery took out of the log, byte for byte, so that
// nothing that may hold acknowledged data is ever deleted. It is appended
// to and synced (its directory too) before the log is rebuilt without the
// range, and it is never rewritten.
//
//	file  := entry*
//	entry := magic (8 bytes "goatdbQ1") | meta length (u32 LE) | meta (JSON)
//	         | data length (u64 LE) | data | crc32c of all before (u32 LE)
//
// meta is {"kind":"damage", "epoch", "offset", "length", "reason",
// "found", "salvaged", "missing"}: where the bytes were in the log of that
// epoch, why they are damaged, when recovery found them, how many commits
// it salvaged from them, and the ids of the commits the repository lacked
// after recovery (awaited by commits it holds). Or {"kind":"resolved",
// "at"}: every earlier entry is resolved, because those commits came back
// and a sync with a peer agreed on every commit since. A torn last entry
// (a crash while quarantining) is ignored: the log was not rebuilt then,
// so the next open quarantines the range again; an entry already present
// is not written twice.

var quarantineMagic = [8]byte{'g', 'o', 'a', 't', 'd', 'b', 'Q', '1'}

// Quarantined is one damaged range of a repository's log, kept in its
// quarantine file.
type Quarantined struct {
	File       string      // the quarantine file holding the bytes
	Epoch      uint64      // epoch of the log the bytes were in
	Offset     int64       // where they were in that log
	Length     int64       // how many bytes
	Reason     string      // what was wrong with them
	Found      time.Time   // when recovery found them
	Salvaged   int         // commits recovered from them
	Missing    []commit.ID // commits the repository lacked after recovery
	Resolved   bool        // the lost commits came back from a peer
	ResolvedAt time.Time

	sum uint32 // crc32c of the bytes, to recognise them again
}

type quarantineMeta struct {
	Kind     string    `json:"kind"`
	Epoch    uint64    `json:"epoch,omitempty"`
	Offset   int64     `json:"offset,omitempty"`
	Length   int64     `json:"length,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Found    time.Time `json:"found,omitzero"`
	Salvaged int       `json:"salvaged,omitempty"`
	Missing  []string  `json:"missing,omitempty"`
	At       time.Time `json:"at,omitzero"`
}

func (r *Repo) quarantinePath() string { return r.path + ".quarantine" }

// Quarantine returns the damaged ranges recovery took out of the log, in
// the order found.
func (r *Repo) Quarantine() []Quarantined {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := slices.Clone(r.quarantined)
	for i := range out {
		out[i].Missing = slices.Clone(out[i].Missing)
	}
	return out
}

// loadQuarantine reads the quarantine file, if any.
func (r *Repo) loadQuarantine() {
	data, err := r.opts.FS.ReadFile(r.quarantinePath())
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			r.opts.Logger.Warn("read quarantine file", "path", r.quarantinePath(), "err", err)
		}
		return
	}
	r.quarantined = parseQuarantine(data, r.quarantinePath())
}

// parseQuarantine decodes a quarantine file's entries, stopping at the
// first that is not whole.
func parseQuarantine(data []byte, file string) []Quarantined {
	var out []Quarantined
	for len(data) > 0 {
		meta, body, n, ok := parseQuarantineEntry(data)
		if !ok {
			break
		}
		data = data[n:]
		switch meta.Kind {
		case "damage":
			q := Quarantined{File: file, Epoch: meta.Epoch, Offset: meta.Offset, Length: meta.Length, Reason: meta.Reason,
				Found: meta.Found, Salvaged: meta.Salvaged, sum: crc32.Checksum(body, castagnoli)}
			for _, s := range meta.Missing {
				if id, err := commit.ParseID(s); err == nil {
					q.Missing = append(q.Missing, id)
				}
			}
			out = append(out, q)
		case "resolved":
			for i := range out {
				if !out[i].Resolved {
					out[i].Resolved, out[i].ResolvedAt = true, meta.At
				}
			}
		}
	}
	return out
}

func parseQuarantineEntry(data []byte) (meta quarantineMeta, body []byte, n int, ok bool) {
	if len(data) < 12 || !bytes.Equal(data[:8], quarantineMagic[:]) {
		return meta, nil, 0, false
	}
	ml := int64(binary.LittleEndian.Uint32(data[8:]))
	if 12+ml+8 > int64(len(data)) {
		return meta, nil, 0, false
	}
	metaBytes := data[12 : 12+ml]
	dl := binary.LittleEndian.Uint64(data[12+ml:])
	start := 12 + ml + 8
	if avail := int64(len(data)) - start - 4; avail < 0 || dl > uint64(avail) {
		return meta, nil, 0, false
	}
	end := start + int64(dl)
	if crc32.Checksum(data[:end], castagnoli) != binary.LittleEndian.Uint32(data[end:]) {
		return meta, nil, 0, false
	}
	if json.Unmarshal(metaBytes, &meta) != nil {
		return meta, nil, 0, false
	}
	return meta, data[start:end], int(end + 4), true
}

func appendQuarantineEntry(b []byte, meta quarantineMeta, body []byte) []byte {
	m, _ := json.Marshal(meta) // plain types: never fails
	start := len(b)
	b = append(b, quarantineMagic[:]...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(m)))
	b = append(b, m...)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(body)))
	b = append(b, body...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// quarantine appends the damaged ranges of data, the log as read, to the
// quarantine file and makes them durable. A version 1 log's torn tail is
// kept too, unless it is only zeros: without claims it cannot be told from
// acknowledged data.
func (r *Repo) quarantine(data []byte, h logHeader, sc scan, kept map[int][]*commit.Commit) error {
	r.loadQuarantine()
	salvaged := map[int64]int{}
	for i, rec := range sc.recs {
		salvaged[rec.off] += len(kept[i])
	}
	var missing []string
	for _, id := range r.missingLocked() {
		missing = append(missing, id.String())
	}
	ranges := slices.Clone(sc.damage)
	if h.version == 1 && sc.end < int64(len(data)) && !bytesAllZero(data[sc.end:]) {
		ranges = append(ranges, Damage{Offset: sc.end, Length: int64(len(data)) - sc.end, Reason: "version 1 log: end without a valid record"})
	}
	now := r.opts.Now().UTC()
	var b []byte
	for _, d := range ranges {
		body := data[d.Offset : d.Offset+d.Length]
		if r.quarantinedAlready(h.epoch, d, body) {
			continue
		}
		b = appendQuarantineEntry(b, quarantineMeta{Kind: "damage", Epoch: h.epoch, Offset: d.Offset, Length: d.Length,
			Reason: d.Reason, Found: now, Salvaged: salvaged[d.Offset], Missing: missing}, body)
		r.opts.Logger.Warn("quarantined damaged log range", "path", r.path, "quarantine", r.quarantinePath(),
			"offset", d.Offset, "bytes", d.Length, "reason", d.Reason, "salvaged", salvaged[d.Offset])
	}
	if len(b) == 0 {
		return nil
	}
	if err := r.appendQuarantine(b); err != nil {
		return fmt.Errorf("quarantine damaged log ranges in %s: %w", r.quarantinePath(), err)
	}
	return nil
}

func (r *Repo) quarantinedAlready(epoch uint64, d Damage, body []byte) bool {
	sum := crc32.Checksum(body, castagnoli)
	for _, q := range r.quarantined {
		if q.Epoch == epoch && q.Offset == d.Offset && q.Length == d.Length && q.sum == sum {
			return true
		}
	}
	return false
}

// appendQuarantine appends entries to the quarantine file, syncs it and,
// if it was created, its directory.
func (r *Repo) appendQuarantine(b []byte) error {
	path := r.quarantinePath()
	_, statErr := r.opts.FS.Stat(path)
	f, err := r.opts.FS.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err != nil {
		return err
	}
	if statErr != nil {
		return r.opts.FS.SyncDir(filepath.Dir(path))
	}
	return nil
}

// ResolveQuarantine marks the quarantined ranges resolved if every commit
// they left missing is here again. Call it after a sync with a peer that
// ended with both sides holding the same commits: then whatever the peer
// had of the lost commits is back. It returns how many ranges it resolved.
func (r *Repo) ResolveQuarantine() (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.log == nil {
		return 0, fmt.Errorf("repo: %s is read-only", r.path)
	}
	n := 0
	for _, q := range r.quarantined {
		if q.Resolved {
			continue
		}
		for _, id := range q.Missing {
			if r.commits.get(id) == nil {
				return 0, nil
			}
		}
		n++
	}
	if n == 0 {
		return 0, nil
	}
	now := r.opts.Now().UTC()
	if err := r.appendQuarantine(appendQuarantineEntry(nil, quarantineMeta{Kind: "resolved", At: now}, nil)); err != nil {
		return 0, fmt.Errorf("resolve quarantine %s: %w", r.quarantinePath(), err)
	}
	for i := range r.quarantined {
		if !r.quarantined[i].Resolved {
			r.quarantined[i].Resolved, r.quarantined[i].ResolvedAt = true, now
		}
	}
	r.opts.Logger.Info("quarantined damage resolved", "path", r.path, "ranges", n)
	return n, nil
}

// Agreed is called by sync when a peer was found to hold the same commits
// as this repository: it resolves the quarantined ranges whose lost
// commits are all here again (see ResolveQuarantine). It costs nothing
// when nothing is quarantined.
func (r *Repo) Agreed() {
	r.mu.RLock()
	open := false
	for _, q := range r.quarantined {
		open = open || !q.Resolved
	}
	r.mu.RUnlock()
	if !open || r.log == nil {
		return
	}
	if _, err := r.ResolveQuarantine(); err != nil {
		r.opts.Logger.Error("resolve quarantine", "path", r.path, "err", err)
	}
}
