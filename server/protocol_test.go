package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/server"
	"github.com/goatdb/goatdb/syncproto"
)

// noLimit is a server without rate limit, for tests that send many
// requests.
var noLimit = &server.Options{RateLimit: -1}

// dbSnapshot is what a server database holds: per repository, its commit
// ids and live item count.
type dbSnapshot map[string]string

func snapshotOf(t testing.TB, db *goatdb.DB) dbSnapshot {
	t.Helper()
	paths, err := db.Repos()
	if err != nil {
		t.Fatal(err)
	}
	out := dbSnapshot{}
	for _, p := range paths {
		r, err := db.Repo(p)
		if err != nil {
			t.Fatal(err)
		}
		n, err := db.Count(p)
		if err != nil {
			t.Fatal(err)
		}
		ids := r.IDs()
		slices.SortFunc(ids, commit.CompareIDs)
		out[p] = fmt.Sprintf("%d items, commits %x", n, ids)
	}
	return out
}

func sameSnapshot(t testing.TB, what string, before, after dbSnapshot) {
	t.Helper()
	if len(before) != len(after) {
		t.Errorf("%s: repositories %v, then %v", what, sortedKeys(before), sortedKeys(after))
		return
	}
	for p, b := range before {
		if after[p] != b {
			t.Errorf("%s: %s changed:\n before %s\n after  %s", what, p, b, after[p])
		}
	}
}

// commitsOf returns the encodings of a repository's commits, in log order.
func commitsOf(t testing.TB, db *goatdb.DB, path string) [][]byte {
	t.Helper()
	r, err := db.Repo(path)
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := r.CommitsSince(0)
	out := make([][]byte, len(cs))
	for i, c := range cs {
		out[i] = c.Encode()
	}
	return out
}

// pushRequest is a request that brings every commit of path in db, as a
// client with exactly those commits sends it.
func pushRequest(t testing.TB, db *goatdb.DB, path string) []byte {
	t.Helper()
	encs := commitsOf(t, db, path)
	ids := make([]commit.ID, len(encs))
	for i, b := range encs {
		c, err := commit.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = c.ID()
	}
	return encodeRequest(t, &syncproto.Request{Session: db.Session(), Repos: []syncproto.RepoRequest{{
		Path: path, Count: uint64(len(ids)), Digest: syncproto.DigestOf(ids), Commits: encs}}})
}

func encodeRequest(t testing.TB, req *syncproto.Request) []byte {
	t.Helper()
	b, err := syncproto.EncodeRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkOneLine fails unless an error body is one non-empty line of plain
// text.
func checkOneLine(t testing.TB, h http.Header, body string) {
	t.Helper()
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("error body has Content-Type %q, want text/plain", ct)
	}
	line, ok := strings.CutSuffix(body, "\n")
	if !ok || strings.TrimSpace(line) == "" || strings.ContainsAny(line, "\r\n") {
		t.Errorf("error body %q is not one line saying what is wrong", body)
	}
}

func checkRequestID(t testing.TB, h http.Header) {
	t.Helper()
	if id := h.Get("X-Request-Id"); id == "" {
		t.Error("response without X-Request-Id")
	}
}

