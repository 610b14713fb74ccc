package schema_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/schema"
)

func TestRegisterInvalid(t *testing.T) {
	str := func(name string) schema.Field { return schema.Field{Name: name, Type: item.TypeString} }
	tests := []struct {
		name  string
		s     schema.Schema
		field string
		msg   string
	}{
		{"empty namespace", schema.Schema{Version: 1}, "", `namespace "" must be`},
		{"bad namespace character", schema.Schema{NS: "a/b", Version: 1}, "", `namespace "a/b"`},
		{"long namespace", schema.Schema{NS: strings.Repeat("n", 129), Version: 1}, "", "1–128 characters"},
		{"version 0", schema.Schema{NS: "t", Version: 0}, "", "version must be 1 or more"},
		{"empty field name", schema.Schema{NS: "t", Version: 1, Fields: []schema.Field{str("")}}, "", "field name"},
		{"NUL in field name", schema.Schema{NS: "t", Version: 1, Fields: []schema.Field{str("a\x00")}}, "a\x00", "field name"},
		{"field twice", schema.Schema{NS: "t", Version: 1, Fields: []schema.Field{str("a"), str("a")}}, "a", "defined twice"},
		{"invalid type", schema.Schema{NS: "t", Version: 1, Fields: []schema.Field{{Name: "a"}}}, "a", "unknown type invalid"},
		{"type out of range", schema.Schema{NS: "t", Version: 1, Fields: []schema.Field{{Name: "a", Type: 42}}}, "a", "unknown type type(42)"},
		{"default of other type", schema.Schema{NS: "t", Version: 1, Fields: []schema.Field{
			{Name: "a", Type: item.TypeInt, Default: item.Number(1)}}}, "a", "default: want int, have number 1"},
		{"invalid default", schema.Schema{NS: "t", Version: 1, Fields: []schema.Field{
			{Name: "a", Type: item.TypeString, Default: item.String("\xff")}}}, "a", "UTF-8"},
		{"default fails validate", schema.Schema{NS: "t", Version: 1, Fields: []schema.Field{
			{Name: "a", Type: item.TypeInt, Default: item.Int(1), Validate: func(item.Value) error { return errTooBig }}}},
			"a", "default: schema: validation failed: too big"},
		{"default panics validate", schema.Schema{NS: "t", Version: 1, Fields: []schema.Field{
			{Name: "a", Type: item.TypeInt, Default: item.Int(1), Validate: func(item.Value) error { panic("x") }}}},
			"a", "panic: x"},
		{"rename to itself", schema.Schema{NS: "t", Version: 2, Renames: map[string]string{"a": "a"}}, "a", "renamed to itself"},
		{"two renames to one name", schema.Schema{NS: "t", Version: 2, Renames: map[string]string{"a": "c", "b": "c"}},
			"c", `target of two renames, from "a" and "b"`},
		{"bad rename name", schema.Schema{NS: "t", Version: 2, Renames: map[string]string{"a": ""}}, "", "renames: field name"},
		{"bad remove name", schema.Schema{NS: "t", Version: 2, Removes: []string{""}}, "", "removes: field name"},
		{"removed twice", schema.Schema{NS: "t", Version: 2, Removes: []string{"a", "a"}}, "a", "removed twice"},
		{"remove renamed", schema.Schema{NS: "t", Version: 2, Removes: []string{"a"}, Renames: map[string]string{"a": "b"}},
			"a", "both renamed and removed"},
		{"remove rename target", schema.Schema{NS: "t", Version: 2, Removes: []string{"b"}, Renames: map[string]string{"a": "b"}},
			"b", "both renamed and removed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := schema.NewRegistry()
			err := r.Register(tt.s)
			checkErr(t, err, schema.ErrInvalidSchema, tt.msg)
			checkFieldError(t, err, schemaName(tt.s), tt.field)
			if len(r.All()) != 0 {
				t.Fatal("a refused schema was registered")
			}
		})
	}
}

func schemaName(s schema.Schema) string {
	if s.NS == "" || strings.ContainsAny(s.NS, "/") || len(s.NS) > 128 {
		return fmt.Sprintf("%q/%d", s.NS, s.Version)
	}
	return fmt.Sprintf("%s/%d", s.NS, s.Version)
}

