package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/goatdb/goatdb/syncproto"
)

// tinyAbuseConfig runs every attack for a moment at sizes a test affords,
// still over the server's default quotas where a target is about them
// (repositories per session, streams per session).
func tinyAbuseConfig(t testing.TB) *abuseConfig {
	c := fullAbuseConfig()
	c.mode, c.dir = "tiny", t.TempDir()
	c.window, c.clients, c.interval, c.addrs, c.items = 1500*time.Millisecond, 2, 100*time.Millisecond, 3, 200
	c.neverReading, c.bombs, c.bombMiB, c.pushMiB, c.pushBatchKiB = 5, 3, 4, 4, 512
	c.newRepos, c.repoRequests, c.slowConns, c.streams, c.crowd, c.evaders = 150, 1, 20, 40, 3, 4
	c.crowdInterval = 300 * time.Millisecond
	return &c
}

// TestAbuse runs the baseline and every attack at tiny sizes against a
// server built from the working tree, and checks the report: a row per
// attack, a verdict per target, valid JSON, nothing left behind.
func TestAbuse(t *testing.T) {
	if testing.Short() {
		t.Skip("builds goatdb and starts a server per attack")
	}
	if !abuseSupported {
		t.Skip("Linux only")
	}
	cfg := tinyAbuseConfig(t)
	run, err := runAbuse(t.Context(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Results) != len(abuseScenarios) {
		t.Fatalf("%d results for %d scenarios", len(run.Results), len(abuseScenarios))
	}
	for _, r := range run.Results {
		if r.ServerExit != "" {
			t.Errorf("%s: %s", r.ID, r.ServerExit)
		}
		if r.PeakRSS <= 0 || r.Ordinary.Rounds == 0 || r.Health.N == 0 {
			t.Errorf("%s: peak RSS %d, %d rounds, %d /healthz probes", r.ID, r.PeakRSS, r.Ordinary.Rounds, r.Health.N)
		}
		if r.ID != baselineID && len(r.Outcome.Statuses) == 0 {
			t.Errorf("%s: the attacker got nothing: %+v", r.ID, r.Outcome)
		}
	}
	rep := buildAbuseReport(cfg, run)
	var text, js bytes.Buffer
	if err := rep.writeText(&text); err != nil {
		t.Fatal(err)
	}
	for _, s := range abuseScenarios {
		if !strings.Contains(text.String(), s.title(cfg)) {
			t.Errorf("no row for %s in:\n%s", s.id, text.String())
		}
	}
	if got := strings.Count(text.String(), "\nMET ") + strings.Count(text.String(), "\nMISSED ") +
		strings.Count(text.String(), "\nNOT JUDGED "); got != len(abuseTargets) {
		t.Errorf("%d verdicts printed, want %d:\n%s", got, len(abuseTargets), text.String())
	}
	if err := rep.writeJSON(&js); err != nil {
		t.Fatal(err)
	}
	if !json.Valid(js.Bytes()) {
		t.Errorf("invalid JSON:\n%s", js.String())
	}
	if left, _ := os.ReadDir(cfg.dir); len(left) > 0 {
		t.Errorf("left in the data directory: %v", left)
	}
	t.Log("\n" + text.String())
}

// BenchmarkAbuse runs the quick abuse benchmark once and reports, per
// attack, the server's peak RSS and the ordinary clients' p99:
//
//	go test -run '^$' -bench Abuse -benchtime 1x
func BenchmarkAbuse(b *testing.B) {
	if !abuseSupported {
		b.Skip("Linux only")
	}
	cfg := quickAbuseConfig()
	cfg.dir = b.TempDir()
	for b.Loop() {
		run, err := runAbuse(b.Context(), &cfg, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range run.Results {
			b.ReportMetric(float64(r.PeakRSS)/(1<<20), r.ID+"-peak-MiB")
			if p := r.Ordinary.P99; !math.IsInf(p, 0) && !math.IsNaN(p) {
				b.ReportMetric(p/1e6, r.ID+"-p99-ms")
			}
		}
	}
}

func TestZstdBomb(t *testing.T) {
	const n = 5 << 20
	for _, k := range bombKinds {
		msg := zstdBomb(n, k.declared(n))
		bound := syncproto.PayloadBound(msg)
		want := int(k.declared(n))
		if want < 0 {
			want = syncproto.UndeclaredBound
		}
		if bound != want {
			t.Errorf("%s: PayloadBound %d, want %d", k.name, bound, want)
		}
		// Decompressed without a bound, it is n zero bytes: not a
		// request (the lying frame fails on its size first).
		_, err := syncproto.DecodeRequest(msg)
		if k.name == "lying" && err == nil || k.name != "lying" && (!errors.Is(err, syncproto.ErrMalformed) || strings.Contains(err.Error(), "decompress")) {
			t.Errorf("%s: DecodeRequest: %v, want a malformed payload", k.name, err)
		}
		// Within what it declares, only the honest one fits.
		_, err = syncproto.DecodeRequestBound(msg, bound)
		if tooLarge := errors.Is(err, syncproto.ErrTooLarge); tooLarge != (k.name != "declared") {
			t.Errorf("%s: DecodeRequestBound: %v", k.name, err)
		}
	}
	if got := len(zstdBomb(60<<20, -1)); got > 8<<10 {
		t.Errorf("a 60 MiB bomb is %d bytes", got)
	}
}

func TestAbuseMode(t *testing.T) {
	for args, want := range map[string]bool{
		"--abuse": true, "-abuse --quick": true, "--quick --abuse=true": true, "--abuse=false": false,
		"--quick": false, "-- --abuse": false, "": false,
	} {
		if got := abuseMode(strings.Fields(args)); got != want {
			t.Errorf("abuseMode(%q) = %v", args, got)
		}
	}
}

func TestParseAbuseFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		ok   bool
		mode string
	}{
		{[]string{"--abuse"}, true, "full"},
		{[]string{"--abuse", "--quick", "--json", "--streams", "500", "--serve-flag=--rate=50"}, true, "quick"},
		{[]string{"--abuse", "--new-repos", "5000"}, false, ""},
		{[]string{"--abuse", "--only", "("}, false, ""},
		{[]string{"--abuse", "extra"}, false, ""},
	} {
		cfg, _, err := parseAbuseFlags(tc.args, io.Discard)
		if (err == nil) != tc.ok || err == nil && cfg.mode != tc.mode {
			t.Errorf("parseAbuseFlags(%q) = %+v, %v", tc.args, cfg, err)
		}
	}
	cfg, _, _ := parseAbuseFlags([]string{"--abuse", "--quick", "--streams", "500", "--serve-flag=--rate=50", "--serve-flag", "--streams=4"}, io.Discard)
	if cfg.streams != 500 || cfg.window != 5*time.Second || strings.Join(cfg.serveFlags, " ") != "--rate=50 --streams=4" {
		t.Errorf("config %+v", cfg)
	}
}

