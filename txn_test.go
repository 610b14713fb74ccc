package goatdb_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/internal/dbtest"
)

const bank = "/data/bank"

// openBank opens a database with n accounts of 100 each.
func openBank(t *testing.T, n int, opts *goatdb.Options) (*goatdb.DB, []string) {
	t.Helper()
	db := dbtest.OpenDB(t, opts)
	b := db.Batch()
	paths := make([]string, n)
	for i := range paths {
		paths[i] = fmt.Sprintf("%s/acct%d", bank, i)
		b.Put(paths[i], goatdb.Fields{"n": 100})
	}
	if _, err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	return db, paths
}

func balance(it goatdb.Item) float64 {
	n, _ := it.Value("n")
	return n.Float()
}

// transfer moves amount from one account to another in a transaction.
func transfer(ctx context.Context, db *goatdb.DB, from, to string, amount float64) error {
	return db.Txn(ctx, bank, func(tx *goatdb.Tx) error {
		a, err := tx.Get(from)
		if err != nil {
			return err
		}
		b, err := tx.Get(to)
		if err != nil {
			return err
		}
		if err := tx.Put(from, goatdb.Fields{"n": balance(a) - amount}); err != nil {
			return err
		}
		return tx.Put(to, goatdb.Fields{"n": balance(b) + amount})
	})
}

// TestTxnAndViewConsistent: transfers between accounts run in
// transactions and as conditional batches while readers sum the accounts
// in views, both item by item and by listing; every view sees the same
// total, so no reader sees half a transfer, and no transfer is lost.
func TestTxnAndViewConsistent(t *testing.T) {
	for _, d := range durabilities {
		t.Run(d.name, func(t *testing.T) {
			const accounts = 4
			db, paths := openBank(t, accounts, &goatdb.Options{Durability: d.d})
			ctx := t.Context()
			stop := make(chan struct{})
			var writers, readers sync.WaitGroup
			var moved atomic.Int64
			for w := range 4 {
				writers.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(w), 1))
					for range 25 {
						i, j := rng.IntN(accounts), rng.IntN(accounts-1)
						if j >= i {
							j++
						}
						var err error
						if w%2 == 0 {
							err = transfer(ctx, db, paths[i], paths[j], 7)
						} else {
							err = batchTransfer(db, paths[i], paths[j], 7)
						}
						if err != nil {
							t.Error(err)
							return
						}
						moved.Add(1)
					}
				})
			}
			var views atomic.Int64
			for r := range 2 {
				readers.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						total, err := viewTotal(db, paths, r == 0)
						if err != nil {
							t.Error(err)
							return
						}
						if total != 100*accounts {
							t.Errorf("a view saw a total of %v, want %d", total, 100*accounts)
							return
						}
						views.Add(1)
					}
				})
			}
			writers.Wait()
			close(stop)
			readers.Wait()
			total, err := viewTotal(db, paths, true)
			if err != nil || total != 100*accounts {
				t.Fatal(total, err)
			}
			var commits int
			for _, p := range paths {
				commits += historyLen(t, db, p)
			}
			// Every transfer wrote both accounts, in one commit each, besides
			// the first commits and any merges.
			if commits < accounts+2*int(moved.Load()) {
				t.Fatalf("%d commits for %d transfers", commits, moved.Load())
			}
			t.Logf("%d transfers, %d views", moved.Load(), views.Load())
		})
	}
}

// batchTransfer is a transfer as a batch conditional on the heads read,
// retried on ErrConflict.
func batchTransfer(db *goatdb.DB, from, to string, amount float64) error {
	for {
		var a, b goatdb.Item
		err := db.View(bank, func(s *goatdb.Snapshot) error {
			var err error
			if a, err = s.Get(from); err != nil {
				return err
			}
			b, err = s.Get(to)
			return err
		})
		if err != nil {
			return err
		}
		batch := db.Batch()
		batch.Put(from, goatdb.Fields{"n": balance(a) - amount}, goatdb.IfHead(a.Head()))
		batch.Put(to, goatdb.Fields{"n": balance(b) + amount}, goatdb.IfHead(b.Head()))
		if _, err = batch.Commit(); !errors.Is(err, goatdb.ErrConflict) {
			return err
		}
	}
}

