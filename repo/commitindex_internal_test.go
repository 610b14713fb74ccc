package repo

import (
	"fmt"
	"testing"

	"github.com/goatdb/goatdb/commit"
)

// TestCommitIndex: nodes loaded into the table and nodes added later (as
// many as make the table double, several times) are all found, by id, and
// only they; a slab with an id twice is refused.
func TestCommitIndex(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 100, 5000} {
		slab := make([]node, n)
		for i := range slab {
			slab[i].c.id = commit.ID{byte(i), byte(i >> 8), 1}
		}
		ci := newCommitIndex(0)
		if !ci.load(slab) {
			t.Fatalf("%d nodes: refused", n)
		}
		added := make([]node, 50+3*n)
		for i := range added {
			added[i].c.id = commit.ID{byte(i), byte(i >> 8), 2}
			if ci.get(added[i].c.id) != nil {
				t.Fatalf("%d nodes: added node %d found before it was added", n, i)
			}
			ci.add(&added[i])
			if 3*ci.len() > 2*len(ci.table) {
				t.Fatalf("%d nodes: %d in a table of %d", n, ci.len(), len(ci.table))
			}
		}
		for i := range slab {
			if got := ci.get(slab[i].c.id); got != &slab[i] {
				t.Fatalf("%d nodes: node %d not found", n, i)
			}
		}
		for i := range added {
			if got := ci.get(added[i].c.id); got != &added[i] {
				t.Fatalf("%d nodes: added node %d not found", n, i)
			}
		}
		empty := newCommitIndex(0)
		if got := ci.get(commit.ID{0, 0, 3}); got != nil || empty.get(commit.ID{}) != nil {
			t.Fatalf("%d nodes: found a node never indexed", n)
		}
		seen := 0
		ci.all(func(*node) { seen++ })
		if seen != n+len(added) || ci.len() != n+len(added) {
			t.Fatalf("%d nodes: all saw %d, len %d, want %d", n, seen, ci.len(), n+len(added))
		}
		if n > 1 {
			slab[n-1].c.id = slab[0].c.id
			if dup := newCommitIndex(0); dup.load(slab) {
				t.Fatalf("%d nodes: an id twice was taken", n)
			}
		}
	}
}

// TestItemIndex: items loaded into the table and items added later are
// found by key; a removed item is not, whichever part held it, and the
// items after it in its probe run still are, also once the table was
// rebuilt; a key removed can be added again.
func TestItemIndex(t *testing.T) {
	for _, n := range []int{0, 1, 7, 1000} {
		slab := make([]itemState, n)
		for i := range slab {
			slab[i].key = fmt.Sprintf("k%d", i)
		}
		ix := newItemIndex(0)
		if !ix.load(slab) {
			t.Fatalf("%d items: refused", n)
		}
		added := make([]itemState, 20)
		for i := range added {
			added[i].key = fmt.Sprintf("a%d", i)
			ix.add(&added[i])
		}
		gone := map[string]bool{}
		for i := 0; i < n; i += 3 {
			ix.remove(slab[i].key)
			gone[slab[i].key] = true
		}
		for i := 0; i < len(added); i += 2 {
			ix.remove(added[i].key)
			gone[added[i].key] = true
		}
		check := func(st *itemState) {
			got := ix.get(st.key)
			switch {
			case gone[st.key] && got != nil:
				t.Fatalf("%d items: removed %s found", n, st.key)
			case !gone[st.key] && got != st:
				t.Fatalf("%d items: %s not found", n, st.key)
			}
		}
		for i := range slab {
			check(&slab[i])
		}
		for i := range added {
			check(&added[i])
		}
		seen := 0
		ix.all(func(st *itemState) {
			if gone[st.key] {
				t.Fatalf("%d items: all gave removed %s", n, st.key)
			}
			seen++
		})
		if want := n + len(added) - len(gone); seen != want || ix.len() != want {
			t.Fatalf("%d items: all saw %d, len %d, want %d", n, seen, ix.len(), want)
		}
		// Enough more to rebuild the table, several times: the removed
		// stay removed, the rest found.
		grown := make([]itemState, 3*n+50)
		for i := range grown {
			grown[i].key = fmt.Sprintf("g%d", i)
			ix.add(&grown[i])
		}
		for i := range slab {
			check(&slab[i])
		}
		for i := range added {
			check(&added[i])
		}
		for i := range grown {
			check(&grown[i])
		}
		if want := n + len(added) + len(grown) - len(gone); ix.len() != want {
			t.Fatalf("%d items: len %d after growing, want %d", n, ix.len(), want)
		}
		if n > 0 {
			back := &itemState{key: slab[0].key}
			ix.add(back)
			if ix.get(slab[0].key) != back {
				t.Fatalf("%d items: a key removed and added again not found", n)
			}
		}
		if n > 1 {
			slab[n-1].key = slab[0].key
			if again := newItemIndex(0); again.load(slab) {
				t.Fatalf("%d items: a key twice was taken", n)
			}
		}
	}
}
