package syncproto

import (
	"math/rand/v2"
	"testing"

	"github.com/goatdb/goatdb/commit"
)

// TestTallyAbove: a tally's set from any horizon on, at midnight UTC or
// inside a day, before or after its cut was asked for, equals the set
// counted one commit at a time; and it takes O(days), not O(commits).
func TestTallyAbove(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const base = 1_767_225_600_000 // 2026-01-01T00:00:00Z
	type entry struct {
		id commit.ID
		at int64
	}
	var all []entry
	var tl tally
	add := func(n int) {
		for range n {
			var id commit.ID
			for i := range id {
				id[i] = byte(rng.IntN(256))
			}
			// Over 30 days, some exactly at midnight, some before 1970.
			at := base + rng.Int64N(30*dayMillis)
			switch rng.IntN(10) {
			case 0:
				at = base + int64(rng.IntN(30))*dayMillis
			case 1:
				at = -rng.Int64N(3 * dayMillis)
			}
			all = append(all, entry{id, at})
			tl.add(id, at)
		}
	}
	want := func(h int64) set {
		var s set
		for _, e := range all {
			if h <= 0 || e.at >= h {
				s.add(e.id)
			}
		}
		return s
	}
	check := func(h int64) {
		t.Helper()
		if hs := tl.missingCuts(h); len(hs) > 0 {
			tl.setCuts(hs, func(h int64) set {
				var c set
				for _, e := range all {
					if e.at < h && dayOf(e.at) == dayOf(h) {
						c.add(e.id)
					}
				}
				return c
			})
		}
		if got, w := tl.above(h), want(h); got != w {
			t.Fatalf("above(%d): %d commits, want %d", h, got.n, w.n)
		}
	}
	add(500)
	horizons := []int64{0, base, base + 7*dayMillis, base + 7*dayMillis + 12345, base + 40*dayMillis, -dayMillis / 2, 1}
	for _, h := range horizons {
		check(h)
	}
	// Commits added after the cuts were made count in them.
	add(500)
	for _, h := range horizons {
		check(h)
	}
	// More horizons inside days than the tally keeps cuts for.
	for i := range 3 * maxCuts {
		check(base + int64(i)*dayMillis + 1000 + int64(i))
	}
	add(100)
	for _, h := range horizons {
		check(h)
	}
	if len(tl.cuts) > maxCuts {
		t.Fatalf("%d cuts kept, at most %d", len(tl.cuts), maxCuts)
	}
	if n := len(tl.days); n > 34 {
		t.Fatalf("%d day buckets for 33 days", n)
	}
	if dayOf(-1) != -1 || dayOf(0) != 0 || dayOf(dayMillis-1) != 0 || dayOf(-dayMillis) != -1 || dayOf(-dayMillis-1) != -2 {
		t.Fatal("dayOf does not floor")
	}
}
