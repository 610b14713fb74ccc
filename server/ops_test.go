package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/internal/dbtest"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/server"
	"github.com/goatdb/goatdb/syncproto"
)

// metricSet maps each series of a /metrics page, as written (name and
// labels), to its value.
type metricSet map[string]float64

// scrape reads a server's /metrics.
func scrape(t testing.TB, url string) metricSet {
	t.Helper()
	m, _ := scrapeText(t, url)
	return m
}

func scrapeText(t testing.TB, url string) (metricSet, string) {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %q", resp.StatusCode, b)
	}
	m := metricSet{}
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSuffix(line, "\n")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("metrics line %q has no value", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		m[line[:i]] = v
	}
	return m, string(b)
}

// get returns a series' value; a series not written counts as 0.
func (m metricSet) get(series string) float64 { return m[series] }

// delta returns how much a series moved since old.
func (m metricSet) delta(old metricSet, series string) float64 { return m[series] - old[series] }

func syncRequests(code int) string {
	return fmt.Sprintf(`goatdb_http_requests_total{route="/v1/sync",code="%d"}`, code)
}

// emptySync is a valid sync request naming no repository.
func emptySync(t testing.TB) []byte {
	return encodeRequest(t, &syncproto.Request{})
}

// TestRateLimit: past its burst a client gets 429 with Retry-After and a
// reason; health and metrics are not limited; other clients are not
// affected.
func TestRateLimit(t *testing.T) {
	const rate, burst = 5, 5
	body := emptySync(t)
	var lastClose bool // whether the last answer closed its connection
	send := func(url, client string) (int, string, http.Header) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, url+"/v1/sync", strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", goatdb.SyncContentType)
		if client != "" {
			req.Header.Set("X-Client", client)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		lastClose = resp.Close
		return resp.StatusCode, string(b), resp.Header
	}
	// exhaust sends requests until one is refused and checks the refusal
	// came after the burst plus what refilled meanwhile.
	exhaust := func(url, client string) {
		t.Helper()
		began := time.Now()
		for ok := 0; ok < 50; ok++ {
			code, msg, h := send(url, client)
			if code == http.StatusOK {
				continue
			}
			if code != http.StatusTooManyRequests {
				t.Fatalf("request %d: status %d (%q), want 200 or 429", ok+1, code, msg)
			}
			refilled := int(math.Ceil(time.Since(began).Seconds() * rate))
			if ok < burst || ok > burst+refilled {
				t.Errorf("429 after %d requests, want after %d to %d", ok, burst, burst+refilled)
			}
			checkOneLine(t, h, msg)
			checkRequestID(t, h)
			if !strings.Contains(msg, "rate") {
				t.Errorf("429 reason %q does not mention the rate", msg)
			}
			if s, err := strconv.Atoi(h.Get("Retry-After")); err != nil || s < 1 {
				t.Errorf("429 with Retry-After %q, want a whole number of seconds ≥ 1", h.Get("Retry-After"))
			}
			if !lastClose {
				t.Error("a 429 leaves the connection open")
			}
			return
		}
		t.Fatalf("50 requests in %v and none refused", time.Since(began))
	}

	t.Run("by address", func(t *testing.T) {
		srv := serve(t, dbtest.OpenDB(t, nil), &server.Options{RateLimit: rate, RateBurst: burst}, "")
		exhaust(srv.url, "")
		for range 3 * burst {
			for _, path := range []string{"/healthz", "/metrics"} {
				resp, err := http.Get(srv.url + path)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("GET %s by a limited client: %d", path, resp.StatusCode)
				}
			}
		}
		if n := scrape(t, srv.url).get("goatdb_http_rate_limited_total"); n < 1 {
			t.Errorf("goatdb_http_rate_limited_total = %v after a 429", n)
		}
	})
	t.Run("by ClientKey", func(t *testing.T) {
		srv := serve(t, dbtest.OpenDB(t, nil), &server.Options{RateLimit: rate, RateBurst: burst,
			ClientKey: func(r *http.Request) string { return r.Header.Get("X-Client") }}, "")
		exhaust(srv.url, "alice")
		if code, msg, _ := send(srv.url, "bob"); code != http.StatusOK {
			t.Errorf("another client: status %d (%q), want 200", code, msg)
		}
		exhaust(srv.url, "carol")
	})
}

