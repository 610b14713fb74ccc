package main

import (
	"io"
	"regexp"
	"testing"
)

// TestFirstContactPart runs the first-contact part alone on tiny sizes
// and checks its table.
func TestFirstContactPart(t *testing.T) {
	cfg := tinyConfig(t)
	cfg.sync = tinySync()
	cfg.sync.firstContact = true
	cfg.only = regexp.MustCompile(`^sync first-contact`)
	res, err := runSync(t.Context(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Wire) != 0 || len(res.Arrival) != 0 || len(res.FirstContact) != 2*len(firstContactDiffs) {
		t.Fatalf("%d wire results, %d arrival runs, %d first contacts", len(res.Wire), len(res.Arrival), len(res.FirstContact))
	}
	tb := firstContactTable(res.FirstContact)
	for _, row := range tb.Rows {
		if len(row) != len(tb.Columns) {
			t.Errorf("row %q has %d cells for %d columns", row, len(row), len(tb.Columns))
		}
	}
	if r := res.FirstContact[0]; r.Diff != 0 || r.Rounds != 1 {
		t.Errorf("nothing differing: %+v, want one round trip", r)
	}
}
