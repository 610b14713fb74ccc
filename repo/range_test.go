package repo_test

import (
	"crypto/ed25519"
	"fmt"
	"testing"

	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
)

// TestAppendRange: AppendRange appends to what dst holds, counts Limit in
// the entries it appends, and reads what Range reads.
func TestAppendRange(t *testing.T) {
	_, k, _ := ed25519.GenerateKey(nil)
	r := dbtest.OpenRepo(t, "r.log", &repo.Options{Key: k})
	for i := range 10 {
		if _, err := r.Write(set(fmt.Sprintf("k%d", i), "n", item.Int(int64(i)))); err != nil {
			t.Fatal(err)
		}
	}
	spec := repo.RangeSpec{From: "k3", Limit: 4}
	want := r.Range(spec)
	if len(want) != 4 || want[0].Key != "k3" {
		t.Fatalf("Range: %d entries from %q", len(want), want[0].Key)
	}
	dst := r.Range(repo.RangeSpec{Limit: 2})
	got := r.AppendRange(dst, spec)
	if len(got) != 6 || got[0].Key != "k0" || got[1].Key != "k1" {
		t.Fatalf("AppendRange kept %d entries, first %q", len(got), got[0].Key)
	}
	for i, e := range got[2:] {
		if e.Key != want[i].Key || e.Head != want[i].Head || !item.ItemsEqual(e.Value, want[i].Value) {
			t.Fatalf("entry %d: %q, want %q", i, e.Key, want[i].Key)
		}
	}
}

// TestStampsSince: StampsSince lists what CommitsSince lists, stamped, in
// the same order, from any sequence number.
func TestStampsSince(t *testing.T) {
	_, k, _ := ed25519.GenerateKey(nil)
	r := dbtest.OpenRepo(t, "r.log", &repo.Options{Key: k})
	var marks []uint64
	for i := range 30 {
		if _, err := r.Write(set(fmt.Sprintf("k%d", i%7), "n", item.Int(int64(i)))); err != nil {
			t.Fatal(err)
		}
		marks = append(marks, r.Seq())
	}
	for _, seq := range append([]uint64{0}, marks...) {
		cs, cur := r.CommitsSince(seq)
		ss, scur := r.StampsSince(seq)
		if cur != scur || len(cs) != len(ss) {
			t.Fatalf("since %d: %d stamps to %d, %d commits to %d", seq, len(ss), scur, len(cs), cur)
		}
		for i, c := range cs {
			if s := ss[i]; s.ID != c.ID() || s.Key != c.Key() || s.Time != c.Time() {
				t.Fatalf("since %d, %d: stamp %+v of commit %s", seq, i, s, c.ID().Short())
			}
		}
	}
}
