package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/server"
)

// buildServer builds cmd/goatdb of the module the bench module replaces
// (the working tree) into dir, and says which commit it is.
func buildServer(ctx context.Context, dir string) (bin, source string, err error) {
	bin = filepath.Join(dir, "goatdb")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/goatdb/goatdb/cmd/goatdb")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", "", fmt.Errorf("go build github.com/goatdb/goatdb/cmd/goatdb (run from bench/, or give --bin): %v\n%s", err, out.String())
	}
	source = "the working tree"
	if rev, err := exec.Command("git", "-C", "..", "rev-parse", "--short", "HEAD").Output(); err == nil {
		source = "commit " + strings.TrimSpace(string(rev))
		if st, err := exec.Command("git", "-C", "..", "status", "--porcelain", "--untracked-files=no").Output(); err == nil {
			if n := len(strings.Fields(strings.TrimSpace(strings.ReplaceAll(string(st), " ", "")))); n > 0 {
				source += fmt.Sprintf(" with %d modified files", n)
			}
		}
	}
	return bin, source, nil
}

// serverVersion returns the first line of 'goatdb version'.
func serverVersion(bin string) string {
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		return "goatdb (version unknown)"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// flagLine matches a flag's line in 'goatdb serve -h': "  -name TYPE".
var flagLine = regexp.MustCompile(`^  -([a-z][a-z0-9-]*)(?: |$)`)

// serveFlags returns the flags 'goatdb serve -h' lists, each with its
// default ("" if it has none), so that the harness passes only flags the
// server has and reports the limits in force.
func serveFlags(bin string) (map[string]string, error) {
	out, _ := exec.Command(bin, "serve", "-h").CombinedOutput() // -h exits non-zero
	flags := parseServeHelp(string(out))
	if _, ok := flags["addr"]; !ok {
		return nil, fmt.Errorf("'%s serve -h' lists no --addr flag:\n%s", bin, out)
	}
	return flags, nil
}

// parseServeHelp reads the flags and their defaults from the usage text
// of the flag package.
func parseServeHelp(out string) map[string]string {
	flags := map[string]string{}
	name := ""
	for _, line := range strings.Split(out, "\n") {
		if m := flagLine.FindStringSubmatch(line); m != nil {
			name = m[1]
			flags[name] = ""
			continue
		}
		if name != "" && strings.HasPrefix(line, "    ") {
			if i := strings.LastIndex(line, "(default "); i >= 0 {
				flags[name] = strings.Trim(strings.TrimSuffix(strings.TrimSpace(line[i+len("(default "):]), ")"), `"`)
			}
		}
	}
	return flags
}

// Repositories of the template.
const (
	bigRepo = "/data/big" // the big repository, cfg.items items
)

// template is the data directory every server starts from: the big
// repository, the deployment's identity, users, and unused login codes
// (a copy of the directory takes each of them once).
type template struct {
	dir   string
	repos int                 // repositories in it
	codes map[string][]string // login codes by user
}

func (t *template) codeCount() int {
	n := 0
	for _, c := range t.codes {
		n += len(c)
	}
	return n
}

// code returns user's i-th login code.
func (t *template) code(user string, i int) (string, error) {
	cs := t.codes[user]
	if i >= len(cs) {
		return "", fmt.Errorf("no login code %d for %s", i, user)
	}
	return cs[i], nil
}

// The users of the template.
const (
	attackerUser = "mallory"
)

func ordinaryUser(i int) string { return fmt.Sprintf("ord-%d", i) }
func probeUser(i int) string    { return fmt.Sprintf("probe-%d", i) }
func crowdUser(i int) string    { return fmt.Sprintf("crowd-%d", i) }

// makeTemplate makes the template data directory: cfg.items items in
// bigRepo (Async durability, then flushed), the identity, and login codes
// for the ordinary clients, the stream probes, the crowd of attack 7a and
// the attacker (one per session it logs in).
func makeTemplate(ctx context.Context, cfg *abuseConfig, base string) (*template, error) {
	t := &template{dir: filepath.Join(base, "template"), codes: map[string][]string{}}
	db, err := goatdb.Open(t.dir, &goatdb.Options{Durability: goatdb.Async})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	const batch = 1000
	pad := strings.Repeat("lorem ipsum ", 8)
	for i := 0; i < cfg.items; i += batch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b := db.Batch()
		for j := i; j < min(i+batch, cfg.items); j++ {
			b.Put(fmt.Sprintf("%s/item-%06d", bigRepo, j), goatdb.Fields{"title": fmt.Sprintf("Item %d", j), "n": float64(j), "text": pad})
		}
		if _, err := b.Commit(); err != nil {
			return nil, err
		}
	}
	id, err := server.OpenIdentity(t.dir)
	if err != nil {
		return nil, err
	}
	acc, err := server.OpenAccounts(db, id, nil)
	if err != nil {
		return nil, err
	}
	add := func(user string, n int) error {
		for range n {
			code, _, err := acc.AddUser(user, nil)
			if err != nil {
				return fmt.Errorf("add user %s: %w", user, err)
			}
			t.codes[user] = append(t.codes[user], code)
		}
		return nil
	}
	for i := range cfg.clients {
		if err := errors.Join(add(ordinaryUser(i), 1), add(probeUser(i), 1)); err != nil {
			return nil, err
		}
	}
	for i := range cfg.crowd {
		if err := add(crowdUser(i), 1); err != nil {
			return nil, err
		}
	}
	if err := add(attackerUser, max(cfg.neverReading, 1)); err != nil {
		return nil, err
	}
	if err := db.Flush(); err != nil {
		return nil, err
	}
	repos, err := db.Repos()
	if err != nil {
		return nil, err
	}
	t.repos = len(repos)
	return t, db.Close()
}

