package main

import (
	"fmt"
	"math"
	"slices"
)

// summary describes the timed samples of one operation on one engine.
type summary struct {
	Median  float64 `json:"median_ns"` // nanoseconds per operation
	P95     float64 `json:"p95_ns"`
	Samples int     `json:"samples"`
	// Reps is how many operations each sample timed: more than one for
	// operations too short to time one by one. The sample is their mean.
	Reps int `json:"reps"`
}

// summarize returns the median and 95th percentile (nearest rank) of
// per-operation times in nanoseconds.
func summarize(ns []float64, reps int) summary {
	s := slices.Clone(ns)
	slices.Sort(s)
	return summary{Median: median(s), P95: nearestRank(s, 0.95), Samples: len(s), Reps: reps}
}

func median(sorted []float64) float64 {
	n := len(sorted)
	switch {
	case n == 0:
		return math.NaN()
	case n%2 == 1:
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// nearestRank returns the smallest sample with at least p of the samples
// at or below it.
func nearestRank(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

// formatNS formats nanoseconds with three significant digits and a unit:
// 412 ns, 3.27 µs, 18.4 ms, 1.25 s.
func formatNS(ns float64) string {
	units := []struct {
		name string
		size float64
	}{{"s", 1e9}, {"ms", 1e6}, {"µs", 1e3}}
	for _, u := range units {
		if ns >= u.size {
			return sig3(ns/u.size) + " " + u.name
		}
	}
	return sig3(ns) + " ns"
}

// sig3 formats x ≥ 0 with three significant digits, without exponent.
func sig3(x float64) string {
	switch {
	case math.IsNaN(x):
		return "-"
	case x >= 100:
		return fmt.Sprintf("%.0f", x)
	case x >= 10:
		return fmt.Sprintf("%.1f", x)
	}
	return fmt.Sprintf("%.2f", x)
}

// formatRatio formats a ratio with two significant digits: 0.052×, 1.3×,
// 27×.
func formatRatio(r float64) string {
	switch {
	case math.IsNaN(r) || math.IsInf(r, 0):
		return "-"
	case r >= 10:
		return fmt.Sprintf("%.0f×", r)
	case r >= 1:
		return fmt.Sprintf("%.1f×", r)
	}
	digits := max(1, int(-math.Floor(math.Log10(r)))+1)
	return fmt.Sprintf("%.*f×", digits, r)
}
