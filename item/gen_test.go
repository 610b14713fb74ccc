package item_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
)

// This file holds the random generators and helpers shared by the property
// tests. Every random test derives its generator from a seed it logs, so a
// failure is reproduced by setting the seed.

// newRand returns a seeded generator and logs the seed with the command
// that replays it. Unless -seed is given, the seed comes from the clock so
// that repeated runs explore new cases; rerun a failure with
// go test ./item -run '^TestName$' -seed N.
func newRand(t testing.TB) *rand.Rand {
	t.Helper()
	seed := dbtest.ClockSeed(t)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// iterations is how many random cases a property test runs.
func iterations() int {
	if testing.Short() {
		return 200
	}
	return 2000
}

var (
	strPool  = []string{"", "a", "b", "ab", "tag42", "category2", "ü", "日本", "x y", "\t"}
	namePool = []string{"a", "b", "c", "count", "meta", "tags", "title", "ü", "x.y"}
	keyPool  = []string{"", "a", "b", "c", "k1", "k2", "ß"}
)

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

// randNumber returns numbers that stress the compact/8-byte boundary.
func randNumber(r *rand.Rand) float64 {
	switch r.IntN(10) {
	case 0:
		return pick(r, []float64{0, 1, -1, 0.5, -0.5, 1e300, -1e300, math.Inf(1), math.Inf(-1),
			1 << 53, -(1 << 53), 1<<53 + 2, -(1<<53 + 2), math.MaxFloat64, math.SmallestNonzeroFloat64})
	case 1, 2:
		return r.NormFloat64() * 1e6
	case 3:
		return float64(r.Int64N(1<<54) - 1<<53)
	default:
		return float64(r.IntN(200) - 100)
	}
}

func randScalar(r *rand.Rand) item.Value {
	switch r.IntN(5) {
	case 0:
		return item.String(pick(r, strPool))
	case 1:
		return item.Number(randNumber(r))
	case 2:
		if r.IntN(4) == 0 {
			return item.Int(int64(r.Uint64()))
		}
		return item.Int(int64(r.IntN(10) - 5))
	case 3:
		return item.Bool(r.IntN(2) == 0)
	default:
		return item.DateMillis(1_700_000_000_000 + int64(r.IntN(10)))
	}
}

func randSet(r *rand.Rand) item.Value {
	elems := make([]item.Value, r.IntN(5))
	for i := range elems {
		// A few small domains so that sets overlap.
		switch r.IntN(3) {
		case 0:
			elems[i] = item.String(pick(r, strPool))
		case 1:
			elems[i] = item.Int(int64(r.IntN(6)))
		default:
			elems[i] = randScalar(r)
		}
	}
	s, err := item.Set(elems...)
	if err != nil {
		panic(err)
	}
	return s
}

func randMap(r *rand.Rand, depth int) item.Value {
	m := map[string]item.Value{}
	for range r.IntN(4) {
		m[pick(r, keyPool)] = randValue(r, depth+1)
	}
	return item.Map(m)
}

// randList returns a list of a few scalars from small domains, without
// element ids (see assign).
func randList(r *rand.Rand) item.Value {
	elems := make([]item.Value, r.IntN(5))
	for i := range elems {
		elems[i] = randListElem(r)
	}
	v, err := item.List(elems...)
	if err != nil {
		panic(err)
	}
	return v
}

func randListElem(r *rand.Rand) item.Value {
	if r.IntN(2) == 0 {
		return item.String(pick(r, strPool[:4]))
	}
	return randScalar(r)
}

func randCounter(r *rand.Rand) item.Value {
	if r.IntN(8) == 0 {
		return item.Counter(int64(r.Uint64()))
	}
	return item.Counter(int64(r.IntN(21) - 10))
}

// randField returns a valid field value: any value, a list or a counter.
// Lists have no element ids until assign gives them.
func randField(r *rand.Rand) item.Value {
	switch r.IntN(6) {
	case 0:
		return randList(r)
	case 1:
		return randCounter(r)
	}
	return randValue(r, 0)
}

// randValue returns a valid value other than a list or a counter (which
// are fields only); depth is the map nesting of its place.
func randValue(r *rand.Rand, depth int) item.Value {
	switch n := r.IntN(10); {
	case n < 6:
		return randScalar(r)
	case n < 8:
		return randSet(r)
	default:
		if depth >= 3 {
			return randScalar(r)
		}
		return randMap(r, depth)
	}
}

func randItem(r *rand.Rand) item.Item {
	m := map[string]item.Value{}
	for range r.IntN(6) {
		m[pick(r, namePool)] = randField(r)
	}
	return assign(r, item.Item{}, item.New(m).WithDeleted(r.IntN(4) == 0))
}

// assign gives the new list elements of next ids as a write after prev
// would, with a random tag standing for the write.
func assign(r *rand.Rand, prev, next item.Item) item.Item {
	return item.AssignIDs(prev, next, r.Uint64())
}

// mutate returns a random descendant of it: fields kept, edited element by
// element, replaced, removed or added, and the deleted flag toggled.
func mutate(r *rand.Rand, it item.Item) item.Item {
	out := it
	for _, f := range it.Fields() {
		switch r.IntN(6) {
		case 0, 1:
		case 2:
			out = out.Without(f.Name)
		case 3:
			out = out.With(f.Name, randField(r))
		default:
			out = out.With(f.Name, editValue(r, f.Value))
		}
	}
	for range r.IntN(3) {
		out = out.With(pick(r, namePool), randField(r))
	}
	if r.IntN(4) == 0 {
		out = out.WithDeleted(!out.Deleted())
	}
	return assign(r, it, out)
}

// editValue changes a set or map element by element; other values are
// replaced.
func editValue(r *rand.Rand, v item.Value) item.Value {
	switch v.Type() {
	case item.TypeSet:
		var elems []item.Value
		for _, e := range v.Elems() {
			if r.IntN(3) > 0 {
				elems = append(elems, e)
			}
		}
		for range r.IntN(3) {
			elems = append(elems, randScalar(r))
		}
		s, err := item.Set(elems...)
		if err != nil {
			panic(err)
		}
		return s
	case item.TypeMap:
		m := map[string]item.Value{}
		for i, k := range v.Keys() {
			switch r.IntN(3) {
			case 0:
			case 1:
				m[k] = v.Elems()[i]
			default:
				m[k] = randValue(r, 1)
			}
		}
		for range r.IntN(3) {
			m[pick(r, keyPool)] = randValue(r, 1)
		}
		return item.Map(m)
	case item.TypeList:
		return editList(r, v)
	case item.TypeCounter:
		return item.Counter(v.Int64() + int64(r.IntN(11)-5))
	}
	return randField(r)
}

// editList deletes some elements of a list and inserts new ones (without
// ids) at random places; the elements kept keep their ids.
func editList(r *rand.Rand, v item.Value) item.Value {
	var elems []item.ListElem
	for _, e := range v.ListElems() {
		if r.IntN(4) > 0 {
			elems = append(elems, e)
		}
	}
	for range r.IntN(4) {
		at := r.IntN(len(elems) + 1)
		run := make([]item.ListElem, 1+r.IntN(3))
		for i := range run {
			run[i].Value = randListElem(r)
		}
		elems = slices.Insert(elems, at, run...)
	}
	l, err := item.ListOf(elems)
	if err != nil {
		panic(err)
	}
	return l
}

// mustSet builds a set or fails the test.
func mustSet(t testing.TB, elems ...item.Value) item.Value {
	t.Helper()
	s, err := item.Set(elems...)
	if err != nil {
		t.Fatalf("Set: %v", err)
	}
	return s
}

func encItem(t testing.TB, it item.Item) []byte {
	t.Helper()
	b, err := item.AppendItem(nil, it)
	if err != nil {
		t.Fatalf("AppendItem(%s): %v", it, err)
	}
	return b
}

func encDelta(t testing.TB, d item.Delta) []byte {
	t.Helper()
	b, err := item.AppendDelta(nil, d)
	if err != nil {
		t.Fatalf("AppendDelta(%+v): %v", d, err)
	}
	return b
}

func encValue(t testing.TB, v item.Value) []byte {
	t.Helper()
	b, err := item.AppendValue(nil, v)
	if err != nil {
		t.Fatalf("AppendValue(%#v): %v", v, err)
	}
	return b
}

// decodeValue decodes one value that fills b exactly.
func decodeValue(b []byte) (item.Value, error) {
	d := item.NewDecoder(b)
	v := d.Value()
	d.End()
	return v, d.Err()
}

// nested returns a map nested depth levels deep around leaf.
func nested(depth int, leaf item.Value) item.Value {
	v := leaf
	for range depth {
		v = item.Map(map[string]item.Value{"k": v})
	}
	return v
}
