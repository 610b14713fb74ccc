package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// tinyConfig runs every operation of every engine a few times on a small
// big repository.
func tinyConfig(t *testing.T) *config {
	return &config{
		mode:    "tiny",
		items:   200,
		samples: [numKinds]int{3, 3, 3, 3, 3},
		warmups: [numKinds]int{1, 1, 1, 1, 1},
		dir:     t.TempDir(),
	}
}

func TestQueriesExpectWorkloadResults(t *testing.T) {
	want := make([]float64, 0, 49)
	for i := 51; i < smallN; i++ {
		want = append(want, float64(i))
	}
	if !slices.Equal(simpleQuery.want, want) {
		t.Errorf("simple query wants %v, want 51..99", simpleQuery.want)
	}
	if !slices.Equal(complexQuery.want, []float64{50}) {
		t.Errorf("complex query wants %v, want [50]", complexQuery.want)
	}
	reversed := slices.Clone(want)
	slices.Reverse(reversed)
	if err := simpleQuery.check(reversed); err != nil {
		t.Errorf("simple query, any order: %v", err)
	}
	for _, bad := range [][]float64{want[1:], append(want[1:], 50), append(want[2:], 52, 52)} {
		if simpleQuery.check(bad) == nil {
			t.Errorf("simple query accepted %v", bad)
		}
	}
}

