package server_test

import (
	"bufio"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/server"
)

// TestSlowBodyCut: a client that trickles its body far below the minimum
// rate is answered 408 and its connection closed once the grace and the
// bytes it sent are due, long before the request timeout; an ordinary
// client meanwhile syncs.
func TestSlowBodyCut(t *testing.T) {
	srv := serve(t, dbtest.OpenDB(t, nil), &server.Options{MinBodyRate: 1000, BodyGrace: 200 * time.Millisecond,
		RequestTimeout: time.Minute, RateLimit: -1}, "")
	conn, err := net.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	began := time.Now()
	if _, err := conn.Write([]byte("POST /v1/sync HTTP/1.1\r\nHost: " + srv.addr + "\r\nContent-Type: " + goatdb.SyncContentType +
		"\r\nContent-Length: 100000\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() { // 20 bytes a second
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				if _, err := conn.Write([]byte{0}); err != nil {
					return
				}
			}
		}
	}()

	cli := dbtest.OpenDB(t, nil)
	mustPut(t, cli, "/data/t/x", goatdb.Fields{"v": 1})
	mustSync(t, cli, srv.url, "/data/t")

	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to the slow body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
		t.Fatalf("slow body: %d (close %v), want 408 and the connection closed", resp.StatusCode, resp.Close)
	}
	if took := time.Since(began); took > 20*time.Second {
		t.Fatalf("the slow body was cut after %v", took)
	}
	if m := scrape(t, srv.url); m.get("goatdb_http_slow_bodies_total") != 1 {
		t.Fatalf("slow bodies counted %v", m.get("goatdb_http_slow_bodies_total"))
	}
}