// TestBadSyncRequests posts malformed requests: each gets 400 with a
// one-line reason, stores nothing, and counts as a bad request.
func TestBadSyncRequests(t *testing.T) {
	srvDB := dbtest.OpenDB(t, nil)
	mustPut(t, srvDB, "/data/p/existing", goatdb.Fields{"v": "server"})
	srv := serve(t, srvDB, noLimit, "")
	cli := dbtest.OpenDB(t, nil)
	mustPut(t, cli, "/data/p/x", goatdb.Fields{"v": "client"})
	mustPut(t, cli, "/data/new/y", goatdb.Fields{"v": "client"})
	good := pushRequest(t, cli, "/data/p")
	encs := commitsOf(t, cli, "/data/new")
	twice := encodeRequest(t, &syncproto.Request{Session: cli.Session(), Repos: []syncproto.RepoRequest{
		{Path: "/data/new", Count: 1, Commits: encs}, {Path: "/data/new"}}})
	junk := append([]byte{syncproto.Version, 1, 0}, bytes.Repeat([]byte{0xff}, 40)...)

	tests := []struct {
		name string
		body []byte
		want *regexp.Regexp // what the reason must say
	}{
		{"empty", nil, regexp.MustCompile(`malformed|empty|short`)},
		{"text", []byte("hello, server"), regexp.MustCompile(`version|malformed`)},
		{"garbage payload", junk, regexp.MustCompile(`malformed`)},
		{"trailing byte", append(emptySync(t), 0), regexp.MustCompile(`trailing`)},
		{"trailing byte after a compressed payload", append(slices.Clone(good), 0), regexp.MustCompile(`malformed`)},
		{"trailing request", append(slices.Clone(good), good...), regexp.MustCompile(`trailing|malformed`)},
		{"unsupported version", append([]byte{9}, good[1:]...), regexp.MustCompile(`version 9.*\b1\b`)},
		{"response kind", append([]byte{good[0], 2}, good[2:]...), regexp.MustCompile(`kind`)},
		{"repository twice", twice, regexp.MustCompile(`twice`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, m0 := snapshotOf(t, srvDB), scrape(t, srv.url)
			code, body, h := post(t, srv.url, goatdb.SyncContentType, tt.body)
			if code != http.StatusBadRequest {
				t.Fatalf("status %d (%q), want 400", code, body)
			}
			checkOneLine(t, h, body)
			checkRequestID(t, h)
			if !tt.want.MatchString(body) {
				t.Errorf("reason %q does not match %q", body, tt.want)
			}
			sameSnapshot(t, tt.name, before, snapshotOf(t, srvDB))
			m1 := scrape(t, srv.url)
			if d := m1.delta(m0, "goatdb_sync_bad_requests_total"); d != 1 {
				t.Errorf("goatdb_sync_bad_requests_total moved by %v, want 1", d)
			}
			if d := m1.sumDelta(m0, "goatdb_sync_commits_rejected_total"); d != 0 {
				t.Errorf("goatdb_sync_commits_rejected_total moved by %v, want 0", d)
			}
		})
	}

	// Every strict prefix of a valid request that carries commits.
	t.Run("truncated", func(t *testing.T) {
		before, m0 := snapshotOf(t, srvDB), scrape(t, srv.url)
		for n := range len(good) {
			code, body, h := post(t, srv.url, goatdb.SyncContentType, good[:n])
			if code != http.StatusBadRequest {
				t.Fatalf("prefix of %d of %d bytes: status %d (%q), want 400", n, len(good), code, body)
			}
			checkOneLine(t, h, body)
		}
		sameSnapshot(t, "truncated", before, snapshotOf(t, srvDB))
		if d := scrape(t, srv.url).delta(m0, "goatdb_sync_bad_requests_total"); d != float64(len(good)) {
			t.Errorf("goatdb_sync_bad_requests_total moved by %v for %d prefixes", d, len(good))
		}
	})

	// The valid request itself is accepted: the cases above failed for
	// what was done to it.
	if code, body, _ := post(t, srv.url, goatdb.SyncContentType, good); code != http.StatusOK {
		t.Fatalf("the valid request: status %d (%q)", code, body)
	}
	get(t, srvDB, "/data/p/x")
}

