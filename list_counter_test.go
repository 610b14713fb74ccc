package goatdb_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/schema"
)

// TestListCounterConcurrentSync has two databases edit one item's list and
// counter concurrently (each inserting runs and incrementing several times
// while apart), then sync both ways through a loopback server: both end
// with the same value, every insertion there, each writer's run together,
// and the counter the sum of every increment.
func TestListCounterConcurrentSync(t *testing.T) {
	_, url := syncServer(t)
	a, b := dbtest.OpenDB(t, nil), dbtest.OpenDB(t, nil)
	const path = "/data/todo/1"
	list := func(xs ...string) item.Value { return item.StringList(xs...) }
	if _, err := a.Put(path, goatdb.Fields{"steps": list("start", "end"), "views": item.Counter(10)}); err != nil {
		t.Fatal(err)
	}
	syncOK(t, a, url)
	syncOK(t, b, url, "/data/todo")
	if _, err := b.Get(path); err != nil {
		t.Fatalf("b after sync: %v", err)
	}

	// edit inserts run after "start" and adds n to the counter, one commit
	// per element and per increment.
	edit := func(db *goatdb.DB, run []string, n int) {
		for i := range run {
			_, err := db.Update(context.Background(), path, func(it goatdb.Item) (goatdb.Fields, error) {
				v, _ := it.Value("steps")
				elems := v.ListElems()
				at := slices.IndexFunc(elems, func(e item.ListElem) bool { return e.Value.Str() == "start" }) + 1 + i
				l, err := item.ListOf(slices.Insert(elems, at, item.ListElem{Value: item.String(run[i])}))
				return goatdb.Fields{"steps": l}, err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		for range n {
			_, err := db.Update(context.Background(), path, func(it goatdb.Item) (goatdb.Fields, error) {
				v, _ := it.Value("views")
				return goatdb.Fields{"views": item.Counter(v.Int64() + 1)}, nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	edit(a, []string{"a1", "a2", "a3"}, 3)
	edit(b, []string{"b1", "b2"}, 4)
	// b also deletes "end", which a keeps.
	if _, err := b.Put(path, goatdb.Fields{"steps": deleteValue(t, b, path, "end")}); err != nil {
		t.Fatal(err)
	}

	for range 2 {
		syncOK(t, a, url)
		syncOK(t, b, url)
	}
	ga, _ := a.Get(path)
	gb, _ := b.Get(path)
	if !item.ItemsEqual(ga.Data(), gb.Data()) {
		t.Fatalf("a has %s, b has %s", ga.Data(), gb.Data())
	}
	steps, _ := ga.Value("steps")
	got := fmt.Sprint(steps.Any())
	if got != "[start b1 b2 a1 a2 a3]" && got != "[start a1 a2 a3 b1 b2]" {
		t.Errorf("steps = %s, want start, then each run together", got)
	}
	if views, _ := ga.Value("views"); views.Type() != item.TypeCounter || views.Int64() != 17 {
		t.Errorf("views = %#v, want 17c (10 + 3 + 4)", views)
	}
}

// deleteValue returns the item's list without the element valued x.
func deleteValue(t *testing.T, db *goatdb.DB, path, x string) item.Value {
	t.Helper()
	it, err := db.Get(path)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := it.Value("steps")
	l, err := item.ListOf(slices.DeleteFunc(v.ListElems(), func(e item.ListElem) bool { return e.Value.Str() == x }))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestListSchemaPut checks that with a schema, a Go slice written to a
// list field keeps its order and duplicates and an int written to a
// counter field is a counter, and that rewriting the list keeps the ids of
// the elements that stayed.
func TestListSchemaPut(t *testing.T) {
	reg := schema.NewRegistry()
	err := reg.Register(schema.Schema{NS: "todo", Version: 1, Fields: []schema.Field{
		{Name: "steps", Type: item.TypeList}, {Name: "tags", Type: item.TypeSet}, {Name: "views", Type: item.TypeCounter}}})
	if err != nil {
		t.Fatal(err)
	}
	db := dbtest.OpenDB(t, &goatdb.Options{Schemas: reg})
	const path = "/data/todo/s"
	put := func(f goatdb.Fields) {
		if _, err := db.Put(path, f, goatdb.WithSchema("todo")); err != nil {
			t.Fatal(err)
		}
	}
	put(goatdb.Fields{"steps": []string{"b", "a", "b"}, "tags": []string{"b", "a", "b"}, "views": 3})
	it, _ := db.Get(path)
	steps, _ := it.Value("steps")
	tags, _ := it.Value("tags")
	views, _ := it.Value("views")
	if steps.GoString() != `["b", "a", "b"]` || tags.GoString() != `{"a", "b"}` || views.GoString() != "3c" {
		t.Fatalf("steps %#v, tags %#v, views %#v", steps, tags, views)
	}
	put(goatdb.Fields{"steps": []string{"b", "x", "a", "b"}, "views": 5})
	it, _ = db.Get(path)
	steps2, _ := it.Value("steps")
	old, now := steps.ListElems(), steps2.ListElems()
	if len(now) != 4 || now[0].ID != old[0].ID || now[2].ID != old[1].ID || now[3].ID != old[2].ID {
		t.Errorf("rewritten list %v lost the ids of %v", now, old)
	}
}
