package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/server"
	"github.com/goatdb/goatdb/syncproto"
	"github.com/goatdb/goatdb/vfs"
)

// healthReport is /healthz's JSON answer.
type healthReport struct {
	Status  string `json:"status"`
	Problem string `json:"problem"`
	Repos   []struct {
		Repo        string `json:"repo"`
		Status      string `json:"status"`
		Problem     string `json:"problem"`
		Quarantined int    `json:"quarantined"`
	} `json:"repos"`
	Failures struct {
		LastMinute    int `json:"last_minute"`
		Last15Minutes int `json:"last_15_minutes"`
		Total         int `json:"total"`
		Last          *struct {
			Time      string `json:"time"`
			Repo      string `json:"repo"`
			Problem   string `json:"problem"`
			RequestID string `json:"request_id"`
		} `json:"last"`
	} `json:"storage_failures"`
}

// decodeHealth decodes a /healthz answer, which must be JSON.
func decodeHealth(t testing.TB, h http.Header, body []byte) healthReport {
	t.Helper()
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("/healthz Content-Type %q, want application/json (body %q)", ct, body)
	}
	var out healthReport
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("/healthz body %q: %v", body, err)
	}
	return out
}

// readyReport is /readyz's JSON answer.
type readyReport struct {
	Ready  bool   `json:"ready"`
	Status string `json:"status"`
	Reason string `json:"reason"`
}

// ask answers GET path from h, in process.
func ask(h http.Handler, path string) (int, http.Header, string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Header(), rec.Body.String()
}

// ready asks h's /readyz.
func ready(t testing.TB, h http.Handler) (int, readyReport) {
	t.Helper()
	code, hdr, body := ask(h, "/readyz")
	if ct := hdr.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("/readyz Content-Type %q, want application/json (body %q)", ct, body)
	}
	var out readyReport
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("/readyz body %q: %v", body, err)
	}
	if out.Ready != (code == http.StatusOK) || (!out.Ready && out.Reason == "") {
		t.Errorf("/readyz = %d %q: ready must match 200, and a 503 give a reason", code, body)
	}
	return code, out
}

// checkLive fails unless h's /livez answers 200 "ok".
func checkLive(t testing.TB, h http.Handler) {
	t.Helper()
	if code, _, body := ask(h, "/livez"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/livez = %d %q, want 200 ok", code, body)
	}
}

// logRecorder is a slog.Handler that keeps every record.
type logRecorder struct {
	mu      sync.Mutex // guards records
	records []map[string]string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	m := map[string]string{"level": r.Level.String(), "msg": r.Message}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.String()
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, m)
	return nil
}

// find returns the first record at level with attribute key = value.
func (l *logRecorder) find(level, key, value string) map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.records {
		if m["level"] == level && m[key] == value {
			return m
		}
	}
	return nil
}

// failWrites makes every write to a file whose name ends in suffix fail
// as on a full disk; "" lets them through again.
func failWrites(mem *vfs.MemFS, suffix string) {
	if suffix == "" {
		mem.SetHook(nil)
		return
	}
	mem.SetHook(func(op, name string) error {
		if op == "write" && strings.HasSuffix(name, suffix) {
			return syscall.ENOSPC
		}
		return nil
	})
}

// postWithID posts a sync request with a request id.
func postWithID(t testing.TB, url string, body []byte, id string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/v1/sync", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", goatdb.SyncContentType)
	req.Header.Set("X-Request-Id", id)
	resp, err := http.DefaultClient.Do(req)
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

