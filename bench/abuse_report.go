package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// abuseReport is an abuse run's output.
type abuseReport struct {
	Machine machine      `json:"machine"`
	Mode    string       `json:"mode"`
	Sizes   abuseSizes   `json:"sizes"`
	Run     *abuseRun    `json:"run"`
	Notes   []string     `json:"notes"`
	Targets []verdict    `json:"targets"`
	cfg     *abuseConfig // for the text
}

// abuseSizes are the run's knobs, for JSON.
type abuseSizes struct {
	WindowSeconds  float64 `json:"window_s"`
	Clients        int     `json:"clients"`
	IntervalMS     float64 `json:"interval_ms"`
	Addrs          int     `json:"addrs"`
	Items          int     `json:"items"`
	NeverReading   int     `json:"never_reading"`
	Bombs          int     `json:"bombs"`
	BombMiB        int     `json:"bomb_mib"`
	PushMiB        int     `json:"push_mib"`
	NewRepos       int     `json:"new_repos"`
	RepoRequests   int     `json:"repo_requests"`
	SlowConns      int     `json:"slow_conns"`
	Streams        int     `json:"streams"`
	Crowd          int     `json:"crowd"`
	CrowdIntervalS float64 `json:"crowd_interval_s"`
}

// rssLimit is the bound on the server's memory under attacks 1-3.
const rssLimit = 512 << 20

func buildAbuseReport(cfg *abuseConfig, run *abuseRun) *abuseReport {
	r := &abuseReport{Machine: thisMachine(), Mode: cfg.mode, Run: run, cfg: cfg, Sizes: abuseSizes{
		WindowSeconds: cfg.window.Seconds(), Clients: cfg.clients, IntervalMS: float64(cfg.interval.Milliseconds()), Addrs: run.Addrs,
		Items: cfg.items, NeverReading: cfg.neverReading, Bombs: cfg.bombs, BombMiB: cfg.bombMiB, PushMiB: cfg.pushMiB,
		NewRepos: cfg.newRepos, RepoRequests: cfg.repoRequests, SlowConns: cfg.slowConns, Streams: cfg.streams, Crowd: cfg.crowd,
		CrowdIntervalS: cfg.crowdInterval.Seconds(),
	}}
	r.Notes = append(abuseNotes(cfg, run), run.Notes...)
	r.Targets = judgeAbuse(cfg, run)
	return r
}

func (r *abuseReport) baseline() *scenarioResult {
	for _, s := range r.Run.Results {
		if s.ID == baselineID {
			return s
		}
	}
	return nil
}

