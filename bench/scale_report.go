package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// scaleReport is a scale run's output.
type scaleReport struct {
	Machine  machine       `json:"machine"`
	Sizes    string        `json:"sizes"`
	Cache    string        `json:"cache"`
	Results  *scaleResults `json:"results"`
	Notes    []string      `json:"notes"`
	sections []section
}

func buildScaleReport(cfg *scaleConfig, res *scaleResults) *scaleReport {
	r := &scaleReport{Machine: thisMachine(), Cache: cfg.cache, Results: res}
	var sizes []string
	if res.Repo != nil {
		sizes = append(sizes, fmt.Sprintf("one repository of %s items and %s commits", thousands(cfg.items), thousands(cfg.commits)))
		r.sections = append(r.sections, repoScaleSection(cfg, res.Repo))
	}
	if res.Server != nil {
		sizes = append(sizes, fmt.Sprintf("a server of %s repositories of %s items", thousands(cfg.repos), thousands(cfg.repoItems)))
		r.sections = append(r.sections, serverScaleSection(cfg, res.Server))
	}
	for i, s := range sizes {
		if i > 0 {
			r.Sizes += "; "
		}
		r.Sizes += s
	}
	r.Notes = scaleNotes(cfg)
	return r
}

// figureTable is a table of named figures.
func figureTable(caption string) table {
	return table{Caption: caption, Columns: []column{{name: "measure"}, {name: "value", right: true}, {name: "detail"}}}
}

func (t *table) add(name, value, detail string) {
	t.Rows = append(t.Rows, []string{name, value, detail})
}

// oneLine joins the lines of errors.Join's message.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", "; ") }

func builtDetail(b *builtSet) string {
	if b == nil {
		return ""
	}
	s := "built by a child process, peak RSS " + formatSize(b.PeakRSS)
	if b.Cached {
		s += "; cached by an earlier run"
	}
	return s
}

func latencyDetail(f latencyFigures) string {
	return fmt.Sprintf("p99 %s, max %s, n %s", formatNS(f.P99), formatNS(f.Max), thousands(f.N))
}

func syncDetail(s syncStat) string {
	return fmt.Sprintf("%s B up, %s B down, round trips %d", thousands(int(s.Sent)), thousands(int(s.Received)), s.Rounds)
}

func repoScaleSection(cfg *scaleConfig, r *repoScale) section {
	t := figureTable("")
	if r.Build != nil {
		t.add("build", formatNS(float64(r.Build.BuildNS)), builtDetail(r.Build))
		t.add("log size", formatSize(r.Build.LogBytes), fmt.Sprintf("%s B per commit", sig3(float64(r.Build.LogBytes)/float64(r.Commits))))
	}
	if r.Opens > 0 {
		t.add("open (goatdb.Open + DB.Repo)", formatNS(r.OpenNS), fmt.Sprintf("median of %d processes, min %s, max %s", r.Opens, formatNS(r.OpenMin), formatNS(r.OpenMax)))
		t.add("RSS after open", formatSize(r.RSS), "peak while opening (VmHWM) "+formatSize(r.HWM))
		t.add("RSS per item", formatSize(r.RSS/int64(r.Items)), fmt.Sprintf("per commit %s", formatSize(r.RSS/int64(r.Commits))))
		t.add("Go heap after open", formatSize(r.HeapLive), fmt.Sprintf("live after a GC; %s per commit; heap from the OS %s", formatSize(r.HeapLive/int64(r.Commits)), formatSize(r.HeapSys)))
		t.add("read by path, cold", formatNS(r.Cold.P50), "first read of a key after open; "+latencyDetail(r.Cold))
		t.add("read by path, hot", formatNS(r.Hot.P50), "the same keys read again; "+latencyDetail(r.Hot))
		t.add(fmt.Sprintf("query (QueryOnce, %s results)", thousands(r.Results)), formatNS(r.Query.P50), "count ≥ the top 1%'s least; "+latencyDetail(r.Query))
		t.add("RSS after reads and queries", formatSize(r.RSSAfter), "")
	}
	if s := r.Sync; s != nil {
		t.add("sync server: first GET", formatNS(s.ServerLoadNS), "opens the repository; server RSS after the syncs "+formatSize(s.ServerRSS))
		t.add("sync client: open", formatNS(s.ClientOpenNS), "client RSS at the end "+formatSize(s.ClientRSS))
		t.add("sync of 1 new commit, first contact", formatNS(s.First.NS), "no resume point; "+syncDetail(s.First))
		t.add("sync of 1 new commit, resumed", formatNS(s.LaterMedian.NS), fmt.Sprintf("median of %d; %s", len(s.Later), syncDetail(s.LaterMedian)))
	}
	if r.Failed != "" {
		t.add("stopped", "-", oneLine(r.Failed))
	}
	title := fmt.Sprintf("One repository: %s items, %s commits (%s writes per item), signed, on disk", thousands(r.Items), thousands(r.Commits), sig3(float64(r.Commits)/float64(r.Items)))
	return section{ID: "scale-repo", Title: title, Tables: []table{t}, Data: r}
}

