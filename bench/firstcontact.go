package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/goatdb/goatdb/internal/syncbench"
)

// syncFirstContactPart is the sync section's part of first contacts
// (syncbench.FirstContact), which --only matches as "sync first-contact".
const syncFirstContactPart = "first-contact"

// firstContactDiffs are the differences measured at each size.
var firstContactDiffs = []int{0, 1, 10, 100, 1000}

// runFirstContact runs the first-contact part into res, if selected, and
// reports whether it ran.
func runFirstContact(ctx context.Context, cfg *config, progress io.Writer, res *syncResults) (bool, error) {
	if !cfg.sync.firstContact || !cfg.syncSelected(syncFirstContactPart) {
		return false, nil
	}
	start := time.Now()
	fc, err := syncbench.FirstContact(ctx, syncbench.FirstContactOptions{
		Dir: cfg.dir, Sizes: []int{cfg.sync.n, cfg.sync.bigN}, Diffs: firstContactDiffs, Logger: progressLogger(progress),
	})
	if err != nil {
		return false, fmt.Errorf("sync %s: %w", syncFirstContactPart, err)
	}
	res.FirstContact = fc
	fmt.Fprintf(progress, "%-28s %v\n", "sync "+syncFirstContactPart, time.Since(start).Round(time.Millisecond))
	return true, nil
}

// firstContactTable lays out the first contacts: one row per size and
// difference.
func firstContactTable(fc []syncbench.FirstContactResult) table {
	t := table{Caption: "First contact (no resume point): the client lacks the new commits", Columns: []column{
		{name: "in sync", right: true}, {name: "new", right: true}, {name: "bytes up", right: true}, {name: "bytes down", right: true},
		{name: "round trips", right: true}, {name: "commits, zstd", right: true}, {name: "overhead", right: true},
	}}
	for _, r := range fc {
		t.Rows = append(t.Rows, []string{thousands(r.InSync), thousands(r.Diff), formatBytes(r.Sent), formatBytes(r.Received),
			strconv.Itoa(r.Rounds), formatBytes(r.CommitZstd), formatBytes(r.Overhead)})
	}
	return t
}