// copyDir copies the regular files of src into dst, recreating folders.
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		case !d.Type().IsRegular():
			return nil // the admin socket
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode().Perm())
	})
}

// countRepos counts the repository logs in a data directory.
func countRepos(dir string) int {
	n := 0
	types, _ := os.ReadDir(dir)
	for _, t := range types {
		if !t.IsDir() {
			continue
		}
		logs, _ := filepath.Glob(filepath.Join(dir, t.Name(), "*.log"))
		n += len(logs)
	}
	return n
}

// serverProc is a running 'goatdb serve'.
type serverProc struct {
	cmd        *exec.Cmd
	url        string // http://127.0.0.1:PORT
	host       string // 127.0.0.1:PORT
	metricsURL string // http://HOST:PORT/metrics, or "" without --metrics-addr
	logPath    string
	exited     chan struct{} // closed when the process has exited
	waitErr    error         // the exit status, once exited is closed
	stopOnce   sync.Once
}

// startServer starts 'goatdb --dir dir serve --addr 127.0.0.1:0' with
// flags, and returns once it answers /healthz. It is killed if the bench
// process dies. Stop it with stop.
func startServer(ctx context.Context, bin, dir, logPath string, flags []string) (*serverProc, error) {
	args := append([]string{"--dir", dir, "serve", "--addr", "127.0.0.1:0"}, flags...)
	cmd := exec.Command(bin, args...)
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	killWithParent(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &serverProc{cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
		close(lines)
	}()
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	wantMetrics := false
	for _, f := range flags {
		wantMetrics = wantMetrics || f == "--metrics-addr"
	}
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for p.url == "" || wantMetrics && p.metricsURL == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				p.stop()
				return nil, fmt.Errorf("goatdb serve exited: %v\n%s", p.waitErr, tail(logPath, 20))
			}
			if i := strings.Index(line, " on http://"); strings.HasPrefix(line, "goatdb: serving ") && i >= 0 {
				p.url = line[i+len(" on "):]
				p.host = strings.TrimPrefix(p.url, "http://")
			}
			if u, ok := strings.CutPrefix(line, "goatdb: metrics on "); ok {
				p.metricsURL = u
			}
		case <-deadline.C:
			p.stop()
			return nil, fmt.Errorf("goatdb serve did not say where it listens within 30 s\n%s", tail(logPath, 20))
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		}
	}
	go func() {
		for range lines { // keep the pipe drained
		}
	}()
	for start := time.Now(); ; {
		resp, err := http.Get(p.url + "/healthz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		if time.Since(start) > 30*time.Second {
			p.stop()
			return nil, fmt.Errorf("goatdb serve does not answer /healthz: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether the process still runs.
func (p *serverProc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop asks the server to stop (SIGTERM), and kills it if it has not
// within 5 s.
func (p *serverProc) stop() {
	p.stopOnce.Do(func() {
		if !p.alive() {
			return
		}
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// sampler follows a server process while an attack runs: its resident
// memory every 100 ms, and, with metrics, the gauges every 500 ms.
type sampler struct {
	pid        int
	metricsURL string

	mu       sync.Mutex
	maxRSS   int64              // highest VmRSS sampled, -1 if none
	maxGauge map[string]float64 // highest value of each gauge sampled
}

// gauges sampled for their peak.
var sampledGauges = []string{"goatdb_event_streams", "goatdb_http_connections", "goatdb_memory_budget_in_use_bytes", "goatdb_repositories", "goatdb_repositories_open"}

func newSampler(pid int, metricsURL string) *sampler {
	return &sampler{pid: pid, metricsURL: metricsURL, maxRSS: -1, maxGauge: map[string]float64{}}
}

// run samples until ctx ends.
func (s *sampler) run(ctx context.Context) {
	rss := time.NewTicker(100 * time.Millisecond)
	defer rss.Stop()
	met := time.NewTicker(500 * time.Millisecond)
	defer met.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-rss.C:
			if v := procStatusBytes(s.pid, "VmRSS"); v >= 0 {
				s.mu.Lock()
				s.maxRSS = max(s.maxRSS, v)
				s.mu.Unlock()
			}
		case <-met.C:
			if s.metricsURL == "" {
				continue
			}
			m, err := scrapeMetrics(s.metricsURL)
			if err != nil {
				continue
			}
			s.mu.Lock()
			for _, g := range sampledGauges {
				if v, ok := m[g]; ok {
					s.maxGauge[g] = max(s.maxGauge[g], v)
				}
			}
			s.mu.Unlock()
		}
	}
}

// scrapeMetrics reads a Prometheus text page into "name{labels}" → value.
func scrapeMetrics(url string) (map[string]float64, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}

// requestCounts picks from scraped metrics the requests a route got, by
// status code: goatdb_http_requests_total{route="/v1/sync",code="429"}.
// It returns nil if the metrics have no such series.
func requestCounts(m map[string]float64, route string) map[string]int {
	var out map[string]int
	for k, v := range m {
		rest, ok := strings.CutPrefix(k, "goatdb_http_requests_total{")
		if !ok || !strings.Contains(rest, `route="`+route+`"`) {
			continue
		}
		i := strings.Index(rest, `code="`)
		if i < 0 {
			continue
		}
		code, _, _ := strings.Cut(rest[i+len(`code="`):], `"`)
		if out == nil {
			out = map[string]int{}
		}
		out[code] += int(v)
	}
	return out
}

// limitHits picks from scraped metrics the refusals by limit,
// goatdb_limit_hits_total{limit="session_rate"}, leaving out the limits
// never hit; nil if the metrics have no such series.
func limitHits(m map[string]float64) map[string]int {
	var out map[string]int
	for k, v := range m {
		rest, ok := strings.CutPrefix(k, "goatdb_limit_hits_total{")
		if !ok {
			continue
		}
		if out == nil {
			out = map[string]int{}
		}
		i := strings.Index(rest, `limit="`)
		if i < 0 || v == 0 {
			continue
		}
		name, _, _ := strings.Cut(rest[i+len(`limit="`):], `"`)
		out[name] += int(v)
	}
	return out
}
