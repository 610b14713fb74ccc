package goatdb_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/goatdb/goatdb"
)

// Writes a server refuses are quarantined, not lost: the application
// shows them, and after a new login writes them again, or drops them.
func ExampleDB_Rejected() {
	db, err := goatdb.Open("client-data", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	const server = "https://db.example.com"

	if _, err := db.Sync(ctx, server); errors.Is(err, goatdb.ErrRejected) {
		rejected, err := db.Rejected("")
		if err != nil {
			log.Fatal(err)
		}
		for _, w := range rejected {
			fmt.Printf("%s: %s refused %s: %s\n", w.Path, w.Server, w.Commit.Short(), w.Reason)
		}
	}

	// The session had been revoked: log in again, then write the refused
	// changes again on the items' current values, and sync them.
	if _, err := db.LoginCode(ctx, server, "alice", "CODE-FROM-USER-ADD"); err != nil {
		log.Fatal(err)
	}
	if _, err := db.Reauthor("/data/tasks"); err != nil {
		log.Fatal(err)
	}
	if _, err := db.Sync(ctx, server); err != nil {
		log.Print(err)
	}
	// What the rules refuse whoever writes it is dropped instead.
	if err := db.Discard("/data/tasks"); err != nil {
		log.Fatal(err)
	}
}
