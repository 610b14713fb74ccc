package riblt

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// TestSipHashVectors checks SipHash-2-4 against the reference vectors
// (key 00..0f, message 00..n-1) and the fixed-size forms against it.
func TestSipHashVectors(t *testing.T) {
	var key [16]byte
	msg := make([]byte, 64)
	for i := range key {
		key[i] = byte(i)
	}
	for i := range msg {
		msg[i] = byte(i)
	}
	k0, k1 := binary.LittleEndian.Uint64(key[:]), binary.LittleEndian.Uint64(key[8:])
	for _, v := range []struct {
		n    int
		want uint64
	}{
		{0, 0x726fdb47dd0e0e31},
		{15, 0xa129ca6149be45e5},
	} {
		if got := sipHash(k0, k1, msg[:v.n]); got != v.want {
			t.Errorf("SipHash of %d bytes = %#x, want %#x", v.n, got, v.want)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100 {
		k := Key{rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64()}
		var id [32]byte
		for i := range id {
			id[i] = byte(rng.Uint32())
		}
		if got, want := k.ShortID(id), sipHash(k.k0, k.k1, id[:]); got != want {
			t.Fatalf("ShortID = %#x, SipHash = %#x", got, want)
		}
		x := rng.Uint64()
		if got, want := k.checksum(x), sipHash(k.k2, k.k3, binary.LittleEndian.AppendUint64(nil, x)); got != want {
			t.Fatalf("checksum = %#x, SipHash = %#x", got, want)
		}
	}
}

// TestMappingDistribution: an element joins symbol j with probability
// 1/(1+j/2), and the first m symbols with about 2·ln(m/2)+1 in all.
func TestMappingDistribution(t *testing.T) {
	const n = 200_000
	const m = 1024
	hits := make([]int, m)
	steps := 0
	rng := rand.New(rand.NewPCG(3, 4))
	for range n {
		mp := newMapping(rng.Uint64())
		last := uint64(0)
		for ; mp.index < m; mp.advance() {
			if steps > 0 && mp.index <= last && mp.index != 0 {
				t.Fatalf("index %d after %d", mp.index, last)
			}
			last = mp.index
			hits[mp.index]++
			steps++
		}
	}
	want := 0.0
	for j := range m {
		p := 1 / (1 + float64(j)/2)
		want += p
		sigma := math.Sqrt(n * p * (1 - p))
		if got := float64(hits[j]); math.Abs(got-n*p) > 5*sigma+1 {
			t.Errorf("symbol %d: joined by %.0f of %d elements, want %.0f ± %.0f", j, got, n, n*p, sigma)
		}
	}
	if got := float64(steps) / n; math.Abs(got-want) > 0.05 {
		t.Errorf("%.3f indices below %d per element, want %.3f", got, m, want)
	}
}

// TestMappingExtremes: u = 1 gives a gap of 1, tiny u a gap within range,
// and a mapping that ran past every index stays there.
func TestMappingExtremes(t *testing.T) {
	m := mapping{index: 5}
	for range 10000 {
		prev := m.index
		m.advance()
		if m.index <= prev {
			t.Fatalf("index %d after %d", m.index, prev)
		}
		if m.index == never {
			break
		}
	}
	m = mapping{index: maxMappedIndex - 1}
	m.advance()
	if m.index != never && m.index != maxMappedIndex {
		t.Fatalf("index %d past the last", m.index)
	}
	m = mapping{index: never}
	m.advance()
	if m.index != never {
		t.Fatalf("never advanced to %d", m.index)
	}
}

func TestIDSet(t *testing.T) {
	s := newIDSet(100)
	rng := rand.New(rand.NewPCG(5, 6))
	xs := []uint64{0, 1, 2, 1 << 63}
	for range 96 {
		xs = append(xs, rng.Uint64())
	}
	for _, x := range xs {
		if s.has(x) || !s.add(x) || !s.has(x) || s.add(x) {
			t.Fatalf("set misbehaves on %#x", x)
		}
	}
	if s.has(3) {
		t.Fatal("has an id never added")
	}
}
