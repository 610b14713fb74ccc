package repo_test

import (
	"slices"
	"testing"
	"time"

	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/repo"
)

// TestExcludeCollected: history a server collected leaves the item's value
// and sync but is no refused write; a quarantined write on it stays listed
// as quarantined, and Reauthor writes its change from the collected
// commit's value. A quarantined write that Restore brings back is known as
// Reinstated, with what builds on it, across a reopen and a compaction.
func TestExcludeCollected(t *testing.T) {
	clock := newExClock()
	a, fs := exPeer(t, clock, "a")
	old := exSet(t, a, "x", "v", "old", "w", "kept")
	other := exSet(t, a, "y", "v", "1")
	write := exSet(t, a, "x", "w", "mine")
	if err := a.Exclude(exIDs(write), repo.ExcludeQuarantined, "refused"); err != nil {
		t.Fatal(err)
	}
	// The history that replaced old, as a server sends it to a peer
	// offline past its horizon: a commit that does not link to old, with
	// which old merges as a leaf until it is left out.
	b, _ := exPeer(t, clock, "b")
	newer := exSet(t, b, "x", "v", "new", "w", "kept")
	exSend(t, a, newer)
	if l := a.Leaves("x"); slices.Equal(l, exIDs(newer)) {
		t.Fatalf("leaves %v: old does not merge with newer", shorts(l))
	}
	if err := a.Exclude(exIDs(old), repo.ExcludeCollected, "collected by S"); err != nil {
		t.Fatal(err)
	}
	exRequire(t, a, "x", exItem("v", "new", "w", "kept"))
	exOut(t, a, old, write)
	if l := a.Leaves("x"); !slices.Equal(l, exIDs(newer)) {
		t.Fatalf("leaves %v, want %s only", shorts(l), newer.ID().Short())
	}
	for _, e := range a.Excluded() {
		switch {
		case e.ID == write.ID() && e.Root == write.ID() && e.Kind == repo.ExcludeQuarantined && !e.Merge:
		case e.ID == old.ID() && e.Root == old.ID() && e.Kind == repo.ExcludeCollected && !e.Merge:
		case e.Root == old.ID() && e.Kind == repo.ExcludeCollected && e.Merge: // old's merge with newer
		default:
			t.Fatalf("excluded %+v; want the write quarantined, old and its merge collected", e)
		}
	}

	// Reauthor takes the change from the collected commit's value: w
	// only, on the current value.
	re, err := a.Reauthor(exIDs(write))
	if err != nil || len(re) != 1 {
		t.Fatalf("reauthor: %v, %v", re, err)
	}
	exRequire(t, a, "x", exItem("v", "new", "w", "mine"))

	// Restore and Reinstated.
	q := exSet(t, a, "y", "v", "2")
	on := exSet(t, a, "y", "v", "3")
	if err := a.Exclude(exIDs(q), repo.ExcludeQuarantined, "refused"); err != nil {
		t.Fatal(err)
	}
	if a.Reinstated(q.ID()) || a.Reinstated(on.ID()) {
		t.Fatal("reinstated before any Restore")
	}
	if err := a.Restore(exIDs(q)); err != nil {
		t.Fatal(err)
	}
	check := func(r *repo.Repo, when string) {
		t.Helper()
		// q may be collected by the compaction; what builds on it stays
		// known.
		if !r.Reinstated(q.ID()) && r.Has(q.ID()) || !r.Reinstated(on.ID()) || r.Reinstated(other.ID()) || r.Reinstated(newer.ID()) {
			t.Fatalf("%s: reinstated q %v, on it %v, before it %v, elsewhere %v; want true, true, false, false", when,
				r.Reinstated(q.ID()), r.Reinstated(on.ID()), r.Reinstated(other.ID()), r.Reinstated(newer.ID()))
		}
	}
	check(a, "after Restore")
	// A collected commit restored is not reinstated: no server refused it.
	if err := a.Restore(exIDs(old)); err != nil {
		t.Fatal(err)
	}
	if a.Reinstated(old.ID()) {
		t.Fatal("a collected commit restored is reinstated")
	}
	a.Close()
	a = exOpen(t, fs, clock, "a", exKey("a"), repo.Sync)
	check(a, "reopened")
	clock.ms += int64(24 * time.Hour / time.Millisecond)
	if st, err := a.Compact(clock.now().UnixMilli(), nil); err != nil || st.CommitsAfter >= st.CommitsBefore {
		t.Fatalf("compact: %+v, %v; want history collected", st, err)
	}
	check(a, "compacted")
	a.Close()
	a = exOpen(t, fs, clock, "a", exKey("a"), repo.Sync)
	check(a, "compacted and reopened")
	dbtest.RequireClean(t, a)
}