// rawPost posts to /v1/sync on a new connection to addr: with the given
// Content-Length, or (contentLength -1) with the body streamed in chunks
// of 1 MiB. It reads the response while the body is still being written,
// as the server may answer before reading all of it.
func rawPost(t testing.TB, addr string, contentLength int64, body io.Reader) (int, string, http.Header) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	head := "POST /v1/sync HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: " + goatdb.SyncContentType + "\r\n"
	if contentLength >= 0 {
		head += fmt.Sprintf("Content-Length: %d\r\n", contentLength)
	} else {
		head += "Transfer-Encoding: chunked\r\n"
	}
	go func() { // fails once the server stops reading; the response is what counts
		w := bufio.NewWriterSize(conn, 64<<10)
		w.WriteString(head + "\r\n")
		buf := make([]byte, 1<<20)
		for {
			n, err := io.ReadFull(body, buf)
			if n > 0 && contentLength < 0 {
				fmt.Fprintf(w, "%x\r\n", n)
			}
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if n > 0 && contentLength < 0 {
				w.WriteString("\r\n")
			}
			if err != nil {
				break
			}
		}
		if contentLength < 0 {
			w.WriteString("0\r\n\r\n")
		}
		w.Flush()
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		t.Fatalf("read response body: %v", err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// zeroReader is an endless stream of zero bytes.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestOversizedSyncRequest: a body over MaxMessageSize gets 413, whether
// it says so in Content-Length or streams without one, and stores
// nothing.
func TestOversizedSyncRequest(t *testing.T) {
	srvDB := dbtest.OpenDB(t, nil)
	mustPut(t, srvDB, "/data/p/existing", goatdb.Fields{"v": "server"})
	srv := serve(t, srvDB, noLimit, "")
	cli := dbtest.OpenDB(t, nil)
	mustPut(t, cli, "/data/p/x", goatdb.Fields{"v": "client"})
	mustPut(t, cli, "/data/other/y", goatdb.Fields{"v": "client"})
	good := pushRequest(t, cli, "/data/p")
	// The streaming itself works: a valid request, streamed, is stored.
	if code, msg, _ := rawPost(t, srv.addr, -1, bytes.NewReader(pushRequest(t, cli, "/data/other"))); code != http.StatusOK {
		t.Fatalf("a valid request, streamed: status %d (%q)", code, msg)
	}
	get(t, srvDB, "/data/other/y")
	before := snapshotOf(t, srvDB)

	tests := []struct {
		name          string
		contentLength int64
		body          io.Reader
	}{
		{"streamed", -1, io.MultiReader(bytes.NewReader(good), zeroReader{})}, // endless: the server must cut it off
		{"Content-Length", syncproto.MaxMessageSize + 1, bytes.NewReader(good)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, msg, h := rawPost(t, srv.addr, tt.contentLength, tt.body)
			if code != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d (%q), want 413", code, msg)
			}
			checkOneLine(t, h, msg)
			checkRequestID(t, h)
			if !strings.Contains(msg, strconv.Itoa(syncproto.MaxMessageSize)) {
				t.Errorf("413 reason %q does not name the limit", msg)
			}
		})
	}
	sameSnapshot(t, "oversized", before, snapshotOf(t, srvDB))
	if code, body, _ := post(t, srv.url, goatdb.SyncContentType, good); code != http.StatusOK {
		t.Fatalf("after the oversized requests, a valid one: status %d (%q)", code, body)
	}
}

// TestOversizedSyncRequestCounted: the bad-request counter's help says it
// counts oversized requests.
func TestOversizedSyncRequestCounted(t *testing.T) {
	srv := serve(t, dbtest.OpenDB(t, nil), noLimit, "")
	m0 := scrape(t, srv.url)
	if code, msg, _ := rawPost(t, srv.addr, syncproto.MaxMessageSize+1, strings.NewReader("x")); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d (%q), want 413", code, msg)
	}
	if d := scrape(t, srv.url).delta(m0, "goatdb_sync_bad_requests_total"); d != 1 {
		t.Errorf("goatdb_sync_bad_requests_total moved by %v for a 413, want 1", d)
	}
}

// TestSyncContentType: another media type gets 415; the sync type (with
// parameters), octet-stream and none are accepted.
func TestSyncContentType(t *testing.T) {
	srvDB := dbtest.OpenDB(t, nil)
	srv := serve(t, srvDB, noLimit, "")
	cli := dbtest.OpenDB(t, nil)
	mustPut(t, cli, "/data/p/x", goatdb.Fields{"v": "client"})
	good := pushRequest(t, cli, "/data/p")
	for _, ct := range []string{"text/plain", "application/json", "multipart/form-data; boundary=x"} {
		code, body, h := post(t, srv.url, ct, good)
		if code != http.StatusUnsupportedMediaType {
			t.Fatalf("Content-Type %q: status %d (%q), want 415", ct, code, body)
		}
		checkOneLine(t, h, body)
		checkRequestID(t, h)
		if !strings.Contains(body, goatdb.SyncContentType) {
			t.Errorf("415 reason %q does not name %s", body, goatdb.SyncContentType)
		}
		if repos, _ := srvDB.Repos(); len(repos) != 0 {
			t.Fatalf("Content-Type %q: stored %v", ct, repos)
		}
	}
	for _, ct := range []string{goatdb.SyncContentType + "; charset=binary", "application/octet-stream", ""} {
		if code, body, _ := post(t, srv.url, ct, good); code != http.StatusOK {
			t.Errorf("Content-Type %q: status %d (%q), want 200", ct, code, body)
		}
	}
}

