package goatdb_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/vfs"
)

// TestCrashNewDirectory is finding 6: a database created on an empty disk
// (its directory, key, repository directories and logs all new) loses
// nothing it acknowledged when a crash loses any combination of unsynced
// directory entries, pages and sizes. Each seed picks what the crash
// loses; -long runs more of them.
func TestCrashNewDirectory(t *testing.T) {
	for _, seed := range dbtest.Seeds(40, 400) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			dbtest.LogSeed(t, seed)
			mem := vfs.NewMem()
			db, err := goatdb.Open("/srv/goat/data", &goatdb.Options{FS: mem})
			if err != nil {
				t.Fatal(err)
			}
			session := db.Session()
			acked := map[string]int{}
			for i := range 6 {
				path := fmt.Sprintf("/data/r%d/x", i%3)
				if _, err := db.Put(path, goatdb.Fields{"n": i}); err != nil {
					t.Fatal(err)
				}
				acked[path] = i
			}
			crashed := mem.CrashWith(vfs.CrashRandom(rand.New(rand.NewPCG(seed, 6))))
			db.Close()
			db = dbtest.OpenDBIn(t, "/srv/goat/data", &goatdb.Options{FS: crashed})
			if db.Session() != session {
				t.Errorf("the session key was lost")
			}
			for path, n := range acked {
				it, err := db.Get(path)
				if err != nil || it.Get("n") != int64(n) {
					t.Errorf("acknowledged %s n=%d: got %v, %v", path, n, it.Get("n"), err)
				}
			}
		})
	}
}
