package goatdb_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/gc"
	"github.com/goatdb/goatdb/internal/dbtest"
)

// expectedKeys is what Keys must return, found without Keys, Range or the
// live index: of the keys ever written, those GetAny finds (the deleted
// ones only if withDeleted), sorted.
func expectedKeys(t *testing.T, db *goatdb.DB, rp string, written map[string]bool, withDeleted bool) []string {
	t.Helper()
	want := []string{}
	for k := range written {
		it, err := db.GetAny(rp + "/" + k)
		switch {
		case errors.Is(err, goatdb.ErrNotFound):
			continue
		case err != nil:
			t.Fatal(err)
		}
		if withDeleted || !it.Deleted() {
			want = append(want, k)
		}
	}
	slices.Sort(want)
	return want
}

// checkKeys compares Keys (live and withDeleted) and RangeKeys with what
// GetAny finds.
func checkKeys(t *testing.T, db *goatdb.DB, rp string, written map[string]bool, when string) {
	t.Helper()
	for _, withDeleted := range []bool{false, true} {
		got, err := db.Keys(rp, withDeleted)
		if err != nil {
			t.Fatal(err)
		}
		if want := expectedKeys(t, db, rp, written, withDeleted); !slices.Equal(got, want) {
			t.Errorf("%s: keys (withDeleted %v): %d keys %q, want %d %q", when, withDeleted, len(got), got, len(want), want)
		}
		if got == nil {
			t.Errorf("%s: keys (withDeleted %v) is nil, want an empty slice", when, withDeleted)
		}
	}
	want := expectedKeys(t, db, rp, written, false)
	if got := rangeKeys(t, db, rp, goatdb.RangeOptions{}); !slices.Equal(got, want) {
		t.Errorf("%s: range keys: %d keys, want %d", when, len(got), len(want))
	}
	if got := pages(t, db, rp, goatdb.RangeOptions{Limit: 7}); !slices.Equal(got, want) {
		t.Errorf("%s: range keys by pages of 7: %d keys, want %d", when, len(got), len(want))
	}
}

// randomWrites puts and deletes random keys of rp in db, recording every
// key written.
func randomWrites(t *testing.T, rng *rand.Rand, db *goatdb.DB, rp string, n int, written map[string]bool) {
	t.Helper()
	for range n {
		k := fmt.Sprintf("k%03d", rng.IntN(300))
		path := rp + "/" + k
		if written[k] && rng.IntN(3) == 0 {
			if err := db.Delete(path); err != nil && !errors.Is(err, goatdb.ErrNotFound) {
				t.Fatal(err)
			}
			continue
		}
		if _, err := db.Put(path, goatdb.Fields{"n": rng.IntN(1000)}); err != nil {
			t.Fatal(err)
		}
		written[k] = true
	}
}

// TestKeysRandom: Keys, live and with deleted items, returns the sorted
// keys GetAny finds in random repositories, after puts and deletes, after
// merges of conflicting writes received from another database, after a
// compaction that purges deleted items, and after a reopen.
func TestKeysRandom(t *testing.T) {
	const rp = "/data/keys"
	for _, seed := range dbtest.Seeds(3, 30) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			dbtest.LogSeed(t, seed)
			rng := rand.New(rand.NewPCG(seed, 0))
			dir := t.TempDir()
			opts := &goatdb.Options{Durability: goatdb.Async, Trusted: true}
			a := dbtest.OpenDBIn(t, dir, opts)
			b := dbtest.OpenDB(t, opts)
			if _, err := a.Repo(rp); err != nil {
				t.Fatal(err)
			}
			written := map[string]bool{}
			checkKeys(t, a, rp, written, "empty")

			randomWrites(t, rng, a, rp, 400, written)
			checkKeys(t, a, rp, written, "after writes")

			// b writes some of the same keys; a receives them and merges.
			fromB := map[string]bool{}
			randomWrites(t, rng, b, rp, 200, fromB)
			merges := receiveAll(t, b, a, rp)
			for k := range fromB {
				written[k] = true
			}
			if merges == 0 {
				t.Fatal("no merges: the databases wrote no key in common")
			}
			checkKeys(t, a, rp, written, fmt.Sprintf("after receiving (%d merges)", merges))

			randomWrites(t, rng, a, rp, 100, written)
			if err := a.Flush(); err != nil {
				t.Fatal(err)
			}
			res, err := gc.Collect(a, rp, &gc.Options{Now: later, Force: true})
			if err != nil || !res.Compacted {
				t.Fatalf("collect: %+v, %v", res, err)
			}
			checkKeys(t, a, rp, written, "after compaction")

			randomWrites(t, rng, a, rp, 100, written)
			checkKeys(t, a, rp, written, "after writes past compaction")
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			a = dbtest.OpenDBIn(t, dir, opts)
			checkKeys(t, a, rp, written, "after reopen")
		})
	}
}

// receiveAll gives to's repository rp every commit of from's, and returns
// how many of to's items then have a merge at their head.
func receiveAll(t *testing.T, from, to *goatdb.DB, rp string) int {
	t.Helper()
	src, releaseSrc, err := from.AcquireExisting(rp)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseSrc()
	dst, releaseDst, err := to.AcquireExisting(rp)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseDst()
	cs, _ := src.CommitsSince(0)
	encs := make([][]byte, len(cs))
	for i, c := range cs {
		encs[i] = c.Encode()
	}
	if _, rejected, err := dst.Receive(encs); err != nil || len(rejected) > 0 {
		t.Fatalf("receive: %v, %d rejected", err, len(rejected))
	}
	merges := 0
	for _, k := range dst.Keys(true) {
		if h, ok := dst.Head(k); ok {
			if c, ok := dst.Commit(h); ok && c.IsMerge() {
				merges++
			}
		}
	}
	return merges
}

// BenchmarkRangeKeys100 reads the keys of a 100-item repository with
// RangeKeys, whole and by pages of 10.
func BenchmarkRangeKeys100(b *testing.B) {
	m := benchModes[3]
	db := openBench(b, b.TempDir(), m)
	defer db.Close()
	createItems(b, db, 100)
	b.Run("all", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n := 0
			for _, err := range db.RangeKeys(benchRepo, goatdb.RangeOptions{}) {
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			if n != 100 {
				b.Fatal(n)
			}
		}
	})
	b.Run("pages-of-10", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n, after := 0, ""
			for {
				page := 0
				for k, err := range db.RangeKeys(benchRepo, goatdb.RangeOptions{After: after, Limit: 10}) {
					if err != nil {
						b.Fatal(err)
					}
					after, page = k, page+1
				}
				n += page
				if page < 10 {
					break
				}
			}
			if n != 100 {
				b.Fatal(n)
			}
		}
	})
}
