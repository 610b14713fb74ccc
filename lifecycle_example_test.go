package goatdb_test

import (
	"fmt"
	"log"
	"os"

	"github.com/goatdb/goatdb"
)

// A database that keeps at most 10 repositories open closes the least
// recently used idle ones as others open; Acquire holds one open while it
// is used directly.
func ExampleDB_Acquire() {
	dir, _ := os.MkdirTemp("", "goatdb-example")
	defer os.RemoveAll(dir)

	db, err := goatdb.Open(dir, &goatdb.Options{MaxOpenRepos: 10})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	r, release, err := db.Acquire("/data/tasks")
	if err != nil {
		log.Fatal(err)
	}
	defer release()
	for i := range 20 { // opens 20 other repositories
		db.Put(fmt.Sprintf("/data/r%d/x", i), goatdb.Fields{"n": i})
	}
	fmt.Println("/data/tasks closed:", r.Closed())
	// Output: /data/tasks closed: false
}
