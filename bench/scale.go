package main

// The scale benchmark (go run . --scale): goatdb at large sizes. One
// repository of --scale-items items of the workload's shape written
// --scale-commits times in all (open time, memory, reads by path cold and
// hot, a query, and the sync of one new commit with a peer holding the
// same data), and a server holding --scale-repos repositories of
// --scale-repo-items items (start-up, memory, first and later reads of
// repositories over the JSON API). Every figure comes from a child
// process, this binary started again (scale_child.go), so that its memory
// is that of what it measures alone; the data sets are built once and
// kept in --scale-cache.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// scaleFormat names how the cached data sets are laid out: a cache built
// under another marker is built again.
const scaleFormat = "goatdb-scale-v1"

// The scale benchmark's repositories: the big one, and the server's
// /test/r0…
const (
	scaleRepo       = "/test/scale"
	scaleRepoPrefix = "/test/r"
)

// scaleConfig is what one scale run measures.
type scaleConfig struct {
	items     int    // items of the big repository
	commits   int    // commits of the big repository, items included
	repos     int    // repositories of the server
	repoItems int    // items of each of them
	cache     string // where the built data sets are kept
	dir       string // where the temporary copies go

	opens   int   // child processes that open the big repository
	keys    int   // random keys read cold, then hot, per open
	queries int   // QueryOnce per open
	syncs   int   // syncs of one new commit after the first
	touch   int   // repositories of the server read from
	hot     int   // GETs of repositories already touched
	batch   int   // items per write when building
	maxRSS  int64 // a child over this resident size is stopped
	repoOn  bool  // measure the big repository
	servOn  bool  // measure the server
	workers int   // concurrent writers when building
}

// defaultScaleConfig is the sizes.
func defaultScaleConfig() scaleConfig {
	return scaleConfig{
		items: 1_000_000, repos: 10_000, repoItems: 100, dir: os.TempDir(),
		opens: 5, keys: 10_000, queries: 5, syncs: 5, touch: 1_000, hot: 2_000,
		batch: 10_000, maxRSS: 16 << 30, repoOn: true, servOn: true, workers: runtime.GOMAXPROCS(0),
	}
}

// writesOf is how many times item i is written: commits/items, and one
// more for the first commits%items items.
func (c *scaleConfig) writesOf(i int) int {
	w := c.commits / c.items
	if i < c.commits%c.items {
		w++
	}
	return w
}

// scaleRecord is version j (0 the first) of item i of the big
// repository: the workload's item i, its title and count changed by
// every later write.
func scaleRecord(items, i, j int) record {
	r := recordOf(i)
	if j > 0 {
		r.Title += " v" + strconv.Itoa(j)
	}
	r.Count = float64(i + j*items)
	return r
}

func scalePath(i int) string           { return scaleRepo + "/" + httpKey(i) }
func scaleRepoPath(j int) string       { return scaleRepoPrefix + strconv.Itoa(j) }
func scaleRepoItem(j, k int) string    { return scaleRepoPath(j) + "/" + httpKey(k) }
func (c *scaleConfig) repoDir() string { return filepath.Join(c.cache, "repo") }
func (c *scaleConfig) serverDir() string {
	return filepath.Join(c.cache, fmt.Sprintf("server-%d-%d", c.repos, c.repoItems))
}

// scaleMode reports whether args ask for the scale benchmark (--scale
// before any "--").
func scaleMode(args []string) bool { return modeFlag(args, "scale") }

// runScaleCommand is run for --scale: 0 on success, 1 if the benchmark
// failed, 2 on bad usage. Progress goes to stderr, the report to stdout.
func runScaleCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, asJSON, err := parseScaleFlags(args, stderr)
	if err != nil {
		return 2
	}
	res, err := runScale(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bench: scale: %v\n", err)
		return 1
	}
	rep := buildScaleReport(cfg, res)
	if asJSON {
		err = rep.writeJSON(stdout)
	} else {
		err = rep.writeText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	return 0
}

