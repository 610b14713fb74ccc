package repo_test

import (
	"fmt"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/vfs"
)

// TestMergeIdenticalAcrossCollectedAndFullPeers is metamorphic: a random
// concurrent history (several replicas writing several items, exchanging
// commits partially, so criss-cross merges abound) spread over two months
// settles; one copy of the log is compacted at a horizon in the middle, one
// is not. Then the replicas go on writing and exchanging concurrently, and
// both copies receive the same new commits in the same order: they must
// write the same merge commits (same ids) and hold the same heads and
// values, refuse none of the replicas' merges, and give every kept commit
// the generation and delta depth it has in the full history. A collected
// peer that numbered generations anew, or continued delta chains from
// other depths, would compute other merges: other ids, refused when the
// peers meet.
func TestMergeIdenticalAcrossCollectedAndFullPeers(t *testing.T) {
	var shallowSeen atomic.Int64
	t.Run("seeds", func(t *testing.T) {
		for _, seed := range dbtest.Seeds(5, 200) {
			t.Run(fmt.Sprint(seed), func(t *testing.T) {
				t.Parallel()
				dbtest.LogSeed(t, seed)
				mergeIdentical(t, seed, &shallowSeen)
			})
		}
	})
	t.Logf("%d shallow commits over all seeds", shallowSeen.Load())
	if shallowSeen.Load() == 0 && !t.Failed() {
		t.Error("no seed left a shallow commit: the test exercises nothing")
	}
}

