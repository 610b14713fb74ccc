package goatdb_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
)

// zeroer is zero when its IsZero method says so, not when its bits are.
type zeroer struct{ N int }

func (z zeroer) IsZero() bool { return z.N < 0 }

type omitting struct {
	B    bool              `goatdb:"b,omitempty"`
	I    int               `goatdb:"i,omitempty"`
	U    uint8             `goatdb:"u,omitempty"`
	F    float64           `goatdb:"f,omitempty"`
	S    string            `goatdb:"s,omitempty"`
	Set  []string          `goatdb:"set,omitempty"`
	Map  map[string]int    `goatdb:"map,omitempty"`
	Arr  [0]int            `goatdb:"arr,omitempty"`
	Ptr  *int              `goatdb:"ptr,omitempty"`
	Any  any               `goatdb:"any,omitempty"`
	T    time.Time         `goatdb:"t,omitempty"`
	V    item.Value        `goatdb:"v,omitempty"`
	Z    time.Time         `goatdb:"z,omitzero"`
	Zr   zeroer            `goatdb:"zr,omitzero"`
	Kept int               `goatdb:"kept"`
	Opts map[string]string `goatdb:",omitempty"` // named by the field
}

func TestFieldsOfOmitEmpty(t *testing.T) {
	f, err := goatdb.FieldsOf(omitting{Set: []string{}, Map: map[string]int{}, Zr: zeroer{-1}})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"b", "i", "u", "f", "s", "set", "map", "arr", "ptr", "any", "t", "v", "z", "zr", "Opts"} {
		if x, ok := f[name]; !ok || x != nil {
			t.Errorf("field %q = %#v, %v; want nil (omitted: Put removes it)", name, x, ok)
		}
	}
	if x, ok := f["kept"]; !ok || x != 0 {
		t.Errorf("kept = %#v, %v; want 0: a zero value without omitempty is stored", x, ok)
	}
	if len(f) != 16 {
		t.Errorf("%d fields, want 16: %v", len(f), f)
	}

	when := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	full := omitting{B: true, I: -1, U: 1, F: 0.5, S: "x", Set: []string{"a"}, Map: map[string]int{"k": 0},
		Any: "a", T: when, V: item.Int(0), Z: when, Zr: zeroer{0}, Opts: map[string]string{"o": ""}}
	f, err = goatdb.FieldsOf(&full)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"b", "i", "u", "f", "s", "set", "map", "any", "t", "v", "z", "zr", "Opts"} {
		if f[name] == nil {
			t.Errorf("field %q omitted, want it: it is not empty", name)
		}
	}
}

// TestFieldsOfClearsOmitted checks that an omitted field removes what an
// earlier Put stored, rather than leaving it.
func TestFieldsOfClearsOmitted(t *testing.T) {
	type note struct {
		Title string `goatdb:"title"`
		Body  string `goatdb:"body,omitempty"`
		Done  bool   `goatdb:"done,omitempty"`
	}
	db := dbtest.OpenDB(t, nil)
	for _, n := range []note{{"t", "text", true}, {"t", "", false}} {
		f, err := goatdb.FieldsOf(n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Put("/data/notes/n", f); err != nil {
			t.Fatal(err)
		}
	}
	it, err := db.Get("/data/notes/n")
	if err != nil {
		t.Fatal(err)
	}
	if got := it.Fields(); !reflect.DeepEqual(got, map[string]any{"title": "t"}) {
		t.Errorf("fields %v, want only the title", got)
	}
}

// TestFieldsOfZeroTime checks that a zero time.Time without omitempty is
// stored as the zero date and decodes back to the zero time.Time.
func TestFieldsOfZeroTime(t *testing.T) {
	type task struct {
		Due time.Time `goatdb:"due"`
	}
	db := dbtest.OpenDB(t, nil)
	f, err := goatdb.FieldsOf(task{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Put("/data/t/a", f); err != nil {
		t.Fatal(err)
	}
	it, err := db.Get("/data/t/a")
	if err != nil {
		t.Fatal(err)
	}
	v, ok := it.Value("due")
	if !ok || v.Type() != item.TypeDate || v.GoString() != "0001-01-01T00:00:00Z" {
		t.Fatalf("due = %#v, %v; want the date 0001-01-01T00:00:00Z", v, ok)
	}
	out := task{Due: time.Now()}
	if err := it.Decode(&out); err != nil {
		t.Fatal(err)
	}
	if !out.Due.IsZero() || out.Due != (time.Time{}) {
		t.Errorf("decoded %#v, want the zero time.Time", out.Due)
	}
}

// TestStructRoundTrip writes structs with FieldsOf and reads them back
// with Decode: struct → Fields → item → struct gives an equal struct.
func TestStructRoundTrip(t *testing.T) {
	type doc struct {
		Title   string             `goatdb:"title"`
		Count   int64              `goatdb:"count"`
		Small   int8               `goatdb:"small"`
		Big     uint32             `goatdb:"big"`
		Score   float64            `goatdb:"score"`
		Whole   float64            `goatdb:"whole"` // integral: stays a number
		Done    bool               `goatdb:"done"`
		Due     time.Time          `goatdb:"due"`
		Never   time.Time          `goatdb:"never"`
		Tags    []string           `goatdb:"tags"`
		Weights map[string]float64 `goatdb:"weights"`
		Note    string             `goatdb:"note,omitempty"`
		Seen    time.Time          `goatdb:"seen,omitempty"`
		Extra   []int              `goatdb:"extra,omitempty"`
		Value   item.Value         `goatdb:"value"`
	}
	due := time.Date(2026, 5, 1, 12, 30, 0, 123_000_000, time.UTC)
	tests := []doc{
		{Title: "full", Count: 1 << 60, Small: -8, Big: 1 << 31, Score: 2.5, Whole: 3, Done: true, Due: due,
			Tags: []string{"a", "b"}, Weights: map[string]float64{"w": 1.5, "z": 0}, Note: "n", Seen: due,
			Extra: []int{1, 2}, Value: item.Number(1)},
		{Title: "zero", Tags: []string{}, Weights: map[string]float64{}, Value: item.Int(0)},
	}
	db := dbtest.OpenDB(t, nil)
	for _, in := range tests {
		t.Run(in.Title, func(t *testing.T) {
			f, err := goatdb.FieldsOf(in)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Put("/data/docs/"+in.Title, f); err != nil {
				t.Fatal(err)
			}
			it, err := db.Get("/data/docs/" + in.Title)
			if err != nil {
				t.Fatal(err)
			}
			if v, _ := it.Value("whole"); v.Type() != item.TypeNumber {
				t.Errorf("whole stored as %#v, want a number", v)
			}
			if v, _ := it.Value("count"); v.Type() != item.TypeInt {
				t.Errorf("count stored as %#v, want an int", v)
			}
			var out doc
			if err := it.Decode(&out); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(out, in) {
				t.Errorf("round trip:\n got %+v\nwant %+v", out, in)
			}
		})
	}
}