// sampleLine is a sample line of the Prometheus text exposition format:
// a metric name, optional labels, a value and an optional timestamp.
var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)` +
	`(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"(?:,[ \t]*[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*,?)?\})?` +
	` ([-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|NaN|[-+]Inf)( -?[0-9]+)?$`)

var commentLine = regexp.MustCompile(`^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$`)

// checkExposition fails unless text is valid Prometheus text format in
// which every goatdb family has HELP and TYPE before its samples (the Go
// runtime and process series have neither, which the format allows).
func checkExposition(t testing.TB, text string) {
	t.Helper()
	help, typ := map[string]bool{}, map[string]string{}
	sampled := map[string]bool{}
	if !strings.HasSuffix(text, "\n") {
		t.Error("metrics do not end with a newline")
	}
	for line := range strings.Lines(text) {
		line = strings.TrimSuffix(line, "\n")
		if m := commentLine.FindStringSubmatch(line); m != nil {
			name := m[2]
			if sampled[name] {
				t.Errorf("%s %s after its samples", m[1], name)
			}
			switch m[1] {
			case "HELP":
				if help[name] || strings.TrimSpace(m[3]) == "" {
					t.Errorf("HELP for %s twice or empty", name)
				}
				help[name] = true
			case "TYPE":
				if typ[name] != "" {
					t.Errorf("TYPE for %s twice", name)
				}
				switch m[3] {
				case "counter", "gauge", "histogram", "summary", "untyped":
				default:
					t.Errorf("TYPE %s %q", name, m[3])
				}
				typ[name] = m[3]
			}
			continue
		}
		m := sampleLine.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("line %q is neither a HELP/TYPE comment nor a sample", line)
			continue
		}
		fam := m[1]
		if typ[fam] == "" {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(fam, suf); ok && typ[base] == "histogram" {
					fam = base
				}
			}
		}
		if strings.HasPrefix(fam, "goatdb_") && (!help[fam] || typ[fam] == "") {
			t.Errorf("sample %q before (or without) HELP and TYPE for %s", line, fam)
		}
		if typ[fam] == "counter" && !strings.HasSuffix(fam, "_total") {
			t.Errorf("counter %s does not end in _total", fam)
		}
		sampled[fam] = true
	}
	for name := range typ {
		if !help[name] {
			t.Errorf("%s has TYPE but no HELP", name)
		}
	}
}

// histogramOf returns a histogram's cumulative bucket counts (in order),
// and its count, from the text of /metrics.
func histogramOf(t testing.TB, text, name string) (les []string, counts []float64, count float64) {
	t.Helper()
	bucket := regexp.MustCompile(`^` + name + `_bucket\{le="([^"]+)"\} (\S+)$`)
	for line := range strings.Lines(text) {
		line = strings.TrimSuffix(line, "\n")
		if m := bucket.FindStringSubmatch(line); m != nil {
			v, _ := strconv.ParseFloat(m[2], 64)
			les, counts = append(les, m[1]), append(counts, v)
		}
		if v, ok := strings.CutPrefix(line, name+"_count "); ok {
			count, _ = strconv.ParseFloat(v, 64)
		}
	}
	return les, counts, count
}

