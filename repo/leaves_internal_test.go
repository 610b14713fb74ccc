package repo

import (
	"slices"
	"testing"
)

// TestItemLeaves: an item's leaves are held in the item itself when it
// has one, out of line when it has several; its pending and excluded
// commits stay as they were whatever its leaves become, and an item left
// with nothing rare holds nothing out of line.
func TestItemLeaves(t *testing.T) {
	a, b, c := &node{}, &node{}, &node{}
	a.c.id[0], b.c.id[0], c.c.id[0] = 1, 2, 3
	st := &itemState{key: "k"}
	check := func(what string, want []*node, rare bool) {
		t.Helper()
		if got := st.leaves(); !slices.Equal(got, want) {
			t.Fatalf("%s: %d leaves, want %d", what, len(got), len(want))
		}
		if (st.rare != nil) != rare {
			t.Fatalf("%s: rare is %v, want held: %v", what, st.rare, rare)
		}
		if len(want) == 1 && st.leaf1[0] != want[0] {
			t.Fatalf("%s: the single leaf is not held in the item", what)
		}
	}
	check("new item", nil, false)
	st.setLeaves(append(st.leaf1[:0], a))
	check("one leaf", []*node{a}, false)
	st.setLeaves(append(st.leaves(), b))
	check("two leaves", []*node{a, b}, true)
	st.setRare([]*node{c}, nil)
	check("two leaves, one pending", []*node{a, b}, true)
	st.setLeaves(slices.DeleteFunc(st.leaves(), func(n *node) bool { return n == a }))
	check("one leaf again, one pending", []*node{b}, true)
	if !slices.Equal(st.pendingList(), []*node{c}) {
		t.Fatalf("pending commits lost with the leaves")
	}
	st.setLeaves(append(st.leaves(), c))
	st.setRare(nil, nil)
	check("two leaves, nothing pending", []*node{b, c}, true)
	st.setLeaves(st.leaf1[:0])
	check("no leaves", nil, false)
}
