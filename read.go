package goatdb

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"time"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
)

// Get returns the item at path. A missing item fails with ErrNotFound, a
// deleted one with ErrDeleted (which wraps ErrNotFound).
func (db *DB) Get(path string) (Item, error) {
	it, err := db.getAny(path)
	if err == nil && it.data.Deleted() {
		return Item{}, fmt.Errorf("get %s: %w", path, ErrDeleted)
	}
	return it, err
}

// itemRepo splits an item path and finds its repository, with a lease the
// caller releases; an absent repository fails with ErrNotFound, reported
// as op on the path.
func (db *DB) itemRepo(path, op string) (r *repo.Repo, release func(), rp, key string, err error) {
	if rp, key, err = SplitPath(path); err != nil {
		return nil, nop, "", "", err
	}
	if r, release, err = db.hold(rp, false); err != nil {
		return nil, nop, "", "", err
	}
	if r == nil {
		return nil, nop, "", "", fmt.Errorf("%s %s: %w", op, path, ErrNotFound)
	}
	return r, release, rp, key, nil
}

// GetAny returns the item at path even if it is deleted (Item.Deleted
// then says so, and the item keeps the fields it had); a missing item
// fails with ErrNotFound, as Get does.
func (db *DB) GetAny(path string) (Item, error) { return db.getAny(path) }

// getAny returns the item even if deleted.
func (db *DB) getAny(path string) (Item, error) {
	r, release, rp, key, err := db.itemRepo(path, "get")
	defer release()
	if err != nil {
		return Item{}, err
	}
	e, ok := r.Lookup(key)
	if !ok {
		return Item{}, fmt.Errorf("get %s: %w", path, ErrNotFound)
	}
	return db.view(rp, key, e.Value, e.Schema, e.Head)
}

// view upgrades a stored value to the newest registered version of its
// schema, so readers always see the current shape.
func (db *DB) view(rp, key string, v item.Item, s commit.Schema, head commit.ID) (Item, error) {
	if s.NS != "" {
		if latest, ok := db.opts.Schemas.Latest(s.NS); ok && latest.Version > s.Version {
			up, err := db.opts.Schemas.Upgrade(v, s, latest.Version)
			if err != nil {
				return Item{}, fmt.Errorf("get %s/%s: %w", rp, key, err)
			}
			v, s = up, latest.Ref()
		}
	}
	return Item{repo: rp, key: key, data: v, schema: s, head: head}, nil
}

// GetAt returns the item as it was at commit id (deleted or not).
func (db *DB) GetAt(path string, id commit.ID) (Item, error) {
	r, release, rp, key, err := db.itemRepo(path, "get at "+id.Short())
	defer release()
	if err != nil {
		return Item{}, err
	}
	c, ok := r.Commit(id)
	if !ok || c.Key() != key {
		if h := r.Horizon(); h > 0 {
			return Item{}, fmt.Errorf("get %s at %s: %w: no such commit of this item here; history before %s was collected, so it may have been one",
				path, id.Short(), ErrNotFound, time.UnixMilli(h).UTC().Format(time.RFC3339))
		}
		return Item{}, fmt.Errorf("get %s at %s: %w: no such commit of this item", path, id.Short(), ErrNotFound)
	}
	v, s, err := r.ValueAt(id)
	if err != nil {
		return Item{}, fmt.Errorf("get %s at %s: %w", path, id.Short(), err)
	}
	return db.view(rp, key, v, s, id)
}

// GetAsOf returns the item as it was at time t: the value of its newest
// commit at or before t.
func (db *DB) GetAsOf(path string, t time.Time) (Item, error) {
	r, release, _, key, err := db.itemRepo(path, "get as of "+t.Format(time.RFC3339))
	defer release()
	if err != nil {
		return Item{}, err
	}
	id, err := r.ItemAsOf(key, t.UnixMilli())
	switch {
	case errors.Is(err, repo.ErrCollected):
		return Item{}, fmt.Errorf("get %s as of %s: %w", path, t.Format(time.RFC3339), err)
	case err != nil:
		return Item{}, fmt.Errorf("get %s as of %s: %w: the item did not exist yet", path, t.Format(time.RFC3339), ErrNotFound)
	}
	return db.GetAt(path, id)
}

// Kind is what a commit holds.
type Kind string

// The commit kinds.
const (
	KindFull  Kind = "full"
	KindDelta Kind = "delta"
	KindMerge Kind = "merge"
)

