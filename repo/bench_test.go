package repo_test

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
)

// BenchmarkOpen100k measures opening a log of 100,000 one-commit items
// (GoatDB's workload item), without the database layer around it: from
// its head index, and by replaying it (the index removed before each
// open).
func BenchmarkOpen100k(b *testing.B) { benchOpen(b, 100_000, 1) }

// BenchmarkOpenHistory measures opening a log of 20,000 items written 10
// times each (a full snapshot and deltas): heapB/commit is what a commit
// of history costs in memory once open.
func BenchmarkOpenHistory(b *testing.B) { benchOpen(b, 20_000, 10) }

// benchOpen writes n items rounds times each, then measures opening the
// log, with the heap the open repository holds per item and per commit.
func benchOpen(b *testing.B, n, rounds int) {
	_, key, _ := ed25519.GenerateKey(nil)
	path := filepath.Join(b.TempDir(), "basic.log")
	r, err := repo.Open(path, &repo.Options{Key: key, Durability: repo.Async})
	if err != nil {
		b.Fatal(err)
	}
	schema := commit.Schema{NS: "test", Version: 1}
	for round := range rounds {
		for start := 0; start < n; start += 1000 {
			var ups []repo.Update
			for i := start; i < start+1000; i++ {
				v := item.New(map[string]item.Value{
					"title": item.String(fmt.Sprint("Item ", i, " ", round)), "count": item.Number(float64(i + round)),
					"tags": item.StringSet(fmt.Sprint("tag", i), fmt.Sprint("category", i%5)),
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
	for _, mode := range []string{"index", "replay"} {
		b.Run(mode, func(b *testing.B) {
			b.ReportAllocs()
			var heap float64
			for b.Loop() {
				var before, after runtime.MemStats
				b.StopTimer()
				if mode == "replay" {
					if err := os.Remove(path + repo.IndexSuffix); err != nil {
						b.Fatal(err)
					}
				} else if _, err := os.Stat(path + repo.IndexSuffix); err != nil {
					b.Fatal(err)
				}
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
				if mode == "replay" {
					r.Flush()
					repo.ForgetIndexForTest(r) // Close writes it again
				}
				r.Close()
				b.StartTimer()
			}
			b.ReportMetric(heap/float64(b.N)/float64(n), "heapB/item")
			if rounds > 1 {
				b.ReportMetric(heap/float64(b.N)/float64(n*rounds), "heapB/commit")
			}
		})
	}
}

// BenchmarkRecover100MB measures recovery of a log holding a 100 MB
// damaged region against reading the file, in the same iteration: random
// bytes claimed by a record after them (corruption, scanned for the next
// record), random bytes at the end (a torn tail) and zeros at the end. A
// read-only open does the whole scan and classification; a writable one
// (the -writable cases) also cuts the tail, or copies the damaged bytes to
// the quarantine file (100 MB, synced) and rebuilds the log. recover/read
// is recovery's time over reading the file.
func BenchmarkRecover100MB(b *testing.B) {
	const size = 100 << 20
	_, key, _ := ed25519.GenerateKey(nil)
	dir := b.TempDir()
	src := filepath.Join(dir, "src.log")
	r, err := repo.Open(src, &repo.Options{Key: key})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 100 {
		if _, err := r.Write(set(fmt.Sprint("k", i), "n", item.Int(int64(i)))); err != nil {
			b.Fatal(err)
		}
	}
	r.Close()
	good, err := os.ReadFile(src)
	if err != nil {
		b.Fatal(err)
	}
	random := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i+8 <= len(random); i += 8 {
		binary.LittleEndian.PutUint64(random[i:], rng.Uint64())
	}
	for _, tc := range []struct {
		name     string
		region   []byte
		after    bool // a record claiming the region follows it
		writable bool // open for writing: cut or quarantine, and rebuild
	}{
		{"random-claimed", random, true, false},
		{"random-tail", random, false, false},
		{"zeros-tail", make([]byte, size), false, false},
		{"random-claimed-writable", random, true, true},
		{"random-tail-writable", random, false, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			data := append(slices.Clone(good), tc.region...)
			if tc.after {
				data = repo.AppendMarkForTest(data)
			}
			path := filepath.Join(dir, tc.name+".log")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				b.Fatal(err)
			}
			var readNs, recoverNs float64
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if tc.writable { // the damaged log again, outside the timing
					b.StopTimer()
					os.Remove(path + ".quarantine")
					if err := os.WriteFile(path, data, 0o644); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				start := time.Now()
				if _, err := os.ReadFile(path); err != nil {
					b.Fatal(err)
				}
				readNs += float64(time.Since(start))
				start = time.Now()
				r, err := repo.Open(path, &repo.Options{Key: key, ReadOnly: !tc.writable})
				if err != nil {
					b.Fatal(err)
				}
				recoverNs += float64(time.Since(start))
				found := len(r.Damage()) + len(r.Quarantine())
				if r.Count() != 100 || tc.after != (found > 0) {
					b.Fatalf("recovered %d items, damage %v, quarantine %v", r.Count(), r.Damage(), r.Quarantine())
				}
				r.Close()
			}
			b.ReportMetric(readNs/float64(b.N)/1e6, "read-ms")
			b.ReportMetric(recoverNs/float64(b.N)/1e6, "recover-ms")
			b.ReportMetric(recoverNs/readNs, "recover/read")
		})
	}
}

// BenchmarkColdHistory opens a log of 20,000 items written 10 times each
// from its head index and reads the history of items not read before:
// their commits come from the log (the records of writes of 1,000 items,
// compressed, or of one item).
func BenchmarkColdHistory(b *testing.B) {
	for _, batch := range []int{1000, 1} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			const n, rounds = 2000, 10
			_, key, _ := ed25519.GenerateKey(nil)
			path := filepath.Join(b.TempDir(), "h.log")
			r, err := repo.Open(path, &repo.Options{Key: key, Durability: repo.Async})
			if err != nil {
				b.Fatal(err)
			}
			schema := commit.Schema{NS: "test", Version: 1}
			for round := range rounds {
				for start := 0; start < n; start += batch {
					var ups []repo.Update
					for i := start; i < start+batch; i++ {
						v := item.New(map[string]item.Value{"title": item.String(fmt.Sprint("Item ", i, " ", round)), "count": item.Number(float64(i + round))})
						ups = append(ups, repo.Update{Key: fmt.Sprintf("k%06d", i), Fn: func(repo.Current) (item.Item, commit.Schema, error) { return v, schema, nil }})
					}
					if _, err := r.Write(ups...); err != nil {
						b.Fatal(err)
					}
				}
			}
			r.Close()
			r, err = repo.Open(path, &repo.Options{Key: key})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			rng := rand.New(rand.NewPCG(1, 2))
			b.ReportAllocs()
			for b.Loop() {
				if h := r.History(fmt.Sprintf("k%06d", rng.IntN(n))); len(h) != rounds {
					b.Fatalf("%d commits, want %d", len(h), rounds)
				}
			}
		})
	}
}