func TestRegisterDuplicate(t *testing.T) {
	r := schema.NewRegistry()
	if err := r.Register(schema.Schema{NS: "task", Version: 1}); err != nil {
		t.Fatal(err)
	}
	err := r.Register(schema.Schema{NS: "task", Version: 1, Fields: []schema.Field{{Name: "a", Type: item.TypeInt}}})
	checkErr(t, err, schema.ErrDuplicate, "schema task/1: schema: duplicate schema version")
	if s, _ := r.Lookup(commit.Schema{NS: "task", Version: 1}); len(s.Fields) != 0 {
		t.Fatal("a duplicate replaced the registered schema")
	}
}

func TestRegisterCopies(t *testing.T) {
	s := schema.Schema{NS: "task", Version: 2, Fields: []schema.Field{{Name: "a", Type: item.TypeInt}},
		Renames: map[string]string{"x": "a"}, Removes: []string{"y"}}
	r := schema.NewRegistry()
	if err := r.Register(s); err != nil {
		t.Fatal(err)
	}
	s.Fields[0].Name, s.Renames["x"], s.Removes[0] = "changed", "changed", "changed"
	got, _ := r.Lookup(s.Ref())
	if got.Fields[0].Name != "a" || got.Renames["x"] != "a" || got.Removes[0] != "y" {
		t.Fatalf("registered schema changed with the caller's: %+v", got)
	}
}

func TestLookupLatestAll(t *testing.T) {
	var r schema.Registry // the zero Registry works
	for _, name := range []string{"task/3", "note/1", "task/1", "task/2", "a.b-c_d/7"} {
		var s schema.Schema
		if _, err := fmt.Sscanf(strings.Replace(name, "/", " ", 1), "%s %d", &s.NS, &s.Version); err != nil {
			t.Fatal(err)
		}
		if err := r.Register(s); err != nil {
			t.Fatal(err)
		}
	}
	var all []string
	for _, s := range r.All() {
		all = append(all, s.Ref().String())
	}
	if got, want := strings.Join(all, " "), "a.b-c_d/7 note/1 task/1 task/2 task/3"; got != want {
		t.Errorf("All = %s, want %s", got, want)
	}
	if s, ok := r.Latest("task"); !ok || s.Version != 3 {
		t.Errorf("Latest(task) = %v, %v", s, ok)
	}
	if _, ok := r.Latest("nope"); ok {
		t.Error("Latest(nope) found")
	}
	lookups := []struct {
		ref commit.Schema
		ok  bool
	}{{commit.Schema{NS: "task", Version: 2}, true}, {commit.Schema{NS: "task", Version: 4}, false},
		{commit.Schema{}, false}, {commit.Schema{NS: "nope", Version: 1}, false}}
	for _, l := range lookups {
		if s, ok := r.Lookup(l.ref); ok != l.ok || ok && s.Ref() != l.ref {
			t.Errorf("Lookup(%v) = %v, %v", l.ref, s, ok)
		}
	}
}

var errRefused = errors.New("refused")

// chain returns task v1, v2 and v3:
//
//	v1: title string, done bool, count number
//	v2: renames title → name, removes done, count becomes int,
//	    adds prio (default 1); Upgrade sets "summary" from name
//	v3: renames name → label and summary → about; Upgrade uppercases label
func chain() []schema.Schema {
	v1 := schema.Schema{NS: "task", Version: 1, Fields: []schema.Field{
		{Name: "title", Type: item.TypeString, Required: true},
		{Name: "done", Type: item.TypeBool},
		{Name: "count", Type: item.TypeNumber},
	}}
	v2 := schema.Schema{NS: "task", Version: 2,
		Fields: []schema.Field{
			{Name: "name", Type: item.TypeString, Required: true},
			{Name: "count", Type: item.TypeInt},
			{Name: "prio", Type: item.TypeInt, Default: item.Int(1)},
			{Name: "summary", Type: item.TypeString},
		},
		Renames: map[string]string{"title": "name"},
		Removes: []string{"done"},
		Upgrade: func(it item.Item) (item.Item, error) {
			name, _ := it.Get("name")
			if name.Str() == "refuse" {
				return item.Item{}, errRefused
			}
			if name.Str() == "panic" {
				panic("upgrade panicked")
			}
			if name.Str() == "invalid" {
				return it.With("bad", item.Value{}), nil
			}
			return it.With("summary", item.String("task "+name.Str())), nil
		},
	}
	v3 := schema.Schema{NS: "task", Version: 3,
		Fields: []schema.Field{
			{Name: "label", Type: item.TypeString, Required: true},
			{Name: "count", Type: item.TypeInt},
			{Name: "prio", Type: item.TypeInt, Default: item.Int(1)},
			{Name: "about", Type: item.TypeString},
			{Name: "new", Type: item.TypeSet, Default: item.StringSet("x")},
		},
		Renames: map[string]string{"name": "label", "summary": "about"},
		Upgrade: func(it item.Item) (item.Item, error) {
			l, _ := it.Get("label")
			return it.With("label", item.String(strings.ToUpper(l.Str()))), nil
		},
	}
	return []schema.Schema{v1, v2, v3}
}

