package riblt

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/goatdb/goatdb/commit"
)

// collidingIDs narrows short ids to 20 bits for the rest of the test and
// brute-forces two commit ids with the same short id under key, as an
// attacker would if short ids were that short, plus n other ids whose
// short ids are all distinct.
func collidingIDs(t *testing.T, key Key, n int) (a, b commit.ID, others []commit.ID) {
	t.Helper()
	t.Cleanup(NarrowShortIDs(20))
	id := func(i int) commit.ID { return commit.ID{byte(i), byte(i >> 8), byte(i >> 16), 0xad} }
	seen := map[uint64]int{}
	i := 0
	for ; ; i++ {
		x := key.ShortID(id(i))
		if j, ok := seen[x]; ok {
			a, b = id(j), id(i)
			break
		}
		seen[x] = i
	}
	used := map[uint64]bool{key.ShortID(a): true}
	for i++; len(others) < n; i++ {
		if x := key.ShortID(id(i)); !used[x] {
			used[x] = true
			others = append(others, id(i))
		}
	}
	return a, b, others
}

// reconcileIDs streams the remote ids' symbols into a decoder of the
// local ones until it is done or fails, at most maxSyms symbols.
func reconcileIDs(key Key, remote, local []commit.ID, maxSyms int) (*Decoder, error) {
	enc := NewEncoder(key)
	for _, id := range remote {
		enc.Add(id)
	}
	dec := NewDecoder(key, &DecoderOptions{MaxSymbols: maxSyms})
	for _, id := range local {
		dec.Add(id)
	}
	st := enc.Stream(0)
	for !dec.Done() {
		if err := dec.AddSymbol(st.Next()); err != nil {
			return dec, err
		}
	}
	return dec, nil
}

// TestShortIDCollision: two commit ids with one short id. Within one set
// the decoder reports ErrCollision after few symbols; across the sets
// (one id on each side) the pair is invisible to the symbols, which the
// caller catches by comparing set digests after applying the difference.
// Either way the protocol falls back to its Bloom round and the next
// request, under a fresh key, separates the two.
func TestShortIDCollision(t *testing.T) {
	key := KeyFromBytes([KeySize]byte{1, 2, 3})
	a, b, others := collidingIDs(t, key, 200)
	common, extra := others[:190], others[190:] // extra: 10 remote-only ids
	with := func(ids ...commit.ID) []commit.ID { return append(slices.Clone(common), ids...) }
	for _, tc := range []struct {
		name          string
		remote, local []commit.ID
		want          error
	}{
		{"both local", with(a), with(a, b), ErrCollision},
		{"both remote, one local", with(a, b), with(a), ErrCollision},
		{"both remote, one local, more differences", with(append(extra, a, b)...), with(a), ErrCollision},
		{"both remote, none local", with(a, b), with(), ErrCollision},
		{"both remote, none local, more differences", with(append(extra, a, b)...), with(), ErrCollision},
		{"one each side", with(a), with(b), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const maxSyms = 1000
			dec, err := reconcileIDs(key, tc.remote, tc.local, maxSyms)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v after %d symbols, want %v", err, dec.Received(), tc.want)
			}
			if err != nil {
				if n := dec.Received(); n > 64 {
					t.Errorf("failure found after %d symbols", n)
				}
				t.Logf("after %d symbols: %v", dec.Received(), err)
				return
			}
			// The one undetectable case: the symbols agree, the sets do not.
			if len(dec.RemoteOnly())+len(dec.LocalOnly()) != 0 {
				t.Fatalf("decoded %x / %x", dec.RemoteOnly(), dec.LocalOnly())
			}
			if digest(tc.remote) == digest(tc.local) {
				t.Fatal("digests agree: the fallback would not trigger")
			}
		})
	}
}

// digest stands for the protocol's set digest: any function of the full
// commit ids.
func digest(ids []commit.ID) commit.ID {
	var d commit.ID
	for _, id := range ids {
		for i := range d {
			d[i] ^= id[i]
		}
	}
	return d
}