// TestMetrics: /metrics is valid text exposition format, and after syncs
// its counters equal what the clients saw move.
func TestMetrics(t *testing.T) {
	srvDB := dbtest.OpenDB(t, nil)
	srv := serve(t, srvDB, noLimit, "")
	m0, text := scrapeText(t, srv.url)
	checkExposition(t, text)
	for _, name := range []string{"goatdb_sync_received_bytes_total", "goatdb_sync_sent_bytes_total",
		"goatdb_sync_commits_received_total", "goatdb_sync_commits_sent_total", "goatdb_sync_duration_seconds_count"} {
		if v, ok := m0[name]; !ok || v != 0 {
			t.Errorf("fresh server: %s = %v (written: %v), want 0", name, v, ok)
		}
	}

	a, b := dbtest.OpenDB(t, nil), dbtest.OpenDB(t, nil)
	var total goatdb.SyncStats
	add := func(st goatdb.SyncStats) {
		total.Rounds += st.Rounds
		total.BytesSent += st.BytesSent
		total.BytesReceived += st.BytesReceived
		total.CommitsSent += st.CommitsSent
		total.CommitsReceived += st.CommitsReceived
	}
	for i := range 5 {
		mustPut(t, a, fmt.Sprintf("/data/m/a%d", i), goatdb.Fields{"n": float64(i)})
	}
	add(mustSync(t, a, srv.url))
	add(mustSync(t, b, srv.url, "/data/m"))
	mustPut(t, b, "/data/m/b0", goatdb.Fields{"n": 1.0})
	mustPut(t, a, "/data/n/a0", goatdb.Fields{"n": 1.0})
	add(mustSync(t, b, srv.url))
	add(mustSync(t, a, srv.url, "/data/m", "/data/n"))
	add(mustSync(t, a, srv.url)) // in sync: one round, nothing moves
	if total.CommitsSent != 7 || total.CommitsReceived < 6 {
		t.Fatalf("test setup: clients sent %d and received %d commits", total.CommitsSent, total.CommitsReceived)
	}

	// Counted once the response is written: wait for the last request.
	var m metricSet
	eventually(t, 5*time.Second, "the sync requests counted", func() bool {
		m, text = scrapeText(t, srv.url)
		return m.get(syncRequests(200)) == float64(total.Rounds) &&
			m.get("goatdb_sync_duration_seconds_count") == float64(total.Rounds)
	})
	checkExposition(t, text)
	want := map[string]float64{
		"goatdb_sync_received_bytes_total":   float64(total.BytesSent),
		"goatdb_sync_sent_bytes_total":       float64(total.BytesReceived),
		"goatdb_sync_commits_received_total": float64(total.CommitsSent),
		"goatdb_sync_commits_sent_total":     float64(total.CommitsReceived),
		"goatdb_sync_rounds_total":           float64(total.Rounds),
		"goatdb_sync_bad_requests_total":     0,
		"goatdb_http_panics_total":           0,
		"goatdb_http_rate_limited_total":     0,
		"goatdb_event_streams":               0,
		"goatdb_repositories":                2,
	}
	for name, w := range want {
		if got, ok := m[name]; !ok || got != w {
			t.Errorf("%s = %v (written: %v), want %v", name, got, ok, w)
		}
	}
	if got := m.sum("goatdb_sync_commits_rejected_total"); got != 0 {
		t.Errorf("goatdb_sync_commits_rejected_total sums to %v, want 0", got)
	}
	for series := range m {
		if strings.HasPrefix(series, "goatdb_http_requests_total{route=\"/v1/sync\"") && series != syncRequests(200) {
			t.Errorf("unexpected series %s = %v", series, m[series])
		}
	}
	if got := m.get(`goatdb_http_requests_total{route="/metrics",code="200"}`); got < 1 {
		t.Errorf("scrapes of /metrics counted %v times", got)
	}

	les, counts, count := histogramOf(t, text, "goatdb_sync_duration_seconds")
	if len(les) < 2 || les[len(les)-1] != "+Inf" {
		t.Fatalf("histogram buckets %v, want several ending with +Inf", les)
	}
	prev := math.Inf(-1)
	for i, le := range les[:len(les)-1] {
		bound, err := strconv.ParseFloat(le, 64)
		if err != nil || bound <= prev {
			t.Errorf("bucket bound %q after %v", le, prev)
		}
		prev = bound
		if counts[i+1] < counts[i] {
			t.Errorf("bucket le=%s has %v, more than the next (%v): not cumulative", le, counts[i], counts[i+1])
		}
	}
	if counts[len(counts)-1] != count || count != float64(total.Rounds) {
		t.Errorf("le=+Inf bucket %v, _count %v, sync requests %d: want all equal", counts[len(counts)-1], count, total.Rounds)
	}
	if sum := m.get("goatdb_sync_duration_seconds_sum"); !(sum > 0) {
		t.Errorf("goatdb_sync_duration_seconds_sum = %v after %d syncs", sum, total.Rounds)
	}

	// A bad request and a 404 are counted by route and code.
	post(t, srv.url, goatdb.SyncContentType, []byte("bad"))
	resp, err := http.Get(srv.url + "/nowhere")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	eventually(t, 5*time.Second, "the 400 and the 404 counted", func() bool {
		m1 := scrape(t, srv.url)
		return m1.delta(m, syncRequests(400)) == 1 && m1.delta(m, `goatdb_http_requests_total{route="other",code="404"}`) == 1 &&
			m1.delta(m, "goatdb_sync_bad_requests_total") == 1
	})
}

