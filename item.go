package goatdb

import (
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
)

// Item is an item's value as read: its fields, schema and head commit. It is
// a snapshot: later writes do not change it.
type Item struct {
	repo   string // /type/repo
	key    string
	data   item.Item
	schema commit.Schema
	head   commit.ID
}

// Path returns the item's path /type/repo/item.
func (it Item) Path() string {
	if it.repo == "" {
		return ""
	}
	return it.repo + "/" + it.key
}

// Schema returns the item's schema (the zero Schema is dynamic).
func (it Item) Schema() commit.Schema { return it.schema }

// Head returns the id of the commit this value comes from.
func (it Item) Head() commit.ID { return it.head }

// Exists reports whether the item had a commit when it was read: false
// for the empty Item that DB.Update gives its function for an item not
// written yet, and for one a Tx created and has not committed.
func (it Item) Exists() bool { return it.head != commit.ID{} }

// Deleted reports whether the item is deleted.
func (it Item) Deleted() bool { return it.data.Deleted() }

// Data returns the typed fields.
func (it Item) Data() item.Item { return it.data }

// Value returns a field's typed value.
func (it Item) Value(field string) (item.Value, bool) { return it.data.Get(field) }

// Get returns a field as a plain Go value (string, float64, int64, bool,
// time.Time, []any for sets, map[string]any for maps), or nil if absent.
func (it Item) Get(field string) any {
	v, ok := it.data.Get(field)
	if !ok {
		return nil
	}
	return v.Any()
}

// Fields returns every field as plain Go values.
func (it Item) Fields() map[string]any {
	m := make(map[string]any, it.data.Len())
	for name, v := range it.data.All() {
		m[name] = v.Any()
	}
	return m
}

// Fields are the fields given to Put and Create: plain Go values (see
// item.FromAny) or item.Value. A nil value removes the field.
type Fields = map[string]any