// writeText prints the report for people.
func (r *abuseReport) writeText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	cfg, run := r.cfg, r.Run
	fmt.Fprintf(bw, "goatdb abuse: attacks on a 'goatdb serve' process while ordinary clients sync\n\n")
	fmt.Fprintf(bw, "machine: %s\n", r.Machine)
	fmt.Fprintf(bw, "mode:    %s: each attack %v; %d ordinary clients on 127.0.0.1, each a write and a sync every %v; attacker addresses 127.0.0.2 to %s\n",
		cfg.mode, cfg.window, cfg.clients, cfg.interval, lastAddr(run.Addrs))
	fmt.Fprintf(bw, "server:  %s (%s), a new process per attack, on a copy of one data directory: %s items in %s, users with login codes\n",
		run.Server, run.Source, thousands(cfg.items), bigRepo)
	fmt.Fprintf(bw, "flags:   goatdb serve --dir DIR --addr 127.0.0.1:0 %s\n", strings.Join(run.ServeFlags, " "))
	fmt.Fprintf(bw, "limits:  %s\n", limitsLine(run))
	fmt.Fprintf(bw, "nofile:  %d descriptors (this process and the servers)\n", run.NoFile)

	fmt.Fprintf(bw, "\nServer memory (peak RSS: VmHWM at the end of the attack, start-up included; sampled: the highest VmRSS every 100 ms during it):\n\n")
	mem := table{Columns: []column{{name: "attack"}, {name: "peak RSS", right: true}, {name: "sampled", right: true},
		{name: "before", right: true}, {name: "new repos", right: true}, {name: "server"}}}
	for _, s := range run.Results {
		state := "ran through"
		if s.ServerExit != "" {
			state = "DIED"
		}
		mem.Rows = append(mem.Rows, []string{s.Title, formatMiB(s.PeakRSS), formatMiB(s.SampledRSS), formatMiB(s.StartRSS), thousands(s.NewRepos), state})
	}
	mem.write(bw)

	fmt.Fprintf(bw, "\nWhat the attacker got:\n\n")
	for _, s := range run.Results {
		if s.ID == baselineID {
			continue
		}
		fmt.Fprintf(bw, "- %s: %s\n", s.Title, s.Outcome.Summary)
	}

	base := r.baseline()
	fmt.Fprintf(bw, "\nOrdinary clients: sync rounds (a write, then a sync retried while the server asks, %v at most), their own event streams, /healthz from 127.0.0.1:\n\n", cfg.roundTimeout)
	lt := table{Columns: []column{{name: "attack"}, {name: "rounds", right: true}, {name: "failed", right: true}, {name: "retried", right: true},
		{name: "first try not 200"}, {name: "p50", right: true}, {name: "p99", right: true}, {name: "max", right: true},
		{name: "p99 ÷ baseline", right: true}, {name: "streams ok", right: true}, {name: "healthz p50", right: true}, {name: "healthz max", right: true},
		{name: "healthz not 200"}}}
	for _, s := range run.Results {
		o := s.Ordinary
		ratio := "-"
		if base != nil && s != base {
			ratio = formatRatio(o.P99 / base.Ordinary.P99)
		}
		lt.Rows = append(lt.Rows, []string{s.Title, thousands(o.Rounds), thousands(o.Failed), thousands(o.Retried), notOK(o.First),
			formatLatency(o.P50), formatLatency(o.P99), formatLatency(o.Max), ratio, streamsOK(s.Streams),
			formatLatency(s.Health.P50), formatLatency(s.Health.Max), notOK(s.Health.Status)})
	}
	lt.write(bw)

	if hasMetrics(run) {
		fmt.Fprintf(bw, "\nThe server's own counts (its /metrics at the end; peaks sampled every 500 ms):\n\n")
		mt := table{Columns: []column{{name: "attack"}, {name: "/v1/sync"}, {name: "/v1/events"}, {name: "streams", right: true},
			{name: "connections", right: true}, {name: "budget in use", right: true}, {name: "limits hit"}}}
		for _, s := range run.Results {
			hits := "n/a"
			if h := limitHits(s.Server); h != nil {
				hits = formatCounts(h)
			}
			mt.Rows = append(mt.Rows, []string{s.Title, formatCounts(requestCounts(s.Server, "/v1/sync")), formatCounts(requestCounts(s.Server, "/v1/events")),
				gaugeCell(s.Gauges, "goatdb_event_streams", 1), gaugeCell(s.Gauges, "goatdb_http_connections", 1),
				gaugeCell(s.Gauges, "goatdb_memory_budget_in_use_bytes", 1<<20), hits})
		}
		mt.write(bw)
	}
	for _, s := range run.Results {
		if s.ServerExit != "" {
			fmt.Fprintf(bw, "\n%s: %s\n", s.Title, s.ServerExit)
		}
		for _, p := range s.Problems {
			fmt.Fprintf(bw, "\n%s: %s\n", s.Title, p)
		}
	}
	fmt.Fprintf(bw, "\nNotes\n")
	for _, n := range r.Notes {
		fmt.Fprintf(bw, "- %s\n", n)
	}
	fmt.Fprintf(bw, "\nTargets\n")
	for _, v := range r.Targets {
		fmt.Fprintf(bw, "%-10s %s: %s\n", v.Status, v.Target, v.Detail)
	}
	return bw.Flush()
}

// writeJSON prints the report for programs.
func (r *abuseReport) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func lastAddr(n int) string { return fmt.Sprintf("127.0.0.%d", 1+max(n, 1)) }

// limitsLine lists the limit flags 'goatdb serve -h' offers, with the
// values in force.
func limitsLine(run *abuseRun) string {
	var parts []string
	for name := range run.ServerFlags {
		switch name {
		case "addr", "dir", "peer", "log-level", "log-json", "rules", "anonymous", "tls-cert", "tls-key", "metrics-addr", "ops-addr", "client-ip-header":
			continue
		}
		v, _ := flagValue(run, name)
		if v == "" {
			v = "(no default)"
		}
		parts = append(parts, "--"+name+" "+v)
	}
	slices.Sort(parts)
	if len(parts) == 0 {
		return "none listed by serve -h"
	}
	return strings.Join(parts, ", ")
}