// TestCraftedSymbols: symbols no remote set produces stop the decoder
// with an error, in bounded work.
func TestCraftedSymbols(t *testing.T) {
	key := KeyFromBytes([KeySize]byte{9})
	rng := rand.New(rand.NewPCG(7, 8))
	local := []uint64{rng.Uint64(), rng.Uint64(), rng.Uint64()}
	x := rng.Uint64() // an element the local set does not hold
	pure := func(x uint64, count int64) Symbol { return Symbol{x, key.checksum(x), count} }
	// notAt returns an element whose mapping skips index j.
	notAt := func(j uint64) uint64 {
		for {
			y := rng.Uint64()
			m := newMapping(key.checksum(y))
			for m.index < j {
				m.advance()
			}
			if m.index != j {
				return y
			}
		}
	}
	localSym := func(j uint64) Symbol {
		enc := NewEncoder(key)
		for _, y := range local {
			enc.AddShortID(y)
		}
		return enc.Symbol(j)
	}
	plus := func(a, b Symbol) Symbol { return Symbol{a.Sum ^ b.Sum, a.Check ^ b.Check, a.Count + b.Count} }
	noise := Symbol{Sum: 12345, Check: 678, Count: 5}
	y := notAt(3)
	for _, tc := range []struct {
		name string
		syms []Symbol
		want error
	}{
		{"count too big", []Symbol{{Count: MaxCount + 1}}, ErrInconsistent},
		{"count too small", []Symbol{{Count: -MaxCount - 1}}, ErrInconsistent},
		{"local-only element not local", []Symbol{plus(localSym(0), pure(x, -1))}, ErrInconsistent},
		{"remote-only element already local", []Symbol{plus(localSym(0), pure(local[0], 1))}, ErrCollision},
		{"element peeled twice", []Symbol{plus(localSym(0), pure(x, 1)), plus(localSym(1), pure(x, 1)).xorIf(x, key, mapsTo(key, x, 1))}, ErrInconsistent},
		{"element does not map to its symbol", []Symbol{plus(localSym(0), noise), localSym(1), localSym(2), plus(localSym(3), pure(y, 1))}, ErrInconsistent},
		{"symbols left once symbol 0 is empty", []Symbol{localSym(0), plus(localSym(1), noise)}, ErrInconsistent},
		{"cancelling sums", []Symbol{plus(localSym(0), Symbol{Count: 2})}, ErrCollision},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dec := NewDecoder(key, nil)
			for _, y := range local {
				dec.AddShortID(y)
			}
			var err error
			for _, s := range tc.syms {
				if err = dec.AddSymbol(s); err != nil {
					break
				}
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			t.Log(err)
		})
	}
}

// xorIf takes x out of s when cond: the decoder takes a peeled element
// out of the later symbols it joins itself, so a forged repeat must put
// it back in.
func (s Symbol) xorIf(x uint64, key Key, cond bool) Symbol {
	if cond {
		s.add(x, key.checksum(x), 1)
	}
	return s
}

func mapsTo(key Key, x, j uint64) bool {
	m := newMapping(key.checksum(x))
	for m.index < j {
		m.advance()
	}
	return m.index == j
}

// TestGarbageBounded: a stream of random symbols ends in an error within
// the symbol budget, after work proportional to it.
func TestGarbageBounded(t *testing.T) {
	key := KeyFromBytes([KeySize]byte{4})
	rng := rand.New(rand.NewPCG(9, 10))
	for trial := range 50 {
		dec := NewDecoder(key, &DecoderOptions{MaxSymbols: 500})
		for range 100 {
			dec.AddShortID(rng.Uint64())
		}
		var err error
		for err == nil {
			s := Symbol{rng.Uint64(), rng.Uint64(), int64(rng.IntN(5)) - 2}
			if rng.IntN(4) == 0 { // a pure-looking symbol
				s.Check = key.checksum(s.Sum)
			}
			err = dec.AddSymbol(s)
			if dec.Received() > 500 {
				t.Fatal("past the budget")
			}
		}
		if dec.work > dec.maxWork() {
			t.Fatalf("trial %d: work %d beyond %d", trial, dec.work, dec.maxWork())
		}
		if trial < 3 {
			t.Logf("trial %d: %v after %d symbols, %d steps", trial, err, dec.Received(), dec.work)
		}
	}
}
