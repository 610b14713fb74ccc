package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"unicode/utf8"
)

// report is a run's output: the machine, sections of figures, notes and
// the targets' verdicts. Text output prints each section as a table; JSON
// output gives the figures behind them.
type report struct {
	Machine  machine   `json:"machine"`
	Mode     string    `json:"mode"`
	Items    int       `json:"items"`
	Dir      string    `json:"dir"` // where the temporary data was
	Sections []section `json:"sections"`
	Notes    []string  `json:"notes"`
	Targets  []verdict `json:"targets"`
}

// section is one part of a report: a titled set of tables with their
// figures. Another kind of figures is another section, built by its own
// function.
type section struct {
	ID     string  `json:"id"`
	Title  string  `json:"title"`
	Tables []table `json:"-"`
	Data   any     `json:"data"` // the figures, for JSON
}

// table is a section's text form, under an optional caption. A cell left
// empty under a left-aligned column repeats nothing: it groups rows under
// the cell above.
type table struct {
	Caption string
	Columns []column
	Rows    [][]string
}

type column struct {
	name  string
	right bool // right-aligned (numbers)
}

// machine describes where the run took place.
type machine struct {
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
	CPU        string `json:"cpu"`
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Go         string `json:"go"`
}

func thisMachine() machine {
	return machine{
		GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, CPU: cpuModel(),
		NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Go: runtime.Version(),
	}
}

// cpuModel returns the first "model name" of /proc/cpuinfo, or "unknown".
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func (m machine) String() string {
	return fmt.Sprintf("%s/%s, %s, %d CPUs (GOMAXPROCS %d), %s", m.GOOS, m.GOARCH, m.CPU, m.NumCPU, m.GOMAXPROCS, m.Go)
}

// buildReport puts a run's results into a report; syncRes is nil if the
// sync section did not run.
func buildReport(cfg *config, results []result, syncRes *syncResults) *report {
	r := &report{Machine: thisMachine(), Mode: cfg.mode, Items: cfg.items, Dir: cfg.dir}
	r.Sections = opSections(cfg, results)
	if len(results) > 0 {
		r.Notes = notes(cfg)
	}
	if slices.ContainsFunc(results, func(r result) bool { return r.op.id == opCompact }) {
		r.Notes = append(r.Notes, compactNotes(cfg)...)
	}
	if syncRes != nil {
		r.Sections = append(r.Sections, syncSection(cfg, syncRes))
		r.Notes = append(r.Notes, syncNotes(cfg, syncRes)...)
	}
	// The verdicts of what ran: a run of the sync section alone lists
	// only the sync targets, and one without it lists none of them.
	if len(results) > 0 {
		r.Targets = judge(cfg, results)
	}
	if syncRes != nil {
		r.Targets = append(r.Targets, judgeSync(cfg, syncRes)...)
	}
	return r
}

func notes(cfg *config) []string {
	return []string{
		fmt.Sprintf("Median and p95 per operation. n is the number of timed samples, which follow %d–%d untimed warm-up samples. "+
			"Each round runs every engine once, in a new random order.", slices.Min(cfg.warmups[:]), slices.Max(cfg.warmups[:])),
		"n×r: each sample timed r operations in a row (operations under 1 µs) and is their mean; p95 is of those means.",
		"create instance: open an instance in a new directory; its Close is not timed. goatdb makes its session key durable (fsyncs of the key and of the new directory) at the first use that needs it, or at Close, so that row times none of its fsyncs; bbolt's and SQLite's include theirs.",
		fmt.Sprintf("open %[1]s items: open the instance and read one item. read %[1]s items: read and decode every item of an open instance, "+
			"after one untimed read. These slow operations take %[2]d samples (so p95 is the slowest).", thousands(cfg.items), cfg.samples[kindBig]),
		fmt.Sprintf("The reads, queries, count and keys use a repository of exactly %d items; "+
			"the simple query keeps %d of them, the complex query %d (both checked every time).", smallN, len(simpleQuery.want), len(complexQuery.want)),
		"goatdb ÷ best other: goatdb's median over the best median of SQLite and bbolt in the same table; below 1, goatdb is faster.",
		"goatdb queries are evaluated from scratch in every sample, once (DB.QueryOnce); an open query that is kept up to date does less work.",
		"SQLite and bbolt decode each item they read, tags from JSON into a []string; goatdb returns decoded values.",
		"goatdb signed: Ed25519-signed commits; trusted: unsigned. sync: a write returns after fdatasync; async: flushed in the background every 50 ms. " +
			"SQLite: WAL, synchronous=FULL or OFF. bbolt: fdatasync at every commit, or NoSync.",
	}
}

// opSections returns the operation figures, a section per durability
// class.
func opSections(cfg *config, results []result) []section {
	var out []section
	for c, cl := range classes {
		var mine []result
		for _, r := range results {
			if r.spec.class == class(c) {
				mine = append(mine, r)
			}
		}
		if len(mine) == 0 {
			continue
		}
		tables := []table{opTable(cfg, mine)}
		if t, ok := compactTable(cfg, mine); ok {
			tables = append(tables, t)
		}
		out = append(out, section{ID: cl.id, Title: cl.title, Tables: tables, Data: opData(cfg, mine)})
	}
	return out
}