// TestHealthz: 200 "ok" while serving; 503 "shutting_down" while
// shutting down (asked of the handler itself, since the listener is
// closed by then).
func TestHealthz(t *testing.T) {
	srv := serve(t, dbtest.OpenDB(t, nil), nil, "")
	resp, err := http.Get(srv.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if h := decodeHealth(t, resp.Header, b); resp.StatusCode != http.StatusOK || h.Status != "ok" {
		t.Fatalf("GET /healthz: %d %q, want 200 ok", resp.StatusCode, b)
	}
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if h := decodeHealth(t, rec.Header(), rec.Body.Bytes()); rec.Code != http.StatusServiceUnavailable || h.Status != "shutting_down" {
		t.Fatalf("GET /healthz after Serve returned: %d %q, want 503 shutting_down", rec.Code, rec.Body)
	}
}

// gatePolicy is a Policy whose AcceptCommit blocks until it is opened.
type gatePolicy struct {
	entered chan struct{} // closed when a commit first waits
	open    chan struct{}
	once    sync.Once
}

func (g *gatePolicy) AcceptCommit(context.Context, string, *commit.Commit) error {
	g.once.Do(func() { close(g.entered) })
	<-g.open
	return nil
}

func (g *gatePolicy) AdmitCommit(context.Context, string, *commit.Commit, item.Item, item.Item) error {
	return nil
}

func (g *gatePolicy) View(context.Context, string, syncproto.Repo) (syncproto.View, error) {
	return nil, nil
}

// TestShutdownWaitsForSyncInFlight: while Serve shuts down, /healthz and
// /readyz say 503, and a sync request in flight is completed and stored
// before Serve returns.
func TestShutdownWaitsForSyncInFlight(t *testing.T) {
	srvDB := dbtest.OpenDB(t, nil)
	g := &gatePolicy{entered: make(chan struct{}), open: make(chan struct{})}
	srv := serve(t, srvDB, &server.Options{Policy: g}, "")
	openGate := sync.OnceFunc(func() { close(g.open) })
	t.Cleanup(openGate) // before the server stops, if the test fails early
	cli := dbtest.OpenDB(t, nil)
	mustPut(t, cli, "/data/p/x", goatdb.Fields{"v": "in flight"})
	req := pushRequest(t, cli, "/data/p")

	answered := make(chan int, 1)
	go func() {
		resp, err := http.Post(srv.url+"/v1/sync", goatdb.SyncContentType, strings.NewReader(string(req)))
		if err != nil {
			answered <- -1
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the sync request never reached the policy")
	}
	stopped := make(chan error, 1)
	go func() { stopped <- srv.stop() }()
	eventually(t, 5*time.Second, "/healthz says 503 while shutting down", func() bool {
		rec := httptest.NewRecorder()
		srv.srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		return rec.Code == http.StatusServiceUnavailable
	})
	if code, r := ready(t, srv.srv.Handler()); code != http.StatusServiceUnavailable || r.Status != "shutting_down" {
		t.Errorf("/readyz while draining = %d %+v, want 503 shutting_down", code, r)
	}
	select {
	case err := <-stopped:
		t.Fatalf("Serve returned (%v) with a request in flight", err)
	default:
	}
	openGate()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the request in flight ended")
	}
	if code := <-answered; code != http.StatusOK {
		t.Fatalf("the request in flight got %d, want 200", code)
	}
	get(t, srvDB, "/data/p/x")
}

// copyDataDir copies a data directory but its lock file, as a crash would
// leave it.
func copyDataDir(t testing.TB, from string) string {
	t.Helper()
	to := t.TempDir()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		if d.Name() == "LOCK" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return to
}

// TestShutdownFlushes: under Async durability with a long flush interval,
// the commits a server acknowledged are in its log files once Serve
// returns, before the database is closed.
func TestShutdownFlushes(t *testing.T) {
	dir := t.TempDir()
	srvDB := dbtest.OpenDBIn(t, dir, &goatdb.Options{Durability: goatdb.Async, FlushInterval: time.Hour})
	srv := serve(t, srvDB, nil, "")
	cli := dbtest.OpenDB(t, nil)
	for i := range 10 {
		mustPut(t, cli, fmt.Sprintf("/data/f/x%d", i), goatdb.Fields{"n": float64(i)})
	}
	mustSync(t, cli, srv.url)

	// Before the shutdown the log may hold only what was flushed so far.
	early := dbtest.OpenDBIn(t, copyDataDir(t, dir), nil)
	if n, err := early.Count("/data/f"); err == nil && n == 10 {
		t.Logf("the log already held every commit before the shutdown; this test shows little")
	}

	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
	after := dbtest.OpenDBIn(t, copyDataDir(t, dir), nil)
	for i := range 10 {
		p := fmt.Sprintf("/data/f/x%d", i)
		it, err := after.Get(p)
		if err != nil {
			t.Fatalf("%s is not in the log after Serve returned: %v", p, err)
		}
		if it.Get("n") != float64(i) {
			t.Errorf("%s = %v", p, it.Fields())
		}
	}
}

// panicky is a Policy whose AcceptCommit panics.
type panicky struct{}

func (panicky) AcceptCommit(context.Context, string, *commit.Commit) error {
	panic("policy exploded")
}

func (panicky) AdmitCommit(context.Context, string, *commit.Commit, item.Item, item.Item) error {
	return nil
}

func (panicky) View(context.Context, string, syncproto.Repo) (syncproto.View, error) { return nil, nil }

// TestPanicRecovered: a panic while handling a sync request is a 500
// naming the request id, is counted, and the server goes on serving.
func TestPanicRecovered(t *testing.T) {
	srvDB := dbtest.OpenDB(t, nil)
	srv := serve(t, srvDB, &server.Options{Policy: panicky{}}, "")
	cli := dbtest.OpenDB(t, nil)
	mustPut(t, cli, "/data/p/x", goatdb.Fields{"v": 1.0})
	for i, id := range []string{"panic-request-1", ""} {
		req, err := http.NewRequest(http.MethodPost, srv.url+"/v1/sync", strings.NewReader(string(pushRequest(t, cli, "/data/p"))))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", goatdb.SyncContentType)
		if id != "" {
			req.Header.Set("X-Request-Id", id)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("request %d: status %d (%q), want 500", i, resp.StatusCode, b)
		}
		checkOneLine(t, resp.Header, string(b))
		got := resp.Header.Get("X-Request-Id")
		if id != "" && got != id {
			t.Errorf("request id %q echoed as %q", id, got)
		}
		if got == "" || !strings.Contains(string(b), got) {
			t.Errorf("500 body %q does not name the request id %q", b, got)
		}
		if n := scrape(t, srv.url).get("goatdb_http_panics_total"); n != float64(i+1) {
			t.Errorf("goatdb_http_panics_total = %v after %d panics", n, i+1)
		}
	}
	// The server goes on: a sync that brings no commits does not reach
	// the policy.
	code, body, _ := post(t, srv.url, goatdb.SyncContentType, emptySync(t))
	if code != http.StatusOK {
		t.Fatalf("after the panics: status %d (%q)", code, body)
	}
	if _, err := srvDB.Get("/data/p/x"); err == nil {
		t.Error("the commit whose acceptance panicked was stored")
	}
}

// TestPanicCountedAsRequest: a request that panicked is still counted in
// goatdb_http_requests_total, as a 500.
func TestPanicCountedAsRequest(t *testing.T) {
	srv := serve(t, dbtest.OpenDB(t, nil), &server.Options{Policy: panicky{}}, "")
	cli := dbtest.OpenDB(t, nil)
	mustPut(t, cli, "/data/p/x", goatdb.Fields{"v": 1.0})
	if code, body, _ := post(t, srv.url, goatdb.SyncContentType, pushRequest(t, cli, "/data/p")); code != http.StatusInternalServerError {
		t.Fatalf("status %d (%q), want 500", code, body)
	}
	eventually(t, 5*time.Second, "the 500 counted", func() bool {
		return scrape(t, srv.url).get(syncRequests(500)) == 1
	})
}

// refuseSession is a Policy under which one session's commits are
// refused.
type refuseSession struct{ session commit.SessionID }

func (p refuseSession) AcceptCommit(_ context.Context, path string, c *commit.Commit) error {
	if c.Session() == p.session {
		return errors.New("this session is read-only on " + path)
	}
	return nil
}

func (refuseSession) AdmitCommit(context.Context, string, *commit.Commit, item.Item, item.Item) error {
	return nil
}

func (refuseSession) View(context.Context, string, syncproto.Repo) (syncproto.View, error) {
	return nil, nil
}

// TestPolicyRefusesSession: a client whose commits the policy refuses
// gets ErrRejected with each commit and the policy's reason; nothing of
// it is stored, and another client is unaffected.
func TestPolicyRefusesSession(t *testing.T) {
	srvDB := dbtest.OpenDB(t, nil)
	ro, rw := dbtest.OpenDB(t, nil), dbtest.OpenDB(t, nil)
	srv := serve(t, srvDB, &server.Options{Policy: refuseSession{ro.Session()}}, "")
	m0 := scrape(t, srv.url)

	mustPut(t, ro, "/data/p/x", goatdb.Fields{"v": 1.0})
	mustPut(t, ro, "/data/p/y", goatdb.Fields{"v": 2.0})
	mine := idsOf(t, ro, "/data/p")
	st, err := ro.Sync(context.Background(), srv.url, "/data/p")
	if !errors.Is(err, goatdb.ErrRejected) {
		t.Fatalf("sync of a refused session: %v (stats %+v), want ErrRejected", err, st)
	}
	if len(st.Rejected) != len(mine) {
		t.Errorf("%d rejections, want %d: %v", len(st.Rejected), len(mine), st.Rejected)
	}
	for _, rj := range st.Rejected {
		if !mine[rj.ID] || rj.Path != "/data/p" || !strings.Contains(rj.Reason, "this session is read-only on /data/p") {
			t.Errorf("rejection %+v, want one of the client's commits with the policy's reason", rj)
		}
	}
	for _, p := range []string{"/data/p/x", "/data/p/y"} {
		if _, err := srvDB.Get(p); !errors.Is(err, goatdb.ErrNotFound) {
			t.Errorf("refused %s on the server: %v", p, err)
		}
	}
	if n := len(idsOf(t, srvDB, "/data/p")); n != 0 {
		t.Errorf("the server stored %d refused commits", n)
	}
	if d := scrape(t, srv.url).sumDelta(m0, "goatdb_sync_commits_rejected_total"); d != float64(len(mine)) {
		t.Errorf("goatdb_sync_commits_rejected_total moved by %v, want %d", d, len(mine))
	}

	// Another session writes to the same repository.
	mustPut(t, rw, "/data/p/z", goatdb.Fields{"v": "from rw"})
	if st := mustSync(t, rw, srv.url); len(st.Rejected) != 0 {
		t.Errorf("the other client was refused: %v", st.Rejected)
	}
	get(t, srvDB, "/data/p/z")
}

// TestPolicyRefusedSessionConverges: a refused session that holds more
// commits of its own than the server's syncs to completion, receives what
// it may read, and has only its own commits refused.
func TestPolicyRefusedSessionConverges(t *testing.T) {
	srvDB := dbtest.OpenDB(t, nil)
	ro, rw := dbtest.OpenDB(t, nil), dbtest.OpenDB(t, nil)
	srv := serve(t, srvDB, &server.Options{Policy: refuseSession{ro.Session()}}, "")
	mustPut(t, rw, "/data/p/shared", goatdb.Fields{"v": "from rw"})
	mustSync(t, rw, srv.url)
	mustPut(t, ro, "/data/p/x", goatdb.Fields{"v": 1.0})
	mustPut(t, ro, "/data/p/y", goatdb.Fields{"v": 2.0})
	mine := idsOf(t, ro, "/data/p")
	st, err := ro.Sync(context.Background(), srv.url, "/data/p")
	if !errors.Is(err, goatdb.ErrRejected) {
		t.Errorf("sync: %v, want ErrRejected only", err)
	}
	for _, rj := range st.Rejected {
		if !mine[rj.ID] {
			t.Errorf("the server refused %s, which is not the client's but its own", rj.ID.Short())
		}
	}
	if get(t, ro, "/data/p/shared")["v"] != "from rw" {
		t.Error("the refused client did not receive what it may read")
	}
}

// idsOf returns the commit ids of a repository.
func idsOf(t testing.TB, db *goatdb.DB, path string) map[commit.ID]bool {
	t.Helper()
	r, err := db.Repo(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[commit.ID]bool{}
	for _, id := range r.IDs() {
		out[id] = true
	}
	return out
}
