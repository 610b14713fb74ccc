package repo_test

import (
	"crypto/ed25519"
	"fmt"
	"testing"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/vfs"
)

// BenchmarkReceiveVerified measures Receive per commit for commits whose
// signatures this process has not checked yet (first: the cache is
// emptied before each round) and for the same commits arriving again
// from another peer, into another repository (again: their signatures
// are in the cache of verified commits), in the same run; again/first is
// what the cache saves.
func BenchmarkReceiveVerified(b *testing.B) {
	const n = 500
	_, key, _ := ed25519.GenerateKey(nil)
	opts := func() *repo.Options {
		return &repo.Options{FS: vfs.NewMem(), Key: key, Durability: repo.Async, Name: "/data/bench"}
	}
	src, err := repo.Open("/src.log", opts())
	if err != nil {
		b.Fatal(err)
	}
	schema := commit.Schema{NS: "test", Version: 1}
	var ups []repo.Update
	for i := range n {
		v := item.New(map[string]item.Value{"title": item.String(fmt.Sprint("Item ", i)), "count": item.Int(int64(i))})
		ups = append(ups, repo.Update{Key: fmt.Sprintf("k%05d", i), Fn: func(repo.Current) (item.Item, commit.Schema, error) { return v, schema, nil }})
	}
	if _, err := src.Write(ups...); err != nil {
		b.Fatal(err)
	}
	cs, _ := src.CommitsSince(0)
	encs := make([][]byte, len(cs))
	for i, c := range cs {
		encs[i] = c.Encode()
	}
	src.Close()
	receive := func(b *testing.B) {
		r, err := repo.Open("/dst.log", opts())
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		stored, rej, err := r.Receive(encs)
		if err != nil || len(rej) > 0 || len(stored) != n {
			b.Fatalf("stored %d of %d, refused %v, err %v", len(stored), n, rej, err)
		}
	}
	defer commit.SetVerifiedCacheSize(commit.DefaultVerifiedCacheSize)
	b.Run("first", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			commit.SetVerifiedCacheSize(commit.DefaultVerifiedCacheSize)
			b.StartTimer()
			receive(b)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/commit")
	})
	b.Run("again", func(b *testing.B) {
		commit.SetVerifiedCacheSize(commit.DefaultVerifiedCacheSize)
		receive(b) // the first peer's copy
		for b.Loop() {
			receive(b)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/commit")
	})
}