// TestReplayedSyncRequest sends the same request with a commit twice:
// both are answered alike and the commit is stored once.
func TestReplayedSyncRequest(t *testing.T) {
	srvDB := dbtest.OpenDB(t, nil)
	srv := serve(t, srvDB, noLimit, "")
	cli := dbtest.OpenDB(t, nil)
	mustPut(t, cli, "/data/p/x", goatdb.Fields{"v": "client"})
	mustPut(t, cli, "/data/p/y", goatdb.Fields{"v": "client"})
	req := pushRequest(t, cli, "/data/p")
	want := len(commitsOf(t, cli, "/data/p"))

	var answers []*syncproto.Response
	for i := range 2 {
		code, body, h := post(t, srv.url, goatdb.SyncContentType, req)
		if code != http.StatusOK {
			t.Fatalf("request %d: status %d (%q)", i, code, body)
		}
		checkRequestID(t, h)
		resp, err := syncproto.DecodeResponse([]byte(body))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		answers = append(answers, resp)
		r, err := srvDB.Repo("/data/p")
		if err != nil {
			t.Fatal(err)
		}
		if n := len(r.IDs()); n != want {
			t.Fatalf("after request %d the server holds %d commits, want %d", i, n, want)
		}
	}
	if n, err := srvDB.Count("/data/p"); err != nil || n != 2 {
		t.Errorf("server has %d items (%v), want 2", n, err)
	}
	a, b := answers[0], answers[1]
	if len(a.Repos) != 1 || len(b.Repos) != 1 {
		t.Fatalf("answers with %d and %d sections", len(a.Repos), len(b.Repos))
	}
	x, y := a.Repos[0], b.Repos[0]
	if x.Status != syncproto.StatusOK || y.Status != syncproto.StatusOK {
		t.Fatalf("statuses %v (%s) and %v (%s)", x.Status, x.Message, y.Status, y.Message)
	}
	same := x.Path == y.Path && x.Epoch == y.Epoch && x.Seq == y.Seq && x.Count == y.Count &&
		x.Digest == y.Digest && len(x.Commits) == len(y.Commits) && len(x.Rejected) == len(y.Rejected) &&
		len(x.Missing) == len(y.Missing) && x.More == y.More
	if !same {
		t.Errorf("the replay was answered differently:\n first  %+v\n second %+v", x, y)
	}
	if x.Count != uint64(want) || len(x.Rejected) != 0 {
		t.Errorf("answer: count %d, %d rejected; want %d and 0", x.Count, len(x.Rejected), want)
	}
}

