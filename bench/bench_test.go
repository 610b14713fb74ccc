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
		samples: [4]int{3, 3, 3, 3},
		warmups: [4]int{1, 1, 1, 1},
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
	rep := buildReport(cfg, results)
	cells := map[string]bool{} // "op title/engine name" with figures
	for _, s := range rep.Sections {
		op := ""
		for _, row := range s.Table.Rows {
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
