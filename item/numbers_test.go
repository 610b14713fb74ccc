package item_test

import (
	"math"
	"math/big"
	"testing"

	"github.com/goatdb/goatdb/item"
)

func TestCompareNumbers(t *testing.T) {
	tests := []struct {
		a, b item.Value
		want int
	}{
		{item.Int(1), item.Number(1), 0},
		{item.Number(1), item.Int(1), 0},
		{item.Int(1), item.Number(0.5), 1},
		{item.Number(0.5), item.Int(1), -1},
		{item.Int(0), item.Number(-0.5), 1},
		{item.Int(-1), item.Number(-0.5), -1},
		{item.Int(1<<53 + 1), item.Number(1 << 53), 1},
		{item.Int(1<<53 + 3), item.Number(1<<53 + 4), -1}, // float64(2^53+3) is 2^53+4
		{item.Int(math.MaxInt64), item.Number(1 << 63), -1},
		{item.Int(math.MinInt64), item.Number(-1 << 63), 0},
		{item.Int(math.MinInt64), item.Number(math.Inf(-1)), 1},
		{item.Int(math.MaxInt64), item.Number(math.Inf(1)), -1},
		{item.Int(2), item.Int(1), 1},
		{item.Number(2), item.Number(3), -1},
		{item.String("a"), item.Int(1), -1}, // other types: Compare, by type
	}
	for _, tt := range tests {
		if got := item.CompareNumbers(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareNumbers(%#v, %#v) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// FuzzCompareNumbers checks CompareNumbers of an int and a number against
// exact arithmetic.
func FuzzCompareNumbers(f *testing.F) {
	f.Add(int64(1), 1.0)
	f.Add(int64(1<<53+3), float64(1<<53+4))
	f.Add(int64(math.MaxInt64), float64(1<<63))
	f.Add(int64(math.MinInt64), float64(-1<<63))
	f.Add(int64(-1), -0.5)
	f.Fuzz(func(t *testing.T, i int64, fl float64) {
		if math.IsNaN(fl) {
			return
		}
		want := new(big.Float).SetInt64(i).Cmp(big.NewFloat(fl))
		if got := item.CompareNumbers(item.Int(i), item.Number(fl)); got != want {
			t.Fatalf("CompareNumbers(%d, %v) = %d, want %d", i, fl, got, want)
		}
		if got := item.CompareNumbers(item.Number(fl), item.Int(i)); got != -want {
			t.Fatalf("CompareNumbers(%v, %d) = %d, want %d", fl, i, got, -want)
		}
	})
}