// CommitInfo describes one commit of an item's history.
type CommitInfo struct {
	ID      commit.ID
	Parents []commit.ID
	Time    time.Time
	Session commit.SessionID // zero for merges
	Kind    Kind
	Pending bool // waiting for parents from a peer
	// Collected: the commit's parents were collected (package gc), so
	// history before it is gone; its Parents are still named.
	Collected bool
}

// History returns an item's commits, newest first; every commit comes
// before its parents. After garbage collection, the oldest commits kept
// are marked Collected: history before them is gone.
func (db *DB) History(path string) ([]CommitInfo, error) {
	r, release, _, key, err := db.itemRepo(path, "history")
	defer release()
	if err != nil {
		return nil, err
	}
	hist := r.History(key)
	if len(hist) == 0 {
		return nil, fmt.Errorf("history %s: %w", path, ErrNotFound)
	}
	out := make([]CommitInfo, len(hist))
	for i, h := range hist {
		c := h.Commit
		kind := KindDelta
		switch {
		case c.IsMerge():
			kind = KindMerge
		case c.IsFull():
			kind = KindFull
		}
		out[i] = CommitInfo{ID: c.ID(), Parents: slices.Clone(c.Parents()), Time: c.Timestamp(), Session: c.Session(), Kind: kind,
			Pending: h.Pending, Collected: h.Shallow}
	}
	return out, nil
}

// Keys returns the keys of the repository's items, sorted; deleted items
// are left out unless withDeleted. A repository that does not exist is an
// error wrapping ErrNotFound.
func (db *DB) Keys(repoPath string, withDeleted bool) ([]string, error) {
	r, release, err := db.AcquireExisting(repoPath)
	if err != nil {
		return nil, err
	}
	defer release()
	if !withDeleted {
		return r.LiveKeys(), nil // in order from the live index: no sort
	}
	// Deleted items are not in the live index: collect and sort.
	keys := r.Keys(true)
	slices.Sort(keys)
	return keys, nil
}

// Count returns the number of items in the repository that are not
// deleted. A repository that does not exist is an error wrapping
// ErrNotFound.
func (db *DB) Count(repoPath string) (int, error) {
	r, release, err := db.AcquireExisting(repoPath)
	if err != nil {
		return 0, err
	}
	defer release()
	return r.Count(), nil
}

// All iterates over the repository's items that are not deleted, in no
// particular order. A repository that does not exist yields one error
// wrapping ErrNotFound.
func (db *DB) All(repoPath string) iter.Seq2[Item, error] {
	return func(yield func(Item, error) bool) {
		r, release, err := db.AcquireExisting(repoPath)
		if err != nil {
			yield(Item{}, err)
			return
		}
		defer release()
		for e := range r.All() {
			if e.Value.Deleted() {
				continue
			}
			it, err := db.view(repoPath, e.Key, e.Value, e.Schema, e.Head)
			if !yield(it, err) {
				return
			}
		}
	}
}

// Watch yields the item each time its head changes, starting with its
// current value if it exists, until ctx ends (the sequence then yields
// ctx's error and stops) or the loop breaks. Deleted states are yielded
// too: check Item.Deleted. An item that does not exist yet is watched
// until it is written, but its repository must exist: if it does not, the
// sequence yields one error wrapping ErrNotFound (and creates nothing).
//
// An item yielded that then leaves the database yields an error, and is
// watched on: one wrapping ErrAccessRemoved if a sync forgot it because
// the server no longer lets this session read it, one wrapping
// ErrNotFound if it existed only through writes a server refused (see
// DB.Rejected). If it comes back it is yielded again.
func (db *DB) Watch(ctx context.Context, path string) iter.Seq2[Item, error] {
	return func(yield func(Item, error) bool) {
		rp, key, err := SplitPath(path)
		if err != nil {
			yield(Item{}, err)
			return
		}
		r, release, err := db.AcquireExisting(rp) // held while watched
		if err != nil {
			yield(Item{}, err)
			return
		}
		defer release()
		var last commit.ID
		for {
			changed := r.Changed()
			if r.Closed() {
				yield(Item{}, ErrClosed)
				return
			}
			head, ok := r.Head(key)
			if !ok && last != (commit.ID{}) {
				last = commit.ID{}
				if !yield(Item{}, goneError(rp, key, r)) {
					return
				}
				continue
			}
			if ok && head != last {
				// The item read may be newer than head: what it holds is
				// what was yielded, so a later look does not yield it again.
				it, err := db.getAny(path)
				if err != nil {
					last = head
				} else if it.Head() == last {
					continue
				} else {
					last = it.Head()
				}
				if !yield(it, err) {
					return
				}
				continue
			}
			select {
			case <-changed:
			case <-ctx.Done():
				yield(Item{}, ctx.Err())
				return
			}
		}
	}
}
