package goatdb_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/goatdb/goatdb"
)

// A device logs in once with the one-time code 'goatdb user add alice'
// printed on the server; later syncs sign every request and renew the
// login by themselves, and say so when the server wants a new login.
func ExampleDB_LoginCode() {
	db, err := goatdb.Open("client-data", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	const server = "https://db.example.com"

	l, err := db.LoginCode(ctx, server, "alice", "CODE-FROM-USER-ADD")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("logged in as", l.User, "until", l.Expires)

	if _, err := db.Sync(ctx, server); errors.Is(err, goatdb.ErrUnauthenticated) {
		fmt.Println("log in again:", err)
	}
	for _, l := range db.Logins() {
		fmt.Println(l.Server, l.User, l.Expires)
	}
	if err := db.Logout(ctx, server); err != nil {
		log.Print(err)
	}
}