// flagValue returns the value of serve flag name in force: the one
// --serve-flag gave, else the default serve -h lists; ok is false if
// serve has no such flag.
func flagValue(run *abuseRun, name string) (string, bool) {
	def, ok := run.ServerFlags[name]
	if !ok {
		return "", false
	}
	fl := run.ServeFlags
	for i := 0; i < len(fl); i++ {
		f := strings.TrimLeft(fl[i], "-")
		if v, found := strings.CutPrefix(f, name+"="); found {
			def = v
		} else if f == name && i+1 < len(fl) && strings.HasPrefix(fl[i], "-") {
			def = fl[i+1]
		}
	}
	return def, true
}

func hasMetrics(run *abuseRun) bool {
	for _, s := range run.Results {
		if s.Server != nil {
			return true
		}
	}
	return false
}

func gaugeCell(g map[string]float64, name string, unit float64) string {
	v, ok := g[name]
	if !ok {
		return "n/a"
	}
	if unit == 1<<20 {
		return fmt.Sprintf("%.0f MiB", v/unit)
	}
	return thousands(int(v))
}

// notOK formats the outcomes other than 200.
func notOK(m map[string]int) string {
	rest := map[string]int{}
	for k, v := range m {
		if k != "200" {
			rest[k] = v
		}
	}
	if len(rest) == 0 {
		return "-"
	}
	return formatCounts(rest)
}

func streamsOK(s []string) string {
	if s == nil {
		return "n/a"
	}
	ok := 0
	for _, v := range s {
		if v == "ok" {
			ok++
		}
	}
	return fmt.Sprintf("%d/%d", ok, len(s))
}

// formatLatency is formatNS with "failed" for a rank that fell on a failed
// round and "-" for none.
func formatLatency(ns float64) string {
	switch {
	case math.IsInf(ns, 1):
		return "failed"
	case math.IsNaN(ns):
		return "-"
	}
	return formatNS(ns)
}

func abuseNotes(cfg *abuseConfig, run *abuseRun) []string {
	return []string{
		"Each row is its own 'goatdb serve' process, started on a copy of the same data directory, so peak RSS (VmHWM, which counts start-up: " +
			"opening the big repository, the logins) compares row with row; the baseline runs the ordinary clients alone.",
		fmt.Sprintf("Ordinary clients: goatdb databases (Async durability: the server's and the network's time, not the client's disk) that log in with "+
			"a one-time code and each, every %v, write an item of their own repository and DB.Sync it; a sync answered 429, 503 or 408, or that "+
			"cannot reach the server, is tried again after the Retry-After asked or a backoff from 50 ms, as goatdb's background syncer does, until it "+
			"succeeds or %v pass (failed). Latency: from the sync's start until it succeeded; a failed round ranks above every other. "+
			"first try not 200: how the first attempts that did not succeed ended.", cfg.interval, cfg.roundTimeout),
		"streams ok: half way through the attack each ordinary client's user opens an event stream from 127.0.0.1 (a session of its own), which must " +
			"answer 200 and its ready event within 5 s. healthz: GET /healthz on a new connection every 50 ms, 5 s at most.",
		fmt.Sprintf("The attacker is a user of the deployment (mallory) whose sessions log in with one-time codes and speak HTTP themselves, signing or "+
			"MACing every request as goatdb's client does. It comes from 127.0.0.2 (attacks 2, 3, 4: one host) or from the %d addresses 127.0.0.2 to %s, "+
			"round robin (attacks 1, 5, 6 and 7b: many devices, or one evading a per-address limit); the ordinary clients and the crowd of 7a from 127.0.0.1 "+
			"(one reverse proxy).", run.Addrs, lastAddr(run.Addrs)),
		fmt.Sprintf("1: each connection sends a request of a few dozen bytes for every commit of %s (as an empty peer) and never reads; its receive buffer is set to "+
			"4 KiB. 2: a bomb is a sync request of zstd RLE blocks that decompress to %d MiB of zeros; a third state their size, a third state none, a "+
			"third state 1,000 bytes; they go %d at a time, again as soon as all are answered. 3: new items of ~%d KiB of random text, %d KiB of commits per "+
			"request, %d requests in flight (each to its own repository, with its count and digest kept right).",
			bigRepo, cfg.bombMiB, cfg.bombs, pushCommitKiB, cfg.pushBatchKiB, pushLanes),
		fmt.Sprintf("4: each request names %s new repositories under /data/ with one commit each; a request may run a minute, past the attack's end. "+
			"5: a signed sync request announcing %d KiB, %d bytes at once, then a byte a second; a connection answered or closed is opened again. "+
			"6: streams are opened 512 at a time, tried again 100 ms after a refusal. 7a: %d more clients like the ordinary ones, each syncing every %v. "+
			"7b: %d requests in flight, each an empty-peer request for a repository that does not exist.",
			thousands(cfg.newRepos), slowBody>>10, slowFirst, cfg.crowd, cfg.crowdInterval, cfg.evaders),
		"limits hit: the server's goatdb_limit_hits_total by limit (rate: a session's request rate; nonces: the verifier's bound on the nonces one " +
			"session may use in its signatures' window, which refuses a session that sent too many requests, refused or not, until they expire).",
		"The attacker, the ordinary clients and the server share this machine's CPUs: an attack that keeps the bench process busy slows the " +
			"ordinary clients' side too. n/a: not measured (no /proc, or serve has no --metrics-addr).",
	}
}

