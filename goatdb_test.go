package goatdb_test

import (
	"errors"
	"testing"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/internal/dbtest"
)

func TestPutGetDelete(t *testing.T) {
	db := dbtest.OpenDB(t, nil)
	id1, err := db.Put("/data/tasks/a", goatdb.Fields{"title": "x", "count": 1})
	if err != nil {
		t.Fatal(err)
	}
	id2, err := db.Put("/data/tasks/a", goatdb.Fields{"count": 2, "title": nil})
	if err != nil || id1 == id2 {
		t.Fatal(err, id1, id2)
	}
	it, err := db.Get("/data/tasks/a")
	if err != nil {
		t.Fatal(err)
	}
	if it.Get("count") != int64(2) || it.Get("title") != nil {
		t.Fatalf("got %v", it.Fields())
	}
	if err := db.Delete("/data/tasks/a"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Get("/data/tasks/a"); !errors.Is(err, goatdb.ErrNotFound) || !errors.Is(err, goatdb.ErrDeleted) {
		t.Fatal(err)
	}
	h, _ := db.History("/data/tasks/a")
	if len(h) != 3 {
		t.Fatal(h)
	}
	old, err := db.GetAt("/data/tasks/a", id1)
	if err != nil || old.Get("title") != "x" {
		t.Fatal(err, old)
	}
}