// mergeIdentical runs one seed of TestMergeIdenticalAcrossCollectedAndFullPeers.
func mergeIdentical(t *testing.T, seed uint64, shallowSeen *atomic.Int64) {
	s := newConvSim(t, seed)
	const hour = 60 * 60 * 1000
	start := s.clock
	// Every item starts once, on one replica; then the replicas
	// write concurrently, now and then a value large enough to be
	// a full snapshot, exchange partially, and now and then all
	// meet (so the history has commits every later one descends
	// from, below which compaction can collect).
	s.reps[0].now = s.clock
	for _, k := range s.keys {
		if _, err := s.reps[0].r.Write(s.randomUpdate(k)); err != nil {
			t.Fatal(err)
		}
	}
	s.settle()
	steps := 60 + s.rng.IntN(80)
	for range steps {
		s.clock += int64(s.rng.IntN(20 * hour))
		switch k := s.rng.IntN(20); {
		case k < 10:
			s.write()
		case k < 12:
			s.writeBig()
		case k < 19:
			s.exchange()
		default:
			s.settle()
		}
	}
	s.settle()
	h := start + (s.clock-start)*(3+int64(s.rng.IntN(5)))/10

	// Two copies of one replica's log: full and collected.
	src := s.reps[0]
	if err := src.r.Flush(); err != nil {
		t.Fatal(err)
	}
	data, err := src.fs.ReadFile(src.path)
	if err != nil {
		t.Fatal(err)
	}
	fs := vfs.NewMem()
	if err := vfs.MkdirAllSync(fs, "/data", 0o755); err != nil {
		t.Fatal(err)
	}
	open := func(name string, write bool) *repo.Repo {
		path := "/data/" + name + ".log"
		if write {
			if err := vfs.WriteFileAtomic(fs, path, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dbtest.OpenRepo(t, path, &repo.Options{FS: fs, Trusted: s.trusted, Schemas: goldUpgrader{},
			Now: func() time.Time { return time.UnixMilli(s.clock) }, MaxSkew: math.MaxInt64})
	}
	full, collected := open("full", true), open("collected", true)
	st, err := collected.Compact(h, nil)
	if err != nil {
		t.Fatal(err)
	}
	dbtest.RequireClean(t, collected)
	// What the log says, not what memory kept.
	if err := collected.Close(); err != nil {
		t.Fatal(err)
	}
	collected = open("collected", false)
	if st.CommitsAfter == st.CommitsBefore {
		t.Logf("nothing collected at %d of %d ms", h-start, s.clock-start)
	}
	shallowSeen.Add(int64(st.Shallow))
	t.Logf("compaction at %.0f%% of the history: %+v", float64(h-start)*100/float64(s.clock-start), st)
	kept := collected.IDs()
	sameGenerations(t, full, collected, kept)

	// Concurrent work after the horizon, delivered to both alike.
	for range 20 + s.rng.IntN(30) {
		s.clock += int64(s.rng.IntN(3))
		switch k := s.rng.IntN(20); {
		case k < 9:
			s.write()
		case k < 10:
			s.writeBig()
		default:
			s.exchange()
		}
	}
	s.settle()
	var fresh [][]byte
	for _, rep := range s.reps {
		for _, c := range allCommits(rep.r) {
			if !full.Has(c.ID()) {
				fresh = append(fresh, c.Encode())
			}
		}
	}
	fresh = convShuffled(s.rng, fresh)
	for len(fresh) > 0 {
		n := 1 + s.rng.IntN(len(fresh))
		for _, r := range []*repo.Repo{full, collected} {
			if _, rej, err := r.Receive(fresh[:n]); err != nil || len(rej) > 0 {
				t.Fatalf("receive: %v %v", err, rej)
			}
		}
		fresh = fresh[n:]
	}
	if m := collected.Missing(); len(m) > 0 {
		t.Errorf("the collected peer misses %d commits", len(m))
	}
	keys, _ := full.Since(0)
	for _, k := range keys {
		hf, _ := full.Head(k)
		hc, _ := collected.Head(k)
		vf, _, _ := full.Get(k)
		vc, _, _ := collected.Get(k)
		if hf != hc || !item.ItemsEqual(vf, vc) {
			t.Errorf("item %s: full peer %s %v, collected peer %s %v", k, hf.Short(), vf, hc.Short(), vc)
		}
		if lf, lc := full.Leaves(k), collected.Leaves(k); len(lf) != len(lc) {
			t.Errorf("item %s: %d leaves on the full peer, %d on the collected one", k, len(lf), len(lc))
		}
	}
	// Every commit the collected peer holds, the full one holds
	// too, with the same generation: merges written on both
	// sides have the same ids.
	for _, id := range collected.IDs() {
		if !full.Has(id) {
			t.Errorf("commit %s only on the collected peer", id.Short())
		}
	}
	sameGenerations(t, full, collected, collected.IDs())
	dbtest.RequireClean(t, collected)
}

// sameGenerations checks that the commits ids have the same generation and
// delta depth on both peers.
func sameGenerations(t *testing.T, full, collected *repo.Repo, ids []commit.ID) {
	t.Helper()
	for _, id := range ids {
		gf, df, _, okf := repo.GenDepthForTest(full, id)
		gc, dc, _, okc := repo.GenDepthForTest(collected, id)
		if !okf || !okc || gf != gc || df != dc {
			t.Errorf("commit %s: generation %d depth %d on the full peer (held %v), %d and %d on the collected one (held %v)",
				id.Short(), gf, df, okf, gc, dc, okc)
		}
	}
}

// writeBig makes one replica replace a large field of one item, so that
// the commit is a full snapshot.
func (s *convSim) writeBig() {
	rep := s.reps[s.rng.IntN(len(s.reps))]
	rep.now = max(0, s.clock+int64(s.rng.IntN(7))-3)
	key := s.keys[s.rng.IntN(len(s.keys))]
	blob := make([]byte, 2048)
	for i := range blob {
		blob[i] = byte('a' + s.rng.IntN(26))
	}
	v := item.String(string(blob))
	if _, err := rep.r.Write(repo.Update{Key: key, Fn: func(c repo.Current) (item.Item, commit.Schema, error) {
		return c.Value.With("blob", v), c.Schema, nil
	}}); err != nil {
		s.t.Fatalf("seed %d: %s writes: %v", s.seed, rep.name, err)
	}
}