// abuseTarget is one of the targets.
type abuseTarget struct {
	id    string // the scenario it judges
	goal  string
	judge func(cfg *abuseConfig, run *abuseRun, r, base *scenarioResult) (string, string)
}

var abuseTargets = []abuseTarget{
	{"never-reading", "1. never-reading clients: peak RSS ≤ 512 MiB", judgeRSS},
	{"zstd-bomb", "2. zstd bombs: peak RSS ≤ 512 MiB", judgeRSS},
	{"push-flood", "3. one client pushing as fast as it can: peak RSS ≤ 512 MiB", judgeRSS},
	{"push-flood", "3. one client pushing as fast as it can: 429 or 413 once over its push quota", func(_ *abuseConfig, _ *abuseRun, r, _ *scenarioResult) (string, string) {
		f := r.Outcome.Figures
		refused := r.Outcome.Statuses["429"] + r.Outcome.Statuses["413"]
		return metIf(refused > 0), fmt.Sprintf("%d refusals; %.0f MiB stored in %.1f s (%s)", refused, f["accepted_bytes"]/(1<<20), f["seconds"], formatCounts(r.Outcome.Statuses))
	}},
	{"repo-flood", "4. one session creates at most 100 repositories (an hour); the rest refused", func(_ *abuseConfig, _ *abuseRun, r, _ *scenarioResult) (string, string) {
		n := int(r.Outcome.Figures["repos_created"])
		refused := int(r.Outcome.Figures["sections_error"]+r.Outcome.Figures["sections_not_found"]) + r.Outcome.Statuses["429"]
		return metIf(n <= 100), fmt.Sprintf("%s created; requests %s; sections refused %s (the rest of a request that got 429 or 413 is refused whole)",
			thousands(n), formatCounts(r.Outcome.Statuses), thousands(refused))
	}},
	{"slow-body", "5. /healthz answers within 100 ms with 1,000 slow connections open", func(_ *abuseConfig, _ *abuseRun, r, _ *scenarioResult) (string, string) {
		h := r.HealthLoaded
		if h == nil || h.N == 0 {
			return statusNotJudged, fmt.Sprintf("never %d slow connections open at once (at most %s)", slowTarget, thousands(int(r.Outcome.Figures["open_peak"])))
		}
		ok := h.Max <= 100e6 && h.Status["200"] == h.N
		return metIf(ok), fmt.Sprintf("%d probes with ≥ %d open: p50 %s, max %s, %s", h.N, slowTarget, formatLatency(h.P50), formatLatency(h.Max), formatCounts(h.Status))
	}},
	{"event-streams", "6. with one session's event streams open, other clients are not refused (syncs and streams)", func(_ *abuseConfig, _ *abuseRun, r, _ *scenarioResult) (string, string) {
		o := r.Ordinary
		refused := o.Rounds - o.First["200"]
		ok := o.Failed == 0 && refused == 0 && streamsOK(r.Streams) == fmt.Sprintf("%d/%d", len(r.Streams), len(r.Streams)) && len(r.Streams) > 0
		detail := fmt.Sprintf("streams held by the attacker: %s; ordinary rounds: %d failed, %d not 200 at the first try; own streams ok: %s",
			thousands(int(r.Outcome.Figures["held_peak"])), o.Failed, refused, streamsOK(r.Streams))
		if !ok && len(r.Streams) > 0 {
			detail += fmt.Sprintf(" %q", distinct(r.Streams))
		}
		return metIf(ok), detail
	}},
	{"shared-address", "7a. many sessions behind one address: background sync not throttled (p99 ≤ 2× baseline's or + 50 ms)", func(_ *abuseConfig, _ *abuseRun, r, base *scenarioResult) (string, string) {
		if base == nil {
			return statusNotJudged, "no baseline"
		}
		o, b := r.Ordinary, base.Ordinary
		limit := max(2*b.P99, b.P99+50e6)
		throttled := o.First["429"]
		failed := o.Failed
		if r.Crowd != nil {
			throttled += r.Crowd.First["429"]
			failed += r.Crowd.Failed
		}
		ok := failed == 0 && throttled == 0 && o.P99 <= limit
		return metIf(ok), fmt.Sprintf("ordinary p99 %s (baseline %s, limit %s); 429 at the first try %d, failed rounds %d (ordinary and crowd)",
			formatLatency(o.P99), formatLatency(b.P99), formatLatency(limit), throttled, failed)
	}},
	{"address-evasion", "7b. one session from many addresses still held to its per-session rate (sustained ≤ 1.2× --rate)", func(cfg *abuseConfig, run *abuseRun, r, _ *scenarioResult) (string, string) {
		f := r.Outcome.Figures
		got := f["sustained_per_s"]
		limit, name := sessionRate(run)
		if limit <= 0 {
			return statusNotJudged, fmt.Sprintf("%.0f requests/s accepted from %d addresses in the attack's second half; this server lists no per-session rate flag (its --rate is per address)", got, run.Addrs)
		}
		// The rate's burst is spent in the first half: the second
		// half shows the sustained rate.
		return metIf(got <= 1.2*limit), fmt.Sprintf("%.0f requests/s accepted from %d addresses in the attack's second half (%.0f/s over all of it, burst included); --%s %g",
			got, run.Addrs, f["accepted_per_s"], name, limit)
	}},
}

