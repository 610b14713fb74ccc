package syncbench_test

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/goatdb/goatdb/internal/syncbench"
)

// TestWire runs every scenario on small sizes and checks the results'
// shape (not their values, which are what the bench reports) and that the
// data is gone.
func TestWire(t *testing.T) {
	dir := t.TempDir()
	res, err := syncbench.Wire(t.Context(), syncbench.WireOptions{Dir: dir, N: 60, BigN: 150, New: 3, Reps: 4})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		id            syncbench.Scenario
		inSync, syncs int
		newCommits    int
	}{
		{syncbench.InSync, 60, 4, 0},
		{syncbench.InSyncFirstContact, 60, 1, 0},
		{syncbench.NewOnClient, 60, 4, 3},
		{syncbench.NewBothSides, 72, 4, 6},
		{syncbench.ToEmpty, 0, 1, 60},
		{syncbench.NewOneBig, 150, 4, 1},
	}
	if len(res) != len(want) {
		t.Fatalf("%d results, want %d: %+v", len(res), len(want), res)
	}
	for i, w := range want {
		r := res[i]
		if r.Scenario != w.id || r.InSync != w.inSync || r.Syncs != w.syncs || r.New != w.newCommits {
			t.Errorf("result %d = %+v, want %+v", i, r, w)
		}
		if r.Rounds < 1 || r.MaxRounds < 1 || r.OneRound < 0 || r.OneRound > 1 || r.Sent <= 0 || r.Received <= 0 ||
			r.Total < r.Sent || r.Overhead != r.Total-r.CommitZstd && r.Syncs == 1 {
			t.Errorf("%s: implausible figures %+v", r.Scenario, r)
		}
		if (r.New > 0) != (r.CommitBytes > 0) || (r.CommitBytes > 0) != (r.CommitZstd > 0) {
			t.Errorf("%s: %d new commits of %d bytes, %d compressed", r.Scenario, r.New, r.CommitBytes, r.CommitZstd)
		}
	}
	if e := res[4]; e.Ratio != float64(e.Total)/float64(e.CommitZstd) {
		t.Errorf("to-empty: %d bytes, commits compressed %d, ratio %v", e.Total, e.CommitZstd, e.Ratio)
	}
	if left, _ := os.ReadDir(dir); len(left) > 0 {
		t.Errorf("left in the data directory: %v", left)
	}
}

func TestWireOptionsValidate(t *testing.T) {
	if _, err := syncbench.Wire(t.Context(), syncbench.WireOptions{Dir: t.TempDir(), Reps: -1}); err == nil {
		t.Error("negative Reps accepted")
	}
}

func TestWriteToArrival(t *testing.T) {
	dir := t.TempDir()
	lat, err := syncbench.WriteToArrival(t.Context(), syncbench.ArrivalOptions{Dir: dir, Receivers: 3}, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(lat) != 5 || !slices.IsSorted(lat) || lat[0] <= 0 {
		t.Errorf("latencies %v", lat)
	}
	if left, _ := os.ReadDir(dir); len(left) > 0 {
		t.Errorf("left in the data directory: %v", left)
	}
}

func TestPercentile(t *testing.T) {
	lat := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{0.5, 5}, {0.99, 10}, {0.1, 1}, {1, 10}, {0, 1}} {
		if got := syncbench.Percentile(lat, tc.p); got != tc.want {
			t.Errorf("Percentile(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := syncbench.Percentile(nil, 0.5); got != 0 {
		t.Errorf("Percentile of none = %v", got)
	}
}
