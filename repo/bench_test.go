package repo_test

import (
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
)

// BenchmarkOpen100k measures replaying a log of 100,000 one-commit items
// (GoatDB's workload item), without the database layer around it.
func BenchmarkOpen100k(b *testing.B) {
	const n = 100_000
	_, key, _ := ed25519.GenerateKey(nil)
	path := filepath.Join(b.TempDir(), "basic.log")
	r, err := repo.Open(path, &repo.Options{Key: key, Durability: repo.Async})
	if err != nil {
		b.Fatal(err)
	}
	schema := commit.Schema{NS: "test", Version: 1}
	for start := 0; start < n; start += 1000 {
		var ups []repo.Update
		for i := start; i < start+1000; i++ {
			v := item.New(map[string]item.Value{
				"title": item.String(fmt.Sprint("Item ", i)), "count": item.Number(float64(i)),
				"tags": item.StringSet(fmt.Sprint("tag", i), fmt.Sprint("category", i%5)),
			})
			ups = append(ups, repo.Update{Key: fmt.Sprintf("k%015d", i), Fn: func(repo.Current) (item.Item, commit.Schema, error) { return v, schema, nil }})
		}
		if _, err := r.Write(ups...); err != nil {
			b.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var heap float64
	for b.Loop() {
		var before, after runtime.MemStats
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		r, err := repo.Open(path, &repo.Options{Key: key})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap += float64(after.HeapAlloc) - float64(before.HeapAlloc)
		r.Close()
		b.StartTimer()
	}
	b.ReportMetric(heap/float64(b.N)/n, "heapB/item")
}
