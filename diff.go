package goatdb

import (
	"errors"
	"fmt"
	"time"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
)

// Version names a version of an item, for Diff: the value a commit holds
// (VersionAt), the value the item had at a time (VersionAsOf), or, for the
// zero Version, its current value.
type Version struct {
	kind byte // 0 current, 'c' commit, 't' time, 'a' absent
	id   commit.ID
	t    time.Time
}

// VersionAbsent is the item before it existed: Diff from it lists every
// field as added.
func VersionAbsent() Version { return Version{kind: 'a'} }

// VersionAt is the version commit id holds.
func VersionAt(id commit.ID) Version { return Version{kind: 'c', id: id} }

// VersionAsOf is the version the item had at time t: its newest commit at
// or before t. A time before the item existed is its absence: every field
// of the other version is added (or removed).
func VersionAsOf(t time.Time) Version { return Version{kind: 't', t: t} }

// String returns the commit's id, the time (RFC 3339), "absent" or
// "current".
func (v Version) String() string {
	switch v.kind {
	case 'a':
		return "absent"
	case 'c':
		return v.id.String()
	case 't':
		return v.t.UTC().Format(time.RFC3339Nano)
	}
	return "current"
}

// Change is how one field differs between two versions of an item.
//
// A field added has New only; one removed, Old only; one whose value was
// replaced (or changed type), both. A set present in both versions is
// compared element by element: Added and Removed hold its elements, sorted,
// and Old and New are nil. A map present in both likewise: Put holds the
// keys set (with their new values) and Unset the keys removed, sorted.
// Values are plain Go values, as Item.Get returns them.
type Change struct {
	Field          string
	Old, New       any
	Added, Removed []any
	Put            map[string]any
	Unset          []string
}

// ItemDiff is what changed in an item from one version to another.
type ItemDiff struct {
	Path     string
	From, To commit.ID // the commits compared; zero for the absence of the item
	// Changes are the fields that differ, sorted by name.
	Changes []Change
	// Deleted is set if the item is deleted in To and not in From;
	// Restored if the other way round. A deleted item keeps its fields.
	Deleted, Restored bool
}

// Empty reports whether the two versions are the same.
func (d ItemDiff) Empty() bool { return len(d.Changes) == 0 && !d.Deleted && !d.Restored }

// Diff returns the field-level changes to the item at path (/type/repo/item)
// from version from to version to. Both are read in the newest version of
// the item's schema, so a schema upgrade between them is not a change. A
// commit of another item, or one not held (collected, say), is an error
// wrapping ErrNotFound (or ErrCollected).
func (db *DB) Diff(path string, from, to Version) (ItemDiff, error) {
	a, err := db.version(path, from)
	if err != nil {
		return ItemDiff{}, fmt.Errorf("goatdb: diff %s from %s: %w", path, from, err)
	}
	b, err := db.version(path, to)
	if err != nil {
		return ItemDiff{}, fmt.Errorf("goatdb: diff %s to %s: %w", path, to, err)
	}
	return diffItems(path, a, b), nil
}

// version returns the item at path as version v has it; the zero Item
// (no head) if v is a time before the item existed.
func (db *DB) version(path string, v Version) (Item, error) {
	switch v.kind {
	case 'a':
		return Item{}, nil
	case 'c':
		return db.GetAt(path, v.id)
	case 't':
		it, err := db.GetAsOf(path, v.t)
		if errors.Is(err, ErrNotFound) && !errors.Is(err, ErrCollected) {
			if _, cerr := db.getAny(path); cerr == nil {
				return Item{}, nil // the item did not exist yet
			}
		}
		return it, err
	}
	return db.getAny(path)
}

// diffItems compares two versions of the item at path.
func diffItems(path string, a, b Item) ItemDiff {
	d := ItemDiff{Path: path, From: a.head, To: b.head}
	delta := item.Diff(a.data, b.data)
	switch delta.Deleted {
	case item.FlagSet:
		d.Deleted = true
	case item.FlagClear:
		d.Restored = true
	}
	for _, e := range delta.Edits {
		c := Change{Field: e.Field}
		switch e.Op {
		case item.OpSet:
			if old, ok := a.data.Get(e.Field); ok {
				c.Old = old.Any()
			}
			c.New = e.Value.Any()
		case item.OpRemove:
			if old, ok := a.data.Get(e.Field); ok {
				c.Old = old.Any()
			}
		case item.OpSetOps:
			c.Added, c.Removed = anys(e.Add), anys(e.Del)
		case item.OpMapOps:
			if len(e.Put) > 0 {
				c.Put = make(map[string]any, len(e.Put))
				for _, f := range e.Put {
					c.Put[f.Name] = f.Value.Any()
				}
			}
			c.Unset = e.DelKeys
		}
		d.Changes = append(d.Changes, c)
	}
	return d
}

func anys(vs []item.Value) []any {
	if len(vs) == 0 {
		return nil
	}
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v.Any()
	}
	return out
}
