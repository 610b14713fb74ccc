package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/goatdb/goatdb/internal/syncbench"
)

// syncResults are the sync section's figures; nil if it did not run.
type syncResults struct {
	Wire    []syncbench.WireResult `json:"wire,omitempty"`
	Arrival []arrivalResult        `json:"arrival,omitempty"`
	// FirstContact are the first contacts (bench/firstcontact.go).
	FirstContact []syncbench.FirstContactResult `json:"first_contact,omitempty"`
}

// arrivalResult is one write-to-arrival run.
type arrivalResult struct {
	Receivers int     `json:"receivers"`
	Writes    int     `json:"writes"`
	P50       float64 `json:"p50_ns"`
	P99       float64 `json:"p99_ns"`
	Max       float64 `json:"max_ns"`
	// EventCommits says whether change events carried commits (see
	// --event-commits): without, every receiver syncs for each write.
	EventCommits bool `json:"event_commits"`
}

// runSync runs the selected parts of the sync section, with their data in
// temporary directories under cfg.dir, removed when each part ends. It
// returns nil if no part is selected.
func runSync(ctx context.Context, cfg *config, progress io.Writer) (*syncResults, error) {
	log := progressLogger(progress)
	res := &syncResults{}
	ran := false
	if cfg.syncSelected(syncWirePart) {
		start := time.Now()
		w, err := syncbench.Wire(ctx, syncbench.WireOptions{
			Dir: cfg.dir, N: cfg.sync.n, BigN: cfg.sync.bigN, New: cfg.sync.newN, Reps: cfg.sync.reps, Logger: log,
		})
		if err != nil {
			return nil, fmt.Errorf("sync wire: %w", err)
		}
		res.Wire, ran = w, true
		fmt.Fprintf(progress, "%-28s %v\n", "sync wire", time.Since(start).Round(time.Millisecond))
	}
	if fc, err := runFirstContact(ctx, cfg, progress, res); err != nil {
		return nil, err
	} else if fc {
		ran = true
	}
	for _, a := range cfg.sync.arrival {
		if !cfg.syncSelected(a.part()) {
			continue
		}
		start := time.Now()
		ao := syncbench.ArrivalOptions{Dir: cfg.dir, Receivers: a.receivers, Logger: log}
		if !cfg.sync.eventCommits {
			ao.EventCommitBytes = -1
		}
		lat, err := syncbench.WriteToArrival(ctx, ao, a.writes)
		if err != nil {
			return nil, fmt.Errorf("sync %s: %w", a.part(), err)
		}
		res.Arrival = append(res.Arrival, arrivalResult{
			Receivers: a.receivers, Writes: len(lat), EventCommits: cfg.sync.eventCommits,
			P50: ns(syncbench.Percentile(lat, 0.50)), P99: ns(syncbench.Percentile(lat, 0.99)), Max: ns(lat[len(lat)-1]),
		})
		ran = true
		fmt.Fprintf(progress, "%-28s %v\n", "sync "+a.part(), time.Since(start).Round(time.Millisecond))
	}
	if !ran {
		return nil, nil
	}
	return res, nil
}

func ns(d time.Duration) float64 { return float64(d.Nanoseconds()) }

// progressLogger writes syncbench's progress as "message key=value…"
// lines.
func progressLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
			return slog.Attr{}
		}
		return a
	}}))
}

const syncSectionID = "sync"

// syncSection lays out the sync figures: a table of the wire scenarios
// and one of the write-to-arrival latencies.
func syncSection(cfg *config, res *syncResults) section {
	s := section{ID: syncSectionID, Title: "Sync: goatdb peers (signed, Sync durability) through the HTTP server on 127.0.0.1", Data: res}
	if len(res.Wire) > 0 {
		s.Tables = append(s.Tables, wireTable(cfg, res.Wire))
	}
	if len(res.FirstContact) > 0 {
		s.Tables = append(s.Tables, firstContactTable(res.FirstContact))
	}
	if len(res.Arrival) > 0 {
		t := table{Caption: "Write-to-arrival latency", Columns: []column{
			{name: "receivers", right: true}, {name: "writes", right: true},
			{name: "p50", right: true}, {name: "p99", right: true}, {name: "max", right: true}, {name: "events"},
		}}
		for _, a := range res.Arrival {
			events := "bare notices"
			if a.EventCommits {
				events = "with commits"
			}
			t.Rows = append(t.Rows, []string{strconv.Itoa(a.Receivers), strconv.Itoa(a.Writes), formatNS(a.P50), formatNS(a.P99), formatNS(a.Max), events})
		}
		s.Tables = append(s.Tables, t)
	}
	return s
}

