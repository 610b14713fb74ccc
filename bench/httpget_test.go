package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestMain lets the test binary be the http get section's client, as the
// bench binary is: the section starts its own executable again.
func TestMain(m *testing.M) {
	if os.Getenv(httpClientEnv) != "" {
		os.Exit(httpClientMain(os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// TestHTTPGetSection runs the http get section at a tiny size and checks
// its table, verdict, JSON and profile, and that the data is gone.
func TestHTTPGetSection(t *testing.T) {
	cfg := tinyConfig(t)
	cfg.only = regexp.MustCompile(`^http get$`)
	prof := filepath.Join(t.TempDir(), "cpu.pprof")
	cfg.http = httpGetConfig{on: true, requests: 200, samples: 2, warmups: 1, warm: 5, conns: 2, profile: prof}
	if cfg.syncSelected(syncWirePart) || !cfg.httpSelected() {
		t.Fatal("--only 'http get' selects the wrong sections")
	}
	res, err := runHTTPGet(t.Context(), cfg, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Servers) != 3 {
		t.Fatalf("servers: %+v", res.Servers)
	}
	for _, f := range res.Servers {
		if len(f.Samples) != 2 || !(f.CPU > 0) || !(f.P50 > 0) || f.P99 < f.P50 {
			t.Errorf("%s: %+v", f.Name, f)
		}
	}
	if fi, err := os.Stat(prof); err != nil || fi.Size() == 0 {
		t.Errorf("profile: %v", err)
	}
	rep := buildReport(cfg, nil, nil)
	rep.addHTTPGet(cfg, res)
	var text, js bytes.Buffer
	if err := rep.writeText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"goatdb's JSON API beside SQLite behind net/http\n", "goatdb, token", "SQLite + net/http", httpGetGoal} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("no %q in:\n%s", want, text.String())
		}
	}
	if len(rep.Targets) != 1 || rep.Targets[0].Status == statusNotJudged {
		t.Errorf("verdicts: %+v", rep.Targets)
	}
	if err := rep.writeJSON(&js); err != nil || !json.Valid(js.Bytes()) {
		t.Errorf("JSON: %v\n%s", err, js.String())
	}
	if left, _ := os.ReadDir(cfg.dir); len(left) > 0 {
		t.Errorf("left in the data directory: %v", left)
	}
}
