package server_test

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/server"
)

// TestMaxConnections: with two connections open (idle, sending nothing),
// a server capped at two takes no third until one closes; then it serves
// it.
func TestMaxConnections(t *testing.T) {
	srv := serve(t, dbtest.OpenDB(t, nil), &server.Options{MaxConnections: 2, RateLimit: -1}, "")
	var idle []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", srv.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	quick := &http.Client{Timeout: 300 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := quick.Get(srv.url + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatalf("a third connection was served (%d) while two were open", resp.StatusCode)
	}
	idle[0].Close()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(srv.url + "/healthz")
	if err != nil {
		t.Fatalf("once a connection closed: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %d", resp.StatusCode)
	}
}
