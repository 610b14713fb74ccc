package repo

import "github.com/goatdb/goatdb/commit"

// ForgetIndexForTest makes Close write the head index again, as if the
// repository had changed since it opened.
func ForgetIndexForTest(r *Repo) {
	r.mu.Lock()
	r.indexed = 0
	r.mu.Unlock()
}

// MarkSize is the length of a mark record, for the external tests.
const MarkSize = recHeadSize

// AppendMarkForTest appends a mark claiming all of log.
func AppendMarkForTest(log []byte) []byte { return appendMark(log, int64(len(log))) }

// GenDepthForTest returns the generation and delta depth of a commit, and
// whether its parents were collected (shallow).
func GenDepthForTest(r *Repo, id commit.ID) (gen uint32, depth uint16, shallow, ok bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := r.commits.get(id)
	if n == nil {
		return 0, 0, false, false
	}
	return n.gen, uint16(n.depth), n.shallow, true
}

// KeptBytesForTest returns the bytes of the records before the log's end
// that a compaction at h would keep: the kept set.
func KeptBytesForTest(r *Repo, h int64) (int64, error) {
	r.exclMu.Lock()
	defer r.exclMu.Unlock()
	p, err := r.planCompact(h, nil)
	if err != nil {
		return 0, err
	}
	return p.keptBytes, nil
}
