package riblt

import "math"

// never is the index of a mapping that has run past maxMappedIndex.
const never = math.MaxUint64

// maxMappedIndex bounds the indices a mapping yields; beyond it the
// element joins no further symbol. It is far above any index a Decoder
// accepts (MaxIndex).
const maxMappedIndex = 1 << 62

// A mapping yields, in increasing order, the indices of the coded symbols
// an element joins: index 0 always, then index j with probability
// 1/(1+j/2), independently for each j (Yang, Gilad, Alizadeh 2024, §4).
//
// It draws the gap to the next index directly instead of a coin per
// index: from index i, the chance of joining none of i+1..i+g is
//
//	S(g) = Π_{k=i+1}^{i+g} (1 - 1/(1+k/2)) = (i+1)(i+2) / ((i+g+1)(i+g+2)),
//
// so with u uniform in (0, 1] the gap is the least g ≥ 1 with S(g) < u:
// g = ⌊√((i+1)(i+2)/u + 1/4) - (i+3/2)⌋ + 1, exactly the paper's
// distribution (its reference code uses the approximation
// ⌈(i+1.5)(1/√u - 1)⌉, which joins index 1 with probability 0.64
// instead of 2/3). An element joins about 2·ln(m/2)+1 of the first m
// symbols, and walking its mapping costs that many steps.
//
// u comes from a splitmix64 generator seeded with the element's keyed
// checksum, so the mapping is a function of the element and the key alone
// and cannot be predicted without the key.
type mapping struct {
	state uint64 // splitmix64 state
	index uint64 // the current index; never once past maxMappedIndex
}

func newMapping(check uint64) mapping { return mapping{state: check} }

// advance moves to the next index the element joins.
func (m *mapping) advance() {
	if m.index == never {
		return
	}
	m.state += 0x9e3779b97f4a7c15
	z := m.state
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	z ^= z >> 31
	invU := 0x1p53 / float64(z>>11+1) // 1/u, u uniform in (0, 1]
	// The chain from one index to the next is latency-bound: a multiply
	// by 1/u (computed off that chain) rather than a division, and a
	// truncating conversion rather than math.Floor (they differ only
	// below 0, which the clamp to a gap of 1 covers).
	i := float64(m.index)
	x := math.Sqrt((i+1)*(i+2)*invU+0.25) - (i + 1.5)
	switch {
	case x < 0:
		m.index++
	case x >= float64(maxMappedIndex-m.index-1):
		m.index = never
	default:
		m.index += uint64(int64(x)) + 1
	}
}
