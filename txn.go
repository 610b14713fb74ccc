package goatdb

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
)

// errMoved is how a transaction learns, when it commits or validates,
// that an item it read has moved: it runs again.
var errMoved = errors.New("goatdb: transaction read an item that moved")

// Txn runs fn in a transaction on the repository at repoPath and commits
// the writes fn makes through tx atomically (all or none, one fsync), only
// if no item fn read or wrote through tx has changed since fn first
// touched it. If one has, the writes are dropped and fn runs again, until
// it commits, returns an error, or ctx is done.
//
//   - fn may run more than once, so it must have no side effects outside
//     tx; only the run that commits counts. It may use db for other
//     repositories, and reads through tx see its own writes.
//   - An error from fn (or a panic in it) aborts: nothing is written and
//     Txn returns it, unless the run read items that moved meanwhile; it
//     then runs again, as a run whose reads were not one state does not
//     decide.
//   - ctx is checked before each run: once it is done Txn returns its
//     error with nothing written.
//   - Reads see committed writes only, never a write still waiting for
//     its fsync, so a transaction that reads an item another write is
//     changing waits for that write to finish before it runs again.
//   - A Tx reads single items. To decide from a listing (which items
//     exist), read it in a View and write with IfHead or IfAbsent
//     conditions, which fail with ErrConflict.
//
// Atomicity is per repository and local to this database: a sync may
// later bring edits another peer made concurrently to the same items,
// which merge field by field with these (see the package documentation).
func (db *DB) Txn(ctx context.Context, repoPath string, fn func(tx *Tx) error) error {
	if err := CheckRepoPath(repoPath); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		changed, err := db.txnOnce(repoPath, fn)
		if !errors.Is(err, errMoved) {
			return err
		}
		if err := txnWait(ctx, changed, attempt); err != nil {
			return err
		}
	}
}

// txnOnce runs fn once and commits it; errMoved says to run it again,
// after changed is closed (nil: at once).
func (db *DB) txnOnce(repoPath string, fn func(*Tx) error) (changed <-chan struct{}, err error) {
	r, release, err := db.hold(repoPath, false)
	if err != nil {
		return nil, err
	}
	defer release()
	if r != nil {
		changed = r.Changed()
	}
	tx := &Tx{db: db, rp: repoPath, r: r, items: map[string]*txItem{}}
	err = tx.run(fn)
	tx.done = true
	if err != nil {
		if tx.moved() {
			return changed, errMoved
		}
		return nil, err
	}
	return changed, tx.commit()
}

// txnWait waits before a transaction runs again: until the repository
// changes or a short, growing, randomised pause ends.
func txnWait(ctx context.Context, changed <-chan struct{}, attempt int) error {
	if attempt == 0 {
		return nil
	}
	d := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 5)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-changed:
	case <-t.C:
	}
	return nil
}

// Tx is a transaction's view of one repository and the writes it makes;
// see DB.Txn. It is valid only inside the function given to Txn, and not
// for concurrent use.
type Tx struct {
	db    *DB
	rp    string
	r     *repo.Repo // nil while the repository does not exist
	items map[string]*txItem
	order []string // keys, in the order first touched
	done  bool     // fn returned
}

// txItem is an item as the transaction read it and as its writes leave
// it.
type txItem struct {
	read  repo.Current
	cur   repo.Current
	wrote bool
}

func (tx *Tx) run(fn func(*Tx) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("txn %s: function panicked: %v", tx.rp, p)
		}
	}()
	return fn(tx)
}

// touch returns the item at path as the transaction sees it, reading it
// the first time.
func (tx *Tx) touch(op, path string) (*txItem, error) {
	if tx.done {
		return nil, fmt.Errorf("%s %s: %w: transaction used after its function returned", op, path, ErrClosed)
	}
	rp, key, err := SplitPath(path)
	if err != nil {
		return nil, err
	}
	if rp != tx.rp {
		return nil, fmt.Errorf("%s %s: %w: the transaction is on %s", op, path, ErrInvalidPath, tx.rp)
	}
	if it := tx.items[key]; it != nil {
		return it, nil
	}
	cur := repo.Current{Key: key}
	if tx.r != nil {
		if e, ok := tx.r.Lookup(key); ok {
			cur = repo.Current{Key: key, Value: e.Value, Schema: e.Schema, Head: e.Head, Exists: true}
		}
	}
	it := &txItem{read: cur, cur: cur}
	tx.items[key] = it
	tx.order = append(tx.order, key)
	return it, nil
}

