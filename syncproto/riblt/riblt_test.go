package riblt_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/syncproto/riblt"
)

func TestReconcile(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		common, rOnly, lOnly int
	}{
		{"empty both", 0, 0, 0},
		{"empty local", 0, 7, 0},
		{"empty remote", 0, 0, 7},
		{"one remote-only", 1000, 1, 0},
		{"one local-only", 1000, 0, 1},
		{"both directions", 1000, 30, 20},
		{"both directions, large", 2000, 300, 300},
		{"only differences", 0, 50, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := range uint64(20) {
				s := newSets(seed, tc.common, tc.rOnly, tc.lOnly)
				dec, n := s.reconcile(t)
				checkDiff(t, s, dec)
				if d := tc.rOnly + tc.lOnly; d == 0 && n != 1 {
					t.Errorf("seed %d: equal sets took %d symbols, want 1", seed, n)
				}
			}
		})
	}
}

// TestIdenticalSets: equal sets differ by nothing, which the first symbol
// shows: count 0 and both sums 0 once the local symbol is subtracted.
func TestIdenticalSets(t *testing.T) {
	s := newSets(1, 5000, 0, 0)
	enc := s.encoder()
	s0 := enc.Symbol(0)
	if s0.Count != 5000 {
		t.Fatalf("symbol 0 count = %d, want every element (5000)", s0.Count)
	}
	dec := s.decoder(nil)
	if dec.Done() {
		t.Fatal("Done before any symbol")
	}
	if err := dec.AddSymbol(s0); err != nil {
		t.Fatal(err)
	}
	if !dec.Done() || len(dec.RemoteOnly())+len(dec.LocalOnly()) != 0 {
		t.Fatalf("after symbol 0: Done = %v, remote %d, local %d", dec.Done(), len(dec.RemoteOnly()), len(dec.LocalOnly()))
	}
	// Later symbols agree and keep it done.
	if err := dec.AddSymbols(1, enc.AppendSymbols(nil, 1, 10)); err != nil || !dec.Done() {
		t.Fatalf("later symbols: %v, Done = %v", err, dec.Done())
	}
}

// TestLargeSetSmallDifference: the symbols needed depend on the
// difference, not on the size of the sets.
func TestLargeSetSmallDifference(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 20_000
	}
	for _, d := range []int{1, 2, 10} {
		s := newSets(uint64(d), n, d-d/2, d/2)
		dec, got := s.reconcile(t)
		checkDiff(t, s, dec)
		if got > 4*d+8 {
			t.Errorf("d=%d over %d elements took %d symbols", d, n, got)
		}
	}
}

// TestCommitIDs: the same, adding commit ids rather than short ids.
func TestCommitIDs(t *testing.T) {
	key := riblt.NewKey()
	id := func(i int) commit.ID { return commit.ID{byte(i), byte(i >> 8), 0xc0} }
	enc, dec := riblt.NewEncoder(key), riblt.NewDecoder(key, nil)
	for i := range 500 {
		if i != 7 {
			enc.Add(id(i))
		}
		if i != 300 {
			dec.Add(id(i))
		}
	}
	st := enc.Stream(0)
	for !dec.Done() {
		if err := dec.AddSymbol(st.Next()); err != nil {
			t.Fatal(err)
		}
	}
	if r, l := dec.RemoteOnly(), dec.LocalOnly(); !slices.Equal(r, []uint64{key.ShortID(id(300))}) || !slices.Equal(l, []uint64{key.ShortID(id(7))}) {
		t.Fatalf("remote-only %x, local-only %x", r, l)
	}
}