// TestRunEveryEngine runs the tiny configuration and checks that every
// operation × engine cell is in the report, and that the data is gone.
func TestRunEveryEngine(t *testing.T) {
	cfg := tinyConfig(t)
	results, err := runAll(t.Context(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rep := buildReport(cfg, results, nil)
	cells := map[string]bool{} // "op title/engine name" with figures
	for _, s := range rep.Sections {
		op := ""
		for _, row := range s.Tables[0].Rows {
			if row[0] != "" {
				op = row[0]
			}
			if row[2] == "-" || row[2] == "" || row[4] != "3" && !strings.HasPrefix(row[4], "3×") {
				t.Errorf("%s %s: median %q, n %q", op, row[1], row[2], row[4])
			}
			cells[op+"/"+row[1]] = true
		}
	}
	for _, o := range ops {
		for _, e := range engineSpecs {
			if !cells[o.title(cfg.items)+"/"+e.name] {
				t.Errorf("no row for %s on %s", o.title(cfg.items), e.name)
			}
		}
	}
	var text, js bytes.Buffer
	if err := rep.writeText(&text); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(text.String(), "\nMET ") + strings.Count(text.String(), "\nMISSED ") +
		strings.Count(text.String(), "\nNOT JUDGED "); got != 3*len(targets) {
		t.Errorf("%d verdicts printed, want %d:\n%s", got, 3*len(targets), text.String())
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
}

func TestOnlySelects(t *testing.T) {
	cfg := tinyConfig(t)
	cfg.only = regexp.MustCompile(`^(goatdb-trusted-sync|bbolt-nosync) (count|keys)$`)
	results, err := runAll(t.Context(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range results {
		got = append(got, r.spec.id+" "+string(r.op.id))
	}
	want := []string{"goatdb-trusted-sync count", "bbolt-nosync count", "goatdb-trusted-sync keys", "bbolt-nosync keys"}
	if !slices.Equal(got, want) {
		t.Errorf("ran %q, want %q", got, want)
	}
}

// failing is an engine whose operations fail.
type failing struct{}

func (failing) setup(string, int, bool) error { return nil }
func (failing) close() error                  { return nil }
func (failing) task(opID) (task, error) {
	return task{run: func(int) error { return errors.New("disk on fire") }}, nil
}

func TestFailureNamesEngineAndOp(t *testing.T) {
	cfg := tinyConfig(t)
	e := &openEngine{spec: &engineSpec{id: "fail", name: "failing engine"}, eng: failing{}}
	create := ops[slices.IndexFunc(ops, func(o op) bool { return o.id == opCreate })]
	_, err := runOp(t.Context(), cfg, create, []*openEngine{e}, io.Discard)
	if err == nil || err.Error() != "failing engine: create item: disk on fire" {
		t.Errorf("err = %v", err)
	}
}

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		ok   bool
		mode string
	}{
		{nil, true, "full"},
		{[]string{"--quick", "--json"}, true, "quick"},
		{[]string{"--sync=false", "--only", "^sync"}, true, "full"},
		{[]string{"--only", "("}, false, ""},
		{[]string{"extra"}, false, ""},
		{[]string{"--bogus"}, false, ""},
	} {
		cfg, _, err := parseFlags(tc.args, io.Discard)
		if (err == nil) != tc.ok || (err == nil && cfg.mode != tc.mode) {
			t.Errorf("parseFlags(%q) = %v, %v", tc.args, cfg, err)
		}
	}
}

func TestFailureRemovesData(t *testing.T) {
	saved := engineSpecs
	t.Cleanup(func() { engineSpecs = saved })
	engineSpecs = append(slices.Clone(saved), engineSpec{id: "fail", name: "failing engine", new: func() engine { return failing{} }})
	cfg := tinyConfig(t)
	cfg.only = regexp.MustCompile(`^(fail|bbolt-nosync) create$`)
	if _, err := runAll(t.Context(), cfg, io.Discard); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("err = %v", err)
	}
	if left, _ := os.ReadDir(cfg.dir); len(left) > 0 {
		t.Errorf("left in the data directory: %v", left)
	}
}

func TestSQLitePragmas(t *testing.T) {
	for _, tc := range []struct {
		synchronous string
		want        int
	}{{"FULL", 2}, {"OFF", 0}} {
		e := &sqliteEngine{synchronous: tc.synchronous}
		db, err := e.open(t.TempDir() + "/x.db")
		if err != nil {
			t.Fatal(err)
		}
		var mode string
		var sync int
		if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || sync != tc.want {
			t.Errorf("%s: journal_mode %s, synchronous %d", tc.synchronous, mode, sync)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// tinySync is a sync section small enough for a test.
func tinySync() syncConfig {
	return syncConfig{on: true, n: 40, bigN: 100, newN: 2, reps: 3,
		arrival: []arrivalRun{{receivers: 1, writes: 3}, {receivers: 3, writes: 2}}}
}

// TestSyncSection runs the sync section alone on tiny sizes and checks its
// tables, notes, verdicts and JSON, and that the data is gone.
func TestSyncSection(t *testing.T) {
	cfg := tinyConfig(t)
	cfg.sync = tinySync()
	cfg.only = regexp.MustCompile(`^sync`)
	results, err := runAll(t.Context(), cfg, io.Discard)
	if err != nil || len(results) > 0 {
		t.Fatalf("engines ran: %v, %v", results, err)
	}
	res, err := runSync(t.Context(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Wire) != 6 || len(res.Arrival) != 2 {
		t.Fatalf("%d wire results, %d arrival runs", len(res.Wire), len(res.Arrival))
	}
	rep := buildReport(cfg, results, res)
	if len(rep.Sections) != 1 || rep.Sections[0].ID != syncSectionID || len(rep.Sections[0].Tables) != 2 {
		t.Fatalf("sections: %+v", rep.Sections)
	}
	for _, tb := range rep.Sections[0].Tables {
		for _, row := range tb.Rows {
			if len(row) != len(tb.Columns) {
				t.Errorf("%s: row %q has %d cells for %d columns", tb.Caption, row, len(row), len(tb.Columns))
			}
		}
	}
	var text, js bytes.Buffer
	if err := rep.writeText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"goatdb's sync\n", "40 in sync, first contact", "100 in sync + 1 new", "2 writes with 3 receivers, not 3"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("no %q in:\n%s", want, text.String())
		}
	}
	// Tiny sizes: the wire targets are not judged; the arrival target
	// with 1 receiver is, and the one with 500 was not measured.
	if len(rep.Targets) != len(syncTargets) {
		t.Errorf("%d verdicts, want the %d sync targets'", len(rep.Targets), len(syncTargets))
	}
	for _, v := range rep.Targets {
		notJudged := strings.HasPrefix(v.Target, "sync,") || strings.Contains(v.Target, "500")
		if notJudged != (v.Status == statusNotJudged) {
			t.Errorf("%s: %s (%s)", v.Target, v.Status, v.Detail)
		}
	}
	if err := rep.writeJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Sections []struct {
			ID   string
			Data syncResults
		}
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Sections) != 1 || len(back.Sections[0].Data.Wire) != 6 {
		t.Errorf("JSON: %v, %+v", err, back)
	}
	if left, _ := os.ReadDir(cfg.dir); len(left) > 0 {
		t.Errorf("left in the data directory: %v", left)
	}
}

func TestSyncOnlySelects(t *testing.T) {
	cfg := tinyConfig(t)
	cfg.sync = tinySync()
	cfg.only = regexp.MustCompile(`^sync arrival-3$`)
	res, err := runSync(t.Context(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Wire) != 0 || len(res.Arrival) != 1 || res.Arrival[0].Receivers != 3 {
		t.Errorf("ran %+v", res)
	}
	cfg.only = regexp.MustCompile(`^goatdb`)
	if res, err := runSync(t.Context(), cfg, io.Discard); res != nil || err != nil {
		t.Errorf("--only goatdb ran the sync section: %+v, %v", res, err)
	}
}

// TestCompactOp runs the compaction alone on every engine at a tiny size
// and checks its figures, its sizes table and JSON, and that the data is
// gone.
func TestCompactOp(t *testing.T) {
	cfg := tinyConfig(t)
	cfg.only = regexp.MustCompile(` compact$`)
	results, err := runAll(t.Context(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(engineSpecs) {
		t.Fatalf("%d results, want one per engine", len(results))
	}
	for _, r := range results {
		c := r.compact
		switch {
		case r.op.id != opCompact || c == nil:
			t.Fatalf("%s %s: no compaction figures", r.spec.id, r.op.id)
		case c.BytesBefore <= 0 || c.BytesAfter <= 0 || c.PauseMedian <= 0 || c.PauseMax < c.PauseMedian:
			t.Errorf("%s: %+v", r.spec.id, *c)
		case c.PauseWhole == (r.spec.family == familyGoat):
			t.Errorf("%s: writers wait for the whole operation: %v", r.spec.id, c.PauseWhole)
		case r.spec.family == familyGoat && c.Ratio > 0.5:
			// Each item written 5 times, 4 of them collected.
			t.Errorf("%s: log %d → %d bytes, want it well under half", r.spec.id, c.BytesBefore, c.BytesAfter)
		case c.Ratio > 1:
			t.Errorf("%s: compaction grew the data: %d → %d bytes", r.spec.id, c.BytesBefore, c.BytesAfter)
		}
	}
	rep := buildReport(cfg, results, nil)
	for _, s := range rep.Sections {
		if len(s.Tables) != 2 || len(s.Tables[1].Rows) != len(s.Tables[0].Rows) {
			t.Fatalf("%s: tables %+v, want the times and a sizes row per engine", s.ID, s.Tables)
		}
		for _, row := range s.Tables[1].Rows {
			if len(row) != len(s.Tables[1].Columns) {
				t.Errorf("%s: row %q has %d cells for %d columns", s.ID, row, len(row), len(s.Tables[1].Columns))
			}
		}
	}
	var text, js bytes.Buffer
	if err := rep.writeText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"compact 200 items written 5 times", "after ÷ before", "(the swap)", "(the whole operation)", "VACUUM", "bolt.Compact"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("no %q in:\n%s", want, text.String())
		}
	}
	if err := rep.writeJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Sections []struct {
			Data []opFigure
		}
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Sections) != 2 || back.Sections[0].Data[0].Compaction == nil ||
		back.Sections[0].Data[0].Compaction.BytesAfter <= 0 {
		t.Errorf("JSON: %v, %s", err, js.String())
	}
	if left, _ := os.ReadDir(cfg.dir); len(left) > 0 {
		t.Errorf("left in the data directory: %v", left)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", -123: "-123", -1234567: "-1,234,567"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