// TestSyncStorageFailureIs503: a sync request whose commits cannot be
// written (a full disk) is answered 503 with Retry-After, its request id
// and no server path, and no sync response: nothing is acknowledged, the
// client keeps its commits and retries. The full error is in the log
// with the request id; /healthz says degraded (503) while writes fail,
// and ok once they work again, while still counting the failures.
func TestSyncStorageFailureIs503(t *testing.T) {
	const dir = "/srv/goat-secret-data-dir"
	mem := vfs.NewMem()
	db := dbtest.OpenDBIn(t, dir, &goatdb.Options{FS: mem})
	mustPut(t, db, "/data/t/a", goatdb.Fields{"n": 1})
	logs := &logRecorder{}
	srv := serve(t, db, &server.Options{Logger: slog.New(logs), RateLimit: -1}, "")
	cli := dbtest.OpenDB(t, nil)
	mustSync(t, cli, srv.url, "/data/t")
	mustPut(t, cli, "/data/t/b", goatdb.Fields{"n": 2})

	failWrites(mem, "t.log")
	code, body, h := postWithID(t, srv.url, pushRequest(t, cli, "/data/t"), "storage-req-1")
	if code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Fatalf("sync while writes fail: %d %q (Retry-After %q), want 503 with Retry-After", code, body, h.Get("Retry-After"))
	}
	checkOneLine(t, h, body)
	if h.Get("X-Request-Id") != "storage-req-1" || !strings.Contains(body, "request id storage-req-1") {
		t.Errorf("503 %q (X-Request-Id %q) does not cite the request id", body, h.Get("X-Request-Id"))
	}
	if strings.Contains(body, dir) || strings.Contains(body, ".log") {
		t.Errorf("503 %q names a server file", body)
	}
	if _, err := db.Get("/data/t/b"); err == nil {
		t.Error("the server reads the commit it failed to store")
	}
	if rec := logs.find("ERROR", "request_id", "storage-req-1"); rec == nil || !strings.Contains(rec["err"], dir) {
		t.Errorf("no Error log with the request id and the full error: %v", rec)
	}

	// The client's own sync fails, as retryable, and keeps its commit.
	_, err := cli.Sync(context.Background(), srv.url, "/data/t")
	var se *goatdb.ServerError
	if !errors.As(err, &se) || se.Status != http.StatusServiceUnavailable || !se.Temporary() || se.RetryAfter <= 0 {
		t.Fatalf("client sync while writes fail: %v, want a temporary 503 ServerError with Retry-After", err)
	}
	if strings.Contains(err.Error(), dir) {
		t.Errorf("the client's error %q names a server file", err)
	}

	code, hr, raw := health(t, srv.url)
	if code != http.StatusServiceUnavailable || hr.Status != "degraded" || len(hr.Repos) != 1 || hr.Repos[0].Repo != "/data/t" {
		t.Errorf("/healthz while writes fail = %d %q, want 503 degraded naming /data/t", code, raw)
	}
	if f := hr.Failures; f.LastMinute != 2 || f.Last15Minutes != 2 || f.Total != 2 || f.Last == nil ||
		f.Last.Repo != "/data/t" || !strings.HasPrefix(f.Last.Problem, "writes are failing") {
		t.Errorf("/healthz storage_failures = %+v, want the 2 failures, the last writing /data/t", f)
	}
	if strings.Contains(raw, dir) {
		t.Errorf("/healthz %q names a server path", raw)
	}

	failWrites(mem, "")
	mustSync(t, cli, srv.url, "/data/t")
	if got := get(t, db, "/data/t/b")["n"]; got != int64(2) && got != float64(2) {
		t.Errorf("after the disk recovered the server has n = %v", got)
	}
	code, hr, raw = health(t, srv.url)
	if code != http.StatusOK || hr.Status != "ok" || hr.Failures.LastMinute != 2 || hr.Failures.Last == nil {
		t.Errorf("/healthz once writes work = %d %q, want 200 ok still counting the 2 recent failures", code, raw)
	}
	if n := scrape(t, srv.url).get("goatdb_storage_errors_total"); n != 2 {
		t.Errorf("goatdb_storage_errors_total = %v, want the 2 failures", n)
	}
}

