package main

import (
	"fmt"
	"slices"
	"strconv"
)

// The workload's sizes. The big repository's size, N, is in the config.
const (
	smallN  = 100  // items of the repository that reads and queries use
	bulkN   = 100  // items per bulk create and bulk read
	updateN = 1000 // items written at setup for the updates to change
)

// record is one item of the workload as plain Go values. SQLite and bbolt
// store it (bbolt as JSON); Tags is sorted and has no duplicates, a set.
type record struct {
	Title string   `json:"title"`
	Count float64  `json:"count"`
	Tags  []string `json:"tags"`
}

// recordOf returns item i: {title: "Item i", count: i, tags: {"tag"+i,
// "category"+(i%5)}}.
func recordOf(i int) record {
	s := strconv.Itoa(i)
	// "category…" sorts before "tag…": the set is in order.
	return record{Title: "Item " + s, Count: float64(i), Tags: []string{"category" + strconv.Itoa(i%5), "tag" + s}}
}

// countSum is the sum of the counts of items 0..n-1, which a read of all
// of them checks.
func countSum(n int) float64 { return float64(n) * float64(n-1) / 2 }

// queryDef is one of the workload's two queries over the smallN-item
// repository. Each engine expresses it in its own way (a Go predicate, SQL,
// a scan); match is the reference the results are checked against.
type queryDef struct {
	name   string
	match  func(r record) bool
	sorted bool // by count, descending; unsorted results are compared as a set
	want   []float64
	in     [smallN]bool // in[i]: item i is in the results
}

// The two queries: the simple one keeps 49 items, the complex one item 50.
var (
	simpleQuery  = newQuery("count > 50", false, func(r record) bool { return r.Count > 50 })
	complexQuery = newQuery(`30 < count < 70 && "tag50" in tags, by count desc`, true, func(r record) bool {
		return r.Count > 30 && r.Count < 70 && slices.Contains(r.Tags, "tag50")
	})
)

func newQuery(name string, sorted bool, match func(record) bool) *queryDef {
	q := &queryDef{name: name, match: match, sorted: sorted}
	for i := range smallN {
		if match(recordOf(i)) {
			q.want = append(q.want, float64(i))
			q.in[i] = true
		}
	}
	if sorted {
		slices.Reverse(q.want)
	}
	return q
}

// check compares the counts of a query's results, in result order, with
// the expected ones. It runs inside the timed work, so it is linear and
// allocates nothing.
func (q *queryDef) check(got []float64) error {
	if len(got) != len(q.want) {
		return fmt.Errorf("query %s: %d results, want %d", q.name, len(got), len(q.want))
	}
	var seen [smallN]bool
	for j, c := range got {
		i := int(c)
		if float64(i) != c || i < 0 || i >= smallN || !q.in[i] || seen[i] {
			return fmt.Errorf("query %s: unexpected result count=%v", q.name, c)
		}
		seen[i] = true
		if q.sorted && c != q.want[j] {
			return fmt.Errorf("query %s: result %d has count=%v, want %v", q.name, j, c, q.want[j])
		}
	}
	return nil
}

// checkRead checks an item read by key: it must be item i.
func checkRead(i int, count float64) error {
	if count != float64(i) {
		return fmt.Errorf("read item %d: count=%v", i, count)
	}
	return nil
}
