package goatdb_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
)

// BenchmarkRange100Of100k reads 100 consecutive items by key from the
// 100,000-item repository: with Range (Limit 100), with RangeKeys, and
// with 100 Gets of the same paths, the bulk read by path Range is measured
// against. "ratio" times a Range and the 100 Gets in each iteration and
// reports range-ns/get-ns: the ratio quoted, measured in the same run
// on the same windows of keys.
func BenchmarkRange100Of100k(b *testing.B) {
	m := benchModes[3] // trusted/async: signing only changes opening
	d := bigDirFor(b, m)
	db := openBench(b, d.dir, m)
	defer db.Close()
	keys, err := db.Keys(benchRepo, false) // loads the repository
	if err != nil || len(keys) != bigN {
		b.Fatal(len(keys), err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	windows := make([][]string, 64)
	for i := range windows {
		start := rng.IntN(bigN - 100)
		for _, k := range keys[start : start+100] {
			windows[i] = append(windows[i], benchRepo+"/"+k)
		}
	}
	first := func(w []string) string { return w[0][len(benchRepo)+1:] }
	readRange := func(w []string) {
		n := 0
		for it, err := range db.Range(benchRepo, goatdb.RangeOptions{From: first(w), Limit: 100}) {
			if err != nil || it.Path() != w[n] {
				b.Fatal(it.Path(), w[n], err)
			}
			title, _ := it.Value("title")
			sink += float64(len(title.Str()))
			n++
		}
		if n != 100 {
			b.Fatalf("range read %d items", n)
		}
	}
	readGets := func(w []string) {
		for _, p := range w {
			it, err := db.Get(p)
			if err != nil {
				b.Fatal(err)
			}
			title, _ := it.Value("title")
			sink += float64(len(title.Str()))
		}
	}
	b.Run("range", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			readRange(windows[i%len(windows)])
			i++
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i*100), "ns/item")
	})
	b.Run("keys", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			n := 0
			for _, err := range db.RangeKeys(benchRepo, goatdb.RangeOptions{From: first(windows[i%len(windows)]), Limit: 100}) {
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			if n != 100 {
				b.Fatalf("range read %d keys", n)
			}
			i++
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i*100), "ns/item")
	})
	b.Run("get100", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			readGets(windows[i%len(windows)])
			i++
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i*100), "ns/item")
	})
	b.Run("ratio", func(b *testing.B) {
		var inRange, inGets time.Duration
		i := 0
		for b.Loop() {
			// Each window's items are read by both: whichever reads them
			// first misses the cache, so the order alternates.
			w := windows[i%len(windows)]
			if i%2 == 0 {
				t0 := time.Now()
				readRange(w)
				t1 := time.Now()
				readGets(w)
				inRange, inGets = inRange+t1.Sub(t0), inGets+time.Since(t1)
			} else {
				t0 := time.Now()
				readGets(w)
				t1 := time.Now()
				readRange(w)
				inGets, inRange = inGets+t1.Sub(t0), inRange+time.Since(t1)
			}
			i++
		}
		b.ReportMetric(float64(inRange.Nanoseconds())/float64(i), "range-ns/op")
		b.ReportMetric(float64(inGets.Nanoseconds())/float64(i), "get100-ns/op")
		b.ReportMetric(float64(inRange)/float64(inGets), "range/get")
	})
}
