package server_test

// The round trip of one GET /v1/items/{type}/{repo}/{key} of a random
// item among 10,000, with a bearer token from POST /v1/auth/token (and,
// for reference, without authentication), over one keep-alive connection
// to an httptest server on 127.0.0.1 in the same process: ns/op is client
// and server together, allocs/op theirs too. The bench module's "http
// get" section measures the server's CPU alone, with the client in
// another process.
//
//	go test -run='^$' -bench='^BenchmarkAPIGetItem$' ./server

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/server"
)

func BenchmarkAPIGetItem(b *testing.B) {
	b.Run("auth=token", func(b *testing.B) { benchAPIGetItem(b, true) })
	b.Run("auth=none", func(b *testing.B) { benchAPIGetItem(b, false) })
}

func benchAPIGetItem(b *testing.B, auth bool) {
	const n = 10_000
	db := dbtest.OpenDB(b, &goatdb.Options{Durability: goatdb.Async})
	for lo := 0; lo < n; lo += 1000 {
		batch := db.Batch()
		for i := lo; i < lo+1000; i++ {
			s := strconv.Itoa(i)
			batch.Put("/user/bench/i"+s, goatdb.Fields{"title": "Item " + s, "count": i, "tags": item.StringSet("tag"+s, "category"+strconv.Itoa(i%5))})
		}
		if _, err := batch.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	opts := &server.Options{RateLimit: -1}
	if auth {
		id, _, err := server.NewIdentity("bench")
		if err != nil {
			b.Fatal(err)
		}
		opts.Auth = &server.AuthOptions{Identity: id}
	}
	srv, err := server.New(db, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	ts := httptest.NewServer(srv.Handler())
	b.Cleanup(ts.Close)
	c := ts.Client()
	c.Transport.(*http.Transport).DisableCompression = true
	var bearer string
	if auth {
		code, _, err := srv.Accounts().AddUser("bench", nil)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := json.Marshal(map[string]string{"user": "bench", "code": code})
		resp, err := c.Post(ts.URL+"/v1/auth/token", "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		var ans struct{ Token string }
		err = json.NewDecoder(resp.Body).Decode(&ans)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || ans.Token == "" {
			b.Fatalf("POST /v1/auth/token: %s, %v", resp.Status, err)
		}
		bearer = "Bearer " + ans.Token
	}
	reqs := make([]*http.Request, 256)
	for k := range reqs {
		req, err := http.NewRequest(http.MethodGet, ts.URL+"/v1/items/user/bench/i"+strconv.Itoa(rand.IntN(n)), nil)
		if err != nil {
			b.Fatal(err)
		}
		if bearer != "" {
			req.Header.Set("Authorization", bearer)
		}
		reqs[k] = req
	}
	k := 0
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Do(reqs[k%len(reqs)])
		if err != nil {
			b.Fatal(err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET: %s, %v", resp.Status, err)
		}
		k++
	}
}
