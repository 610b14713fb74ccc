package goatdb

import (
	"fmt"
	"iter"
	"slices"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/repo"
)

// maxViewOptimistic is how many times View runs its function on live
// reads before it runs it on a copy of the whole repository.
const maxViewOptimistic = 3

// View runs fn with a snapshot of the repository at repoPath: all the
// reads fn makes through it see the repository as it was at one instant,
// so every Batch and Txn (and every write of one item) is seen whole or
// not at all. It returns fn's error. A repository that does not exist is
// an error wrapping ErrNotFound.
//
// Reads are taken as fn asks for them and checked when fn returns: if an
// item read has moved meanwhile, the run is discarded (its error too) and
// fn runs again, so fn may run more than once and must have no side
// effects beyond setting what it returns. After three discarded runs fn
// runs on a copy of the whole repository taken at once, which always
// holds. Listing the repository (Keys, Count, All) takes that copy at
// once. No lock is held while fn runs: writers go on meanwhile.
//
// A view sees what this database holds; edits another peer made
// concurrently arrive by sync and merge like any other write.
func (db *DB) View(repoPath string, fn func(s *Snapshot) error) error {
	r, release, err := db.AcquireExisting(repoPath)
	if err != nil {
		return err
	}
	defer release()
	for attempt := 0; ; attempt++ {
		s := &Snapshot{db: db, rp: repoPath, r: r, seen: map[string]repo.Entry{}}
		if attempt >= maxViewOptimistic {
			s.freeze()
		}
		err := s.run(fn)
		s.done = true
		if s.valid() {
			return err
		}
	}
}

// Snapshot is a consistent read-only view of one repository; see DB.View.
// It is valid only inside the function given to View, and not for
// concurrent use.
type Snapshot struct {
	db   *DB
	rp   string
	r    *repo.Repo
	seen map[string]repo.Entry // items read one by one; a zero Head: absent
	// all is the whole repository at one instant, once it was listed.
	all    []repo.Entry
	byKey  map[string]int // index in all
	frozen bool
	stale  bool // a read disagreed with an earlier one: the run is discarded
	done   bool // fn returned
}

func (s *Snapshot) run(fn func(*Snapshot) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("view %s: function panicked: %v", s.rp, p)
		}
	}()
	return fn(s)
}

func (s *Snapshot) usable(op string) error {
	if s.done {
		return fmt.Errorf("%s %s: %w: snapshot used after its function returned", op, s.rp, ErrClosed)
	}
	return nil
}

// freeze copies the whole repository at one instant; reads made before
// that must agree with it.
func (s *Snapshot) freeze() {
	if s.frozen {
		return
	}
	s.frozen = true
	s.byKey = map[string]int{}
	for e := range s.r.All() {
		s.byKey[e.Key] = len(s.all)
		s.all = append(s.all, e)
	}
	for k, e := range s.seen {
		if s.lookup(k).Head != e.Head {
			s.stale = true
		}
	}
}

// lookup returns an item of the frozen copy; a zero Head: absent.
func (s *Snapshot) lookup(key string) repo.Entry {
	if i, ok := s.byKey[key]; ok {
		return s.all[i]
	}
	return repo.Entry{Key: key}
}

// valid reports whether every read of the run saw the same instant.
func (s *Snapshot) valid() bool {
	if s.stale {
		return false
	}
	if s.frozen || len(s.seen) == 0 {
		return true
	}
	keys := make([]string, 0, len(s.seen))
	for k := range s.seen {
		keys = append(keys, k)
	}
	for i, h := range s.r.Heads(keys) {
		if h != s.seen[keys[i]].Head {
			return false
		}
	}
	return true
}

// Get returns the item at path, which must be in the snapshot's
// repository, as DB.Get does.
func (s *Snapshot) Get(path string) (Item, error) {
	if err := s.usable("get"); err != nil {
		return Item{}, err
	}
	rp, key, err := SplitPath(path)
	if err != nil {
		return Item{}, err
	}
	if rp != s.rp {
		return Item{}, fmt.Errorf("get %s: %w: the snapshot is of %s", path, ErrInvalidPath, s.rp)
	}
	e := s.entry(key)
	switch {
	case e.Head == commit.ID{}:
		return Item{}, fmt.Errorf("get %s: %w", path, ErrNotFound)
	case e.Value.Deleted():
		return Item{}, fmt.Errorf("get %s: %w", path, ErrDeleted)
	}
	return s.db.view(s.rp, key, e.Value, e.Schema, e.Head)
}

// entry reads an item (from the copy once frozen), the same each time.
func (s *Snapshot) entry(key string) repo.Entry {
	if s.frozen {
		return s.lookup(key)
	}
	if e, ok := s.seen[key]; ok {
		return e
	}
	e, ok := s.r.Lookup(key)
	if !ok {
		e = repo.Entry{Key: key}
	}
	s.seen[key] = e
	return e
}

// Keys returns the keys of the repository's items, sorted; deleted items
// are left out unless withDeleted.
func (s *Snapshot) Keys(withDeleted bool) ([]string, error) {
	if err := s.usable("keys"); err != nil {
		return nil, err
	}
	s.freeze()
	var keys []string
	for _, e := range s.all {
		if withDeleted || !e.Value.Deleted() {
			keys = append(keys, e.Key)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

// Count returns the number of items in the repository that are not
// deleted.
func (s *Snapshot) Count() (int, error) {
	if err := s.usable("count"); err != nil {
		return 0, err
	}
	s.freeze()
	n := 0
	for _, e := range s.all {
		if !e.Value.Deleted() {
			n++
		}
	}
	return n, nil
}

// All iterates over the repository's items that are not deleted, in no
// particular order.
func (s *Snapshot) All() iter.Seq2[Item, error] {
	return func(yield func(Item, error) bool) {
		if err := s.usable("all"); err != nil {
			yield(Item{}, err)
			return
		}
		s.freeze()
		for _, e := range s.all {
			if e.Value.Deleted() {
				continue
			}
			if !yield(s.db.view(s.rp, e.Key, e.Value, e.Schema, e.Head)) {
				return
			}
		}
	}
}