func registry(t testing.TB, schemas []schema.Schema) *schema.Registry {
	t.Helper()
	r := schema.NewRegistry()
	for _, s := range schemas {
		if err := r.Register(s); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func TestUpgrade(t *testing.T) {
	v1 := item.New(map[string]item.Value{
		"title": item.String("buy milk"), "done": item.Bool(true), "count": item.Number(2),
	})
	tests := []struct {
		name    string
		it      item.Item
		from    commit.Schema
		to      uint32
		want    string
		wantErr error
		msg     string
	}{
		{"v1 to v2", v1, commit.Schema{NS: "task", Version: 1}, 2,
			`{count: 2i, name: "buy milk", prio: 1i, summary: "task buy milk"}`, nil, ""},
		{"v1 to v3", v1, commit.Schema{NS: "task", Version: 1}, 3,
			`{about: "task buy milk", count: 2i, label: "BUY MILK", new: {"x"}, prio: 1i}`, nil, ""},
		{"v2 to v3", item.New(map[string]item.Value{"name": item.String("a"), "prio": item.Int(5)}),
			commit.Schema{NS: "task", Version: 2}, 3, `{label: "A", new: {"x"}, prio: 5i}`, nil, ""},
		{"non-integral number stays for Check", v1.With("count", item.Number(2.5)), commit.Schema{NS: "task", Version: 1}, 2,
			`{count: 2.5, name: "buy milk", prio: 1i, summary: "task buy milk"}`, nil, ""},
		{"deleted flag kept", v1.WithDeleted(true), commit.Schema{NS: "task", Version: 1}, 2,
			`deleted {count: 2i, name: "buy milk", prio: 1i, summary: "task buy milk"}`, nil, ""},
		{"from unregistered version", item.New(map[string]item.Value{"title": item.String("a")}),
			commit.Schema{NS: "task", Version: 0}, 2, `{name: "a", prio: 1i, summary: "task a"}`, nil, ""},
		{"same version", v1, commit.Schema{NS: "task", Version: 1}, 1, v1.String(), nil, ""},
		{"same unknown version", v1, commit.Schema{NS: "nope", Version: 9}, 9, v1.String(), nil, ""},
		{"dynamic", v1, commit.Schema{}, 3, v1.String(), nil, ""},
		{"unknown namespace", v1, commit.Schema{NS: "nope", Version: 1}, 2, "", schema.ErrUnknownSchema,
			`schema: unknown schema: namespace "nope"`},
		{"unknown target", v1, commit.Schema{NS: "task", Version: 1}, 4, "", schema.ErrUnknownSchema,
			"schema: unknown schema: task/4 (upgrading from task/1)"},
		{"downgrade", v1, commit.Schema{NS: "task", Version: 3}, 1, "", schema.ErrUpgrade,
			"schema: upgrade failed: task/3 to task/1: cannot downgrade"},
		{"upgrade func fails", v1.With("title", item.String("refuse")), commit.Schema{NS: "task", Version: 1}, 3,
			"", errRefused, "schema: upgrade failed: task/1 to task/3: at version 2: refused"},
		{"upgrade func panics", v1.With("title", item.String("panic")), commit.Schema{NS: "task", Version: 1}, 3,
			"", schema.ErrUpgrade, "task/1 to task/3: at version 2: panic: upgrade panicked"},
		{"upgrade func returns invalid item", v1.With("title", item.String("invalid")), commit.Schema{NS: "task", Version: 1}, 2,
			"", item.ErrInvalidValue, "at version 2: upgrade func returned an invalid item"},
	}
	r := registry(t, chain())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.Upgrade(tt.it, tt.from, tt.to)
			checkErr(t, err, tt.wantErr, tt.msg)
			if err == nil && got.String() != tt.want {
				t.Fatalf("Upgrade = %s\nwant      %s", got, tt.want)
			}
		})
	}
}

