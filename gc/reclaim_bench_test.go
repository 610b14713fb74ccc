package gc_test

import (
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/gc"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
)

// BenchmarkReclaim90Days reports the space collection reclaims for a
// realistic workload: items each updated 10 times a day (one field of
// several changed, as an app edits) for 90 days of simulated time, then
// collected to the default horizon (37 days back). 1,000 items by
// default; -long runs the 100,000 (an hour or more here). What is
// reclaimed per item does not depend on how many items there are.
//
//	go test -run='^$' -bench=Reclaim90Days -benchtime=1x ./gc
func BenchmarkReclaim90Days(b *testing.B) {
	items := 1000
	if dbtest.Long() {
		items = 100_000
	}
	const days, perDay = 90, 10
	for range b.N {
		dir := b.TempDir()
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		var now time.Time
		_, key, _ := ed25519.GenerateKey(nil)
		r, err := repo.Open(filepath.Join(dir, "data.log"), &repo.Options{Durability: repo.Async, Key: key,
			Now: func() time.Time { return now }, Name: "/data/app"})
		if err != nil {
			b.Fatal(err)
		}
		for d := range days {
			for u := range perDay {
				now = start.Add(time.Duration(d)*24*time.Hour + time.Duration(u)*time.Hour)
				ups := make([]repo.Update, 0, items)
				for i := range items {
					ups = append(ups, repo.Update{Key: fmt.Sprintf("item%06d", i), Fn: func(cur repo.Current) (item.Item, commit.Schema, error) {
						v := cur.Value.With(fmt.Sprintf("f%d", u%4), item.Int(int64(d*perDay+u)))
						if cur.Value.Len() == 0 {
							v = v.With("title", item.String(fmt.Sprintf("a title for item %d, as an app would have", i)))
						}
						return v, cur.Schema, nil
					}})
				}
				for lo := 0; lo < len(ups); lo += 1000 {
					if _, err := r.Write(ups[lo:min(lo+1000, len(ups))]...); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
		if err := r.Flush(); err != nil {
			b.Fatal(err)
		}
		h := gc.DefaultPolicy().Horizon(now)
		b.ResetTimer()
		st, err := r.Compact(h.UnixMilli(), nil)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		fi, err := os.Stat(filepath.Join(dir, "data.log"))
		if err != nil {
			b.Fatal(err)
		}
		r.Close()
		b.ReportMetric(float64(st.BytesBefore)/(1<<20), "MiB-before")
		b.ReportMetric(float64(fi.Size())/(1<<20), "MiB-after")
		b.ReportMetric(100*(1-float64(fi.Size())/float64(st.BytesBefore)), "%-reclaimed")
		b.ReportMetric(float64(st.CommitsBefore), "commits-before")
		b.ReportMetric(float64(st.CommitsAfter), "commits-after")
		b.ReportMetric(float64(st.Pause.Microseconds())/1000, "pause-ms")
	}
}