// TestUnopenableRepoSection: a repository that cannot be opened fails only
// its own section of a sync, with a message that cites the request id and
// names no server path; the request's other repositories sync, and
// /healthz counts the failure.
func TestUnopenableRepoSection(t *testing.T) {
	dir := t.TempDir()
	db := dbtest.OpenDBIn(t, dir, nil)
	mustPut(t, db, "/data/good/a", goatdb.Fields{"n": 1})
	db.Close()
	if err := os.WriteFile(filepath.Join(dir, "data", "bad.log"), []byte("this is not a goatdb log at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	db = dbtest.OpenDBUnchecked(t, dir, nil)
	logs := &logRecorder{}
	srv := serve(t, db, &server.Options{Logger: slog.New(logs), RateLimit: -1}, "")

	req := encodeRequest(t, &syncproto.Request{Repos: []syncproto.RepoRequest{{Path: "/data/bad"}, {Path: "/data/good"}}})
	code, body, _ := postWithID(t, srv.url, req, "open-req-1")
	if code != http.StatusOK {
		t.Fatalf("sync: %d %q, want 200 (the failure is the section's)", code, body)
	}
	resp, err := syncproto.DecodeResponse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	bad, good := resp.Repos[0], resp.Repos[1]
	if bad.Status != syncproto.StatusError || !strings.Contains(bad.Message, "request id open-req-1") ||
		strings.Contains(bad.Message, dir) || strings.Contains(bad.Message, ".log") {
		t.Errorf("/data/bad: %v %q, want an error citing the request id and no path", bad.Status, bad.Message)
	}
	if good.Status != syncproto.StatusOK || good.Count != 1 {
		t.Errorf("/data/good: %v count %d, want ok with 1 commit", good.Status, good.Count)
	}
	if rec := logs.find("ERROR", "request_id", "open-req-1"); rec == nil || rec["path"] != "/data/bad" {
		t.Errorf("no Error log of /data/bad with the request id: %v", rec)
	}

	client := dbtest.OpenDB(t, nil)
	_, err = client.Sync(context.Background(), srv.url, "/data/good", "/data/bad")
	var re *syncproto.RepoError
	if !errors.As(err, &re) || re.Path != "/data/bad" || !errors.Is(err, syncproto.ErrRemote) || strings.Contains(err.Error(), dir) {
		t.Errorf("client sync: %v, want /data/bad failing remotely without a server path", err)
	}
	if got := get(t, client, "/data/good/a")["n"]; got != int64(1) && got != float64(1) {
		t.Errorf("client got /data/good/a n = %v", got)
	}
	_, hr, raw := health(t, srv.url)
	if f := hr.Failures; f.LastMinute < 2 || f.Last == nil || f.Last.Repo != "/data/bad" || strings.Contains(raw, dir) {
		t.Errorf("/healthz = %q, want the failures of /data/bad counted, without paths", raw)
	}
}

// TestReadyAndLive: /livez is 200 whenever the server answers; /readyz is
// 503 before Serve, 200 while serving, 503 while writes fail, 200 again
// once they work, and 503 once Serve shuts down. The operator's handler
// answers the same.
func TestReadyAndLive(t *testing.T) {
	mem := vfs.NewMem()
	db := dbtest.OpenDBIn(t, "/db", &goatdb.Options{FS: mem})
	mustPut(t, db, "/data/t/a", goatdb.Fields{"n": 1})
	srv, err := server.New(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	pub, ops := srv.Handler(), srv.OpsHandler()
	for _, h := range []http.Handler{pub, ops} {
		if code, r := ready(t, h); code != http.StatusServiceUnavailable || r.Status != "starting" {
			t.Errorf("/readyz before Serve = %d %+v, want 503 starting", code, r)
		}
		checkLive(t, h)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz while serving: %d, want 200", resp.StatusCode)
	}
	for _, h := range []http.Handler{pub, ops} {
		if code, r := ready(t, h); code != http.StatusOK || r.Status != "ok" {
			t.Errorf("/readyz while serving = %d %+v, want 200 ok", code, r)
		}
	}

	failWrites(mem, "t.log")
	if _, err := db.Put("/data/t/b", goatdb.Fields{"n": 2}); err == nil {
		t.Fatal("a write on a full disk succeeded")
	}
	for _, h := range []http.Handler{pub, ops} {
		if code, r := ready(t, h); code != http.StatusServiceUnavailable || r.Status != "degraded" {
			t.Errorf("/readyz while writes fail = %d %+v, want 503 degraded", code, r)
		}
		checkLive(t, h)
	}
	failWrites(mem, "")
	mustPut(t, db, "/data/t/b", goatdb.Fields{"n": 2})
	if code, r := ready(t, ops); code != http.StatusOK {
		t.Errorf("/readyz once writes work = %d %+v, want 200", code, r)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, h := range []http.Handler{pub, ops} {
		if code, r := ready(t, h); code != http.StatusServiceUnavailable || r.Status != "shutting_down" {
			t.Errorf("/readyz after Serve = %d %+v, want 503 shutting_down", code, r)
		}
		checkLive(t, h)
	}
}

// TestOpsHandlerWhilePublicSaturated: with the public listener at its
// connection cap, the operator's handler, on its own listener, still
// answers /healthz, /livez, /readyz and /metrics.
func TestOpsHandlerWhilePublicSaturated(t *testing.T) {
	srv := serve(t, dbtest.OpenDB(t, nil), &server.Options{MaxConnections: 1, RateLimit: -1}, "")
	ops := httptest.NewServer(srv.srv.OpsHandler())
	defer ops.Close()
	idle, err := net.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	quick := &http.Client{Timeout: 300 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := quick.Get(srv.url + "/livez"); err == nil {
		resp.Body.Close()
		t.Fatalf("the public listener served a second connection (%d)", resp.StatusCode)
	}
	for _, path := range []string{"/healthz", "/livez", "/readyz", "/metrics"} {
		resp, err := http.Get(ops.URL + path)
		if err != nil {
			t.Fatalf("ops %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("ops %s: %d, want 200", path, resp.StatusCode)
		}
	}
	if code, _, _ := ask(srv.srv.OpsHandler(), "/v1/sync"); code != http.StatusNotFound {
		t.Errorf("ops /v1/sync: %d, want 404", code)
	}
}

// TestPublicHealthNamesNoRepos: with authentication, the public /healthz
// gives the state without naming repositories (a client may not know of
// them); the operator's handler names them.
func TestPublicHealthNamesNoRepos(t *testing.T) {
	id, _, err := server.NewIdentity("test-deployment")
	if err != nil {
		t.Fatal(err)
	}
	mem := vfs.NewMem()
	db := dbtest.OpenDBIn(t, "/db", &goatdb.Options{FS: mem})
	mustPut(t, db, "/data/secret-project/a", goatdb.Fields{"n": 1})
	srv := serve(t, db, &server.Options{RateLimit: -1, Auth: &server.AuthOptions{Identity: id, Rules: authz.DefaultRules()}}, "")
	failWrites(mem, "secret-project.log")
	if _, err := db.Put("/data/secret-project/b", goatdb.Fields{"n": 2}); err == nil {
		t.Fatal("a write on a full disk succeeded")
	}
	code, h, raw := health(t, srv.url)
	if code != http.StatusServiceUnavailable || h.Status != "degraded" || strings.Contains(raw, "secret-project") || strings.Contains(raw, `"repos"`) {
		t.Errorf("public /healthz = %d %q, want 503 degraded naming no repository", code, raw)
	}
	code, hdr, body := ask(srv.srv.OpsHandler(), "/healthz")
	h = decodeHealth(t, hdr, []byte(body))
	if code != http.StatusServiceUnavailable || len(h.Repos) != 1 || h.Repos[0].Repo != "/data/secret-project" {
		t.Errorf("ops /healthz = %d %q, want 503 naming /data/secret-project", code, body)
	}
	failWrites(mem, "")
}