func TestUpgradeResultPassesCheck(t *testing.T) {
	r := registry(t, chain())
	v1 := item.New(map[string]item.Value{"title": item.String("a"), "done": item.Bool(false), "count": item.Number(3)})
	for to := uint32(1); to <= 3; to++ {
		got, err := r.Upgrade(v1, commit.Schema{NS: "task", Version: 1}, to)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := r.Lookup(commit.Schema{NS: "task", Version: to})
		if err := s.Check(got); err != nil {
			t.Errorf("v1 upgraded to v%d: %v", to, err)
		}
	}
}

func TestRenamesAllAtOnce(t *testing.T) {
	tests := []struct {
		name    string
		renames map[string]string
		removes []string
		in      map[string]item.Value
		want    string
	}{
		{"swap", map[string]string{"a": "b", "b": "a"}, nil,
			map[string]item.Value{"a": item.Int(1), "b": item.Int(2)}, "{a: 2i, b: 1i}"},
		{"chain", map[string]string{"a": "b", "b": "c"}, nil,
			map[string]item.Value{"a": item.Int(1), "b": item.Int(2)}, "{b: 1i, c: 2i}"},
		{"rename replaces existing", map[string]string{"a": "b"}, nil,
			map[string]item.Value{"a": item.Int(1), "b": item.Int(2)}, "{b: 1i}"},
		{"absent old name leaves target", map[string]string{"a": "b"}, nil,
			map[string]item.Value{"b": item.Int(2)}, "{b: 2i}"},
		{"removes after renames", map[string]string{"a": "b"}, []string{"c", "zz"},
			map[string]item.Value{"a": item.Int(1), "c": item.Int(3)}, "{b: 1i}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := registry(t, []schema.Schema{{NS: "x", Version: 1}, {NS: "x", Version: 2, Renames: tt.renames, Removes: tt.removes}})
			got, err := r.Upgrade(item.New(tt.in), commit.Schema{NS: "x", Version: 1}, 2)
			if err != nil || got.String() != tt.want {
				t.Fatalf("Upgrade = %s, %v; want %s", got, err, tt.want)
			}
		})
	}
}

// TestUpgradeOutOfOrder registers the chain in every order, including v3
// before v2 exists, and checks the upgrades do not depend on it.
func TestUpgradeOutOfOrder(t *testing.T) {
	schemas := chain()
	v1 := item.New(map[string]item.Value{"title": item.String("a"), "count": item.Number(1)})
	for _, order := range [][]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}} {
		r := schema.NewRegistry()
		for _, i := range order {
			if err := r.Register(schemas[i]); err != nil {
				t.Fatal(err)
			}
		}
		got, err := r.Upgrade(v1, commit.Schema{NS: "task", Version: 1}, 3)
		if want := `{about: "task a", count: 1i, label: "A", new: {"x"}, prio: 1i}`; err != nil || got.String() != want {
			t.Errorf("order %v: Upgrade = %s, %v; want %s", order, got, err, want)
		}
	}
}

// TestUpgradeSkipsUnregistered checks that a gap in the versions applies
// the next registered version's changes from the last one before it.
func TestUpgradeSkipsUnregistered(t *testing.T) {
	s := chain()
	r := registry(t, []schema.Schema{s[0], s[2]})
	got, err := r.Upgrade(item.New(map[string]item.Value{"name": item.String("a"), "done": item.Bool(true)}),
		commit.Schema{NS: "task", Version: 1}, 3)
	if want := `{done: true, label: "A", new: {"x"}, prio: 1i}`; err != nil || got.String() != want {
		t.Fatalf("Upgrade = %s, %v; want %s", got, err, want)
	}
}

