package schema_test

import (
	"testing"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/schema"
)

// TestListDefaultsAndUpgrades checks that lists a schema makes (defaults,
// and lists an upgrade creates) get ids every peer derives alike, so that
// an upgrade inside a merge stores; and that CoerceAny converts between
// lists and sets as the field's type says.
func TestListDefaultsAndUpgrades(t *testing.T) {
	r := schema.NewRegistry()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.Register(schema.Schema{NS: "todo", Version: 1, Fields: []schema.Field{{Name: "tags", Type: item.TypeSet}}}))
	must(r.Register(schema.Schema{NS: "todo", Version: 2,
		Fields: []schema.Field{{Name: "steps", Type: item.TypeList}, {Name: "extra", Type: item.TypeList, Default: item.StringList("z")}},
		Upgrade: func(it item.Item) (item.Item, error) {
			tags, _ := it.Get("tags")
			steps, err := item.List(tags.Elems()...)
			return it.Without("tags").With("steps", steps), err
		}}))
	v1 := item.New(map[string]item.Value{"tags": item.StringSet("b", "a")})
	up, err := r.Upgrade(v1, commit.Schema{NS: "todo", Version: 1}, 2)
	must(err)
	again, err := r.Upgrade(v1, commit.Schema{NS: "todo", Version: 1}, 2)
	must(err)
	if !item.ItemsEqual(up, again) {
		t.Errorf("two upgrades differ: %s, %s", up, again)
	}
	if _, err := item.AppendItem(nil, up); err != nil {
		t.Errorf("upgraded item %s does not encode: %v", up, err)
	}
	if steps, _ := up.Get("steps"); steps.GoString() != `["a", "b"]` {
		t.Errorf("steps = %#v", steps)
	}
	if extra, _ := up.Get("extra"); extra.GoString() != `["z"]` {
		t.Errorf("extra = %#v, want the default", extra)
	}

	s2, _ := r.Latest("todo")
	if v, err := s2.CoerceAny("steps", item.StringSet("b", "a")); err != nil || v.GoString() != `["a", "b"]` {
		t.Errorf("CoerceAny of a set for a list field = %#v, %v", v, err)
	}
	s1, _ := r.Lookup(commit.Schema{NS: "todo", Version: 1})
	if v, err := s1.CoerceAny("tags", item.StringList("b", "a", "b")); err != nil || v.GoString() != `{"a", "b"}` {
		t.Errorf("CoerceAny of a list for a set field = %#v, %v", v, err)
	}
}
