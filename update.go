package goatdb

import (
	"context"
	"errors"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
)

// DeleteItem is returned by the function given to DB.Update to delete the
// item instead of writing fields. It is a request, not a failure: Update
// does not return it.
//
//lint:ignore ST1012 a request to Update, like fs.SkipDir, not a failure
var DeleteItem = errors.New("goatdb: delete item")

// Update runs fn on the current value of the item at path and writes the
// fields fn returns, as Put would, only if the item's head is still the
// one fn saw; if another write moved it meanwhile, fn runs again on the
// new value. So concurrent Updates never lose each other's changes: ten
// goroutines each adding 1 to a field twenty times add 200. It returns
// the item's head commit id after the write.
//
//   - fn may run more than once, so it must have no side effects. It must
//     not use db either, nor block: it may run while the item's
//     repository is locked.
//   - A missing item is given to fn as an Item with Exists false (no
//     fields, zero head), and a deleted one with Deleted true; the fields
//     fn returns create or restore it.
//   - The fields fn returns are set as by Put: a nil value removes a
//     field, and fields not named keep their values. No fields write
//     nothing, unless the Replace option makes the item exactly the
//     fields returned.
//   - fn deletes the item by returning DeleteItem (a missing item then
//     fails with ErrNotFound, as Delete does).
//   - Any other error from fn, or a panic in it, aborts: nothing is
//     written and Update returns that error.
//   - ctx is checked before each run of fn: once it is done, Update
//     returns its error with nothing written.
//
// opts are those of Put: WithSchema, Replace, and IfHead or IfAbsent,
// with which Update fails with ErrConflict, and does not retry, when the
// item's head is not the one given.
//
// The guarantee is local to this database: a sync may later bring an
// edit another peer made to the same item concurrently, and the two are
// merged field by field (see the package documentation), not retried.
func (db *DB) Update(ctx context.Context, path string, fn func(Item) (Fields, error), opts ...PutOption) (commit.ID, error) {
	if err := ctx.Err(); err != nil {
		return commit.ID{}, err
	}
	rp, key, err := SplitPath(path)
	if err != nil {
		return commit.ID{}, err
	}
	cfg := newPutConfig(opts)
	b := Batch{db: db, ops: make([]batchOp, 0, 1)}
	b.add(path, cfg, func(cur repo.Current) (item.Item, commit.Schema, error) {
		if err := ctx.Err(); err != nil {
			return item.Item{}, commit.Schema{}, err
		}
		if err := cfg.check("update", path, cur.Head); err != nil {
			return item.Item{}, commit.Schema{}, err
		}
		it, err := db.view(rp, key, cur.Value, cur.Schema, cur.Head)
		if err != nil {
			return item.Item{}, commit.Schema{}, err
		}
		return db.applyUpdate(cur, it, fn, cfg)
	})
	var id [1]commit.ID
	if err := b.commitOne(id[:]); err != nil {
		return commit.ID{}, err
	}
	return id[0], nil
}

// applyUpdate runs an Update's function on it, the item cur as read, and
// computes the item it leaves.
func (db *DB) applyUpdate(cur repo.Current, it Item, fn func(Item) (Fields, error), cfg putConfig) (item.Item, commit.Schema, error) {
	fields, err := fn(it)
	switch {
	case errors.Is(err, DeleteItem):
		return applyDelete(cur, it.Path())
	case err != nil:
		return item.Item{}, commit.Schema{}, err
	case len(fields) == 0 && !cfg.replace:
		return cur.Value, cur.Schema, nil
	}
	return db.applyPut(cur, it.Path(), fields, cfg)
}
