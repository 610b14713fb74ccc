package main

import (
	"fmt"
	"strings"
	"time"
)

// target is a goal for goatdb, judged on medians for every goatdb engine:
// against SQLite in the same durability class (factor), or absolutely
// (limit).
type target struct {
	op     opID
	goal   string        // what is promised; "N items" stands for the full size
	factor float64       // SQLite's median over goatdb's must be at least this
	limit  time.Duration // goatdb's median must be at most this
	sized  bool          // about the big repository: judged at full size only
}

var targets = []target{
	{op: opReadByPath, goal: "read item by path ≥ 20× faster than SQLite", factor: 20},
	{op: opBulkRead, goal: "bulk read 100 items ≥ 10× faster than SQLite", factor: 10},
	{op: opCreate, goal: "create item no slower than SQLite", factor: 1},
	{op: opUpdate, goal: "update item no slower than SQLite", factor: 1},
	{op: opReadAll, goal: "read N items no slower than SQLite", factor: 1, sized: true},
	{op: opQuerySimple, goal: "simple query ≥ 5× faster than SQLite", factor: 5},
	{op: opQueryComplex, goal: "complex query ≥ 5× faster than SQLite", factor: 5},
	{op: opOpenBig, goal: "open N items ≤ 150 ms", limit: 150 * time.Millisecond, sized: true},
}

// Verdicts.
const (
	statusMet       = "MET"
	statusMissed    = "MISSED"
	statusNotJudged = "NOT JUDGED"
)

// verdict is one target judged for one goatdb engine.
type verdict struct {
	Target string `json:"target"`
	Engine string `json:"engine"`
	Status string `json:"status"`
	Detail string `json:"detail"`
}

// judge returns a verdict per target and goatdb engine, in order: every
// one, met or not.
func judge(cfg *config, results []result) []verdict {
	var out []verdict
	for _, t := range targets {
		goal := strings.Replace(t.goal, "N items", thousands(fullN)+" items", 1)
		for i := range engineSpecs {
			g := &engineSpecs[i]
			if g.family != familyGoat {
				continue
			}
			v := verdict{Target: goal, Engine: g.id}
			v.Status, v.Detail = t.judge(cfg, g, results)
			out = append(out, v)
		}
	}
	return out
}

func (t target) judge(cfg *config, g *engineSpec, results []result) (status, detail string) {
	mine := find(results, t.op, func(s *engineSpec) bool { return s == g })
	sqlite := find(results, t.op, func(s *engineSpec) bool { return s.family == familySQLite && s.class == g.class })
	switch {
	case t.sized && cfg.items != fullN:
		return statusNotJudged, fmt.Sprintf("%s: not judged in %s mode (%s items)", g.name, cfg.mode, thousands(cfg.items))
	case mine == nil || (t.factor > 0 && sqlite == nil):
		return statusNotJudged, g.name + ": not measured in this run"
	case t.limit > 0:
		detail = fmt.Sprintf("%s %s (limit %s)", g.name, formatNS(mine.Median), formatNS(float64(t.limit)))
		return metIf(mine.Median <= float64(t.limit)), detail
	}
	speedup := sqlite.Median / mine.Median
	detail = fmt.Sprintf("%s %s vs %s %s: %s", g.name, formatNS(mine.Median), sqlite.spec.name, formatNS(sqlite.Median), speedText(speedup))
	return metIf(speedup >= t.factor), detail
}

// speedText says how much faster (or slower) goatdb is.
func speedText(speedup float64) string {
	if speedup >= 1 {
		return formatRatio(speedup) + " faster"
	}
	return formatRatio(1/speedup) + " slower"
}

func metIf(ok bool) string {
	if ok {
		return statusMet
	}
	return statusMissed
}

// find returns the result of op for the first engine that is picks, or
// nil.
func find(results []result, op opID, is func(*engineSpec) bool) *result {
	for i, r := range results {
		if r.op.id == op && is(r.spec) {
			return &results[i]
		}
	}
	return nil
}