func parseScaleFlags(args []string, stderr io.Writer) (*scaleConfig, bool, error) {
	fs := flag.NewFlagSet("bench --scale", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := defaultScaleConfig()
	fs.Bool("scale", true, "run the scale benchmark (this mode)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	items := fs.Int("scale-items", def.items, "items of the big repository")
	commits := fs.Int("scale-commits", 0, "commits of the big repository, its items' first writes included (default 10 × --scale-items)")
	repos := fs.Int("scale-repos", def.repos, "repositories of the server")
	repoItems := fs.Int("scale-repo-items", def.repoItems, "items of each of the server's repositories")
	cache := fs.String("scale-cache", "", "`directory` keeping the built data sets (default TMPDIR/goatdb-scale-ITEMS-COMMITS)")
	dir := fs.String("dir", def.dir, "`directory` for the temporary copies the sync measure makes")
	opens := fs.Int("scale-opens", def.opens, "child processes opening the big repository (the figures are their medians)")
	keys := fs.Int("scale-keys", def.keys, "random keys each of them reads cold, then hot")
	touch := fs.Int("scale-touch", def.touch, "repositories of the server read from, one item each")
	syncs := fs.Int("scale-syncs", def.syncs, "syncs of one new commit after the first")
	maxGiB := fs.Float64("scale-max-rss-gib", float64(def.maxRSS>>30), "stop a child process when the children's resident memory together passes this many GiB (0: no limit)")
	repoOn := fs.Bool("scale-repo", true, "measure the big repository")
	servOn := fs.Bool("scale-server", true, "measure the server of many repositories")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run . --scale [--scale-items N] [--scale-commits N] [--scale-repos N] [--scale-repo-items N] [--scale-cache DIR] [--json]\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, false, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return nil, false, flag.ErrHelp
	}
	cfg := def
	cfg.items, cfg.commits, cfg.repos, cfg.repoItems = *items, *commits, *repos, *repoItems
	if cfg.commits == 0 {
		cfg.commits = 10 * cfg.items
	}
	cfg.dir, cfg.opens, cfg.keys, cfg.touch, cfg.syncs = *dir, *opens, *keys, *touch, *syncs
	cfg.maxRSS, cfg.repoOn, cfg.servOn = int64(*maxGiB*(1<<30)), *repoOn, *servOn
	cfg.cache = *cache
	if cfg.cache == "" {
		cfg.cache = filepath.Join(os.TempDir(), fmt.Sprintf("goatdb-scale-%d-%d", cfg.items, cfg.commits))
	}
	if err := cfg.check(); err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return nil, false, err
	}
	return &cfg, *asJSON, nil
}

func (c *scaleConfig) check() error {
	switch {
	case c.items < 1 || c.commits < c.items:
		return fmt.Errorf("--scale-commits (%d) must be at least --scale-items (%d), which must be positive", c.commits, c.items)
	case c.repos < 1 || c.repoItems < 1:
		return errors.New("--scale-repos and --scale-repo-items must be positive")
	case c.opens < 1 || c.keys < 1 || c.touch < 1 || c.syncs < 1:
		return errors.New("--scale-opens, --scale-keys, --scale-touch and --scale-syncs must be positive")
	case !abuseSupported:
		return errors.New("the scale benchmark needs Linux (/proc)")
	}
	return nil
}

// scaleResults are a run's figures; a part that did not run is nil.
type scaleResults struct {
	Repo   *repoScale   `json:"repo,omitempty"`
	Server *serverScale `json:"server,omitempty"`
}

// builtSet describes a cached data set: its marker file holds it.
type builtSet struct {
	Format   string `json:"format"`
	Sizes    string `json:"sizes"`
	BuildNS  int64  `json:"build_ns"`
	PeakRSS  int64  `json:"build_peak_rss"`
	LogBytes int64  `json:"log_bytes"`
	Cached   bool   `json:"cached"` // found built by an earlier run
}

// ensureBuilt returns the data set in dir, built by a child process with
// role and orders unless its marker says it is built for sizes.
func ensureBuilt(ctx context.Context, cfg *scaleConfig, exe, dir, sizes, role string, orders any, progress io.Writer) (*builtSet, error) {
	marker := dir + ".built"
	if b, err := os.ReadFile(marker); err == nil {
		var s builtSet
		if json.Unmarshal(b, &s) == nil && s.Format == scaleFormat && s.Sizes == sizes {
			if _, err := os.Stat(dir); err == nil {
				s.Cached = true
				fmt.Fprintf(progress, "scale: %s: cached in %s (built in %v)\n", sizes, dir, time.Duration(s.BuildNS).Round(time.Millisecond))
				return &s, nil
			}
		}
	}
	if err := errors.Join(os.Remove(marker), os.RemoveAll(dir)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "scale: building %s in %s\n", sizes, dir)
	began := time.Now()
	var out buildResult
	peak, err := runChild(ctx, cfg, exe, role, orders, &out, progress)
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	s := &builtSet{Format: scaleFormat, Sizes: sizes, BuildNS: time.Since(began).Nanoseconds(), PeakRSS: max(peak, out.HWM), LogBytes: logBytes(dir)}
	fmt.Fprintf(progress, "scale: built %s in %v\n", sizes, time.Duration(s.BuildNS).Round(time.Millisecond))
	b, _ := json.Marshal(s)
	return s, os.WriteFile(marker, b, 0o644)
}

