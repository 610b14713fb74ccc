package console

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
)

//go:embed static
var static embed.FS

// CSP is the Content-Security-Policy of every answer: only the server's
// own origin, no inline script or style, no plugins, no framing.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; " +
	"form-action 'self'; frame-ancestors 'none'"

// file is one file ready to serve.
type file struct {
	body  []byte
	gz    []byte // body gzip-compressed; nil when that saves nothing
	ctype string
	hash  string // first 12 hex digits of the body's SHA-256
}

// site holds every file, built once by load.
type site struct {
	index  file
	assets map[string]file // by name under /console/
}

var (
	loadOnce sync.Once
	loaded   *site
)

// Handler returns the console's handler: GET / and GET /console/....
func Handler() http.Handler {
	loadOnce.Do(func() { loaded = load() })
	return loaded
}

// Sizes returns the bytes a browser transfers for the first load of the
// console (index.html and every asset), raw and gzip-compressed.
func Sizes() (raw, gzipped int) {
	s := Handler().(*site)
	for _, f := range append([]file{s.index}, values(s.assets)...) {
		raw += len(f.body)
		gzipped += len(f.wire())
	}
	return raw, gzipped
}

func values(m map[string]file) []file {
	out := make([]file, 0, len(m))
	for _, f := range m {
		out = append(out, f)
	}
	return out
}

// wire is what a gzip-accepting client receives.
func (f file) wire() []byte {
	if f.gz != nil {
		return f.gz
	}
	return f.body
}

// load reads the embedded files, fills the asset hashes into index.html
// and compresses text. The files are part of the binary, so a failure here
// is a build mistake: it panics.
func load() *site {
	s := &site{assets: map[string]file{}}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || p == "static/index.html" {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		s.assets[strings.TrimPrefix(p, "static/")] = newFile(p, b)
		return nil
	})
	if err != nil {
		panic("console: embedded files: " + err.Error())
	}
	idx, err := static.ReadFile("static/index.html")
	if err != nil {
		panic("console: embedded files: " + err.Error())
	}
	for name, f := range s.assets {
		idx = bytes.ReplaceAll(idx, []byte("/console/"+name+"?v=0"), []byte("/console/"+name+"?v="+f.hash))
	}
	s.index = newFile("index.html", idx)
	return s
}

func newFile(name string, b []byte) file {
	sum := sha256.Sum256(b)
	f := file{body: b, ctype: mime.TypeByExtension(path.Ext(name)), hash: hex.EncodeToString(sum[:6])}
	switch path.Ext(name) {
	case ".js", ".mjs":
		f.ctype = "text/javascript; charset=utf-8" // not every system's mime table agrees
	case ".css":
		f.ctype = "text/css; charset=utf-8"
	case ".html":
		f.ctype = "text/html; charset=utf-8"
	case ".svg":
		f.ctype = "image/svg+xml"
	}
	if f.ctype == "" {
		f.ctype = "application/octet-stream"
	}
	if strings.HasPrefix(f.ctype, "text/") || f.ctype == "image/svg+xml" {
		f.gz = compress(b)
	}
	return f
}

func compress(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(b)
	zw.Close()
	if buf.Len() >= len(b) {
		return nil
	}
	return buf.Bytes()
}

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	f, cache, ok := s.lookup(r)
	if !ok {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	etag := `"` + f.hash + `"`
	h.Set("Cache-Control", cache)
	h.Set("ETag", etag)
	h.Set("Content-Type", f.ctype)
	if f.gz != nil {
		h.Add("Vary", "Accept-Encoding")
	}
	if match(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := f.body
	if f.gz != nil && acceptsGzip(r.Header.Get("Accept-Encoding")) {
		body = f.gz
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(body)
}

// lookup finds the file for r's path and its Cache-Control.
func (s *site) lookup(r *http.Request) (file, string, bool) {
	p := r.URL.Path
	if p == "/" {
		return s.index, "no-cache", true
	}
	name, ok := strings.CutPrefix(p, "/console/")
	if !ok {
		return file{}, "", false
	}
	f, ok := s.assets[name]
	if !ok {
		return file{}, "", false
	}
	if r.URL.Query().Get("v") == f.hash {
		return f, "public, max-age=31536000, immutable", true
	}
	return f, "no-cache", true
}

// match reports whether an If-None-Match header names etag.
func match(header, etag string) bool {
	for t := range strings.SplitSeq(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip.
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") && strings.TrimSpace(coding) != "*" {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}