func TestServeHelp(t *testing.T) {
	help := `Flags:
  -addr HOST:PORT
    	listen on HOST:PORT (default "127.0.0.1:8080")
  -anonymous
    	let sessions that never logged in act as the anonymous user
  -ip-rate float
    	requests per second per client address (0: no limit) (default 200)
  -rate float
    	requests per second per session (default 100)

Global flags: --dir DIR`
	f := parseServeHelp(help)
	want := map[string]string{"addr": "127.0.0.1:8080", "anonymous": "", "ip-rate": "200", "rate": "100"}
	if len(f) != len(want) {
		t.Errorf("flags %v, want %v", f, want)
	}
	for k, v := range want {
		if f[k] != v {
			t.Errorf("%s = %q, want %q", k, f[k], v)
		}
	}
	run := &abuseRun{ServerFlags: f, ServeFlags: []string{"--rate", "20"}}
	if r, name := sessionRate(run); r != 20 || name != "rate" {
		t.Errorf("sessionRate = %v, %q", r, name)
	}
	delete(f, "ip-rate")
	if r, _ := sessionRate(run); r != 0 {
		t.Errorf("sessionRate without a per-address rate = %v", r)
	}
}

func TestRequestCounts(t *testing.T) {
	m := map[string]float64{
		`goatdb_http_requests_total{route="/v1/sync",code="200"}`:   12,
		`goatdb_http_requests_total{route="/v1/sync",code="429"}`:   3,
		`goatdb_http_requests_total{route="/v1/events",code="200"}`: 1,
	}
	got := requestCounts(m, "/v1/sync")
	if len(got) != 2 || got["200"] != 12 || got["429"] != 3 {
		t.Errorf("requestCounts = %v", got)
	}
	if formatCounts(got) != "200×12 429×3" || formatCounts(map[string]int{"timeout": 1, "503": 2}) != "503×2 timeout×1" {
		t.Errorf("formatCounts: %q", formatCounts(got))
	}
	if requestCounts(m, "/healthz") != nil {
		t.Error("counts for a route never asked")
	}
	if limitHits(m) != nil {
		t.Error("limit hits without the series")
	}
	m[`goatdb_limit_hits_total{limit="session_rate"}`] = 4
	m[`goatdb_limit_hits_total{limit="repos"}`] = 0
	if h := limitHits(m); len(h) != 1 || h["session_rate"] != 4 {
		t.Errorf("limitHits = %v", h)
	}
}
