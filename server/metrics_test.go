package server_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
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

// sum returns the total of every series of a family (labelled or not).
func (m metricSet) sum(family string) float64 {
	var n float64
	for series, v := range m {
		if series == family || strings.HasPrefix(series, family+"{") {
			n += v
		}
	}
	return n
}

// sumDelta is how much a family's total moved since old.
func (m metricSet) sumDelta(old metricSet, family string) float64 {
	return m.sum(family) - old.sum(family)
}

// reasons are the reason label values of goatdb_sync_commits_rejected_total.
var reasons = []string{"malformed", "signature", "future", "parents", "schema", "author", "forbidden", "other"}

// limits are the limits goatdb_limit_hits_total shows from the start.
var limits = []string{"rate", "ip_rate", "push_bytes", "push_commits", "repos_created", "registrations",
	"event_streams", "memory_budget", "slow_body", "body_size", "connections", "nonces"}

func rejectedFor(reason string) string {
	return `goatdb_sync_commits_rejected_total{reason="` + reason + `"}`
}

func limitHits(limit string) string { return `goatdb_limit_hits_total{limit="` + limit + `"}` }

// TestMetricsSeries: a fresh server writes every series at 0 (each
// rejection reason and each limit included), the Go runtime and process
// series, and HELP and TYPE for each goatdb family; two servers in one
// process keep separate series.
func TestMetricsSeries(t *testing.T) {
	srv := serve(t, dbtest.OpenDB(t, nil), noLimit, "")
	other := serve(t, dbtest.OpenDB(t, nil), noLimit, "")
	m, text := scrapeText(t, srv.url)
	checkExposition(t, text)
	zero := []string{"goatdb_sync_rounds_total", "goatdb_sync_received_bytes_total", "goatdb_sync_sent_bytes_total",
		"goatdb_sync_commits_received_total", "goatdb_sync_commits_sent_total", "goatdb_sync_bad_requests_total",
		"goatdb_http_rate_limited_total", "goatdb_http_unauthorized_total", "goatdb_http_panics_total",
		"goatdb_http_slow_bodies_total", "goatdb_memory_budget_refused_total", "goatdb_memory_budget_in_use_bytes",
		"goatdb_event_streams", "goatdb_repositories", "goatdb_repositories_open",
		"goatdb_storage_quarantined_ranges", "goatdb_storage_unavailable_repositories",
		"goatdb_storage_failing_repositories", "goatdb_sync_duration_seconds_count", "goatdb_sync_duration_seconds_sum"}
	for _, r := range reasons {
		zero = append(zero, rejectedFor(r))
	}
	for _, l := range limits {
		zero = append(zero, limitHits(l))
	}
	for _, name := range zero {
		if v, ok := m[name]; !ok || v != 0 {
			t.Errorf("fresh server: %s = %v (written: %v), want 0", name, v, ok)
		}
	}
	if _, ok := m["goatdb_sync_commits_rejected_total"]; ok {
		t.Error("goatdb_sync_commits_rejected_total is written without a reason")
	}
	for series := range m {
		if strings.HasPrefix(series, "goatdb_peer_") {
			t.Errorf("%s written by a server without peers", series)
		}
	}
	runtimeSeries := []string{"go_goroutines", "go_memstats_heap_inuse_bytes", "go_gc_duration_seconds_count"}
	if runtime.GOOS == "linux" {
		runtimeSeries = append(runtimeSeries, "process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "process_max_fds")
	}
	for _, name := range runtimeSeries {
		if v, ok := m[name]; !ok || v < 0 {
			t.Errorf("%s = %v (written: %v)", name, v, ok)
		}
	}

	if got := m.get("goatdb_http_connections"); got != 1 {
		t.Errorf("goatdb_http_connections = %v while scraping, want 1", got)
	}

	cli := dbtest.OpenDB(t, nil)
	mustPut(t, cli, "/data/a/x", goatdb.Fields{"n": 1.0})
	rounds := mustSync(t, cli, srv.url).Rounds
	eventually(t, 5*time.Second, "the sync requests counted", func() bool {
		return scrape(t, srv.url).get("goatdb_sync_rounds_total") == float64(rounds)
	})
	if got := scrape(t, other.url).get("goatdb_sync_rounds_total"); got != 0 {
		t.Errorf("another server's goatdb_sync_rounds_total = %v, want 0", got)
	}
}

// TestMetricsSync: after syncs, the rounds, the repositories open and the
// duration histogram (with its fixed buckets) say what happened.
func TestMetricsSync(t *testing.T) {
	srv := serve(t, dbtest.OpenDB(t, nil), noLimit, "")
	cli := dbtest.OpenDB(t, nil)
	mustPut(t, cli, "/data/a/x", goatdb.Fields{"n": 1.0})
	mustPut(t, cli, "/data/b/x", goatdb.Fields{"n": 2.0})
	rounds := mustSync(t, cli, srv.url).Rounds
	rounds += mustSync(t, cli, srv.url).Rounds
	var m metricSet
	var text string
	eventually(t, 5*time.Second, "the sync requests counted", func() bool {
		m, text = scrapeText(t, srv.url)
		return m.get(syncRequests(200)) == float64(rounds)
	})
	checkExposition(t, text)
	for series, want := range map[string]float64{
		"goatdb_sync_rounds_total":           float64(rounds),
		"goatdb_sync_duration_seconds_count": float64(rounds),
		"goatdb_repositories_open":           2,
		"goatdb_repositories":                2,
		"goatdb_sync_commits_received_total": 2,
	} {
		if got := m.get(series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	les, counts, count := histogramOf(t, text, "goatdb_sync_duration_seconds")
	wantLes := []string{"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"}
	if !slices.Equal(les, wantLes) {
		t.Errorf("histogram buckets %v, want %v", les, wantLes)
	}
	if len(counts) == 0 || counts[len(counts)-1] != count || count != float64(rounds) {
		t.Errorf("histogram counts %v, count %v, want %d in +Inf", counts, count, rounds)
	}
	if !strings.Contains(text, "# TYPE goatdb_sync_duration_seconds histogram\n") {
		t.Error("goatdb_sync_duration_seconds is not typed a histogram")
	}
}

// classPolicy refuses, at acceptance, commits of items whose key starts
// with "deny-accept", and, at admission, those starting with
// "deny-admit".
type classPolicy struct{}

func (classPolicy) AcceptCommit(_ context.Context, _ string, c *commit.Commit) error {
	if strings.HasPrefix(c.Key(), "deny-accept") {
		return errors.New("this test refuses the item")
	}
	return nil
}

func (classPolicy) AdmitCommit(_ context.Context, _ string, c *commit.Commit, _, _ item.Item) error {
	if strings.HasPrefix(c.Key(), "deny-admit") {
		return errors.New("this test forbids the item")
	}
	return nil
}

func (classPolicy) View(context.Context, string, syncproto.Repo) (syncproto.View, error) {
	return nil, nil
}

// TestMetricsRejections: commits refused for each reason count under
// that reason of goatdb_sync_commits_rejected_total, as made by the code
// that refuses them (commit, repo, syncproto, the policy).
func TestMetricsRejections(t *testing.T) {
	srvDB := dbtest.OpenDB(t, &goatdb.Options{Schemas: registry(t, item.TypeString)})
	srv := serve(t, srvDB, &server.Options{RateLimit: -1, Policy: classPolicy{}}, "")
	key := testKey("a")
	var session commit.SessionID
	copy(session[:], key.Public().(ed25519.PublicKey))
	now := time.Now()
	build := func(f commit.Fields) []byte {
		t.Helper()
		f.Repo, f.Session, f.Full = "/data/p", session, true
		if f.Time == 0 {
			f.Time = now.UnixMilli()
		}
		if f.Schema.NS == "" {
			f.Value = item.New(map[string]item.Value{"title": item.String(f.Key)})
		}
		c, err := commit.New(f, key)
		if err != nil {
			t.Fatal(err)
		}
		return c.Encode()
	}
	want := map[string]float64{}
	var encs [][]byte
	for _, b := range forgedCommits(t) {
		encs = append(encs, b)
		want["signature"]++
	}
	encs = append(encs,
		[]byte("not a commit"),
		build(commit.Fields{Key: "future", Time: now.Add(time.Hour).UnixMilli()}),
		build(commit.Fields{Key: "orphan", Parents: []commit.ID{{1, 2, 3}}}),
		build(commit.Fields{Key: "deny-accept"}),
		build(commit.Fields{Key: "deny-admit"}),
		build(commit.Fields{Key: "typed", Schema: commit.Schema{NS: "task", Version: 1},
			Value: item.New(map[string]item.Value{"title": item.Int(5)})}),
		build(commit.Fields{Key: "fine"}),
	)
	for _, r := range []string{"malformed", "future", "parents", "author", "forbidden", "schema"} {
		want[r]++
	}
	m0 := scrape(t, srv.url)
	req := encodeRequest(t, &syncproto.Request{Session: session,
		Repos: []syncproto.RepoRequest{{Path: "/data/p", Count: uint64(len(encs)), Commits: encs}}})
	code, body, _ := post(t, srv.url, goatdb.SyncContentType, req)
	if code != http.StatusOK {
		t.Fatalf("status %d (%q), want 200", code, body)
	}
	resp, err := syncproto.DecodeResponse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	var refused []string
	for _, rj := range resp.Repos[0].Rejected {
		refused = append(refused, rj.Reason)
	}
	m1 := scrape(t, srv.url)
	for _, r := range reasons {
		if d := m1.delta(m0, rejectedFor(r)); d != want[r] {
			t.Errorf("%s moved by %v, want %v; the reasons were:\n%s", rejectedFor(r), d, want[r], strings.Join(refused, "\n"))
		}
	}
	if d, n := m1.sumDelta(m0, "goatdb_sync_commits_rejected_total"), len(encs)-1; d != float64(n) || len(refused) != n {
		t.Errorf("%v rejections counted, %d answered, want %d", d, len(refused), n)
	}
	if d := m1.delta(m0, "goatdb_sync_rounds_total"); d != 1 {
		t.Errorf("goatdb_sync_rounds_total moved by %v, want 1", d)
	}
}

// TestMetricsLimits: a request refused by the rate limit and one over the
// body limit count in goatdb_limit_hits_total under their limits, and in
// their own series as before.
func TestMetricsLimits(t *testing.T) {
	srv := serve(t, dbtest.OpenDB(t, nil), &server.Options{RateLimit: 1, RateBurst: 2}, "")
	m0 := scrape(t, srv.url)
	limited := false
	for range 20 {
		code, body, h := post(t, srv.url, goatdb.SyncContentType, emptySync(t))
		if code == http.StatusTooManyRequests {
			if h.Get("Retry-After") == "" {
				t.Errorf("429 (%q) without Retry-After", body)
			}
			limited = true
			break
		}
		if code != http.StatusOK {
			t.Fatalf("status %d (%q)", code, body)
		}
	}
	if !limited {
		t.Fatal("20 requests at once and none refused")
	}
	m1 := scrape(t, srv.url)
	for series, want := range map[string]float64{
		limitHits("rate"):                1,
		"goatdb_http_rate_limited_total": 1,
	} {
		if d := m1.delta(m0, series); d != want {
			t.Errorf("%s moved by %v, want %v", series, d, want)
		}
	}

	big := serve(t, dbtest.OpenDB(t, nil), noLimit, "")
	m0 = scrape(t, big.url)
	if code, msg, _ := rawPost(t, big.addr, syncproto.MaxMessageSize+1, strings.NewReader("x")); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d (%q), want 413", code, msg)
	}
	m1 = scrape(t, big.url)
	for series, want := range map[string]float64{
		limitHits("body_size"):           1,
		"goatdb_sync_bad_requests_total": 1,
		limitHits("rate"):                0,
	} {
		if d := m1.delta(m0, series); d != want {
			t.Errorf("%s moved by %v for a 413, want %v", series, d, want)
		}
	}
}

// TestMetricsPeers: a server replicating with a peer that answers and
// one that does not has a lag and an error count for each, named by URL:
// the first is followed (lag 0) without errors, the second lags and
// fails.
func TestMetricsPeers(t *testing.T) {
	upstream := serve(t, dbtest.OpenDB(t, nil), noLimit, "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	fast := &goatdb.SyncOptions{MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
	srvDB := dbtest.OpenDB(t, nil)
	srv := serve(t, srvDB, &server.Options{RateLimit: -1, Peers: []string{upstream.url, dead}, PeerSync: fast}, "")

	cli := dbtest.OpenDB(t, nil)
	mustPut(t, cli, "/data/up/x", goatdb.Fields{"v": "upstream"})
	mustSync(t, cli, upstream.url)
	eventually(t, 10*time.Second, "the server replicates its peer", func() bool {
		_, err := srvDB.Get("/data/up/x")
		return err == nil
	})
	lag := func(peer string) string {
		return `goatdb_peer_replication_lag_seconds{peer=` + strconv.Quote(peer) + `}`
	}
	errs := func(peer string) string { return `goatdb_peer_sync_errors_total{peer=` + strconv.Quote(peer) + `}` }
	var m metricSet
	var text string
	eventually(t, 10*time.Second, "the live peer followed and the dead one failing", func() bool {
		m, text = scrapeText(t, srv.url)
		l, ok := m[lag(upstream.url)]
		return ok && l == 0 && m.get(errs(dead)) >= 2
	})
	checkExposition(t, text)
	if e, ok := m[errs(upstream.url)]; !ok || e != 0 {
		t.Errorf("%s = %v (written: %v), want 0", errs(upstream.url), e, ok)
	}
	if l := m.get(lag(dead)); l <= 0 {
		t.Errorf("%s = %v, want more than 0", lag(dead), l)
	}
	var peers []string
	for series := range m {
		if strings.HasPrefix(series, "goatdb_peer_") {
			peers = append(peers, series)
		}
	}
	if len(peers) != 4 {
		t.Errorf("peer series %v, want a lag and an error count for each of 2 peers", peers)
	}
	if got := fmt.Sprint(scrape(t, upstream.url).sum("goatdb_peer_sync_errors_total")); got != "0" {
		t.Errorf("a server without peers: peer errors %s", got)
	}
}

// TestMetricsConnectionCap: a server whose connections are all taken
// counts the cap reached under goatdb_limit_hits_total (read from
// MetricsHandler in-process: no connection is left to scrape it).
func TestMetricsConnectionCap(t *testing.T) {
	srv := serve(t, dbtest.OpenDB(t, nil), &server.Options{MaxConnections: 2, RateLimit: -1}, "")
	for range 2 {
		c, err := net.Dial("tcp", srv.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	eventually(t, 10*time.Second, "both connections taken and the cap counted", func() bool {
		rec := httptest.NewRecorder()
		srv.srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		text := rec.Body.String()
		return strings.Contains(text, "\ngoatdb_http_connections 2\n") &&
			strings.Contains(text, "\n"+limitHits("connections")+" 1\n")
	})
}