// viewTotal sums the accounts in one view, by listing or item by item.
func viewTotal(db *goatdb.DB, paths []string, list bool) (float64, error) {
	var total float64
	err := db.View(bank, func(s *goatdb.Snapshot) error {
		total = 0
		if list {
			for it, err := range s.All() {
				if err != nil {
					return err
				}
				total += balance(it)
			}
			return nil
		}
		for _, p := range paths {
			it, err := s.Get(p)
			if err != nil {
				return err
			}
			total += balance(it)
		}
		return nil
	})
	return total, err
}

// TestViewDiscardsMixedRun: a view whose first run reads one account
// before a transfer and the other after it runs again, and what it
// returns is one state.
func TestViewDiscardsMixedRun(t *testing.T) {
	db, paths := openBank(t, 2, nil)
	runs := 0
	var total float64
	errMixed := errors.New("mixed")
	err := db.View(bank, func(s *goatdb.Snapshot) error {
		runs++
		a, err := s.Get(paths[0])
		if err != nil {
			return err
		}
		if runs == 1 {
			if err := transfer(t.Context(), db, paths[0], paths[1], 30); err != nil {
				t.Fatal(err)
			}
		}
		again, err := s.Get(paths[0])
		if err != nil || again.Head() != a.Head() {
			t.Errorf("a second read of one item differs: %v", err)
		}
		b, err := s.Get(paths[1])
		if err != nil {
			return err
		}
		if total = balance(a) + balance(b); total != 200 {
			return errMixed // discarded with the run
		}
		return nil
	})
	if err != nil || runs != 2 || total != 200 {
		t.Fatal(err, runs, total)
	}

	// A run that lists after a read that moved is discarded too.
	runs = 0
	err = db.View(bank, func(s *goatdb.Snapshot) error {
		runs++
		if _, err := s.Get(paths[0]); err != nil {
			return err
		}
		if runs == 1 {
			if err := transfer(t.Context(), db, paths[0], paths[1], 30); err != nil {
				t.Fatal(err)
			}
		}
		n, err := s.Count()
		if err != nil || n != 2 {
			t.Errorf("count %d, %v", n, err)
		}
		return nil
	})
	if err != nil || runs != 2 {
		t.Fatal(err, runs)
	}
}

// TestViewFallsBackToCopy: a view whose reads move on every run runs on
// a copy of the repository after three runs.
func TestViewFallsBackToCopy(t *testing.T) {
	db, paths := openBank(t, 2, nil)
	runs := 0
	err := db.View(bank, func(s *goatdb.Snapshot) error {
		runs++
		if _, err := s.Get(paths[0]); err != nil {
			return err
		}
		return transfer(t.Context(), db, paths[0], paths[1], 1)
	})
	if err != nil || runs != 4 {
		t.Fatal(err, runs)
	}
}

