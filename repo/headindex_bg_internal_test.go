package repo

import (
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/vfs"
)

// TestIndexInBackground: while a repository is written, the head index is
// written in the background as the log grows; a crash (the files copied
// as they are, no Close) then opens from that index and replays only the
// log's tail, to the same graph as a replay of the whole log, with every
// write acknowledged before the crash.
func TestIndexInBackground(t *testing.T) {
	defer func(m int, g uint64, w func(vfs.FS, string)) {
		indexMinCommits, indexGrowth, indexWritten = m, g, w
	}(indexMinCommits, indexGrowth, indexWritten)
	indexMinCommits, indexGrowth, indexWritten = 0, 4<<10, nil
	_, key, _ := ed25519.GenerateKey(nil)
	schema := commit.Schema{NS: "note", Version: 1}
	for _, d := range []Durability{Sync, Async} {
		t.Run(d.String(), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "r.log")
			r, err := Open(path, &Options{Key: key, Durability: d})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			written := map[string]float64{}
			round := 0
			write := func() {
				t.Helper()
				k := fmt.Sprint("k", round%37)
				v := item.New(map[string]item.Value{"n": item.Number(float64(round)), "text": item.String(fmt.Sprint("note written in round ", round))})
				if _, err := r.Write(Update{Key: k, Fn: func(Current) (item.Item, commit.Schema, error) { return v, schema, nil }}); err != nil {
					t.Fatal(err)
				}
				written[k] = float64(round)
				round++
			}
			// idle waits for a background write in progress to finish.
			idle := func() {
				for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
					r.mu.RLock()
					busy := r.indexing
					r.mu.RUnlock()
					if !busy {
						return
					}
				}
				t.Fatal("the background index write did not end")
			}
			for deadline := time.Now().Add(10 * time.Second); ; {
				write()
				if _, err := os.Stat(path + IndexSuffix); err == nil && round >= 100 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("no head index was written in the background")
				}
			}
			idle()
			// Index all of it now, as the background does, so that the few
			// writes below are far from the next background index: the
			// log's tail.
			r.mu.Lock()
			r.indexing = true
			r.mu.Unlock()
			r.indexInBackground()
			if r.indexed != r.Seq() {
				t.Fatalf("the index covers %d bytes of %d", r.indexed, r.Seq())
			}
			for range 5 {
				write()
			}
			if err := r.Flush(); err != nil {
				t.Fatal(err)
			}
			idle()
			crashed := t.TempDir()
			for _, name := range []string{"r.log", "r.log" + IndexSuffix} {
				b, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(crashed, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			fromIndex, err := Open(filepath.Join(crashed, "r.log"), &Options{Key: key, ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer fromIndex.Close()
			if fromIndex.indexed == 0 || fromIndex.indexed >= fromIndex.Seq() {
				t.Fatalf("opened with the index covering %d of %d bytes, want the tail replayed", fromIndex.indexed, fromIndex.Seq())
			}
			if err := os.Remove(filepath.Join(crashed, "r.log"+IndexSuffix)); err != nil {
				t.Fatal(err)
			}
			replayed, err := Open(filepath.Join(crashed, "r.log"), &Options{Key: key, ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer replayed.Close()
			for k, n := range written {
				v, _, ok := fromIndex.Get(k)
				if !ok || get(v, "n").Float() != n {
					t.Fatalf("%s = %v, want n %v", k, v, n)
				}
				w, _, _ := replayed.Get(k)
				if !item.ItemsEqual(v, w) {
					t.Fatalf("%s: %v from the index, %v replayed", k, v, w)
				}
				if a, b := fromIndex.History(k), replayed.History(k); len(a) != len(b) {
					t.Fatalf("%s: %d commits from the index, %d replayed", k, len(a), len(b))
				}
			}
			a, _ := fromIndex.CommitsSince(0)
			b, _ := replayed.CommitsSince(0)
			if len(a) != len(b) {
				t.Fatalf("%d commits from the index, %d replayed", len(a), len(b))
			}
			for i := range a {
				if a[i].ID() != b[i].ID() || string(a[i].Encode()) != string(b[i].Encode()) {
					t.Fatalf("commit %d differs", i)
				}
			}
		})
	}
}
