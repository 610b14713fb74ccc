package goatdb_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
)

// TestDiff: field-level changes between versions named by commit and by
// time, sets and maps element by element, deletion, the absence before
// the item existed, and the errors.
func TestDiff(t *testing.T) {
	var off time.Duration
	now := func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).Add(off) }
	db := dbtest.OpenDB(t, &goatdb.Options{Now: now})
	const p = "/data/x/a"
	put := func(f goatdb.Fields) commit.ID {
		t.Helper()
		off += time.Minute
		id, err := db.Put(p, f)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	v1 := put(goatdb.Fields{"title": "first", "n": 1, "tags": []string{"a", "b"},
		"meta": map[string]any{"k1": "x", "k2": "y"}, "gone": true})
	v2 := put(goatdb.Fields{"title": "second", "n": 1, "tags": []string{"b", "c"},
		"meta": map[string]any{"k2": "z", "k3": "w"}, "added": "new", "gone": nil})

	d, err := db.Diff(p, goatdb.VersionAt(v1), goatdb.VersionAt(v2))
	if err != nil {
		t.Fatal(err)
	}
	want := []goatdb.Change{
		{Field: "added", New: "new"},
		{Field: "gone", Old: true},
		{Field: "meta", Put: map[string]any{"k2": "z", "k3": "w"}, Unset: []string{"k1"}},
		{Field: "tags", Added: []any{"c"}, Removed: []any{"a"}},
		{Field: "title", Old: "first", New: "second"},
	}
	if d.From != v1 || d.To != v2 || d.Deleted || d.Restored || !reflect.DeepEqual(d.Changes, want) {
		t.Fatalf("diff v1..v2:\n got %+v\nwant %+v", d, want)
	}
	// By time, and the current version.
	if d2, err := db.Diff(p, goatdb.VersionAsOf(now().Add(-30*time.Second)), goatdb.Version{}); err != nil || !reflect.DeepEqual(d2, d) {
		t.Fatalf("diff by time to current: %+v, %v; want %+v", d2, err, d)
	}
	// Back again is the reverse.
	back, err := db.Diff(p, goatdb.VersionAt(v2), goatdb.VersionAt(v1))
	if err != nil || len(back.Changes) != 5 || !reflect.DeepEqual(back.Changes[3], goatdb.Change{Field: "tags", Added: []any{"a"}, Removed: []any{"c"}}) {
		t.Fatalf("diff v2..v1: %+v, %v", back, err)
	}
	// Before the item existed: every field added.
	first, err := db.Diff(p, goatdb.VersionAsOf(now().Add(-time.Hour)), goatdb.VersionAt(v1))
	if err != nil || !first.From.IsZero() || len(first.Changes) != 5 || first.Changes[0].Field != "gone" || first.Changes[0].New != true {
		t.Fatalf("diff from before the item: %+v, %v", first, err)
	}
	if abs, err := db.Diff(p, goatdb.VersionAbsent(), goatdb.VersionAt(v1)); err != nil || !reflect.DeepEqual(abs, first) {
		t.Fatalf("diff from the absent version: %+v, %v; want %+v", abs, err, first)
	}
	// Same version: empty.
	if same, err := db.Diff(p, goatdb.VersionAt(v2), goatdb.Version{}); err != nil || !same.Empty() {
		t.Fatalf("diff of a version with itself: %+v, %v", same, err)
	}
	// Deletion.
	off += time.Minute
	if err := db.Delete(p); err != nil {
		t.Fatal(err)
	}
	del, err := db.Diff(p, goatdb.VersionAt(v2), goatdb.Version{})
	if err != nil || !del.Deleted || del.Restored || len(del.Changes) != 0 {
		t.Fatalf("diff to the deleted item: %+v, %v", del, err)
	}
	// Errors.
	other := put2(t, db, "/data/x/b")
	if _, err := db.Diff(p, goatdb.VersionAt(other), goatdb.Version{}); !errors.Is(err, goatdb.ErrNotFound) {
		t.Fatalf("diff from another item's commit: %v, want ErrNotFound", err)
	}
	if _, err := db.Diff("/data/x/none", goatdb.Version{}, goatdb.Version{}); !errors.Is(err, goatdb.ErrNotFound) {
		t.Fatalf("diff of a missing item: %v, want ErrNotFound", err)
	}
}

func put2(t *testing.T, db *goatdb.DB, path string) commit.ID {
	t.Helper()
	id, err := db.Put(path, goatdb.Fields{"v": 1})
	if err != nil {
		t.Fatal(err)
	}
	return id
}
