package repo_test

import (
	"crypto/ed25519"
	"sync"
	"testing"

	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/repo"
)

// TestConcurrentHistoryWithPending runs History and AsOf from several
// goroutines on an item that has pending commits while commits arrive. The
// race detector failed this when History pruned the pending list under the
// read lock.
func TestConcurrentHistoryWithPending(t *testing.T) {
	_, k, _ := ed25519.GenerateKey(nil)
	src := dbtest.OpenRepo(t, "src.log", &repo.Options{Key: k})
	for i := range 40 {
		if _, err := src.Write(set("x", "n", item.Int(int64(i)))); err != nil {
			t.Fatal(err)
		}
	}
	hist := src.History("x") // newest first
	encs := make([][]byte, len(hist))
	for i, h := range hist {
		encs[i] = h.Commit.Encode()
	}
	dst := dbtest.OpenRepo(t, "dst.log", &repo.Options{Key: k})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, h := range dst.History("x") {
					_ = h.Pending
				}
				dst.AsOf("x", 1<<62)
			}
		})
	}
	// Newest first: every commit but the last delivered is pending until
	// its parent arrives.
	for _, e := range encs {
		if _, rej, err := dst.Receive([][]byte{e}); err != nil || len(rej) > 0 {
			t.Fatal(err, rej)
		}
	}
	close(stop)
	wg.Wait()
	got := dst.History("x")
	if len(got) != len(hist) {
		t.Fatalf("history has %d commits, want %d", len(got), len(hist))
	}
	for _, h := range got {
		if h.Pending {
			t.Errorf("commit %s still pending after its ancestry arrived", h.Commit.ID().Short())
		}
	}
	dbtest.RequireClean(t, dst)
}
