package main

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServeCORSOrigin: serve prints the console's address; --cors-origin
// (repeatable) reaches the server, whose preflights answer the listed
// origins with 204 and their origin, and others with 403 and no CORS
// headers; a malformed origin is a usage error.
func TestServeCORSOrigin(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"app.example.com", "https://app.example.com/path", "ftp://app.example.com", "https://", "https://app.example.com?x=1"} {
		failure(t, cli(t, newDir(t), "", "serve", "--cors-origin", bad), 2, "--cors-origin")
	}
	srv := startServe(t, newDir(t), "--cors-origin", "https://app.example.com", "--cors-origin", "http://localhost:3000/")
	consoleLine := "goatdb: console on " + srv.url + "/\n"
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(srv.stdout.String(), consoleLine); {
		if time.Now().After(deadline) {
			t.Fatalf("serve printed %q, want the line %q", srv.stdout.String(), consoleLine)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, tt := range []struct {
		origin string
		status int
	}{
		{"https://app.example.com", http.StatusNoContent},
		{"http://localhost:3000", http.StatusNoContent},
		{"https://other.example.com", http.StatusForbidden},
		{"http://app.example.com", http.StatusForbidden},
	} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodOptions, srv.url+"/v1/repos", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", tt.origin)
		req.Header.Set("Access-Control-Request-Method", http.MethodGet)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		allowed := resp.Header.Get("Access-Control-Allow-Origin")
		switch {
		case resp.StatusCode != tt.status:
			t.Errorf("preflight from %s: %s, want %d", tt.origin, resp.Status, tt.status)
		case tt.status == http.StatusNoContent && allowed != tt.origin:
			t.Errorf("preflight from %s: Access-Control-Allow-Origin %q, want the origin", tt.origin, allowed)
		case tt.status != http.StatusNoContent && allowed != "":
			t.Errorf("preflight from %s, not listed: Access-Control-Allow-Origin %q, want none", tt.origin, allowed)
		}
	}
}
