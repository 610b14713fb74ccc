package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// The compaction operation: a database of N items, each written
// compactRounds times (created, then updated) in batches of
// compactBatch, is compacted. Every sample compacts a fresh copy of the
// same database, made before it, untimed.
const (
	compactRounds = 5
	compactBatch  = 1000
)

// compactVersion is version r (0 to compactRounds-1) of item i of the
// n-item compaction database: the last version of every item differs
// from the first in title, count and tags.
func compactVersion(n, i, r int) record { return recordOf(r*n + i) }

// compactSum is the sum of the counts of the last versions of n items,
// which the check after each compaction reads.
func compactSum(n int) float64 {
	return float64(n)*float64((compactRounds-1)*n) + countSum(n)
}

// compaction is what one compaction did: the data's size on disk before
// and after, and how long writers had to wait.
type compaction struct {
	before, after int64
	pause         time.Duration
}

// compactSummary is a compaction row's figures over its timed samples.
type compactSummary struct {
	BytesBefore int64   `json:"bytes_before"`
	BytesAfter  int64   `json:"bytes_after"` // median
	Ratio       float64 `json:"after_over_before"`
	PauseMedian float64 `json:"writers_pause_median_ns"`
	PauseMax    float64 `json:"writers_pause_max_ns"`
	// PauseWhole says writers wait for the whole operation (SQLite,
	// bbolt); goatdb's writers wait only for the swap.
	PauseWhole bool `json:"writers_wait_whole_operation"`
}

func summarizeCompactions(cs []compaction, whole bool) *compactSummary {
	if len(cs) == 0 {
		return nil
	}
	before, after, pauses := make([]float64, len(cs)), make([]float64, len(cs)), make([]float64, len(cs))
	for i, c := range cs {
		before[i], after[i], pauses[i] = float64(c.before), float64(c.after), float64(c.pause)
	}
	for _, s := range [][]float64{before, after, pauses} {
		slices.Sort(s)
	}
	s := &compactSummary{BytesBefore: int64(median(before)), BytesAfter: int64(median(after)),
		PauseMedian: median(pauses), PauseMax: slices.Max(pauses), PauseWhole: whole}
	s.Ratio = median(after) / median(before)
	return s
}

// compactTable lays out the sizes and pauses of a class's compaction
// rows, or returns false if it has none.
func compactTable(cfg *config, results []result) (table, bool) {
	t := table{
		Caption: opCompactTitle(cfg) + ": sizes on disk and writers' wait",
		Columns: []column{
			{name: "engine"}, {name: "before", right: true}, {name: "after", right: true},
			{name: "after ÷ before", right: true}, {name: "writers wait (median, max)"},
		},
	}
	for _, r := range results {
		c := r.compact
		if r.op.id != opCompact || c == nil {
			continue
		}
		wait := formatNS(c.PauseMedian) + ", " + formatNS(c.PauseMax)
		if c.PauseWhole {
			wait += " (the whole operation)"
		} else {
			wait += " (the swap)"
		}
		t.Rows = append(t.Rows, []string{r.spec.name, formatBytes(c.BytesBefore), formatBytes(c.BytesAfter),
			fmt.Sprintf("%.3f", c.Ratio), wait})
	}
	return t, len(t.Rows) > 0
}

func opCompactTitle(cfg *config) string {
	return ops[slices.IndexFunc(ops, func(o op) bool { return o.id == opCompact })].title(cfg.items)
}

// compactNotes describes the compaction rows.
func compactNotes(cfg *config) []string {
	return []string{
		fmt.Sprintf("%s: a database of %s items (the workload's), each created and then updated %d times in transactions of %s, "+
			"is compacted; every sample compacts a fresh copy of the same file(s), copied before it, untimed, and the result is read and checked after it, untimed. "+
			"%d timed samples per engine after %d warm-up samples (goatdb reloads the log of %s commits, untimed, before each).",
			opCompactTitle(cfg), thousands(cfg.items), compactRounds-1, thousands(compactBatch), cfg.samples[kindCompact], cfg.warmups[kindCompact],
			thousands(compactRounds*cfg.items)),
		"goatdb: gc.Collect(db, repo, {Force, Now: 100 days on}) on the open database with the repository loaded (untimed): every commit but each item's current one " +
			"is below the horizon; before and after are the log's sizes, the wait is the swap under the lock (CompactStats.Pause): writers may write during the rest (none do here). " +
			"SQLite: VACUUM then PRAGMA wal_checkpoint(TRUNCATE) (in WAL mode the vacuumed pages reach the file, and it shrinks, at the checkpoint); " +
			"sizes are the database file plus its WAL. bbolt: bolt.Compact(dst, src, 0) into a new file, one transaction, and dst.Close; " +
			"before is the source file, after the new one. SQLite and bbolt keep no history: their compaction reclaims free pages, goatdb's drops old commits.",
	}
}

// sharedSource returns the path of the compaction database called name,
// which the engines of a run that store the same bytes (goatdb's sync and
// async, SQLite's FULL and OFF, bbolt's sync and NoSync) share: it lives
// in the run's directory, the parent of engineDir, and the first engine
// to ask builds it with build, under a temporary name renamed once built.
func sharedSource(engineDir, name string, build func(path string) error) (string, error) {
	path := filepath.Join(filepath.Dir(engineDir), "compact-src-"+name)
	if _, err := os.Stat(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return path, err
	}
	tmp := path + ".tmp"
	if err := build(tmp); err != nil {
		return "", errors.Join(err, os.RemoveAll(tmp))
	}
	return path, os.Rename(tmp, path)
}

// copyFile copies src to dst, replacing it.
func copyFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, out.Close()) }()
	_, err = io.Copy(out, in)
	return err
}

// fileSizes returns the total size of the files that exist among paths.
func fileSizes(paths ...string) (int64, error) {
	var n int64
	for _, p := range paths {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		n += fi.Size()
	}
	return n, nil
}

// removeFiles removes the files that exist among paths.
func removeFiles(paths ...string) error {
	var errs []error
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