// opTable lays out one class's results: a group of rows per operation, a
// row per engine.
func opTable(cfg *config, results []result) table {
	t := table{Columns: []column{
		{name: "operation"}, {name: "engine"}, {name: "median", right: true}, {name: "p95", right: true},
		{name: "n", right: true}, {name: "goatdb ÷ best other"},
	}}
	for _, o := range ops {
		first := true
		for _, r := range results {
			if r.op.id != o.id {
				continue
			}
			name := ""
			if first {
				name, first = o.title(cfg.items), false
			}
			t.Rows = append(t.Rows, []string{name, r.spec.name, formatNS(r.Median), formatNS(r.P95), samplesCell(r.summary), ratioCell(r, results)})
		}
	}
	return t
}

func samplesCell(s summary) string {
	if s.Reps > 1 {
		return fmt.Sprintf("%d×%d", s.Samples, s.Reps)
	}
	return fmt.Sprint(s.Samples)
}

// ratioCell is, for a goatdb row, its median over the best other engine's
// of the same operation among results.
func ratioCell(r result, results []result) string {
	if r.spec.family != familyGoat {
		return ""
	}
	best := bestOther(r.op.id, results)
	if best == nil {
		return ""
	}
	return formatRatio(r.Median/best.Median) + " (" + best.spec.name + ")"
}

// bestOther returns the result of op with the lowest median among engines
// other than goatdb, or nil.
func bestOther(op opID, results []result) *result {
	var best *result
	for i, r := range results {
		if r.op.id == op && r.spec.family != familyGoat && (best == nil || r.Median < best.Median) {
			best = &results[i]
		}
	}
	return best
}

// opFigure is one result in JSON.
type opFigure struct {
	Op         opID    `json:"op"`
	OpName     string  `json:"op_name"`
	Engine     string  `json:"engine"`
	EngineName string  `json:"engine_name"`
	VsBest     float64 `json:"goatdb_over_best_other,omitempty"`
	summary
	Compaction *compactSummary `json:"compaction,omitempty"`
}

func opData(cfg *config, results []result) []opFigure {
	out := make([]opFigure, 0, len(results))
	for _, r := range results {
		f := opFigure{Op: r.op.id, OpName: r.op.title(cfg.items), Engine: r.spec.id, EngineName: r.spec.name, summary: r.summary, Compaction: r.compact}
		if best := bestOther(r.op.id, results); r.spec.family == familyGoat && best != nil {
			f.VsBest = r.Median / best.Median
		}
		out = append(out, f)
	}
	return out
}

// writeText prints the report for people.
func (r *report) writeText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%s\n\n", r.heading())
	fmt.Fprintf(bw, "machine: %s\n", r.Machine)
	fmt.Fprintf(bw, "mode:    %s, %s items\n", r.Mode, thousands(r.Items))
	fmt.Fprintf(bw, "data:    under %s\n", r.Dir)
	for _, s := range r.Sections {
		fmt.Fprintf(bw, "\n%s\n", s.Title)
		for _, t := range s.Tables {
			if t.Caption != "" {
				fmt.Fprintf(bw, "\n%s:\n", t.Caption)
			}
			fmt.Fprintln(bw)
			t.write(bw)
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

// heading says what the report measured.
func (r *report) heading() string {
	engines, sync, http, cluster := false, false, false, false
	for _, s := range r.Sections {
		switch s.ID {
		case syncSectionID:
			sync = true
		case httpSectionID:
			http = true
		case clusterSectionID:
			cluster = true
		default:
			engines = true
		}
	}
	var parts []string
	if engines || !sync && !http && !cluster {
		parts = append(parts, "goatdb, SQLite and bbolt on GoatDB's workload")
	}
	if sync {
		parts = append(parts, "goatdb's sync")
	}
	if http {
		parts = append(parts, "goatdb's JSON API beside SQLite behind net/http")
	}
	if cluster {
		parts = append(parts, "goatdb's replication between nodes")
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + ", and " + parts[len(parts)-1]
}

// addHTTPGet adds the http get section's figures, notes and verdict; res
// nil adds nothing.
func (r *report) addHTTPGet(cfg *config, res *httpGetResults) {
	if res == nil {
		return
	}
	r.Sections = append(r.Sections, httpSection(res))
	r.Notes = append(r.Notes, httpNotes(cfg, res)...)
	r.Targets = append(r.Targets, judgeHTTP(res))
}

// writeJSON prints the report for programs.
func (r *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// write prints the table with aligned columns, two spaces apart.
func (t table) write(w io.Writer) {
	widths := make([]int, len(t.Columns))
	for i, c := range t.Columns {
		widths[i] = utf8.RuneCountInString(c.name)
	}
	for _, row := range t.Rows {
		for i, cell := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	header := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		header[i] = c.name
	}
	t.writeRow(w, widths, header)
	for _, row := range t.Rows {
		t.writeRow(w, widths, row)
	}
}

func (t table) writeRow(w io.Writer, widths []int, cells []string) {
	var b strings.Builder
	for i, cell := range cells {
		pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell))
		if i > 0 {
			b.WriteString("  ")
		}
		if t.Columns[i].right {
			b.WriteString(pad + cell)
		} else {
			b.WriteString(cell + pad)
		}
	}
	fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
}
