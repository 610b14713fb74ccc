package item_test

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/goatdb/goatdb/item"
)

// FuzzDecodeList decodes lists and counters (and anything else) and checks
// that what the decoder accepts is valid and canonical. The corpus is
// seeded with random lists and counters.
func FuzzDecodeList(f *testing.F) {
	r := fuzzRand()
	for range 30 {
		it := randListLeaf(r, write(item.Item{}, "l", r.Uint64(), "a", "b", "c"))
		v, _ := it.Get("l")
		f.Add(encValue(f, v))
		f.Add(encValue(f, randCounter(r)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeValue(b)
		if err != nil {
			return
		}
		if err := v.Valid(); err != nil {
			t.Fatalf("decoded an invalid value %#v: %v", v, err)
		}
		if enc := encValue(t, v); !bytes.Equal(enc, b) {
			t.Fatalf("decoded % x, re-encoded as % x", b, enc)
		}
	})
}

// FuzzListDelta decodes a delta and applies it to a list with Patch and
// with Merge: neither may panic, and what Patch accepts encodes.
func FuzzListDelta(f *testing.F) {
	r := fuzzRand()
	base := write(item.Item{}, "l", 1, "a", "b", "c")
	for range 30 {
		f.Add(encDelta(f, item.Diff(base, randListLeaf(r, base))))
	}
	f.Add(encDelta(f, item.Delta{Edits: []item.Edit{{Field: "l", Op: item.OpCounterAdd, N: 3}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := item.DecodeDelta(b)
		if err != nil {
			return
		}
		if got, err := item.Patch(base, d); err == nil {
			if _, err := item.AppendItem(nil, got); err != nil {
				t.Fatalf("Patch made %s, which does not encode: %v", got, err)
			}
		}
		other := item.Diff(base, write(base, "l", 2, "a", "x", "c"))
		if got, err := item.Merge(base, []item.Delta{d, other}); err == nil {
			if _, err := item.AppendItem(nil, got); err != nil {
				t.Fatalf("Merge made %s, which does not encode: %v", got, err)
			}
		}
	})
}

// FuzzListMerge runs random concurrent list histories from a seed and
// checks the merge invariants of TestListMergeProperties.
func FuzzListMerge(f *testing.F) {
	for i := range uint64(20) {
		f.Add(i, uint8(2+i%4))
	}
	f.Fuzz(func(t *testing.T, seed uint64, n uint8) {
		r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		base := randListLeaf(r, write(item.Item{}, "l", r.Uint64(), "a", "b", "c"))
		leaves := make([]item.Item, 1+int(n)%6)
		for i := range leaves {
			leaves[i] = randListLeaf(r, base)
			if i > 0 && r.IntN(3) == 0 {
				leaves[i] = randListLeaf(r, leaves[i-1])
			}
		}
		checkListMerge(t, base, leaves, mustMerge(t, base, leaves...))
	})
}
