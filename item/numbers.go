package item

import (
	"cmp"
	"math"
)

// CompareNumbers orders two numeric values (int or number) by their exact
// value, so the int 1 and the number 1 are equal (0) and the int 2^53+1 is
// greater than the number 2^53; queries use it to compare and sort ints
// and numbers together. Values of other types are ordered by [Compare].
func CompareNumbers(a, b Value) int {
	switch {
	case a.t == TypeInt && b.t == TypeNumber:
		return compareIntFloat(a.Int64(), b.Float())
	case a.t == TypeNumber && b.t == TypeInt:
		return -compareIntFloat(b.Int64(), a.Float())
	}
	return Compare(a, b)
}

// compareIntFloat compares i and f exactly: converting either to the
// other's type can round.
func compareIntFloat(i int64, f float64) int {
	switch {
	case f >= 1<<63: // and +Inf
		return -1
	case f < -1<<63: // and -Inf
		return 1
	}
	t := math.Trunc(f)
	if c := cmp.Compare(i, int64(t)); c != 0 {
		return c
	}
	return cmp.Compare(0, f-t) // the fraction decides
}
