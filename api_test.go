package goatdb_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/schema"
)

func taskSchemas(t *testing.T) *schema.Registry {
	t.Helper()
	reg := schema.NewRegistry()
	err := reg.Register(schema.Schema{NS: "task", Version: 1, Fields: []schema.Field{
		{Name: "title", Type: item.TypeString, Required: true},
		{Name: "count", Type: item.TypeNumber, Default: item.Number(0)},
		{Name: "tags", Type: item.TypeSet},
		{Name: "due", Type: item.TypeDate},
	}, Validate: func(it item.Item) error {
		if v, ok := it.Get("count"); ok && v.Float() < 0 {
			return errors.New("count must not be negative")
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestBadInputWritesNothing(t *testing.T) {
	db := dbtest.OpenDB(t, &goatdb.Options{Schemas: taskSchemas(t)})
	if _, err := db.Put("/data/tasks/ok", goatdb.Fields{"title": "fine"}, goatdb.WithSchema("task")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		fields     goatdb.Fields
		opts       []goatdb.PutOption
		want       error
		mention    string
	}{
		{"no leading slash", "data/tasks/x", goatdb.Fields{"a": 1}, nil, goatdb.ErrInvalidPath, "data/tasks/x"},
		{"two parts", "/data/x", goatdb.Fields{"a": 1}, nil, goatdb.ErrInvalidPath, "/data/x"},
		{"four parts", "/a/b/c/d", goatdb.Fields{"a": 1}, nil, goatdb.ErrInvalidPath, "/a/b/c/d"},
		{"bad char", "/data/tasks/a b", goatdb.Fields{"a": 1}, nil, goatdb.ErrInvalidPath, `"a b"`},
		{"dot dot", "/data/../x", goatdb.Fields{"a": 1}, nil, goatdb.ErrInvalidPath, ".."},
		{"long part", "/data/tasks/" + strings.Repeat("k", 129), goatdb.Fields{"a": 1}, nil, goatdb.ErrInvalidPath, "1–128"},
		{"unknown field", "/data/tasks/ok", goatdb.Fields{"colour": "red"}, nil, schema.ErrUnknownField, "colour"},
		{"wrong type", "/data/tasks/ok", goatdb.Fields{"count": "many"}, nil, schema.ErrWrongType, "count"},
		{"missing required", "/data/tasks/new", goatdb.Fields{"count": 1}, []goatdb.PutOption{goatdb.WithSchema("task")}, schema.ErrMissingField, "title"},
		{"validate fails", "/data/tasks/ok", goatdb.Fields{"count": -1}, nil, nil, "negative"},
		{"unregistered schema", "/data/tasks/n2", goatdb.Fields{"title": "x"}, []goatdb.PutOption{goatdb.WithSchema("nope")}, schema.ErrUnknownSchema, "nope"},
		{"NaN", "/data/tasks/n3", goatdb.Fields{"n": nanValue()}, nil, item.ErrInvalidValue, "NaN"},
		{"unsupported type", "/data/tasks/n4", goatdb.Fields{"ch": make(chan int)}, nil, item.ErrInvalidValue, "chan"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, db)
			_, err := db.Put(tc.path, tc.fields, tc.opts...)
			if err == nil {
				t.Fatal("Put succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v is not %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q does not mention %q", err, tc.mention)
			}
			if after := snapshot(t, db); after != before {
				t.Errorf("database changed:\n%s\n%s", before, after)
			}
		})
	}
}

func nanValue() float64 { var z float64; return z / z }

// snapshot describes every item and head of the database.
func snapshot(t *testing.T, db *goatdb.DB) string {
	t.Helper()
	var b strings.Builder
	repos, _ := db.Repos()
	for _, rp := range repos {
		keys, err := db.Keys(rp, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			h, _ := db.History(rp + "/" + k)
			fmt.Fprintf(&b, "%s/%s %d %s\n", rp, k, len(h), h[0].ID)
		}
	}
	return b.String()
}

func TestSchemaDefaultsAndUpgrade(t *testing.T) {
	reg := taskSchemas(t)
	dir := t.TempDir()
	db, err := goatdb.Open(dir, &goatdb.Options{Schemas: reg})
	if err != nil {
		t.Fatal(err)
	}
	p, err := db.Create("/data/tasks", goatdb.Fields{"title": "a", "due": "2026-01-02T03:04:05Z"}, goatdb.WithSchema("task"))
	if err != nil {
		t.Fatal(err)
	}
	it, _ := db.Get(p)
	if it.Get("count") != float64(0) || it.Schema().String() != "task/1" {
		t.Fatalf("defaults not applied: %v %v", it.Fields(), it.Schema())
	}
	if due := it.Get("due").(time.Time); !due.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Fatal(due)
	}
	db.Close()
	err = reg.Register(schema.Schema{NS: "task", Version: 2, Renames: map[string]string{"title": "name"},
		Fields: []schema.Field{{Name: "name", Type: item.TypeString, Required: true}, {Name: "count", Type: item.TypeNumber}, {Name: "tags", Type: item.TypeSet}, {Name: "due", Type: item.TypeDate}}})
	if err != nil {
		t.Fatal(err)
	}
	db, err = goatdb.Open(dir, &goatdb.Options{Schemas: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	it, err = db.Get(p)
	if err != nil || it.Get("name") != "a" || it.Get("title") != nil || it.Schema().Version != 2 {
		t.Fatalf("read not upgraded: %v %v %v", err, it.Fields(), it.Schema())
	}
	if _, err := db.Put(p, goatdb.Fields{"count": 3}); err != nil {
		t.Fatal(err)
	}
	it, _ = db.Get(p)
	if it.Get("name") != "a" || it.Get("count") != float64(3) || it.Schema().Version != 2 {
		t.Fatalf("write not upgraded: %v %v", it.Fields(), it.Schema())
	}
	dbtest.CheckDB(t, db)
}

func TestLockedDirectory(t *testing.T) {
	dir := t.TempDir()
	db, err := goatdb.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("GOATDB_LOCK_CHILD") == "" {
		// A second process on the same directory.
		cmd := exec.Command(os.Args[0], "-test.run=^TestLockChild$", "-test.v")
		cmd.Env = append(os.Environ(), "GOATDB_LOCK_CHILD="+dir)
		out, _ := cmd.CombinedOutput()
		if !strings.Contains(string(out), "locked as expected") {
			t.Fatalf("child did not see the lock:\n%s", out)
		}
	}
	db.Close()
	db2, err := goatdb.Open(dir, nil)
	if err != nil {
		t.Fatalf("reopen after close: %v", err)
	}
	db2.Close()
}

func TestLockChild(t *testing.T) {
	dir := os.Getenv("GOATDB_LOCK_CHILD")
	if dir == "" {
		t.Skip("run by TestLockedDirectory")
	}
	_, err := goatdb.Open(dir, nil)
	if !errors.Is(err, goatdb.ErrLocked) || !strings.Contains(err.Error(), "another goatdb process") {
		t.Fatalf("second open: %v", err)
	}
	fmt.Println("locked as expected")
}

func TestSessionKeyPersists(t *testing.T) {
	dir := t.TempDir()
	db, err := goatdb.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := db.Session()
	db.Close()
	fi, err := os.Stat(filepath.Join(dir, "session.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", err, fi)
	}
	db, err = goatdb.Open(dir, nil)
	if err != nil || db.Session() != s {
		t.Fatal(err, "session changed")
	}
	db.Close()
	os.WriteFile(filepath.Join(dir, "session.key"), []byte("short"), 0o600)
	if _, err := goatdb.Open(dir, nil); !errors.Is(err, goatdb.ErrCorrupt) {
		t.Fatalf("damaged key: %v", err)
	}
}

func TestWatch(t *testing.T) {
	db := dbtest.OpenDB(t, nil)
	db.Put("/data/w/x", goatdb.Fields{"n": 0})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan []any)
	go func() {
		var seen []any
		for it, err := range db.Watch(ctx, "/data/w/x") {
			if err != nil {
				break
			}
			seen = append(seen, it.Get("n"))
			if it.Get("n") == int64(3) {
				break
			}
		}
		done <- seen
	}()
	for i := 1; i <= 3; i++ {
		time.Sleep(5 * time.Millisecond)
		db.Put("/data/w/x", goatdb.Fields{"n": i})
	}
	seen := <-done
	if len(seen) < 2 || seen[len(seen)-1] != int64(3) {
		t.Fatalf("watch saw %v", seen)
	}
	// A cancelled context ends the sequence with its error.
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	var last error
	for _, err := range db.Watch(ctx2, "/data/w/none") {
		last = err
	}
	if !errors.Is(last, context.Canceled) {
		t.Fatal(last)
	}
}

func TestWatchEndsOnClose(t *testing.T) {
	db, err := goatdb.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Put("/data/w/x", goatdb.Fields{"n": 0})
	done := make(chan error)
	go func() {
		var last error
		for _, err := range db.Watch(context.Background(), "/data/w/x") {
			last = err
		}
		done <- last
	}()
	time.Sleep(20 * time.Millisecond)
	db.Close()
	select {
	case err := <-done:
		if !errors.Is(err, goatdb.ErrClosed) {
			t.Fatalf("watch ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watch still blocked after Close")
	}
}

func TestConcurrentWriters(t *testing.T) {
	db := dbtest.OpenDB(t, &goatdb.Options{Durability: goatdb.Async})
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := range 50 {
				if _, err := db.Put(fmt.Sprintf("/data/c/k%d", i%10), goatdb.Fields{fmt.Sprintf("w%d", w): i}); err != nil {
					t.Error(err)
				}
				if _, err := db.Get(fmt.Sprintf("/data/c/k%d", (i+1)%10)); err != nil && !errors.Is(err, goatdb.ErrNotFound) {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for i := range 10 {
		it, err := db.Get(fmt.Sprintf("/data/c/k%d", i))
		if err != nil || it.Data().Len() != 16 {
			t.Fatalf("k%d: %v %v", i, err, it.Fields())
		}
	}
	if n, _ := db.Count("/data/c"); n != 10 {
		t.Fatal(n)
	}
}

func TestBatchAtomic(t *testing.T) {
	db := dbtest.OpenDB(t, &goatdb.Options{Schemas: taskSchemas(t)})
	b := db.Batch()
	b.Create("/data/tasks", goatdb.Fields{"title": "a"}, goatdb.WithSchema("task"))
	b.Create("/data/tasks", goatdb.Fields{"count": 1}, goatdb.WithSchema("task")) // missing title
	if _, err := b.Commit(); !errors.Is(err, schema.ErrMissingField) {
		t.Fatal(err)
	}
	if n, _ := db.Count("/data/tasks"); n != 0 {
		t.Fatalf("a failed batch wrote %d items", n)
	}
	b = db.Batch()
	for i := range 100 {
		b.Create("/data/tasks", goatdb.Fields{"title": fmt.Sprint(i)}, goatdb.WithSchema("task"))
	}
	ids, err := b.Commit()
	if err != nil || len(ids) != 100 {
		t.Fatal(err)
	}
	if n, _ := db.Count("/data/tasks"); n != 100 {
		t.Fatal(n)
	}
}

func TestDecodeStruct(t *testing.T) {
	// A slice is a list (in order) unless tagged set; an int tagged counter
	// is a counter.
	type Task struct {
		Title  string    `goatdb:"title"`
		Count  int       `goatdb:"count"`
		Tags   []string  `goatdb:"tags"`
		Labels []string  `goatdb:"labels,set"`
		Views  int       `goatdb:"views,counter"`
		Due    time.Time `goatdb:"due"`
		Meta   map[string]float64
		Skip   string `goatdb:"-"`
	}
	db := dbtest.OpenDB(t, nil)
	due := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	in := Task{Title: "t", Count: 4, Tags: []string{"b", "a", "b"}, Labels: []string{"b", "a", "b"}, Views: 7,
		Due: due, Meta: map[string]float64{"w": 1.5}, Skip: "x"}
	f, err := goatdb.FieldsOf(in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Put("/data/s/1", f); err != nil {
		t.Fatal(err)
	}
	it, _ := db.Get("/data/s/1")
	var out Task
	if err := it.Decode(&out); err != nil {
		t.Fatal(err)
	}
	if out.Title != "t" || out.Count != 4 || strings.Join(out.Tags, ",") != "b,a,b" || strings.Join(out.Labels, ",") != "a,b" ||
		out.Views != 7 || !out.Due.Equal(due) || out.Meta["w"] != 1.5 || out.Skip != "" {
		t.Fatalf("%+v", out)
	}
	for name, want := range map[string]item.Type{"tags": item.TypeList, "labels": item.TypeSet, "views": item.TypeCounter} {
		if v, _ := it.Value(name); v.Type() != want {
			t.Errorf("field %s is a %s, want %s", name, v.Type(), want)
		}
	}
	var wrong struct {
		Title int `goatdb:"title"`
	}
	if err := it.Decode(&wrong); err == nil || !strings.Contains(err.Error(), `"title"`) {
		t.Fatal(err)
	}
}

func TestGetAsOf(t *testing.T) {
	db := dbtest.OpenDB(t, nil)
	db.Put("/data/h/x", goatdb.Fields{"v": 1})
	time.Sleep(20 * time.Millisecond)
	mid := time.Now()
	time.Sleep(20 * time.Millisecond)
	db.Put("/data/h/x", goatdb.Fields{"v": 2})
	it, err := db.GetAsOf("/data/h/x", mid)
	if err != nil || it.Get("v") != int64(1) {
		t.Fatal(err, it.Fields())
	}
	if _, err := db.GetAsOf("/data/h/x", mid.Add(-time.Hour)); !errors.Is(err, goatdb.ErrNotFound) {
		t.Fatal(err)
	}
	keys, _ := db.Keys("/data/h", false)
	if len(keys) != 1 || keys[0] != "x" {
		t.Fatal(keys)
	}
	if _, err := db.Get("/data/none/x"); !errors.Is(err, goatdb.ErrNotFound) {
		t.Fatal(err)
	}
}

func TestFailedFirstWriteCreatesNoLog(t *testing.T) {
	db := dbtest.OpenDB(t, &goatdb.Options{Schemas: taskSchemas(t)})
	if _, err := db.Put("/data/fresh/x", goatdb.Fields{"count": 1}, goatdb.WithSchema("task")); !errors.Is(err, schema.ErrMissingField) {
		t.Fatal(err)
	}
	if repos, _ := db.Repos(); len(repos) != 0 {
		t.Fatalf("a failed write created %v", repos)
	}
}

func TestDynamicItemAdoptsSchema(t *testing.T) {
	db := dbtest.OpenDB(t, &goatdb.Options{Schemas: taskSchemas(t)})
	db.Put("/data/t/x", goatdb.Fields{"title": "a"})
	if _, err := db.Put("/data/t/x", goatdb.Fields{"count": 2}, goatdb.WithSchema("task")); err != nil {
		t.Fatal(err)
	}
	it, _ := db.Get("/data/t/x")
	if it.Schema().String() != "task/1" || it.Get("title") != "a" {
		t.Fatal(it.Schema(), it.Fields())
	}
	db.Put("/data/t/y", goatdb.Fields{"colour": "red"})
	if _, err := db.Put("/data/t/y", goatdb.Fields{"title": "b"}, goatdb.WithSchema("task")); !errors.Is(err, schema.ErrUnknownField) {
		t.Fatalf("adopting a schema must check the whole item: %v", err)
	}
}