// Get returns the item at path, which must be in the transaction's
// repository, as of the transaction's own writes; a missing item fails
// with ErrNotFound, a deleted one with ErrDeleted. Its Head is the head it
// was read at.
func (tx *Tx) Get(path string) (Item, error) {
	it, err := tx.touch("get", path)
	if err != nil {
		return Item{}, err
	}
	if !it.cur.Exists {
		return Item{}, fmt.Errorf("get %s: %w", path, ErrNotFound)
	}
	if it.cur.Value.Deleted() {
		return Item{}, fmt.Errorf("get %s: %w", path, ErrDeleted)
	}
	return tx.db.view(tx.rp, it.cur.Key, it.cur.Value, it.cur.Schema, it.read.Head)
}

// Put sets fields of the item at path as DB.Put does, when the
// transaction commits; an error (bad input, or ErrConflict from IfHead or
// IfAbsent, checked against the head the transaction read) leaves the
// transaction as it was.
func (tx *Tx) Put(path string, fields Fields, opts ...PutOption) error {
	it, err := tx.touch("put", path)
	if err != nil {
		return err
	}
	cfg := newPutConfig(opts)
	if err := cfg.inTxn("put", path); err != nil {
		return err
	}
	if err := cfg.check("put", path, it.read.Head); err != nil {
		return err
	}
	v, s, err := tx.db.applyPut(it.cur, path, fields, cfg)
	if err != nil {
		return err
	}
	it.set(v, s)
	return nil
}

// Create puts a new item with a random key in the transaction's
// repository and returns its path.
func (tx *Tx) Create(fields Fields, opts ...PutOption) (string, error) {
	path := tx.rp + "/" + NewKey()
	return path, tx.Put(path, fields, opts...)
}

// Delete marks the item at path deleted as DB.Delete does, when the
// transaction commits.
func (tx *Tx) Delete(path string, opts ...PutOption) error {
	it, err := tx.touch("delete", path)
	if err != nil {
		return err
	}
	cfg := newPutConfig(opts)
	if err := cfg.inTxn("delete", path); err != nil {
		return err
	}
	if err := cfg.check("delete", path, it.read.Head); err != nil {
		return err
	}
	v, s, err := applyDelete(it.cur, path)
	if err != nil {
		return err
	}
	it.set(v, s)
	return nil
}

func (it *txItem) set(v item.Item, s commit.Schema) {
	it.cur.Value, it.cur.Schema, it.cur.Exists, it.wrote = v, s, true, true
}

// moved reports whether an item the transaction read has a different
// head now.
func (tx *Tx) moved() bool {
	if len(tx.order) == 0 {
		return false
	}
	r, release, err := tx.db.hold(tx.rp, false)
	if err != nil {
		return false // the error shows again on the next use
	}
	defer release()
	if r == nil {
		return tx.r != nil // a repository does not disappear while open
	}
	heads := r.Heads(tx.order)
	for i, k := range tx.order {
		if heads[i] != tx.items[k].read.Head {
			return true
		}
	}
	return false
}

// commit writes the transaction's writes if every item it touched still
// has the head it read (errMoved otherwise).
func (tx *Tx) commit() error {
	updates := make([]repo.Update, 0, len(tx.order))
	wrote := false
	for _, k := range tx.order {
		it := tx.items[k]
		wrote = wrote || it.wrote
		updates = append(updates, repo.Update{Key: k, Fn: func(cur repo.Current) (item.Item, commit.Schema, error) {
			switch {
			case cur.Head != it.read.Head:
				return item.Item{}, commit.Schema{}, errMoved
			case !it.wrote:
				return cur.Value, cur.Schema, nil
			}
			return it.cur.Value, it.cur.Schema, nil
		}})
	}
	if !wrote {
		if tx.moved() {
			return errMoved
		}
		return nil
	}
	if err := tx.db.writable(); err != nil {
		return err
	}
	r := tx.r
	if r == nil {
		var release func()
		var err error
		if r, release, err = tx.db.Acquire(tx.rp); err != nil {
			return err
		}
		defer release()
	}
	_, err := r.Write(updates...)
	return err
}
