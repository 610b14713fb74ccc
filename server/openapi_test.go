package server_test

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strings"
	"testing"

	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/server"
)

// TestOpenAPIServed: GET /v1/openapi.json answers the JSON API's OpenAPI
// 3.1 description as application/json, without credentials.
func TestOpenAPIServed(t *testing.T) {
	run := serve(t, dbtest.OpenDB(t, nil), &server.Options{RateLimit: -1}, "")
	resp, err := http.Get(run.url + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/openapi.json: %d %s", resp.StatusCode, b)
	}
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", resp.Header.Get("Content-Type"))
	}
	var doc struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("the answer is not JSON: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") || doc.Paths["/v1/items/{type}/{repo}/{key}"] == nil {
		t.Errorf("the answer is not the JSON API's description: openapi %q, %d paths", doc.OpenAPI, len(doc.Paths))
	}
}
