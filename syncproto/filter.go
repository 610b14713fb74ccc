package syncproto

import (
	"crypto/rand"
	"encoding/binary"
	"math"

	"github.com/bits-and-blooms/bloom/v3"
	"github.com/goatdb/goatdb/commit"
	"github.com/zeebo/blake3"
)

// SaltSize is the size of a filter's salt.
const SaltSize = 16

// Filter is a Bloom filter of commit ids under a random salt: it holds
// blake3(salt || id)[:16] for each id. A fresh salt every round means the
// ids that a round's filter wrongly claims to hold differ from round to
// round, so a commit hidden by a false positive is found by a later round,
// and nobody can mine ids that collide in the filter in advance.
//
// A Filter is not safe for concurrent writes; Has may be called
// concurrently once it is built.
type Filter struct {
	salt [SaltSize]byte
	bf   *bloom.BloomFilter
}

// MaxFilterBits and MaxFilterK bound a filter's size and hash count.
const (
	MaxFilterBits = 1 << 27 // 16 MiB
	MaxFilterK    = 32
)

// Filter sizing. A filter's false-positive rate p is chosen from d, an
// estimate of how many commits the receiver holds that the sender lacks
// (the commits a false positive would hide), and from the Bloom rounds
// left in the budget:
//
//   - p ≤ retryOdds/d, so a round needs a follow-up with probability
//     about retryOdds;
//   - p ≤ (failOdds/d)^(1/rounds), so a commit stays hidden through every
//     remaining round with probability at most failOdds;
//   - clamped to [minFP, maxFP].
const (
	retryOdds = 0.02
	failOdds  = 1e-9
	minFP     = 1e-12
	maxFP     = 0.05
	minDiff   = 16 // the smallest difference a filter is sized for
)

// falsePositiveRate returns the false-positive rate for a filter when the
// receiver probably holds about diff commits the sender lacks and rounds
// Bloom rounds are left (0: unknown, no bound from the budget).
func falsePositiveRate(diff uint64, rounds int) float64 {
	d := float64(max(diff, minDiff))
	p := retryOdds / d
	if rounds > 0 {
		p = min(p, math.Pow(failOdds/d, 1/float64(rounds)))
	}
	return min(max(p, minFP), maxFP)
}

// NewFilter returns an empty filter for about n ids with false-positive
// rate p, under a fresh random salt.
func NewFilter(n uint64, p float64) *Filter {
	m, k := bloom.EstimateParameters(uint(max(n, 1)), p)
	m = min(max(m, 64), MaxFilterBits)
	k = min(max(k, 1), MaxFilterK)
	f := &Filter{bf: bloom.New(m, k)}
	rand.Read(f.salt[:]) // never fails (crypto/rand)
	return f
}

// filterOf returns a filter holding ids, sized for diff and rounds.
func filterOf(ids []commit.ID, diff uint64, rounds int) *Filter {
	f := NewFilter(uint64(len(ids)), falsePositiveRate(diff, rounds))
	for _, id := range ids {
		f.Add(id)
	}
	return f
}

func (f *Filter) key(id commit.ID) []byte {
	var buf [SaltSize + len(id)]byte
	copy(buf[:], f.salt[:])
	copy(buf[SaltSize:], id[:])
	h := blake3.Sum256(buf[:])
	return h[:16]
}

// Add adds an id.
func (f *Filter) Add(id commit.ID) { f.bf.Add(f.key(id)) }

// Has reports whether the filter may hold id: false means it certainly
// does not.
func (f *Filter) Has(id commit.ID) bool { return f.bf.Test(f.key(id)) }

// Salt returns the filter's salt.
func (f *Filter) Salt() [SaltSize]byte { return f.salt }

// Bits returns the filter's size in bits (m).
func (f *Filter) Bits() uint64 { return uint64(f.bf.Cap()) }

// K returns the filter's number of hash functions.
func (f *Filter) K() int { return int(f.bf.K()) }

// words returns the filter's bits, 64 to a word, bit i of the filter at
// bit i%64 of word i/64; bits past Bits are zero.
func (f *Filter) words() []uint64 { return f.bf.BitSet().Words() }

// filterFrom rebuilds a decoded filter from its words, little-endian; the
// caller has checked the bounds and that raw holds (m+63)/64 words.
func filterFrom(salt [SaltSize]byte, m uint64, k int, raw []byte) *Filter {
	f := &Filter{salt: salt, bf: bloom.New(uint(m), uint(k))}
	words := f.words()
	for i := range words {
		words[i] = binary.LittleEndian.Uint64(raw[8*i:])
	}
	return f
}
