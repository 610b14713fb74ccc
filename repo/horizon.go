package repo

import (
	"errors"
	"time"

	"github.com/goatdb/goatdb/commit"
)

// ErrCollected is returned (wrapped, saying which time) by reads of history
// before the log's horizon: compaction collected it.
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
	// BytesBefore and BytesAfter are the log's sizes before and after.
	BytesBefore, BytesAfter int64
	// Pause is how long writers were stopped (the write lock held for the
	// swap); Took is the whole compaction.
	Pause, Took time.Duration
	// Shallow counts the kept commits whose parents were collected: the
	// roots the horizon record lists.
	Shallow int
}

// Horizon returns the log's horizon time in Unix milliseconds (the units of
// commit.Commit.Time): history before it was collected. It is 0 for a log
// never compacted.
func (r *Repo) Horizon() int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.horizon
}

// Compact collects the history before horizon h (Unix milliseconds) while
// writers continue: see the package documentation.
func (r *Repo) Compact(h int64, opts *CompactOptions) (CompactStats, error) {
	return CompactStats{}, errors.New("repo: compaction not implemented yet")
}

// PlanCompact reports what Compact(h, opts) would do, without doing it.
func (r *Repo) PlanCompact(h int64, opts *CompactOptions) (CompactStats, error) {
	return CompactStats{}, errors.New("repo: compaction not implemented yet")
}
