package repo

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

// TestCRCIndex checks segment checksums against crc32 over random
// segments, including empty ones and those inside one stride.
func TestCRCIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 10_000)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	x := newCRCIndex(data)
	check := func(i, j int) {
		t.Helper()
		if got, want := x.sum(i, j), crc32.Checksum(data[i:j], castagnoli); got != want {
			t.Fatalf("sum(%d, %d) = %08x, want %08x", i, j, got, want)
		}
	}
	for _, b := range [][2]int{{0, 0}, {0, len(data)}, {0, 64}, {64, 128}, {1, 63}, {63, 65}, {5, 5}, {9999, 10000}, {128, 10000}} {
		check(b[0], b[1])
	}
	for range 2000 {
		i := rng.IntN(len(data) + 1)
		check(i, i+rng.IntN(len(data)-i+1))
	}
}
