package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestClusterSection runs the cluster section at a tiny size and checks
// its figures, tables and verdicts, and that the data is gone.
func TestClusterSection(t *testing.T) {
	cfg := tinyConfig(t)
	cfg.only = regexp.MustCompile(`^cluster$`)
	cfg.cluster = clusterConfig{on: true, writes: 10, warmups: 2}
	if cfg.syncSelected(syncWirePart) || cfg.httpSelected() || !cfg.clusterSelected() {
		t.Fatal("--only cluster selects the wrong sections")
	}
	res, err := runCluster(t.Context(), cfg, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]latencyFigures{"single": res.Single, "acked": res.Acked, "arrival": res.Arrival} {
		if f.N != 10 || !(f.P50 > 0) || f.P99 < f.P50 || f.Max < f.P99 {
			t.Errorf("%s: %+v", name, f)
		}
	}
	if !(res.Ratio > 0) {
		t.Errorf("ratio %v", res.Ratio)
	}
	rep := buildReport(cfg, nil, nil)
	rep.addCluster(cfg, res)
	var out bytes.Buffer
	if err := rep.writeText(&out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{"node 1 of 3, --ack-replicas 1", "Cross-node write-to-arrival", clusterWriteGoal, clusterArrivalGoal} {
		if !strings.Contains(text, want) {
			t.Errorf("the report lacks %q:\n%s", want, text)
		}
	}
	if len(rep.Targets) != 2 {
		t.Errorf("targets: %+v", rep.Targets)
	}
	if ents, err := os.ReadDir(cfg.dir); err != nil || len(ents) != 0 {
		t.Errorf("data left behind: %v %v", ents, err)
	}
}
