package server

import (
	"testing"
	"time"
)

// TestStorageFailuresWindow: failures are counted in the last minute and
// the last 15 minutes, to 10 seconds, in constant memory however many
// there are, and the last one is kept.
func TestStorageFailuresWindow(t *testing.T) {
	var f storageFailures
	t0 := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	for i := range 3 {
		f.add(t0.Add(time.Duration(i)*time.Second), storageFailure{repo: "/t/r", problem: "writes are failing"})
	}
	for _, tc := range []struct {
		at                 time.Duration
		minute, quarter, n int
	}{
		{0, 3, 3, 3},
		{30 * time.Second, 3, 3, 3},
		{2 * time.Minute, 0, 3, 3},
		{14 * time.Minute, 0, 3, 3},
		{16 * time.Minute, 0, 0, 3},
		{24 * time.Hour, 0, 0, 3},
	} {
		got := f.report(t0.Add(tc.at), true)
		if got.LastMinute != tc.minute || got.Last15Minutes != tc.quarter || got.Total != uint64(tc.n) {
			t.Errorf("at +%v: %+v, want %d in the last minute, %d in 15 minutes, %d in all", tc.at, got, tc.minute, tc.quarter, tc.n)
		}
		if got.Last == nil || got.Last.Repo != "/t/r" || got.Last.Time != "2026-01-02T03:04:02Z" {
			t.Errorf("at +%v: last %+v, want the third failure", tc.at, got.Last)
		}
	}
	if r := f.report(t0, false); r.Last == nil || r.Last.Repo != "" {
		t.Errorf("without detail, last = %+v, want no repository", r.Last)
	}

	// A failure every second for an hour: the counts are of the window.
	var g storageFailures
	for s := range 3600 {
		g.add(t0.Add(time.Duration(s)*time.Second), storageFailure{problem: "storage error"})
	}
	now := t0.Add(3599 * time.Second)
	r := g.report(now, true)
	if r.Total != 3600 || r.LastMinute < 50 || r.LastMinute > 60 || r.Last15Minutes < 890 || r.Last15Minutes > 900 {
		t.Errorf("after an hour of failures: %+v, want about 60 and 900", r)
	}
}