// forgedCommits returns three commits a server must refuse, by name: one
// whose bytes were changed after signing (the id they hash to is not the
// id signed), one naming a session whose key did not sign it, and one with
// a flipped signature byte.
func forgedCommits(t testing.TB) map[string][]byte {
	t.Helper()
	keyA, keyB := testKey("a"), testKey("b")
	var session commit.SessionID
	copy(session[:], keyA.Public().(ed25519.PublicKey))
	build := func(key, title string) *commit.Commit {
		c, err := commit.New(commit.Fields{Key: key, Time: time.Now().UnixMilli(), Session: session, Full: true,
			Value: item.New(map[string]item.Value{"title": item.String(title)})}, keyA)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	out := map[string][]byte{}

	enc := build("changed", "original").Encode()
	i := bytes.Index(enc, []byte("original"))
	enc[i] = 'O'
	out["changed"] = enc

	c := build("wrongkey", "signed by b")
	id := c.ID()
	out["wrongkey"] = append(slices.Clone(c.Body()), ed25519.Sign(keyB, id[:])...)

	enc = build("flipped", "flipped").Encode()
	enc[len(enc)-1] ^= 1
	out["flipped"] = enc

	for name, b := range out {
		if _, err := commit.Decode(b); err != nil {
			t.Fatalf("test setup: %s does not decode: %v", name, err)
		}
	}
	return out
}

func testKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("goatdb server test key " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

// TestForgedCommitsRejected sends commits with bad ids or signatures: the
// request succeeds, each is listed as rejected with a reason, nothing is
// stored, and the rejected counter moves.
func TestForgedCommitsRejected(t *testing.T) {
	srvDB := dbtest.OpenDB(t, nil)
	mustPut(t, srvDB, "/data/p/existing", goatdb.Fields{"v": "server"})
	srv := serve(t, srvDB, noLimit, "")
	forged := forgedCommits(t)
	names := sortedKeys(forged)
	var encs [][]byte
	wantIDs := map[commit.ID]string{}
	for _, name := range names {
		encs = append(encs, forged[name])
		c, _ := commit.Decode(forged[name])
		wantIDs[c.ID()] = name
	}
	before, m0 := snapshotOf(t, srvDB), scrape(t, srv.url)
	req := encodeRequest(t, &syncproto.Request{Session: commit.SessionID(testKey("a").Public().(ed25519.PublicKey)),
		Repos: []syncproto.RepoRequest{{Path: "/data/p", Count: uint64(len(encs)), Commits: encs}}})
	code, body, h := post(t, srv.url, goatdb.SyncContentType, req)
	if code != http.StatusOK {
		t.Fatalf("status %d (%q), want 200", code, body)
	}
	checkRequestID(t, h)
	resp, err := syncproto.DecodeResponse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Repos) != 1 || resp.Repos[0].Status != syncproto.StatusOK {
		t.Fatalf("answer %+v", resp.Repos)
	}
	got := map[commit.ID]string{}
	for _, rj := range resp.Repos[0].Rejected {
		if strings.TrimSpace(rj.Reason) == "" {
			t.Errorf("%s (%s) rejected without a reason", wantIDs[rj.ID], rj.ID.Short())
		}
		got[rj.ID] = rj.Reason
	}
	for id, name := range wantIDs {
		if _, ok := got[id]; !ok {
			t.Errorf("%s (%s) not listed as rejected; rejected: %v", name, id.Short(), resp.Repos[0].Rejected)
		}
	}
	if len(got) != len(wantIDs) {
		t.Errorf("%d rejections, want %d", len(got), len(wantIDs))
	}
	sameSnapshot(t, "forged commits", before, snapshotOf(t, srvDB))
	for _, name := range names {
		if _, err := srvDB.Get("/data/p/" + name); err == nil {
			t.Errorf("forged item %s is readable on the server", name)
		}
	}
	m1 := scrape(t, srv.url)
	if d := m1.sumDelta(m0, "goatdb_sync_commits_rejected_total"); d != float64(len(encs)) {
		t.Errorf("goatdb_sync_commits_rejected_total moved by %v, want %d", d, len(encs))
	}
	if d := m1.delta(m0, "goatdb_sync_commits_received_total"); d != float64(len(encs)) {
		t.Errorf("goatdb_sync_commits_received_total moved by %v, want %d", d, len(encs))
	}
	if d := m1.delta(m0, "goatdb_sync_bad_requests_total"); d != 0 {
		t.Errorf("goatdb_sync_bad_requests_total moved by %v, want 0", d)
	}
}

// TestRoutesAndMethods: a wrong method gets 405, an unknown route 404
// naming the routes; both one line (a JSON error under /v1 but for the
// sync protocol's routes), with a request id. (GET / is the console's
// page.)
func TestRoutesAndMethods(t *testing.T) {
	srv := serve(t, dbtest.OpenDB(t, nil), noLimit, "")
	tests := []struct {
		method, path string
		code         int
		want         []string
	}{
		{http.MethodGet, "/v1/sync", http.StatusMethodNotAllowed, []string{"GET", "/v1/sync"}},
		{http.MethodPut, "/v1/sync", http.StatusMethodNotAllowed, []string{"PUT"}},
		{http.MethodPost, "/v1/events", http.StatusMethodNotAllowed, []string{"POST"}},
		{http.MethodGet, "/v2/sync", http.StatusNotFound, []string{"/v2/sync", "POST /v1/sync", "GET /v1/events", "/healthz", "/metrics"}},
		{http.MethodGet, "/v1/nothing", http.StatusNotFound, []string{"/v1/nothing", "POST /v1/sync"}},
		{http.MethodPost, "/v1/items/data/r/k", http.StatusMethodNotAllowed, []string{"PUT", "PATCH", "DELETE"}},
		{http.MethodGet, "/nothing", http.StatusNotFound, []string{"POST /v1/sync", "/v1/openapi.json"}},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(tt.method, srv.url+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.code {
			t.Errorf("%s %s: status %d (%q), want %d", tt.method, tt.path, resp.StatusCode, b, tt.code)
			continue
		}
		if strings.HasPrefix(tt.path, "/v1/") && tt.path != "/v1/sync" && tt.path != "/v1/events" {
			// The JSON API's paths answer JSON errors.
			var e struct{ Error, Reason string }
			if err := json.Unmarshal(b, &e); err != nil || e.Error == "" || strings.Contains(e.Reason, "\n") {
				t.Errorf("%s %s: %q is not a one-line JSON error", tt.method, tt.path, b)
			}
		} else {
			checkOneLine(t, resp.Header, string(b))
		}
		checkRequestID(t, resp.Header)
		for _, w := range tt.want {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s %s: body %q does not name %q", tt.method, tt.path, b, w)
			}
		}
	}
}

// TestMethodNotAllowedHasAllow: RFC 9110 requires a 405 to carry Allow.
func TestMethodNotAllowedHasAllow(t *testing.T) {
	srv := serve(t, dbtest.OpenDB(t, nil), noLimit, "")
	resp, err := http.Get(srv.url + "/v1/sync")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != http.MethodPost {
		t.Errorf("GET /v1/sync: %d with Allow %q, want 405 with Allow POST", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// TestRequestID: every response carries X-Request-Id; a valid one from
// the client is echoed, an invalid one replaced, and fresh ones differ.
func TestRequestID(t *testing.T) {
	srv := serve(t, dbtest.OpenDB(t, nil), noLimit, "")
	do := func(method, path, id string, body io.Reader) string {
		t.Helper()
		req, err := http.NewRequestWithContext(context.Background(), method, srv.url+path, body)
		if err != nil {
			t.Fatal(err)
		}
		if id != "" {
			req.Header.Set("X-Request-Id", id)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		got := resp.Header.Get("X-Request-Id")
		if got == "" {
			t.Errorf("%s %s (%d): no X-Request-Id", method, path, resp.StatusCode)
		}
		return got
	}
	seen := map[string]bool{}
	for _, r := range []struct{ method, path string }{
		{"GET", "/healthz"}, {"GET", "/metrics"}, {"POST", "/v1/sync"}, {"GET", "/v1/sync"}, {"GET", "/nowhere"},
	} {
		id := do(r.method, r.path, "", strings.NewReader(""))
		if seen[id] {
			t.Errorf("request id %q given twice", id)
		}
		seen[id] = true
	}
	for _, id := range []string{"abc-123", "trace/1:2;x=y", strings.Repeat("z", 64)} {
		if got := do("GET", "/healthz", id, nil); got != id {
			t.Errorf("sent X-Request-Id %q, got back %q", id, got)
		}
		if got := do("POST", "/v1/sync", id, strings.NewReader("bad")); got != id {
			t.Errorf("sent X-Request-Id %q with a bad request, got back %q", id, got)
		}
	}
	for _, id := range []string{"has space", strings.Repeat("z", 65), "tab\there", "é"} {
		if got := do("GET", "/healthz", id, nil); got == id || got == "" {
			t.Errorf("sent invalid X-Request-Id %q, got back %q; want a fresh one", id, got)
		}
	}
}
