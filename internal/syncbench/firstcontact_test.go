package syncbench_test

import (
	"testing"

	"github.com/goatdb/goatdb/internal/syncbench"
)

// TestFirstContact runs the first-contact scenarios on small sizes and
// checks the results' shape, and that nothing differing takes one round
// trip.
func TestFirstContact(t *testing.T) {
	res, err := syncbench.FirstContact(t.Context(), syncbench.FirstContactOptions{Dir: t.TempDir(), Sizes: []int{80}, Diffs: []int{0, 1, 5}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 {
		t.Fatalf("%d results, want 3: %+v", len(res), res)
	}
	for i, d := range []int{0, 1, 5} {
		if r := res[i]; r.Diff != d || r.InSync != 80+[]int{0, 0, 1}[i] || r.Rounds < 1 || r.Sent <= 0 || r.Received <= 0 {
			t.Errorf("result %d = %+v", i, r)
		}
	}
	if res[0].Rounds != 1 || res[0].CommitZstd != 0 {
		t.Errorf("nothing differing: %+v, want one round trip and no commits", res[0])
	}
	t.Logf("%+v", res)
}
