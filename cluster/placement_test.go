package cluster_test

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/goatdb/goatdb/cluster"
)

func repos(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("/data/r%d", i)
	}
	return out
}

// TestOwnersBalance: with 4 members and r = 2, each owns about half of
// 10,000 repositories (within 5% of 5,000), every repository has 2
// distinct owners, and the order of the member list does not matter.
func TestOwnersBalance(t *testing.T) {
	members := []string{"n1", "n2", "n3", "n4"}
	rev := []string{"n4", "n3", "n2", "n1"}
	count := map[string]int{}
	for _, rp := range repos(10_000) {
		o := cluster.Owners(rp, members, 2)
		if len(o) != 2 || o[0] == o[1] {
			t.Fatalf("%s: owners %v", rp, o)
		}
		if !slices.Equal(o, cluster.Owners(rp, rev, 2)) {
			t.Fatalf("%s: owners depend on the list's order", rp)
		}
		for _, m := range o {
			count[m]++
		}
	}
	for m, n := range count {
		if math.Abs(float64(n)-5000) > 250 {
			t.Errorf("%s owns %d of 10,000 (r=2 of 4: want about 5,000)", m, n)
		}
	}
}

// TestOwnersMovement: adding a 5th member to 4 moves about r/n of the
// ownerships (each moved one goes to the new member, never between old
// ones), and removing a member moves only its own.
func TestOwnersMovement(t *testing.T) {
	four := []string{"n1", "n2", "n3", "n4"}
	five := append(slices.Clone(four), "n5")
	const n = 10_000
	moved := 0
	for _, rp := range repos(n) {
		before, after := cluster.Owners(rp, four, 2), cluster.Owners(rp, five, 2)
		for _, m := range after {
			if !slices.Contains(before, m) {
				if m != "n5" {
					t.Fatalf("%s: %v → %v moved to an old member", rp, before, after)
				}
				moved++
			}
		}
		without := cluster.Owners(rp, []string{"n1", "n2", "n4"}, 2)
		for _, m := range before {
			if m != "n3" && !slices.Contains(without, m) {
				t.Fatalf("%s: removing n3 took the repository from %s too: %v → %v", rp, m, before, without)
			}
		}
	}
	// r/n of the 2n ownerships: 2/5 of the repositories gain n5.
	if frac := float64(moved) / n; math.Abs(frac-0.4) > 0.03 {
		t.Errorf("adding a 5th member moved %.3f of the repositories, want about 2/5", frac)
	}
	if got := cluster.Owners("/data/x", []string{"n1"}, 3); !slices.Equal(got, []string{"n1"}) {
		t.Errorf("one member, r=3: %v", got)
	}
	if got := cluster.Owners("/data/x", []string{"n1", "n1", "n2"}, 3); len(got) != 2 {
		t.Errorf("a member listed twice: %v", got)
	}
}
