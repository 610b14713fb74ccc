package server_test

// The cost of a login as the number of certified sessions grows: the
// accounts' index reads only the item a login writes, so it stays flat.
//
//	go test -run='^$' -bench='^BenchmarkCertify$' ./server

import (
	"crypto/ed25519"
	"fmt"
	"testing"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/server"
)

func BenchmarkCertify(b *testing.B) {
	for _, n := range []int{100, 3000} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			db := dbtest.OpenDB(b, &goatdb.Options{Durability: goatdb.Async})
			id, _, err := server.NewIdentity("bench")
			if err != nil {
				b.Fatal(err)
			}
			acc, err := server.OpenAccounts(db, id, nil)
			if err != nil {
				b.Fatal(err)
			}
			session := func() commit.SessionID {
				pub, _, _ := ed25519.GenerateKey(nil)
				var s commit.SessionID
				copy(s[:], pub)
				return s
			}
			for range n {
				if _, err := acc.Certify(session(), "alice", nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := acc.Certify(session(), "alice", nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