func TestViewErrors(t *testing.T) {
	db, paths := openBank(t, 1, nil)
	if err := db.View("/data/none", func(*goatdb.Snapshot) error { return nil }); !errors.Is(err, goatdb.ErrNotFound) {
		t.Fatal(err)
	}
	var kept *goatdb.Snapshot
	boom := errors.New("boom")
	err := db.View(bank, func(s *goatdb.Snapshot) error {
		kept = s
		if _, err := s.Get("/data/other/x"); !errors.Is(err, goatdb.ErrInvalidPath) {
			t.Error(err)
		}
		if _, err := s.Get(bank + "/none"); !errors.Is(err, goatdb.ErrNotFound) {
			t.Error(err)
		}
		if keys, err := s.Keys(false); err != nil || len(keys) != 1 {
			t.Error(keys, err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if _, err := kept.Get(paths[0]); !errors.Is(err, goatdb.ErrClosed) {
		t.Fatal(err)
	}
	if err := db.View(bank, func(*goatdb.Snapshot) error { panic("boom") }); err == nil {
		t.Fatal("a panic was not an error")
	}
}

func TestTxnReadsOwnWritesAndAborts(t *testing.T) {
	db, paths := openBank(t, 2, nil)
	boom := errors.New("boom")
	var created string
	err := db.Txn(t.Context(), bank, func(tx *goatdb.Tx) error {
		if err := tx.Put(paths[0], goatdb.Fields{"n": 1}); err != nil {
			return err
		}
		if it, err := tx.Get(paths[0]); err != nil || balance(it) != 1 {
			t.Error(it, err)
		}
		if err := tx.Delete(paths[1]); err != nil {
			return err
		}
		if _, err := tx.Get(paths[1]); !errors.Is(err, goatdb.ErrDeleted) {
			t.Error(err)
		}
		var err error
		if created, err = tx.Create(goatdb.Fields{"n": 5}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	for _, p := range paths {
		if historyLen(t, db, p) != 1 || counterValue(t, db, p) != 100 {
			t.Fatalf("%s written by an aborted transaction", p)
		}
	}
	if _, err := db.Get(created); !errors.Is(err, goatdb.ErrNotFound) {
		t.Fatal(err)
	}
	if err := db.Txn(t.Context(), bank, func(*goatdb.Tx) error { panic("boom") }); err == nil {
		t.Fatal("a panic was not an error")
	}

	// The same, committed; in a repository that does not exist yet too.
	for _, rp := range []string{bank, "/data/newbank"} {
		var path string
		err = db.Txn(t.Context(), rp, func(tx *goatdb.Tx) error {
			var err error
			path, err = tx.Create(goatdb.Fields{"n": 5})
			if err != nil {
				return err
			}
			return tx.Put(path, goatdb.Fields{"m": 6})
		})
		if it, gerr := db.Get(path); err != nil || gerr != nil || balance(it) != 5 || it.Get("m") != int64(6) {
			t.Fatal(err, gerr, it)
		}
	}
	// A transaction that writes nothing creates nothing.
	if err := db.Txn(t.Context(), "/data/none", func(tx *goatdb.Tx) error {
		_, err := tx.Get("/data/none/x")
		if !errors.Is(err, goatdb.ErrNotFound) {
			t.Error(err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := db.HasRepo("/data/none"); ok {
		t.Fatal("a transaction that wrote nothing created its repository")
	}
}

// TestTxnRetriesOnMove: a transaction whose read item moves before it
// commits runs again on the new value; a canceled context stops it.
func TestTxnRetriesOnMove(t *testing.T) {
	db, paths := openBank(t, 2, nil)
	var saw []float64
	err := db.Txn(t.Context(), bank, func(tx *goatdb.Tx) error {
		a, err := tx.Get(paths[0])
		if err != nil {
			return err
		}
		saw = append(saw, balance(a))
		if len(saw) == 1 {
			if _, err := db.Put(paths[0], goatdb.Fields{"n": 50}); err != nil {
				t.Fatal(err)
			}
		}
		return tx.Put(paths[1], goatdb.Fields{"n": balance(a)})
	})
	if err != nil || len(saw) != 2 || saw[1] != 50 || counterValue(t, db, paths[1]) != 50 {
		t.Fatal(err, saw)
	}

	ctx, cancel := context.WithCancel(t.Context())
	runs := 0
	err = db.Txn(ctx, bank, func(tx *goatdb.Tx) error {
		runs++
		a, err := tx.Get(paths[0])
		if err != nil {
			return err
		}
		if _, err := db.Put(paths[0], goatdb.Fields{"n": balance(a) + 1}); err != nil {
			t.Fatal(err)
		}
		cancel()
		return tx.Put(paths[1], goatdb.Fields{"n": 0})
	})
	if !errors.Is(err, context.Canceled) || runs != 1 || counterValue(t, db, paths[1]) != 50 {
		t.Fatal(err, runs)
	}

	// A conditional write in a transaction is checked against what it read.
	err = db.Txn(t.Context(), bank, func(tx *goatdb.Tx) error {
		return tx.Put(paths[0], goatdb.Fields{"n": 1}, goatdb.IfAbsent())
	})
	if !errors.Is(err, goatdb.ErrConflict) {
		t.Fatal(err)
	}
}

// TestTxnContendedCounts: eight goroutines increment one item in
// transactions; none is lost.
func TestTxnContendedCounts(t *testing.T) {
	db, paths := openBank(t, 1, nil)
	var wg sync.WaitGroup
	var runs atomic.Int64
	start := time.Now()
	for range 8 {
		wg.Go(func() {
			for range 10 {
				err := db.Txn(t.Context(), bank, func(tx *goatdb.Tx) error {
					runs.Add(1)
					a, err := tx.Get(paths[0])
					if err != nil {
						return err
					}
					return tx.Put(paths[0], goatdb.Fields{"n": balance(a) + 1})
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := counterValue(t, db, paths[0]); n != 180 {
		t.Fatalf("n = %v, want 180", n)
	}
	t.Logf("80 transactions in %d runs, %v", runs.Load(), time.Since(start))
}
