package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/server"
)

// running is a server serving on a loopback port until stopped.
type running struct {
	db   *goatdb.DB
	srv  *server.Server
	url  string
	addr string
	stop func() error // shuts down (gracefully) and returns Serve's error
}

// serve runs a server for db on 127.0.0.1 (addr "" picks a port) until
// the test ends or stop is called.
func serve(t testing.TB, db *goatdb.DB, opts *server.Options, addr string) *running {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for range 50 { // a port just released may take a moment
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	var stopped bool
	var serr error
	stop := func() error {
		if !stopped {
			stopped = true
			cancel()
			serr = errors.Join(<-done, srv.Close())
		}
		return serr
	}
	t.Cleanup(func() { stop() })
	return &running{db: db, srv: srv, url: "http://" + ln.Addr().String(), addr: ln.Addr().String(), stop: stop}
}

// values returns every live item of every repository as path → fields.
func values(t testing.TB, db *goatdb.DB) map[string]string {
	t.Helper()
	repos, err := db.Repos()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, rp := range repos {
		for it, err := range db.All(rp) {
			if err != nil {
				t.Fatal(err)
			}
			out[it.Path()] = fmt.Sprint(it.Fields())
		}
	}
	return out
}

// sameValues fails unless every database holds the same items and values.
func sameValues(t testing.TB, dbs ...*goatdb.DB) {
	t.Helper()
	want := values(t, dbs[0])
	for i, db := range dbs[1:] {
		if got := values(t, db); !maps.Equal(got, want) {
			t.Errorf("peer %d differs from peer 0:\n got  %v\n want %v", i+1, got, want)
		}
	}
}

// eventually retries cond until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func get(t testing.TB, db *goatdb.DB, path string) map[string]any {
	t.Helper()
	it, err := db.Get(path)
	if err != nil {
		t.Fatalf("get %s: %v", path, err)
	}
	return it.Fields()
}

func mustPut(t testing.TB, db *goatdb.DB, path string, f goatdb.Fields) {
	t.Helper()
	if _, err := db.Put(path, f); err != nil {
		t.Fatal(err)
	}
}

func mustSync(t testing.TB, db *goatdb.DB, url string, repos ...string) goatdb.SyncStats {
	t.Helper()
	st, err := db.Sync(context.Background(), url, repos...)
	if err != nil {
		t.Fatalf("sync: %v (stats %+v)", err, st)
	}
	return st
}

// post sends a raw body to the server's sync route.
func post(t testing.TB, url, contentType string, body []byte) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Post(url+"/v1/sync", contentType, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	return slices.Sorted(maps.Keys(m))
}