func wireTable(cfg *config, ws []syncbench.WireResult) table {
	t := table{Caption: "Bytes on the wire and round trips per sync (medians)", Columns: []column{
		{name: "scenario"}, {name: "syncs", right: true}, {name: "bytes up", right: true}, {name: "bytes down", right: true},
		{name: "round trips", right: true}, {name: "one round", right: true}, {name: "commits, zstd", right: true},
		{name: "overhead", right: true}, {name: "÷ commits", right: true},
	}}
	for _, w := range ws {
		rounds := strconv.Itoa(w.MaxRounds)
		if w.Syncs > 1 {
			rounds = fmt.Sprintf("%.2f", w.Rounds)
		}
		ratio := ""
		if w.Scenario == syncbench.ToEmpty {
			ratio = formatRatio(w.Ratio)
		}
		t.Rows = append(t.Rows, []string{
			scenarioTitle(cfg, w.Scenario), strconv.Itoa(w.Syncs), formatBytes(w.Sent), formatBytes(w.Received),
			rounds, percent(w.OneRound), formatBytes(w.CommitZstd), formatBytes(w.Overhead), ratio,
		})
	}
	return t
}

// scenarioTitle names a wire scenario with the run's sizes.
func scenarioTitle(cfg *config, id syncbench.Scenario) string {
	n, big, k := thousands(cfg.sync.n), thousands(cfg.sync.bigN), cfg.sync.newN
	switch id {
	case syncbench.InSync:
		return n + " in sync"
	case syncbench.InSyncFirstContact:
		return n + " in sync, first contact"
	case syncbench.NewOnClient:
		return fmt.Sprintf("%s in sync + %d new on the client", n, k)
	case syncbench.NewBothSides:
		return fmt.Sprintf("%s in sync + %d new on each side", n, k)
	case syncbench.ToEmpty:
		return n + " to an empty peer"
	case syncbench.NewOneBig:
		return big + " in sync + 1 new"
	}
	return string(id)
}

// formatBytes formats a byte count with thousands separators.
func formatBytes(n int64) string {
	if n < 0 {
		return "-" + thousands(int(-n))
	}
	return thousands(int(n))
}

