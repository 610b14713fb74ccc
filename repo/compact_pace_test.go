package repo_test

import (
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/vfs"
)

// TestCompactCopyInPieces compacts a log whose copy is synced in several
// pieces while a writer writes with Sync durability: the writes are all
// there after reopening, and the stats tell the copy's peak (the new log,
// one attempt) and the part of it the writes made meanwhile take.
func TestCompactCopyInPieces(t *testing.T) {
	fs, clock := vfs.NewMem(), newCtClock()
	r := ctOpen(t, fs, clock, "pieces", repo.Sync)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2 {
		for i := range 1500 {
			noise := make([]byte, 300)
			for j := range noise {
				noise[j] = byte(rng.IntN(256))
			}
			ctSet(t, r, fmt.Sprintf("k%04d", i), "noise", hex.EncodeToString(noise))
		}
	}
	clock.at(clock.ms0() + 40*day)
	h := clock.ms0() + 30*day

	stop, done := make(chan struct{}), make(chan int)
	var once sync.Once
	go func() {
		n := 0
		defer func() { once.Do(func() { done <- n }) }()
		for ; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			ctSet(t, r, fmt.Sprint("hot", n%4), "n", fmt.Sprint(n))
		}
	}()
	st, err := r.Compact(h, nil)
	close(stop)
	wrote := <-done
	if err != nil {
		t.Fatal(err)
	}
	if st.BytesAfter < 3*256<<10 {
		t.Fatalf("the copy is %d bytes: too small to be synced in pieces", st.BytesAfter)
	}
	if st.CopyPeak != st.BytesAfter {
		t.Errorf("copy peak %d, new log %d bytes", st.CopyPeak, st.BytesAfter)
	}
	if st.BytesTail < 0 || st.BytesTail >= st.BytesAfter {
		t.Errorf("tail %d of %d bytes", st.BytesTail, st.BytesAfter)
	}
	values := ctValues(r)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r2 := ctOpen(t, fs, clock, "pieces", repo.Sync)
	ctSameValues(t, fmt.Sprintf("reopened after compacting beside %d writes", wrote), ctValues(r2), values)
}
