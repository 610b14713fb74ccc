package repo_test

import (
	"errors"
	"fmt"
	iofs "io/fs"
	"maps"
	"testing"
	"time"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/vfs"
)

// TestCompactCrashAtEveryBoundary fails the filesystem at every mutating
// operation of a compaction (creating the copy, each write and fsync of
// it, the final write of the log, the rename, the directory sync), and at
// the writes around it, then crashes it with every tearing pattern of the
// crash tests and reopens the log: it holds either the old content or the
// compacted one, never a mix, every write acknowledged (under Async, every
// write a successful Flush or Compact covered), its exclusions, no copy
// left behind, and it checks clean. Under Async a write also lands in the
// middle of the copy, so the catch-up copies a tail.
func TestCompactCrashAtEveryBoundary(t *testing.T) {
	for _, d := range []repo.Durability{repo.Sync, repo.Async} {
		t.Run(d.String(), func(t *testing.T) { compactCrash(t, d) })
	}
}

// compactCrashRun is what one run of the crash workload did.
type compactCrashRun struct {
	r          *repo.Repo
	compactErr error
	w1, w2     *commit.Commit // a write before the compaction, one after (nil if it failed)
	mid        *commit.Commit // under Async, a write made during the copy
	ops        int
}

func compactCrash(t *testing.T, d repo.Durability) {
	const path = "/data/c.log"
	start := newCtClock().ms0()
	base := vfs.NewMem()
	clock := newCtClock()
	r, err := repo.Open(path, &repo.Options{FS: base, Key: ctKey("c"), Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		for k := range 5 {
			ctFull(t, r, fmt.Sprint("item", k), i)
		}
		ctSet(t, r, "deltas", "n", fmt.Sprint(i))
	}
	refused := ctSet(t, r, "item0", "refused", "yes")
	if err := r.Exclude([]commit.ID{refused.ID()}, repo.ExcludeQuarantined, "refused by the server"); err != nil {
		t.Fatal(err)
	}
	clock.at(start + 40*day)
	for k := range 3 {
		ctSet(t, r, fmt.Sprint("item", k), "recent", "yes")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	after := clock.ms // the clock of every run starts here, so its commits are the same
	h := start + 30*day

	// run opens the log on fs, lets fail operations succeed, then runs the
	// workload until its first error.
	run := func(fs *vfs.MemFS, fail int) (out compactCrashRun) {
		c := &ctClock{ms: after}
		opts := &repo.Options{FS: fs, Key: ctKey("c"), Now: c.now, Durability: d, FlushInterval: time.Hour}
		r, err := repo.Open(path, opts)
		if err != nil {
			t.Fatal(err)
		}
		out.r = r
		start := fs.Ops()
		if fail >= 0 {
			fs.FailAfter(fail)
		}
		if d == repo.Async {
			mid := false
			fs.SetHook(func(op, name string) error {
				if op == "write" && name == path+".compact" && !mid {
					mid = true // the Async write only buffers: no filesystem operation
					cs, err := r.Write(ctUpdate("mid", "v", "during the copy"))
					if err == nil {
						out.mid = cs[0]
					}
				}
				return nil
			})
			defer fs.SetHook(nil)
		}
		defer func() { out.ops = fs.Ops() - start }()
		cs, err := r.Write(ctUpdate("w", "v", "before"))
		if err != nil {
			out.compactErr = err
			return out
		}
		out.w1 = cs[0]
		if d == repo.Async {
			if err := r.Flush(); err != nil {
				out.compactErr, out.w1 = err, nil // not covered by a flush: may be lost
				return out
			}
		}
		if _, out.compactErr = r.Compact(h, nil); out.compactErr != nil {
			return out
		}
		if cs, err := r.Write(ctUpdate("w", "v", "after")); err == nil {
			out.w2 = cs[0]
			if d == repo.Async && r.Flush() != nil {
				out.w2 = nil // acknowledged, but not covered by a flush: may be lost
			}
		}
		return out
	}

	// The fault-free run: the commits of the old content and of the new.
	fs := base.Crash(nil)
	ref := run(fs, -1)
	if ref.compactErr != nil || ref.w1 == nil || ref.w2 == nil {
		t.Fatalf("fault-free run: %v", ref.compactErr)
	}
	total := ref.ops
	newIDs := idSet(ref.r)
	values := ctValues(ref.r)
	ref.r.Close()
	old := base.Crash(nil)
	r0, err := repo.Open(path, &repo.Options{FS: old, Key: ctKey("c")})
	if err != nil {
		t.Fatal(err)
	}
	oldIDs := idSet(r0)
	r0.Close()
	for _, c := range []*commit.Commit{ref.w1, ref.mid} {
		if c != nil {
			oldIDs[c.ID()] = true
		}
	}
	delete(newIDs, ref.w2.ID())
	if len(newIDs) >= len(oldIDs) {
		t.Fatalf("the compaction collects nothing: %d commits before, %d after", len(oldIDs), len(newIDs))
	}
	t.Logf("%d operations; %d commits before the compaction, %d after", total, len(oldIDs), len(newIDs))

	var sawOld, sawNew int
	for k := 0; k <= total; k++ {
		for _, tear := range crashTears {
			t.Run(fmt.Sprintf("k=%d/%s", k, tear.name), func(t *testing.T) {
				fs := base.Crash(nil)
				got := run(fs, k)
				if k < total && got.compactErr == nil && got.w2 != nil {
					t.Fatalf("FailAfter(%d) of %d operations, yet everything succeeded", k, total)
				}
				if got.compactErr != nil && !errors.Is(got.compactErr, vfs.ErrInjected) {
					t.Errorf("failure does not wrap the injected fault: %v", got.compactErr)
				}
				crashed := tear.crash(fs, uint64(k))
				got.r.Close()
				r := dbtest.OpenRepo(t, path, &repo.Options{FS: crashed, Key: ctKey("c")})
				dbtest.RequireClean(t, r)
				if _, err := crashed.ReadFile(path + ".compact"); !errors.Is(err, iofs.ErrNotExist) {
					t.Errorf("the compaction's copy is left after opening: %v", err)
				}
				if dm := r.Damage(); len(dm) > 0 {
					t.Errorf("damage: %v", dm)
				}
				ids := idSet(r)
				for _, c := range []*commit.Commit{got.w1, got.w2} {
					if c != nil && !ids[c.ID()] {
						t.Errorf("acknowledged write %s lost", c.ID().Short())
					}
				}
				// A write that failed may still be there if cutting it off
				// failed too (as here: every operation fails after the
				// first), like in TestCrashEveryWriteSync.
				delete(ids, ref.w2.ID())
				isNew := maps.Equal(ids, newIDs)
				if ref.mid != nil && !isNew && !ids[ref.mid.ID()] {
					ids[ref.mid.ID()] = true // written during the copy, never flushed to the old log
				}
				if got.w1 == nil {
					ids[ref.w1.ID()] = true // failed before the compaction began: the old content
				}
				switch {
				case isNew:
					sawNew++
					if r.Horizon() != h {
						t.Errorf("compacted content with horizon %d, want %d", r.Horizon(), h)
					}
				case maps.Equal(ids, oldIDs):
					sawOld++
					if r.Horizon() != 0 {
						t.Errorf("old content with horizon %d", r.Horizon())
					}
				default:
					t.Fatalf("the log holds %d commits: neither the old content (%d) nor the compacted one (%d)",
						len(ids), len(oldIDs), len(newIDs))
				}
				for key, want := range values {
					if key == "w" || key == "mid" {
						continue
					}
					if v, _, _ := r.Get(key); !item.ItemsEqual(v, want) {
						t.Errorf("item %s = %v, want %v", key, v, want)
					}
				}
				if ex := r.Excluded(); len(ex) != 1 || ex[0].ID != refused.ID() {
					t.Errorf("excluded after recovery: %v, want %s", ex, refused.ID().Short())
				}
			})
		}
	}
	t.Logf("%d crash images held the old content, %d the compacted one", sawOld, sawNew)
	if sawOld == 0 || sawNew == 0 {
		t.Error("the crashes never left one of the two contents")
	}
}

// idSet returns the ids of every commit a repository holds, excluded
// ones too.
func idSet(r *repo.Repo) map[commit.ID]bool {
	out := map[commit.ID]bool{}
	keys, _ := r.Since(0)
	for _, k := range keys {
		for _, h := range r.History(k) {
			out[h.Commit.ID()] = true
		}
	}
	return out
}

func ctUpdate(key, field, value string) repo.Update {
	return repo.Update{Key: key, Fn: func(c repo.Current) (item.Item, commit.Schema, error) {
		return c.Value.With(field, item.String(value)), c.Schema, nil
	}}
}