func serverScaleSection(cfg *scaleConfig, s *serverScale) section {
	t := figureTable("")
	if s.Build != nil {
		t.add("build", formatNS(float64(s.Build.BuildNS)), builtDetail(s.Build))
		t.add("log size", formatSize(s.Build.LogBytes), fmt.Sprintf("%s per repository", formatSize(s.Build.LogBytes/int64(s.Repos))))
	}
	if s.StartNS > 0 {
		t.add("start until /healthz answers", formatNS(s.StartNS), "from the process's start")
		t.add("RSS at start", formatSize(s.RSSStart), "")
		t.add("GET, first touch of a repository", formatNS(s.First.P50), thousands(s.Touched)+" random repositories, one item each; "+latencyDetail(s.First))
		t.add("GET, hot repository", formatNS(s.Hot.P50), "random items of those repositories; "+latencyDetail(s.Hot))
		t.add(fmt.Sprintf("RSS after %s repositories read", thousands(s.Touched)), formatSize(s.RSSAfter), fmt.Sprintf("peak (VmHWM) %s; %s per repository read over the start",
			formatSize(s.HWM), formatSize((s.RSSAfter-s.RSSStart)/int64(max(s.Touched, 1)))))
	}
	if s.Failed != "" {
		t.add("stopped", "-", oneLine(s.Failed))
	}
	title := fmt.Sprintf("Server: %s repositories of %s items, JSON API without authentication on 127.0.0.1", thousands(s.Repos), thousands(s.RepoItems))
	return section{ID: "scale-server", Title: title, Tables: []table{t}, Data: s}
}

func scaleNotes(cfg *scaleConfig) []string {
	notes := []string{
		fmt.Sprintf("Every figure is taken in a child process (this binary started again), so RSS (VmRSS of /proc/PID/status) is that of what it measures alone; "+
			"the largest child is stopped when the children running pass %s of RSS together, and the report says so. The data sets are built once and cached in %s; "+
			"their log files are in the OS page cache (they were just built or read).", formatSize(cfg.maxRSS), cfg.cache),
	}
	if cfg.repoOn {
		notes = append(notes, repoNotes(cfg)...)
	}
	if cfg.servOn {
		notes = append(notes, serverNotes(cfg)...)
	}
	return notes
}

func repoNotes(cfg *scaleConfig) []string {
	extra := ""
	if r := cfg.commits % cfg.items; r > 0 {
		extra = fmt.Sprintf(" (once more for the first %s items)", thousands(r))
	}
	return []string{
		fmt.Sprintf("One repository: the items are GoatDB's workload's, schema test/1 {title, count, tags set}; item i is written %s times%s, "+
			"each write after the first changing count and title; signed commits (the default). Built with Async durability in batches of %s items, "+
			"%d writers at once.", thousands(cfg.commits/cfg.items), extra, thousands(cfg.batch), cfg.workers),
		fmt.Sprintf("Open: goatdb.Open with the default options and DB.Repo, which opens the repository; after one untimed open (which warms the OS page cache, "+
			"and lets goatdb write at Close what it keeps beside the log), %d child processes, each then reads %s random keys once "+
			"(cold: each key's first read after open, timed one by one), then three times more in new orders (hot), and evaluates the query %d times.",
			cfg.opens, thousands(min(cfg.keys, cfg.items)), cfg.queries),
		fmt.Sprintf("Sync: a server child (server.New, no authentication, no rate limit) serves one copy of the data; a client child opens another copy with a new "+
			"session key, updates one item (one new signed commit, Sync durability) and calls DB.Sync: first without a resume point, then %d more times, "+
			"each with one new commit. Bytes are on the wire after compression, as the client counts them.", cfg.syncs),
	}
}

func serverNotes(cfg *scaleConfig) []string {
	return []string{
		fmt.Sprintf("Server: %s repositories /test/r0… of %s items of the workload's shape, one write each, built with Async durability, %d repositories at once.",
			thousands(cfg.repos), thousands(cfg.repoItems), cfg.workers),
		fmt.Sprintf("A child serves the data directory with goatdb serve's bounds (at most 1,000 repositories open, 512 MiB of estimated repository memory; "+
			"no authentication, no rate limit); start-up is from the process's start until GET /healthz answers 200. Then one keep-alive connection GETs "+
			"(GET /v1/items/test/rJ/iK) one random item of each of %s random repositories (first touch: the server opens the repository), then %s GETs "+
			"of random items of those repositories (hot).", thousands(min(cfg.touch, cfg.repos)), thousands(cfg.hot)),
	}
}

func (r *scaleReport) writeText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "goatdb at scale\n\n")
	fmt.Fprintf(bw, "machine: %s\n", r.Machine)
	fmt.Fprintf(bw, "sizes:   %s\n", r.Sizes)
	fmt.Fprintf(bw, "data:    cached in %s\n", r.Cache)
	for _, s := range r.sections {
		fmt.Fprintf(bw, "\n%s\n\n", s.Title)
		for _, t := range s.Tables {
			t.write(bw)
		}
	}
	fmt.Fprintf(bw, "\nNotes\n")
	for _, n := range r.Notes {
		fmt.Fprintf(bw, "- %s\n", n)
	}
	return bw.Flush()
}

func (r *scaleReport) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
