package console_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/goatdb/goatdb/server/console"
)

func get(t *testing.T, method, target string, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	console.Handler().ServeHTTP(rec, req)
	return rec
}

// assets returns the asset URLs index.html names.
func assets(t *testing.T) []string {
	t.Helper()
	idx := get(t, http.MethodGet, "/", nil).Body.String()
	urls := regexp.MustCompile(`(?:src|href)="(/console/[^"]+)"`).FindAllStringSubmatch(idx, -1)
	var out []string
	for _, m := range urls {
		out = append(out, m[1])
	}
	if len(out) < 3 {
		t.Fatalf("index.html names %v, want the stylesheet, the script and the icon", out)
	}
	return out
}

func TestServe(t *testing.T) {
	urls := assets(t)
	tests := []struct {
		path, ctype, cache string
	}{
		{"/", "text/html; charset=utf-8", "no-cache"},
		{urls[0], "image/svg+xml", "public, max-age=31536000, immutable"},
		{urls[1], "text/css; charset=utf-8", "public, max-age=31536000, immutable"},
		{urls[2], "text/javascript; charset=utf-8", "public, max-age=31536000, immutable"},
		{"/console/console.js", "text/javascript; charset=utf-8", "no-cache"},
		{"/console/console.js?v=old", "text/javascript; charset=utf-8", "no-cache"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			rec := get(t, http.MethodGet, tt.path, nil)
			h := rec.Header()
			if rec.Code != http.StatusOK || h.Get("Content-Type") != tt.ctype || h.Get("Cache-Control") != tt.cache {
				t.Errorf("%d %q %q, want 200 %q %q", rec.Code, h.Get("Content-Type"), h.Get("Cache-Control"), tt.ctype, tt.cache)
			}
			if h.Get("Content-Security-Policy") != console.CSP || h.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("headers %v lack the policy", h)
			}
			if h.Get("Content-Encoding") != "" || rec.Body.Len() == 0 {
				t.Errorf("plain request got encoding %q and %d bytes", h.Get("Content-Encoding"), rec.Body.Len())
			}
		})
	}
}

func TestPolicyIsStrict(t *testing.T) {
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "object-src 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(console.CSP, want) {
			t.Errorf("policy %q lacks %q", console.CSP, want)
		}
	}
	if strings.Contains(console.CSP, "unsafe-") {
		t.Errorf("policy %q allows unsafe sources", console.CSP)
	}
	// Nothing in the page would need more: no inline script, style or
	// handler, and the script builds no markup from strings.
	idx := get(t, http.MethodGet, "/", nil).Body.String()
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(idx, -1) {
		if !strings.Contains(tag, ` src="/console/`) {
			t.Errorf("index.html has an inline script: %s", tag)
		}
	}
	if m := regexp.MustCompile(`<style|\sstyle=|\son[a-z]+=`).FindString(idx); m != "" {
		t.Errorf("index.html has inline style or handler %q", m)
	}
	js := get(t, http.MethodGet, "/console/console.js", nil).Body.String()
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
		if strings.Contains(js, bad) {
			t.Errorf("console.js uses %s", bad)
		}
	}
}

func TestGzip(t *testing.T) {
	for _, u := range append(assets(t), "/") {
		plain := get(t, http.MethodGet, u, nil).Body.Bytes()
		rec := get(t, http.MethodGet, u, http.Header{"Accept-Encoding": {"br, gzip;q=0.8"}})
		if rec.Header().Get("Content-Encoding") != "gzip" || !strings.Contains(rec.Header().Get("Vary"), "Accept-Encoding") {
			t.Errorf("%s: encoding %q vary %q, want gzip", u, rec.Header().Get("Content-Encoding"), rec.Header().Get("Vary"))
			continue
		}
		zr, err := gzip.NewReader(rec.Body)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("%s: gzip body decodes to %d bytes (%v), want the %d plain ones", u, len(got), err, len(plain))
		}
		if rec := get(t, http.MethodGet, u, http.Header{"Accept-Encoding": {"gzip;q=0"}}); rec.Header().Get("Content-Encoding") != "" {
			t.Errorf("%s: gzip;q=0 still got gzip", u)
		}
	}
}

func TestConditional(t *testing.T) {
	rec := get(t, http.MethodGet, "/", nil)
	etag := rec.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	rec = get(t, http.MethodGet, "/", http.Header{"If-None-Match": {`"other", ` + etag}})
	if rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
		t.Errorf("If-None-Match with the ETag: %d and %d bytes, want 304 and none", rec.Code, rec.Body.Len())
	}
	if rec.Header().Get("Content-Security-Policy") == "" {
		t.Error("304 without the policy")
	}
}

func TestRefuses(t *testing.T) {
	tests := []struct {
		method, path string
		code         int
	}{
		{http.MethodGet, "/console/", 404},
		{http.MethodGet, "/console/nope.js", 404},
		{http.MethodGet, "/console/../doc.go", 404},
		{http.MethodGet, "/console/index.html", 404},
		{http.MethodGet, "/index.html", 404},
		{http.MethodGet, "/v1/repos", 404},
		{http.MethodPost, "/", 405},
		{http.MethodDelete, "/console/console.js", 405},
	}
	for _, tt := range tests {
		rec := get(t, tt.method, tt.path, nil)
		if rec.Code != tt.code {
			t.Errorf("%s %s: %d, want %d", tt.method, tt.path, rec.Code, tt.code)
		}
		if rec.Code == 405 && rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: Allow %q", tt.method, tt.path, rec.Header().Get("Allow"))
		}
	}
	rec := get(t, http.MethodHead, "/", nil)
	if rec.Code != 200 || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") == "" {
		t.Errorf("HEAD /: %d, %d bytes, length %q", rec.Code, rec.Body.Len(), rec.Header().Get("Content-Length"))
	}
}

// TestSize holds the first load (every file, as sent gzip-compressed) to
// 60 KB, well under the 200 KB budget.
func TestSize(t *testing.T) {
	raw, gz := console.Sizes()
	t.Logf("console files: %d bytes, %d gzip-compressed", raw, gz)
	if gz > 60*1024 || raw > 200*1024 {
		t.Errorf("console is %d bytes (%d compressed), want ≤ 200 KB and ≤ 60 KB compressed", raw, gz)
	}
}