// TestSymbolsReproducible: symbols are a function of the set and the key
// alone: any range, in any order of adding, by AppendSymbols, Symbol or
// a Stream from any index, is the same.
func TestSymbolsReproducible(t *testing.T) {
	s := newSets(3, 3000, 0, 0)
	enc := s.encoder()
	all := enc.AppendSymbols(nil, 0, 700)
	rev := riblt.NewEncoder(s.key)
	for _, x := range slices.Backward(s.remote) {
		rev.AddShortID(x)
	}
	if got := rev.AppendSymbols(nil, 0, 700); !slices.Equal(got, all) {
		t.Fatal("symbols depend on the order elements were added")
	}
	for _, r := range [][2]uint64{{0, 1}, {5, 6}, {0, 64}, {100, 333}, {699, 700}} {
		if got := enc.AppendSymbols(nil, r[0], r[1]); !slices.Equal(got, all[r[0]:r[1]]) {
			t.Errorf("AppendSymbols(%d, %d) differs", r[0], r[1])
		}
		if got := enc.Symbol(r[0]); got != all[r[0]] {
			t.Errorf("Symbol(%d) differs", r[0])
		}
		st := enc.Stream(r[0])
		if got := st.AppendNext(nil, int(r[1]-r[0])); !slices.Equal(got, all[r[0]:r[1]]) {
			t.Errorf("Stream(%d) differs", r[0])
		}
		if st.Index() != r[1] {
			t.Errorf("Stream(%d) index %d after %d symbols", r[0], st.Index(), r[1]-r[0])
		}
	}
	if got := enc.AppendSymbols([]riblt.Symbol{{Count: 9}}, 4, 4); len(got) != 1 {
		t.Error("an empty range appended symbols")
	}
	other := riblt.NewEncoder(riblt.NewKey())
	for _, x := range s.remote {
		other.AddShortID(x)
	}
	if got := other.AppendSymbols(nil, 0, 10); slices.Equal(got[1:], all[1:10]) {
		t.Error("symbols do not depend on the key")
	}
}

// TestAddSymbols: runs may overlap what was received, not leave a gap,
// and adding stops once the difference is decoded.
func TestAddSymbols(t *testing.T) {
	s := newSets(4, 500, 20, 20)
	enc := s.encoder()
	dec := s.decoder(nil)
	if err := dec.AddSymbols(0, enc.AppendSymbols(nil, 0, 10)); err != nil {
		t.Fatal(err)
	}
	if err := dec.AddSymbols(12, enc.AppendSymbols(nil, 12, 20)); !errors.Is(err, riblt.ErrOutOfOrder) {
		t.Fatalf("gap: %v, want ErrOutOfOrder", err)
	}
	if err := dec.AddSymbols(0, enc.AppendSymbols(nil, 0, 5)); err != nil || dec.Received() != 10 {
		t.Fatalf("old run: %v, received %d", err, dec.Received())
	}
	for start := uint64(5); !dec.Done(); start += 10 {
		if err := dec.AddSymbols(start, enc.AppendSymbols(nil, start, start+10)); err != nil {
			t.Fatal(err)
		}
	}
	checkDiff(t, s, dec)
	if n := dec.Received(); n > 200 {
		t.Fatalf("took %d symbols", n)
	}
}

func TestBudget(t *testing.T) {
	s := newSets(5, 100, 100, 0)
	dec := s.decoder(&riblt.DecoderOptions{MaxSymbols: 50})
	err := dec.AddSymbols(0, s.encoder().AppendSymbols(nil, 0, 51))
	if !errors.Is(err, riblt.ErrBudget) || dec.Received() != 50 || dec.Done() {
		t.Fatalf("err %v after %d symbols, Done = %v", err, dec.Received(), dec.Done())
	}
	if err2 := dec.AddSymbol(riblt.Symbol{}); err2 != err || dec.Err() != err {
		t.Fatalf("error not final: %v, %v", err2, dec.Err())
	}
	for _, o := range []riblt.DecoderOptions{{MaxSymbols: -1}, {MaxSymbols: riblt.MaxIndex + 1}} {
		if o.Validate() == nil {
			t.Errorf("%+v validates", o)
		}
	}
	var nilOpts *riblt.DecoderOptions
	if nilOpts.Validate() != nil {
		t.Error("nil options do not validate")
	}
}

func TestKey(t *testing.T) {
	k := riblt.NewKey()
	if riblt.KeyFromBytes(k.Bytes()) != k {
		t.Fatal("key does not round-trip through its bytes")
	}
	if k == riblt.NewKey() {
		t.Fatal("two new keys are equal")
	}
	id := commit.ID{1, 2, 3}
	if k.ShortID(id) == riblt.NewKey().ShortID(id) {
		t.Fatal("short id does not depend on the key")
	}
}

// TestAddAfterSymbol: adding local elements once symbols arrive is a
// programming error.
func TestAddAfterSymbol(t *testing.T) {
	dec := riblt.NewDecoder(riblt.NewKey(), nil)
	if err := dec.AddSymbol(riblt.Symbol{}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	dec.AddShortID(1)
}
