package goatdb_test

import (
	"fmt"
	"log"
	"os"

	"github.com/goatdb/goatdb"
)

func ExampleDB_Range() {
	dir, _ := os.MkdirTemp("", "goatdb-range-example")
	defer os.RemoveAll(dir)
	db, _ := goatdb.Open(dir, nil)
	defer db.Close()
	for _, k := range []string{"t3", "t1", "n1", "t2", "t4"} {
		db.Put("/data/tasks/"+k, goatdb.Fields{"title": "Task " + k})
	}

	opts := goatdb.RangeOptions{Prefix: "t", Limit: 2}
	for {
		n := 0
		for task, err := range db.Range("/data/tasks", opts) {
			if err != nil {
				log.Fatal(err)
			}
			fmt.Println(task.Path(), task.Get("title"))
			opts.After, n = task.Path()[len("/data/tasks/"):], n+1
		}
		if n < opts.Limit {
			break // a short page is the last
		}
	}
	// Output:
	// /data/tasks/t1 Task t1
	// /data/tasks/t2 Task t2
	// /data/tasks/t3 Task t3
	// /data/tasks/t4 Task t4
}
