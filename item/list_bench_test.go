package item_test

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/goatdb/goatdb/item"
)

// listBranch makes n list edits on base, one write each (as n commits
// would): an insertion at a random place, or, one time in four, a delete.
func listBranch(r *rand.Rand, base item.Item, n int, who string) item.Item {
	it := base
	for i := range n {
		v, _ := it.Get("l")
		elems := v.ListElems()
		if r.IntN(4) == 0 && len(elems) > 0 {
			at := r.IntN(len(elems))
			elems = append(elems[:at:at], elems[at+1:]...)
		} else {
			at := r.IntN(len(elems) + 1)
			e := item.ListElem{Value: item.String(who + strconv.Itoa(i))}
			elems = append(elems[:at:at], append([]item.ListElem{e}, elems[at:]...)...)
		}
		l, err := item.ListOf(elems)
		if err != nil {
			panic(err)
		}
		it = item.AssignIDs(it, it.With("l", l), r.Uint64())
	}
	return it
}

// BenchmarkListMerge merges two branches that each made 1,000 list edits
// to a list of 1,000 elements, as a repository merges two leaves: diff
// each against their common ancestor, then merge.
func BenchmarkListMerge(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	start := make([]string, 1000)
	for i := range start {
		start[i] = "s" + strconv.Itoa(i)
	}
	base := item.AssignIDs(item.Item{}, item.New(map[string]item.Value{"l": item.StringList(start...)}), 1)
	x, y := listBranch(r, base, 1000, "x"), listBranch(r, base, 1000, "y")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := item.Merge(base, []item.Delta{item.Diff(base, x), item.Diff(base, y)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/merge")
}
