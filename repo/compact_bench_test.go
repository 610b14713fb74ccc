package repo_test

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
)

// BenchmarkCompact100k compacts a log of 100,000 items written 5 times
// each, long before the horizon, so that all but each item's last
// snapshot is collected, while a writer writes with Sync durability. It
// reports:
//
//   - pause-ms: the longest the graph lock was held for the swap;
//   - write-p99-ms and write-p99-ratio: the writer's p99 latency during the
//     compaction, and over the same workload for as long right after it,
//     without;
//   - compact-ms, open-ms and compact/open: the compaction's time against
//     opening the log (replaying it) before;
//   - MB-before, MB-after, MB-kept, MB-tail and after/kept: the log's
//     sizes, the bytes of the records the compaction keeps from before it
//     started (each item's last snapshot) and of those the writer wrote
//     meanwhile, which the new log holds as they are; after/kept is the
//     new log over both (the kept set), so that it is the copy's overhead
//     (header, horizon records listing the shallow commits, mark);
//   - copy-peak/kept: the copy's largest size (the extra disk a compaction
//     needs, CompactStats.CopyPeak) over the kept set.
//
// The log is synced and the writer's items written before either phase,
// so that neither pays for the setup.
func BenchmarkCompact100k(b *testing.B) {
	const (
		n      = 100_000
		rounds = 5
		t0     = int64(1_700_000_000_000)
	)
	_, key, _ := ed25519.GenerateKey(nil)
	dir := b.TempDir()
	src := filepath.Join(dir, "src.log")
	var clock atomic.Int64
	now := func() time.Time { return time.UnixMilli(clock.Add(1)) }
	clock.Store(t0)
	r, err := repo.Open(src, &repo.Options{Key: key, Durability: repo.Async, Now: now})
	if err != nil {
		b.Fatal(err)
	}
	schema := commit.Schema{NS: "test", Version: 1}
	for round := range rounds {
		for start := 0; start < n; start += 1000 {
			var ups []repo.Update
			for i := start; i < start+1000; i++ {
				v := item.New(map[string]item.Value{
					"title": item.String(fmt.Sprintf("Item %d, version %d", i, round)), "count": item.Number(float64(i*rounds + round)),
					"tags": item.StringSet(fmt.Sprint("tag", i, "-", round), fmt.Sprint("category", (i+round)%5)),
				})
				ups = append(ups, repo.Update{Key: fmt.Sprintf("k%015d", i), Fn: func(repo.Current) (item.Item, commit.Schema, error) { return v, schema, nil }})
			}
			if _, err := r.Write(ups...); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := r.Close(); err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		b.Fatal(err)
	}
	h := clock.Load() + 1
	clock.Store(h + 1000)

	path := filepath.Join(dir, "run.log")
	var pauses, ratios, compactMs, openMs []float64
	var st repo.CompactStats
	var kept int64
	var during, without []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		os.Remove(path + ".compact")
		if err := writeSynced(path, data); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		r, err := repo.Open(path, &repo.Options{Key: key, Durability: repo.Sync, Now: now})
		if err != nil {
			b.Fatal(err)
		}
		openMs = append(openMs, float64(time.Since(start))/1e6)
		if kept, err = repo.KeptBytesForTest(r, h); err != nil {
			b.Fatal(err)
		}
		// The writer's items exist before either phase measures it.
		for i := range 16 {
			if _, err := r.Write(set(fmt.Sprint("hot", i), "n", item.Int(-1))); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		stop := make(chan struct{})
		wrote := benchWriter(b, r, stop)
		st, err = r.Compact(h, nil)
		close(stop)
		during = <-wrote
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		stop = make(chan struct{})
		wrote = benchWriter(b, r, stop)
		time.Sleep(st.Took)
		close(stop)
		without = <-wrote
		r.Close()
		pauses = append(pauses, float64(st.Pause)/1e6)
		compactMs = append(compactMs, float64(st.Took)/1e6)
		ratios = append(ratios, p99(during)/p99(without))
		b.StartTimer()
	}
	b.ReportMetric(slices.Max(pauses), "pause-ms")
	b.ReportMetric(p99(during)/1e6, "write-p99-ms")
	b.ReportMetric(median(ratios), "write-p99-ratio")
	b.ReportMetric(median(compactMs), "compact-ms")
	b.ReportMetric(median(openMs), "open-ms")
	b.ReportMetric(median(compactMs)/median(openMs), "compact/open")
	b.ReportMetric(float64(st.BytesBefore)/1e6, "MB-before")
	b.ReportMetric(float64(st.BytesAfter)/1e6, "MB-after")
	b.ReportMetric(float64(kept)/1e6, "MB-kept")
	b.ReportMetric(float64(st.BytesTail)/1e6, "MB-tail")
	b.ReportMetric(float64(st.BytesAfter)/float64(kept+st.BytesTail), "after/kept")
	b.ReportMetric(float64(st.CopyPeak)/float64(kept+st.BytesTail), "copy-peak/kept")
	b.Logf("per iteration: write-p99-ratio %.2f, pause-ms %.1f", ratios, pauses)
	over := st.BytesAfter - kept - st.BytesTail
	b.Logf("the new log's overhead over the kept set: %d bytes, %.2f per shallow commit", over, float64(over)/float64(max(1, st.Shallow)))
	b.Logf("writes during the last compaction: %s", latencies(during))
	b.Logf("writes without compaction:         %s", latencies(without))
	b.Logf("%d commits before, %d after, %d shallow; %d writes during the compaction, %d without",
		st.CommitsBefore, st.CommitsAfter, st.Shallow, len(during), len(without))
}

// writeSynced writes a file and syncs it, so that no write-back of the
// setup is left for the measured phases to wait for.
func writeSynced(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// benchWriter writes to a few items until stop is closed, then sends the
// latency of every write.
func benchWriter(b *testing.B, r *repo.Repo, stop chan struct{}) chan []time.Duration {
	out := make(chan []time.Duration, 1)
	var once sync.Once
	go func() {
		var lat []time.Duration
		defer once.Do(func() { out <- lat })
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			if _, err := r.Write(set(fmt.Sprint("hot", i%16), "n", item.Int(int64(i)))); err != nil {
				b.Error(err)
				return
			}
			lat = append(lat, time.Since(start))

		}
	}()
	return out
}

func p99(d []time.Duration) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[min(len(s)-1, len(s)*99/100)])
}

// latencies summarises a latency distribution.
func latencies(d []time.Duration) string {
	s := slices.Clone(d)
	slices.Sort(s)
	q := func(f float64) time.Duration { return s[min(len(s)-1, int(float64(len(s))*f))] }
	return fmt.Sprintf("p50 %v p90 %v p99 %v max %v", q(.5), q(.9), q(.99), s[len(s)-1])
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