// TestUpgradeDeterministic upgrades random items many times, concurrently,
// and checks every result is the same, byte for byte.
func TestUpgradeDeterministic(t *testing.T) {
	seed := dbtest.ClockSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0))
	r := registry(t, chain())
	for range 50 {
		it := randomItem(rng)
		want, wantErr := r.Upgrade(it, commit.Schema{NS: "task", Version: 1}, 3)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				got, err := r.Upgrade(it, commit.Schema{NS: "task", Version: 1}, 3)
				if fmt.Sprint(err) != fmt.Sprint(wantErr) || !item.ItemsEqual(got, want) {
					t.Errorf("seed %d: Upgrade(%s) = %s, %v; first time %s, %v", seed, it, got, err, want, wantErr)
				}
			})
		}
		wg.Wait()
	}
}

func randomItem(rng *rand.Rand) item.Item {
	names := []string{"title", "done", "count", "name", "summary", "label", "x"}
	m := map[string]item.Value{}
	for _, n := range names {
		switch rng.IntN(4) {
		case 0:
			m[n] = item.String(fmt.Sprint("v", rng.IntN(5)))
		case 1:
			m[n] = item.Number(float64(rng.IntN(10)) / 2)
		case 2:
			m[n] = item.Bool(rng.IntN(2) == 0)
		}
	}
	return item.New(m).WithDeleted(rng.IntN(4) == 0)
}

// TestRegistryConcurrent registers and reads at once; run with -race.
func TestRegistryConcurrent(t *testing.T) {
	r := schema.NewRegistry()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for v := uint32(1); v <= 20; v++ {
				_ = r.Register(schema.Schema{NS: fmt.Sprint("ns", i%4), Version: v})
				r.Lookup(commit.Schema{NS: "ns0", Version: v})
				r.Latest("ns1")
				r.All()
				_, _ = r.Upgrade(item.New(nil), commit.Schema{NS: "ns2", Version: 1}, v)
			}
		})
	}
	wg.Wait()
	if n := len(r.All()); n != 80 {
		t.Fatalf("registered %d schemas, want 80", n)
	}
}

// TestUpgradeFuncMayUseRegistry checks no lock is held while user funcs run.
func TestUpgradeFuncMayUseRegistry(t *testing.T) {
	r := schema.NewRegistry()
	if err := r.Register(schema.Schema{NS: "t", Version: 1}); err != nil {
		t.Fatal(err)
	}
	err := r.Register(schema.Schema{NS: "t", Version: 2, Upgrade: func(it item.Item) (item.Item, error) {
		return it, r.Register(schema.Schema{NS: "other", Version: 1})
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Upgrade(item.New(nil), commit.Schema{NS: "t", Version: 1}, 2); err != nil {
		t.Fatal(err)
	}
}

func TestNewest(t *testing.T) {
	tests := []struct{ a, b, want commit.Schema }{
		{commit.Schema{NS: "task", Version: 1}, commit.Schema{NS: "task", Version: 2}, commit.Schema{NS: "task", Version: 2}},
		{commit.Schema{NS: "task", Version: 3}, commit.Schema{NS: "task", Version: 2}, commit.Schema{NS: "task", Version: 3}},
		{commit.Schema{NS: "task", Version: 1}, commit.Schema{NS: "task", Version: 1}, commit.Schema{NS: "task", Version: 1}},
		{commit.Schema{}, commit.Schema{NS: "task", Version: 1}, commit.Schema{NS: "task", Version: 1}},
		{commit.Schema{NS: "a", Version: 9}, commit.Schema{NS: "b", Version: 1}, commit.Schema{NS: "b", Version: 1}},
	}
	for _, tt := range tests {
		if got := schema.Newest(tt.a, tt.b); got != tt.want {
			t.Errorf("Newest(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := schema.Newest(tt.b, tt.a); got != tt.want {
			t.Errorf("Newest(%v, %v) = %v, want %v", tt.b, tt.a, got, tt.want)
		}
	}
}
