package repo

import (
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
)

// BenchmarkEncodeIndex measures encoding the head index of 100,000
// one-commit items, which a background index write does under the read
// lock: writers wait that long.
func BenchmarkEncodeIndex(b *testing.B) {
	const n = 100_000
	_, key, _ := ed25519.GenerateKey(nil)
	r, err := Open(filepath.Join(b.TempDir(), "e.log"), &Options{Key: key, Durability: Async, Trusted: true})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	schema := commit.Schema{NS: "test", Version: 1}
	for start := 0; start < n; start += 1000 {
		var ups []Update
		for i := start; i < start+1000; i++ {
			v := item.New(map[string]item.Value{"title": item.String(fmt.Sprint("Item ", i)), "count": item.Number(float64(i))})
			ups = append(ups, Update{Key: fmt.Sprintf("k%07d", i), Fn: func(Current) (item.Item, commit.Schema, error) { return v, schema, nil }})
		}
		if _, err := r.Write(ups...); err != nil {
			b.Fatal(err)
		}
	}
	last := r.entries[len(r.entries)-1]
	h := indexHeader{epoch: r.epoch, covered: last.seq, anchorOff: last.seq - uint64(last.size), logVersion: r.logVer}
	b.ReportAllocs()
	for b.Loop() {
		r.mu.RLock()
		enc, err := r.encodeIndexLocked(h)
		r.mu.RUnlock()
		if err != nil || len(enc) == 0 {
			b.Fatal(err)
		}
	}
}
