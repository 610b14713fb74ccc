package riblt_test

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/goatdb/goatdb/syncproto/riblt"
)

// sets draws a key and two sets of random short ids from seed: common
// elements in both, rOnly only in the remote one, lOnly only in the local
// one.
type sets struct {
	key           riblt.Key
	remote, local []uint64
	rOnly, lOnly  []uint64
}

func newSets(seed uint64, common, rOnly, lOnly int) sets {
	rng := rand.New(rand.NewPCG(seed, 0x72696c62))
	var kb [riblt.KeySize]byte
	for i := range kb {
		kb[i] = byte(rng.Uint32())
	}
	s := sets{key: riblt.KeyFromBytes(kb)}
	seen := map[uint64]bool{}
	draw := func(n int) []uint64 {
		out := make([]uint64, 0, n)
		for len(out) < n {
			if x := rng.Uint64(); !seen[x] {
				seen[x] = true
				out = append(out, x)
			}
		}
		return out
	}
	both := draw(common)
	s.rOnly, s.lOnly = draw(rOnly), draw(lOnly)
	s.remote = append(slices.Clone(both), s.rOnly...)
	s.local = append(slices.Clone(both), s.lOnly...)
	rng.Shuffle(len(s.remote), func(i, j int) { s.remote[i], s.remote[j] = s.remote[j], s.remote[i] })
	return s
}

func (s sets) encoder() *riblt.Encoder {
	enc := riblt.NewEncoder(s.key)
	for _, x := range s.remote {
		enc.AddShortID(x)
	}
	return enc
}

func (s sets) decoder(opts *riblt.DecoderOptions) *riblt.Decoder {
	dec := riblt.NewDecoder(s.key, opts)
	for _, x := range s.local {
		dec.AddShortID(x)
	}
	return dec
}

// reconcile streams the remote set's symbols into a decoder of the local
// one until it is done, and returns it with the number of symbols used.
func (s sets) reconcile(t testing.TB) (*riblt.Decoder, int) {
	t.Helper()
	st := s.encoder().Stream(0)
	dec := s.decoder(nil)
	for !dec.Done() {
		if err := dec.AddSymbol(st.Next()); err != nil {
			t.Fatalf("symbol %d: %v", dec.Received()-1, err)
		}
	}
	return dec, int(dec.Received())
}

func sameSet(a, b []uint64) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func checkDiff(t *testing.T, s sets, dec *riblt.Decoder) {
	t.Helper()
	if got := dec.RemoteOnly(); !sameSet(got, s.rOnly) {
		t.Errorf("RemoteOnly = %d elements, want %d (%x vs %x)", len(got), len(s.rOnly), got, s.rOnly)
	}
	if got := dec.LocalOnly(); !sameSet(got, s.lOnly) {
		t.Errorf("LocalOnly = %d elements, want %d (%x vs %x)", len(got), len(s.lOnly), got, s.lOnly)
	}
}
