package goatdb_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"sync"
	"testing"

	"github.com/goatdb/goatdb"
)

// openExample opens a database in a new temporary directory; the returned
// function closes and removes it.
func openExample() (*goatdb.DB, func()) {
	dir, err := os.MkdirTemp("", "goatdb-example")
	if err != nil {
		log.Fatal(err)
	}
	db, err := goatdb.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	return db, func() { db.Close(); os.RemoveAll(dir) }
}

// Ten goroutines each add 1 twenty times; Update loses none of them.
func ExampleDB_Update() {
	db, done := openExample()
	defer done()
	ctx := context.Background()

	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			for range 20 {
				_, err := db.Update(ctx, "/data/counters/visits", func(it goatdb.Item) (goatdb.Fields, error) {
					n, _ := it.Value("n") // a missing item: Exists() false, no fields
					return goatdb.Fields{"n": n.Float() + 1}, nil
				})
				if err != nil {
					log.Fatal(err)
				}
			}
		})
	}
	wg.Wait()
	visits, _ := db.Get("/data/counters/visits")
	fmt.Println(visits.Get("n"))
	// Output: 200
}

// A write conditional on the head read fails with ErrConflict if the item
// moved meanwhile, and writes nothing.
func ExampleIfHead() {
	db, done := openExample()
	defer done()
	path := "/data/tasks/t1"

	_, err := db.Put(path, goatdb.Fields{"title": "Write docs"}, goatdb.IfAbsent()) // create only
	if err != nil {
		log.Fatal(err)
	}
	task, _ := db.Get(path)
	db.Put(path, goatdb.Fields{"title": "Write the docs"}) // another writer
	_, err = db.Put(path, goatdb.Fields{"done": true}, goatdb.IfHead(task.Head()))
	if errors.Is(err, goatdb.ErrConflict) {
		fmt.Println("changed since read: read it again and decide again")
	}
	// Output: changed since read: read it again and decide again
}

// A transfer between two accounts in a transaction, and their total read
// in a view: no view sees half a transfer.
func ExampleDB_Txn() {
	db, done := openExample()
	defer done()
	ctx := context.Background()
	db.Put("/data/bank/alice", goatdb.Fields{"n": 100})
	db.Put("/data/bank/bob", goatdb.Fields{"n": 100})

	err := db.Txn(ctx, "/data/bank", func(tx *goatdb.Tx) error {
		a, err := tx.Get("/data/bank/alice")
		if err != nil {
			return err
		}
		b, err := tx.Get("/data/bank/bob")
		if err != nil {
			return err
		}
		if err := tx.Put("/data/bank/alice", goatdb.Fields{"n": a.Get("n").(int64) - 30}); err != nil {
			return err
		}
		return tx.Put("/data/bank/bob", goatdb.Fields{"n": b.Get("n").(int64) + 30})
	})
	if err != nil {
		log.Fatal(err)
	}
	var total int64
	err = db.View("/data/bank", func(s *goatdb.Snapshot) error {
		total = 0 // fn may run more than once
		for acct, err := range s.All() {
			if err != nil {
				return err
			}
			total += acct.Get("n").(int64)
		}
		return nil
	})
	alice, _ := db.Get("/data/bank/alice")
	fmt.Println(alice.Get("n"), total, err)
	// Output: 70 200 <nil>
}

// TestREADMEConcurrency keeps the Concurrency section's three Go blocks
// in the examples above, which run.
func TestREADMEConcurrency(t *testing.T) {
	if n := readmeBlocksIn(t, "## Concurrency", "concurrency_example_test.go", ""); n != 3 {
		t.Errorf("%d Go blocks in the Concurrency section, want 3", n)
	}
}
