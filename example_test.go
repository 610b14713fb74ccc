package goatdb_test

import (
	"fmt"
	"log"
	"os"

	"github.com/goatdb/goatdb"
)

// The embedding example from the README.
func Example() {
	dir, _ := os.MkdirTemp("", "goatdb-example")
	defer os.RemoveAll(dir)

	db, err := goatdb.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	path := "/data/tasks/t1"
	db.Put(path, goatdb.Fields{"title": "Write the README", "tags": []string{"docs"}})
	db.Put(path, goatdb.Fields{"done": true})
	task, _ := db.Get(path)
	fmt.Println(task.Get("title"), task.Get("done"), task.Get("tags"))
	// Output: Write the README true [docs]
}