func syncNotes(cfg *config, res *syncResults) []string {
	var out []string
	if len(res.Wire) > 0 {
		out = append(out,
			"Sync: goatdb databases with the default options (signed commits, Sync durability) syncing with DB.Sync through server.New on 127.0.0.1 "+
				"(no rate limit). Bytes are on the wire after compression, as the client counts them (up: requests, down: responses).",
			fmt.Sprintf("In sync: the client synced with this server before, so it resumes from where it left off (one sync, repeated %d times). "+
				"First contact: the same commits on both sides, but the peers never talked (the server's database syncs with a second server "+
				"that serves the client's database), so the client has no resume point: the rateless IBLT path (count, digest and a key; "+
				"symbols only if the sets differ).", cfg.sync.reps),
			fmt.Sprintf("+ new: before each of %d syncs the client (and the server, on each side) updates %d items, never the same ones, so no merge is needed; "+
				"%s + 1 new: one item, on the server and on the client in turn. One round: the share of syncs done in one round trip; "+
				"round trips: their mean.", cfg.sync.reps, cfg.sync.newN, thousands(cfg.sync.bigN)),
			"commits, zstd: the commits the sync had to move (their encodings, signatures included), compressed with zstd at the protocol's "+
				"level (SpeedDefault), each side's commits together. overhead: bytes up and down minus that, per sync (median): what the "+
				"protocol adds to the commits themselves. The JSON also has the commits' uncompressed size.",
			fmt.Sprintf("÷ commits: bytes up and down over the compressed size of all %s commits.", thousands(cfg.sync.n)))
	}
	if len(res.Arrival) > 0 {
		out = append(out,
			"Write-to-arrival: client A updates an item; the time runs from the start of A's Put until client B holds the value, every client "+
				"syncing in the background (DB.StartSync: a sync on each local change, and on each change the server's event stream announces). "+
				"Receivers: B and the other clients listening; each write waits until all of them hold it. A, B and the server are on disk with "+
				"Sync durability, the other receivers in memory.",
			"All the clients share this machine's CPUs with the server, so with many receivers B's figure includes the other clients' signature "+
				"checks and HTTP work; on separate machines that work would not compete.")
		if n := arrivalNote(res.Arrival); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// arrivalNote explains why a run with more receivers has fewer writes.
func arrivalNote(as []arrivalResult) string {
	var parts []string
	most := 0
	for _, a := range as {
		most = max(most, a.Writes)
	}
	for _, a := range as {
		if a.Writes < most {
			parts = append(parts, fmt.Sprintf("%d writes with %d receivers", a.Writes, a.Receivers))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("%s, not %d: each write waits until every receiver holds it, so %d would make the run minutes longer.",
		strings.Join(parts, ", "), most, most)
}

// syncTarget is a goal for the sync figures.
type syncTarget struct {
	goal  string
	judge func(cfg *config, res *syncResults) (status, detail string)
}

// syncEngine is the configuration the sync section measures.
const syncEngine = "goatdb-signed-sync"

var syncTargets = []syncTarget{
	{"sync, 10,000 in sync: one round trip and ≤ 200 bytes", func(cfg *config, res *syncResults) (string, string) {
		return judgeWire(cfg, res, syncbench.InSync, func(w syncbench.WireResult) (bool, string) {
			return w.OneRound == 1 && w.Total <= 200, fmt.Sprintf("%s in one round trip, %s B up and down (limit 200 B)",
				percent(w.OneRound), formatBytes(w.Total))
		})
	}},
	{"sync, 10,000 in sync + 10 new on the client: one round trip in ≥ 97% of syncs and ≤ 1 KB plus the commits", newTarget(syncbench.NewOnClient)},
	{"sync, 10,000 in sync + 10 new on each side: one round trip in ≥ 97% of syncs and ≤ 1 KB plus the commits", newTarget(syncbench.NewBothSides)},
	{"sync, 10,000 commits to an empty peer: ≤ 1.1× their compressed size", func(cfg *config, res *syncResults) (string, string) {
		return judgeWire(cfg, res, syncbench.ToEmpty, func(w syncbench.WireResult) (bool, string) {
			return w.Ratio <= 1.1, fmt.Sprintf("%s B up and down, the commits compressed %s B: %s (limit 1.1×)",
				formatBytes(w.Total), formatBytes(w.CommitZstd), formatRatio(w.Ratio))
		})
	}},
	{"sync, 100,000 in sync + 1 new: one round trip in ≥ 97% of syncs and ≤ 1 KB plus the commits", newTarget(syncbench.NewOneBig)},
	{"write-to-arrival with 1 receiving client: p50 ≤ 10 ms and p99 ≤ 50 ms", func(cfg *config, res *syncResults) (string, string) {
		return judgeArrival(res, 1, func(a arrivalResult) (bool, string) {
			return a.P50 <= 10e6 && a.P99 <= 50e6, fmt.Sprintf("p50 %s, p99 %s over %d writes (limits 10 ms, 50 ms)", formatNS(a.P50), formatNS(a.P99), a.Writes)
		})
	}},
	{"write-to-arrival with 500 receiving clients: p99 ≤ 100 ms", func(cfg *config, res *syncResults) (string, string) {
		return judgeArrival(res, 500, func(a arrivalResult) (bool, string) {
			return a.P99 <= 100e6, fmt.Sprintf("p99 %s over %d writes (limit 100 ms)", formatNS(a.P99), a.Writes)
		})
	}},
}

// newTarget judges a scenario with new commits: one round trip in at
// least 97% of the syncs, and a median overhead (bytes beyond the
// commits, compressed) of at most 1 KB, taken as 1,000 bytes.
func newTarget(id syncbench.Scenario) func(*config, *syncResults) (string, string) {
	return func(cfg *config, res *syncResults) (string, string) {
		return judgeWire(cfg, res, id, func(w syncbench.WireResult) (bool, string) {
			return w.OneRound >= 0.97 && w.Overhead <= 1000, fmt.Sprintf("%s of %d syncs in one round trip, %s B beyond the commits' %s B compressed (limits 97%%, 1,000 B)",
				percent(w.OneRound), w.Syncs, formatBytes(w.Overhead), formatBytes(w.CommitZstd))
		})
	}
}

func percent(f float64) string { return fmt.Sprintf("%.0f%%", 100*f) }

// judgeWire judges a wire scenario, at the published sizes only.
func judgeWire(cfg *config, res *syncResults, id syncbench.Scenario, ok func(syncbench.WireResult) (bool, string)) (string, string) {
	if cfg.sync.n != fullSyncN || cfg.sync.bigN != fullSyncBigN {
		return statusNotJudged, fmt.Sprintf("not judged in %s mode (%s and %s commits)", cfg.mode, thousands(cfg.sync.n), thousands(cfg.sync.bigN))
	}
	if res != nil {
		for _, w := range res.Wire {
			if w.Scenario == id {
				met, detail := ok(w)
				return metIf(met), detail
			}
		}
	}
	return statusNotJudged, "not measured in this run"
}

// judgeArrival judges the write-to-arrival run with the given receivers.
func judgeArrival(res *syncResults, receivers int, ok func(arrivalResult) (bool, string)) (string, string) {
	if res != nil {
		for _, a := range res.Arrival {
			if a.Receivers == receivers {
				met, detail := ok(a)
				return metIf(met), detail
			}
		}
	}
	return statusNotJudged, fmt.Sprintf("not measured in this run (no run with %d receivers)", receivers)
}

// judgeSync returns a verdict per sync target, in order.
func judgeSync(cfg *config, res *syncResults) []verdict {
	out := make([]verdict, 0, len(syncTargets))
	for _, t := range syncTargets {
		v := verdict{Target: t.goal, Engine: syncEngine}
		v.Status, v.Detail = t.judge(cfg, res)
		out = append(out, v)
	}
	return out
}