// logBytes sums the sizes of the repository logs under dir.
func logBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".log") {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// runScale measures what cfg selects.
func runScale(ctx context.Context, cfg *scaleConfig, progress io.Writer) (*scaleResults, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	raiseFileLimit()
	res := &scaleResults{}
	if cfg.repoOn {
		if res.Repo, err = runRepoScale(ctx, cfg, exe, progress); err != nil {
			return nil, err
		}
	}
	if cfg.servOn {
		if res.Server, err = runServerScale(ctx, cfg, exe, progress); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// errOverRSS is a child stopped for passing cfg.maxRSS.
var errOverRSS = errors.New("the children's resident memory together over the limit")

// child is a running child process.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Reader
	peak   atomic.Int64 // highest VmHWM sampled
	over   atomic.Bool  // stopped for passing the limit
	overAt atomic.Int64 // the children's RSS together then
	exited chan struct{}
	err    error // cmd.Wait's, once exited is closed
	began  time.Time
	role   string
}

// liveChildren are the children running: the memory limit applies to
// their resident memory together, since they share this machine's.
var liveChildren sync.Map // *child → struct{}

// liveChildrenRSS sums the VmRSS of the children running, and returns
// the largest of them.
func liveChildrenRSS() (int64, *child) {
	var n, most int64
	var big *child
	liveChildren.Range(func(k, _ any) bool {
		c := k.(*child)
		v := max(procStatusBytes(c.cmd.Process.Pid, "VmRSS"), 0)
		n += v
		if v > most && !c.over.Load() {
			most, big = v, c
		}
		return true
	})
	return n, big
}

// startChild starts this binary as a child of role, sends it orders, and
// watches its resident memory: once the children running pass cfg.maxRSS
// together, the largest of them is killed.
func startChild(cfg *scaleConfig, exe, role string, orders any, progress io.Writer) (*child, error) {
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), scaleChildEnv+"="+role)
	cmd.Stderr = progress
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	killWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout), exited: make(chan struct{}), began: time.Now(), role: role}
	liveChildren.Store(c, struct{}{})
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-c.exited:
				return
			case <-t.C:
			}
			v := procStatusBytes(cmd.Process.Pid, "VmHWM")
			if v > c.peak.Load() {
				c.peak.Store(v)
			}
			if total, big := liveChildrenRSS(); cfg.maxRSS > 0 && total > cfg.maxRSS && big != nil {
				big.overAt.Store(total)
				big.over.Store(true)
				big.cmd.Process.Kill()
			}
		}
	}()
	b, _ := json.Marshal(orders)
	if _, err := stdin.Write(append(b, '\n')); err != nil {
		c.kill()
		return nil, err
	}
	return c, nil
}

// wait waits for the child's exit.
func (c *child) wait() error {
	c.err = c.cmd.Wait()
	liveChildren.Delete(c)
	close(c.exited)
	if c.over.Load() {
		return fmt.Errorf("the %s child stopped after %v at %s (its own peak %s): %w", c.role, time.Since(c.began).Round(time.Second),
			formatSize(c.overAt.Load()), formatSize(c.peak.Load()), errOverRSS)
	}
	return c.err
}

func (c *child) kill() {
	c.cmd.Process.Kill()
	c.wait()
}

// readLine reads the child's next line of output, or its failure.
func (c *child) readLine(into any) error {
	line, err := c.out.ReadString('\n')
	if err != nil {
		return fmt.Errorf("child output: %w", err)
	}
	var fail struct {
		Error string `json:"error"`
	}
	if json.Unmarshal([]byte(line), &fail) == nil && fail.Error != "" {
		return errors.New(fail.Error)
	}
	return json.Unmarshal([]byte(line), into)
}

// runChild runs a child of role to its end and decodes its answer into
// out; it returns the child's peak resident memory.
func runChild(ctx context.Context, cfg *scaleConfig, exe, role string, orders, out any, progress io.Writer) (int64, error) {
	c, err := startChild(cfg, exe, role, orders, progress)
	if err != nil {
		return 0, err
	}
	stop := context.AfterFunc(ctx, func() { c.cmd.Process.Kill() })
	defer stop()
	c.stdin.Close()
	rerr := c.readLine(out)
	werr := c.wait()
	if werr != nil {
		if errors.Is(werr, errOverRSS) || rerr == nil {
			return c.peak.Load(), werr
		}
		return c.peak.Load(), fmt.Errorf("%v (%v)", rerr, werr)
	}
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	return c.peak.Load(), rerr
}

// formatSize formats a size in bytes with three significant digits:
// 512 B, 3.27 KiB, 18.4 MiB, 1.25 GiB.
func formatSize(n int64) string {
	if n < 0 {
		return "-"
	}
	x := float64(n)
	for _, u := range []string{"B", "KiB", "MiB", "GiB"} {
		if x < 1024 || u == "GiB" {
			if u == "B" {
				return fmt.Sprintf("%d B", n)
			}
			return sig3(x) + " " + u
		}
		x /= 1024
	}
	return ""
}
