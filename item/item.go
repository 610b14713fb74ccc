package item

import (
	"iter"
	"slices"
	"strings"
)

// Field is a named value.
type Field struct {
	Name  string
	Value Value
}

// Item is an immutable document: fields sorted by name plus the deleted
// flag. The zero Item is empty and not deleted.
type Item struct {
	fields  []Field
	deleted bool
}

// New returns an item with the given fields.
func New(fields map[string]Value) Item {
	fs := make([]Field, 0, len(fields))
	for k, v := range fields {
		fs = append(fs, Field{k, v})
	}
	slices.SortFunc(fs, func(a, b Field) int { return strings.Compare(a.Name, b.Name) })
	return Item{fields: fs}
}

// FromFields returns an item with the given fields, which must be sorted by
// name and unique; it takes ownership of the slice.
func FromFields(fields []Field, deleted bool) Item {
	return Item{fields: fields, deleted: deleted}
}

// Get returns the value of a field.
func (it Item) Get(name string) (Value, bool) {
	if len(it.fields) <= linearMax {
		return it.scan(name)
	}
	i, ok := it.find(name)
	if !ok {
		return Value{}, false
	}
	return it.fields[i].Value, true
}

// linearMax is the most fields Get looks through one by one: comparing
// names for equality costs less than ordering them, up to about this many.
const linearMax = 12

// scan is Get by comparing every name.
func (it Item) scan(name string) (Value, bool) {
	for i := range it.fields {
		if it.fields[i].Name == name {
			return it.fields[i].Value, true
		}
	}
	return Value{}, false
}

func (it Item) find(name string) (int, bool) {
	return slices.BinarySearchFunc(it.fields, name, func(f Field, n string) int { return strings.Compare(f.Name, n) })
}

// Len returns the number of fields.
func (it Item) Len() int { return len(it.fields) }

// Fields returns the fields in name order. The slice is shared: do not
// modify it.
func (it Item) Fields() []Field { return it.fields }

// All iterates over the fields in name order.
func (it Item) All() iter.Seq2[string, Value] {
	return func(yield func(string, Value) bool) {
		for _, f := range it.fields {
			if !yield(f.Name, f.Value) {
				return
			}
		}
	}
}

// Deleted reports whether the item is deleted.
func (it Item) Deleted() bool { return it.deleted }

// WithDeleted returns a copy of the item with the deleted flag set to d.
func (it Item) WithDeleted(d bool) Item { it.deleted = d; return it }

// With returns a copy of the item with field name set to v.
func (it Item) With(name string, v Value) Item {
	i, ok := it.find(name)
	fs := make([]Field, 0, len(it.fields)+1)
	fs = append(fs, it.fields[:i]...)
	fs = append(fs, Field{name, v})
	if ok {
		i++
	}
	fs = append(fs, it.fields[i:]...)
	return Item{fields: fs, deleted: it.deleted}
}

// Without returns a copy of the item without field name.
func (it Item) Without(name string) Item {
	i, ok := it.find(name)
	if !ok {
		return it
	}
	fs := make([]Field, 0, len(it.fields)-1)
	fs = append(fs, it.fields[:i]...)
	fs = append(fs, it.fields[i+1:]...)
	return Item{fields: fs, deleted: it.deleted}
}

// Update returns a copy of the item with the fields in set set (a later
// entry for the same name wins) and the fields in remove removed, in one
// allocation.
func (it Item) Update(set []Field, remove []string) Item {
	fs := make([]Field, len(it.fields), len(it.fields)+len(set))
	copy(fs, it.fields)
	out := Item{fields: fs, deleted: it.deleted}
	for _, f := range set {
		i, ok := out.find(f.Name)
		if ok {
			out.fields[i] = f
		} else {
			out.fields = slices.Insert(out.fields, i, f)
		}
	}
	for _, name := range remove {
		if i, ok := out.find(name); ok {
			out.fields = slices.Delete(out.fields, i, i+1)
		}
	}
	return out
}

// Map returns the fields as a map.
func (it Item) Map() map[string]Value {
	m := make(map[string]Value, len(it.fields))
	for _, f := range it.fields {
		m[f.Name] = f.Value
	}
	return m
}

// Valid checks every field name and value.
func (it Item) Valid() error {
	for i, f := range it.fields {
		if err := validName(f.Name); err != nil {
			return err
		}
		if i > 0 && it.fields[i-1].Name >= f.Name {
			return errUnsorted
		}
		if err := f.Value.Valid(); err != nil {
			return fieldErr(f.Name, err)
		}
	}
	return nil
}

// ItemsEqual reports whether two items have the same fields and flag.
func ItemsEqual(a, b Item) bool {
	return a.deleted == b.deleted && slices.EqualFunc(a.fields, b.fields, func(x, y Field) bool {
		return x.Name == y.Name && Equal(x.Value, y.Value)
	})
}

// String formats the item for debugging and golden files.
func (it Item) String() string {
	var b strings.Builder
	if it.deleted {
		b.WriteString("deleted ")
	}
	b.WriteString("{")
	for i, f := range it.fields {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(f.Name + ": " + f.Value.GoString())
	}
	b.WriteString("}")
	return b.String()
}
