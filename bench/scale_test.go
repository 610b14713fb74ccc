package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// The test binary is the scale benchmark's children too, as the bench
// binary is: the benchmark starts its own executable again.
func init() {
	if role := os.Getenv(scaleChildEnv); role != "" {
		os.Exit(scaleChildMain(role, os.Stdin, os.Stdout))
	}
}

// TestScale runs the scale benchmark at tiny sizes, twice (the second
// run finds the data sets built), and checks its figures and report.
func TestScale(t *testing.T) {
	if !abuseSupported {
		t.Skip("the scale benchmark needs Linux")
	}
	cfg := defaultScaleConfig()
	cfg.items, cfg.commits, cfg.repos, cfg.repoItems = 2_000, 4_100, 20, 10
	cfg.cache, cfg.dir = t.TempDir(), t.TempDir()
	cfg.opens, cfg.keys, cfg.queries, cfg.syncs, cfg.touch, cfg.hot, cfg.batch = 2, 500, 2, 2, 10, 50, 500
	for run := range 2 {
		res, err := runScale(t.Context(), &cfg, os.Stderr)
		if err != nil {
			t.Fatal(err)
		}
		r, s := res.Repo, res.Server
		if r == nil || s == nil || r.Failed != "" || s.Failed != "" {
			t.Fatalf("results: %+v %+v", r, s)
		}
		if r.Build.Cached != (run == 1) || s.Build.Cached != (run == 1) {
			t.Errorf("run %d: cached %v %v", run, r.Build.Cached, s.Build.Cached)
		}
		if !(r.OpenNS > 0) || r.RSS <= 0 || r.HeapLive <= 0 || r.Cold.N != 2*500 || r.Hot.N != 3*2*500 || r.Query.N != 4 || r.Results != 20 {
			t.Errorf("repository: %+v", r)
		}
		if y := r.Sync; y == nil || y.First.Commits != 1 || len(y.Later) != 2 || y.First.Sent <= 0 || !(y.LaterMedian.NS > 0) {
			t.Errorf("sync: %+v", y)
		}
		if !(s.StartNS > 0) || s.RSSStart <= 0 || s.Touched != 10 || s.First.N != 10 || s.Hot.N != 50 || s.RSSAfter <= 0 {
			t.Errorf("server: %+v", s)
		}
		rep := buildScaleReport(&cfg, res)
		var text, js bytes.Buffer
		if err := rep.writeText(&text); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"2,000 items, 4,100 commits", "read by path, cold", "sync of 1 new commit, resumed", "20 repositories of 10 items", "GET, first touch"} {
			if !strings.Contains(text.String(), want) {
				t.Errorf("no %q in:\n%s", want, text.String())
			}
		}
		if err := rep.writeJSON(&js); err != nil || !json.Valid(js.Bytes()) {
			t.Errorf("JSON: %v", err)
		}
		if run == 1 {
			t.Logf("\n%s", text.String())
		}
	}
	if left, _ := os.ReadDir(cfg.dir); len(left) > 0 {
		t.Errorf("left in the temporary directory: %v", left)
	}
}