// sessionRate returns the per-session request rate in force, if the server
// has one: --rate when serve also lists a per-address or per-user rate
// (--ip-rate, --user-rate), which makes --rate the session's.
func sessionRate(run *abuseRun) (float64, string) {
	for _, name := range []string{"session-rate"} {
		if v, ok := flagValue(run, name); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f, name
		}
	}
	_, ip := run.ServerFlags["ip-rate"]
	_, user := run.ServerFlags["user-rate"]
	if v, ok := flagValue(run, "rate"); ok && (ip || user) {
		f, _ := strconv.ParseFloat(v, 64)
		return f, "rate"
	}
	return 0, ""
}

func judgeRSS(_ *abuseConfig, _ *abuseRun, r, base *scenarioResult) (string, string) {
	if r.ServerExit != "" {
		return statusMissed, "the server died: " + firstLine(r.ServerExit)
	}
	if r.PeakRSS < 0 {
		return statusNotJudged, "peak RSS not measured"
	}
	detail := fmt.Sprintf("peak RSS %s", formatMiB(r.PeakRSS))
	if base != nil && base.PeakRSS >= 0 {
		detail += fmt.Sprintf(" (baseline %s)", formatMiB(base.PeakRSS))
	}
	return metIf(r.PeakRSS <= rssLimit), detail
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// distinct lists the different values of s, sorted.
func distinct(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

// judgeAbuse returns a verdict per target whose attack ran, in order.
func judgeAbuse(cfg *abuseConfig, run *abuseRun) []verdict {
	var base *scenarioResult
	byID := map[string]*scenarioResult{}
	for _, s := range run.Results {
		byID[s.ID] = s
		if s.ID == baselineID {
			base = s
		}
	}
	var out []verdict
	for _, t := range abuseTargets {
		r := byID[t.id]
		if r == nil {
			continue
		}
		v := verdict{Target: t.goal, Engine: "goatdb serve"}
		v.Status, v.Detail = t.judge(cfg, run, r, base)
		if cfg.mode != "full" {
			v.Detail += fmt.Sprintf(" [%s sizes]", cfg.mode)
		}
		out = append(out, v)
	}
	return out
}
