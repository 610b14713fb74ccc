package riblt_test

import (
	"fmt"
	"testing"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/syncproto/riblt"
)

func benchIDs(n int) []commit.ID {
	ids := make([]commit.ID, n)
	for i := range ids {
		ids[i] = commit.ID{byte(i), byte(i >> 8), byte(i >> 16), 0xbe}
	}
	return ids
}

// BenchmarkEncode: a stateless server answering one request: short ids
// of N commit ids under a fresh key, then the first m symbols.
func BenchmarkEncode(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		ids := benchIDs(n)
		for _, m := range []uint64{64, 1024} {
			b.Run(fmt.Sprintf("N=%d/m=%d", n, m), func(b *testing.B) {
				b.ReportAllocs()
				var buf []riblt.Symbol
				for b.Loop() {
					enc := riblt.NewEncoder(riblt.NewKey())
					for _, id := range ids {
						enc.Add(id)
					}
					buf = enc.AppendSymbols(buf[:0], 0, m)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/op")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/element")
			})
		}
	}
}

// BenchmarkSymbols: the symbols alone, short ids already computed.
func BenchmarkSymbols(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		enc := riblt.NewEncoder(riblt.NewKey())
		for _, id := range benchIDs(n) {
			enc.Add(id)
		}
		for _, m := range []uint64{64, 1024} {
			b.Run(fmt.Sprintf("N=%d/m=%d", n, m), func(b *testing.B) {
				b.ReportAllocs()
				var buf []riblt.Symbol
				for b.Loop() {
					buf = enc.AppendSymbols(buf[:0], 0, m)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/op")
			})
		}
	}
}

// BenchmarkShortIDs: keying N commit ids (SipHash-2-4 of 32 bytes, then
// of the 8-byte short id for its checksum).
func BenchmarkShortIDs(b *testing.B) {
	ids := benchIDs(10_000)
	b.ReportAllocs()
	for b.Loop() {
		enc := riblt.NewEncoder(riblt.NewKey())
		for _, id := range ids {
			enc.Add(id)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(ids)), "ns/element")
}

// BenchmarkReconcile: the client's side: N local commit ids, a difference
// of d, symbols added one at a time until decoded.
func BenchmarkReconcile(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		for _, d := range []int{0, 10, 100, 1000} {
			b.Run(fmt.Sprintf("N=%d/d=%d", n, d), func(b *testing.B) {
				s := newSets(uint64(n+d), n-d/2, d-d/2, d/2)
				key := s.key
				syms := s.encoder().AppendSymbols(nil, 0, uint64(3*d+64))
				b.ReportAllocs()
				used := 0
				for b.Loop() {
					dec := riblt.NewDecoder(key, nil)
					for _, x := range s.local {
						dec.AddShortID(x)
					}
					for i := 0; !dec.Done(); i++ {
						if err := dec.AddSymbol(syms[i]); err != nil {
							b.Fatal(err)
						}
					}
					used = int(dec.Received())
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/op")
				b.ReportMetric(float64(used), "symbols")
			})
		}
	}
}
