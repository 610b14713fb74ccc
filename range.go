package goatdb

import (
	"errors"
	"fmt"
	"iter"

	"github.com/goatdb/goatdb/repo"
)

// RangeOptions selects the items of a repository that Range and RangeKeys
// yield, in key order (bytewise). The zero value selects every item.
//
// To read page by page, set Limit and pass the last key of a page as After
// for the next one; a page shorter than Limit is the last. A key is the
// continuation: nothing is held between pages.
type RangeOptions struct {
	Prefix string // only keys that start with Prefix
	From   string // only keys at or after From
	After  string // only keys strictly after After (the last key of the previous page)
	Limit  int    // at most Limit items; 0 means no limit
}

// Validate reports options Range cannot use: a negative Limit, or both
// From and After.
func (o RangeOptions) Validate() error {
	switch {
	case o.Limit < 0:
		return fmt.Errorf("goatdb: range limit %d is negative", o.Limit)
	case o.From != "" && o.After != "":
		return errors.New("goatdb: range takes From or After, not both")
	}
	return nil
}

// rangeChunk is how many items a range reads under one read lock of the
// repository: a page of up to rangeChunk items is read at one instant.
const rangeChunk = 256

// Range iterates over the repository's items that are not deleted and
// that opts selects, in key order. Items Get does not see (every commit
// excluded, see DB.Rejected, or forgotten) are left out too. A repository
// that does not exist, or invalid options, yield one error and stop; an
// item whose schema upgrade fails yields its error, and the range goes on.
//
// The keys come from an ordered index the repository keeps as it changes,
// so a page costs O(log n + Limit), not a sort. Range reads them in chunks
// of up to 256 items, each under the repository's read lock and consistent
// on its own; the loop body runs with no lock held and may write to the
// repository. A write made while a range is in progress is seen if its key
// comes after the last key yielded and not if before; an item deleted or
// written after its chunk was read is yielded as it was then. So every key
// that is live throughout the range is yielded exactly once, in increasing
// order, however long the loop body takes; the same holds across pages.
func (db *DB) Range(repoPath string, opts RangeOptions) iter.Seq2[Item, error] {
	return func(yield func(Item, error) bool) {
		err := db.scan(repoPath, opts, func(e repo.Entry) bool {
			return yield(db.view(repoPath, e.Key, e.Value, e.Schema, e.Head))
		})
		if err != nil {
			yield(Item{}, err)
		}
	}
}

// RangeKeys is Range yielding keys only: the keys of the repository's
// items that are not deleted and that opts selects, in key order, read as
// Range reads them. The keys of a chunk are read into one buffer that is
// reused for the next chunk.
func (db *DB) RangeKeys(repoPath string, opts RangeOptions) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		var buf []string
		err := db.pages(repoPath, opts, func(r *repo.Repo, spec repo.RangeSpec) (int, string, bool) {
			if buf == nil {
				buf = make([]string, 0, spec.Limit)
			}
			buf = r.AppendRangeKeys(buf[:0], spec)
			for _, k := range buf {
				if !yield(k, nil) {
					return 0, "", false
				}
			}
			return len(buf), lastOf(buf), true
		})
		if err != nil {
			yield("", err)
		}
	}
}

// scan calls fn with the entries opts selects, in key order, a chunk at a
// time, until fn returns false or they run out.
func (db *DB) scan(repoPath string, opts RangeOptions, fn func(repo.Entry) bool) error {
	return db.pages(repoPath, opts, func(r *repo.Repo, spec repo.RangeSpec) (int, string, bool) {
		es := r.Range(spec)
		for _, e := range es {
			if !fn(e) {
				return 0, "", false
			}
		}
		if len(es) == 0 {
			return 0, "", true
		}
		return len(es), es[len(es)-1].Key, true
	})
}

// lastOf returns the last key of keys, or "" if there is none.
func lastOf(keys []string) string {
	if len(keys) == 0 {
		return ""
	}
	return keys[len(keys)-1]
}

// pages reads the keys opts selects a chunk of up to rangeChunk at a time:
// read reads the chunk spec selects and returns how many keys it held, the
// last one, and whether to go on (false when its caller stopped). Pages
// stop when a chunk comes back short or opts.Limit is reached.
func (db *DB) pages(repoPath string, opts RangeOptions, read func(*repo.Repo, repo.RangeSpec) (n int, last string, more bool)) error {
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("range %s: %w", repoPath, err)
	}
	r, release, err := db.AcquireExisting(repoPath)
	if err != nil {
		return err
	}
	defer release()
	spec := repo.RangeSpec{From: opts.From, Prefix: opts.Prefix}
	if opts.After != "" {
		spec.From, spec.After = opts.After, true
	}
	left := opts.Limit
	for {
		spec.Limit = rangeChunk
		if opts.Limit > 0 {
			spec.Limit = min(left, rangeChunk)
			left -= spec.Limit
		}
		n, last, more := read(r, spec)
		if !more || n < spec.Limit || opts.Limit > 0 && left == 0 {
			return nil
		}
		spec.From, spec.After = last, true
	}
}
