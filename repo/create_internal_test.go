package repo

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/goatdb/goatdb/vfs"
)

// TestCreateSyncsNothing: opening a new repository (its directories
// included) syncs nothing; its first write syncs the directory entries
// before it is acknowledged, so a crash then keeps it, and a crash before
// it leaves a repository that opens empty.
func TestCreateSyncsNothing(t *testing.T) {
	const path = "/data/t/a/r.log" // three directories to create
	for _, d := range []Durability{Sync, Async} {
		t.Run(fmt.Sprint(d), func(t *testing.T) {
			fsys := vfs.NewMem()
			var ops []string
			fsys.SetHook(func(op, name string) error {
				ops = append(ops, op+" "+name)
				return nil
			})
			r, err := Open(path, &Options{FS: fsys, Key: ixKey("r"), Durability: d})
			if err != nil {
				t.Fatal(err)
			}
			for _, op := range ops {
				if op[:4] == "sync" {
					t.Fatalf("open of a new repository made %d operations, a sync among them: %v", len(ops), ops)
				}
			}
			// A crash now: the repository is gone, or opens empty.
			for seed := range uint64(20) {
				crashed := fsys.CrashWith(vfs.CrashRandom(rand.New(rand.NewPCG(seed, 3))))
				if _, err := crashed.Stat(path); err != nil {
					continue
				}
				c, err := Open(path, &Options{FS: crashed, Key: ixKey("r")})
				if err != nil {
					t.Fatalf("seed %d: open after a crash: %v", seed, err)
				}
				if n := len(c.Keys(true)); n != 0 {
					t.Fatalf("seed %d: %d items", seed, n)
				}
				c.Close()
			}

			ops = nil
			reserveWrite(t, r, 0, 1, 10)
			if err := r.Flush(); err != nil {
				t.Fatal(err)
			}
			dirSyncs := 0
			for _, op := range ops {
				if len(op) > 8 && op[:8] == "syncdir " {
					dirSyncs++
				}
			}
			if dirSyncs != 4 { // the parents of /data, /data/t, /data/t/a, and the log's directory
				t.Fatalf("first write synced %d directories, want 4: %v", dirSyncs, ops)
			}
			// Only what was synced survives: the write is there.
			c, err := Open(path, &Options{FS: fsys.Crash(nil), Key: ixKey("r")})
			if err != nil {
				t.Fatalf("open after a crash: %v", err)
			}
			reserveHas(t, c, 0, 1, 10)
			c.Close()
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCreateCloseSyncs: a new repository closed without a write is
// durable: Close syncs what its open did not.
func TestCreateCloseSyncs(t *testing.T) {
	const path = "/data/t/r.log"
	fsys := vfs.NewMem()
	r, err := Open(path, &Options{FS: fsys, Key: ixKey("r")})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	crashed := fsys.Crash(nil)
	b, err := crashed.ReadFile(path)
	if err != nil || len(b) != HeaderSize {
		t.Fatalf("after Close and a crash: %d bytes, %v; want the header", len(b), err)
	}
	if _, err := checkHeader(b); err != nil {
		t.Fatal(err)
	}
}
