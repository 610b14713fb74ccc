package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// repoScale are the figures of the big repository.
type repoScale struct {
	Items   int       `json:"items"`
	Commits int       `json:"commits"`
	Build   *builtSet `json:"build"`
	Opens   int       `json:"opens"` // child processes; the figures below are their medians unless said

	OpenNS   float64 `json:"open_ns"`
	OpenMin  float64 `json:"open_min_ns"`
	OpenMax  float64 `json:"open_max_ns"`
	RSS      int64   `json:"rss"`
	HWM      int64   `json:"hwm"`
	HeapLive int64   `json:"heap_live"`
	HeapSys  int64   `json:"heap_sys"`
	RSSAfter int64   `json:"rss_after_reads"`

	Keys    int            `json:"keys"` // per open
	Cold    latencyFigures `json:"cold_read"`
	Hot     latencyFigures `json:"hot_read"`
	Query   latencyFigures `json:"query"`
	Results int            `json:"query_results"`

	Sync *repoSync `json:"sync,omitempty"`
	// Failed says why the measures stopped early (a child over the
	// memory limit); the figures before it stand.
	Failed string `json:"failed,omitempty"`
}

// repoSync are the figures of the sync of one new commit.
type repoSync struct {
	ServerLoadNS float64    `json:"server_first_get_ns"` // the server's first GET, which opens the repository
	ServerRSS    int64      `json:"server_rss"`          // the server's VmRSS after the syncs
	ClientOpenNS float64    `json:"client_open_ns"`
	ClientRSS    int64      `json:"client_rss"`
	First        syncStat   `json:"first"`
	Later        []syncStat `json:"later"`
	LaterMedian  syncStat   `json:"later_median"` // each field's median
}

func (c *scaleConfig) repoSizes() string {
	return fmt.Sprintf("repo items=%d commits=%d", c.items, c.commits)
}

func (c *scaleConfig) orders() scaleOrders {
	return scaleOrders{Items: c.items, Commits: c.commits, Repos: c.repos, RepoItems: c.repoItems,
		Batch: c.batch, Workers: c.workers, Keys: c.keys, Queries: c.queries, Syncs: c.syncs}
}

// runRepoScale builds (or finds) the big repository and measures it.
func runRepoScale(ctx context.Context, cfg *scaleConfig, exe string, progress io.Writer) (*repoScale, error) {
	o := cfg.orders()
	o.Dir = cfg.repoDir()
	res := &repoScale{Items: cfg.items, Commits: cfg.commits, Keys: min(cfg.keys, cfg.items)}
	built, err := ensureBuilt(ctx, cfg, exe, o.Dir, cfg.repoSizes(), roleBuildRepo, o, progress)
	if errors.Is(err, errOverRSS) {
		res.Failed = err.Error()
		return res, nil
	}
	if err != nil {
		return nil, err
	}
	res.Build = built
	// An untimed open first: it reads the log into the OS page cache, and
	// lets goatdb write at Close what it keeps beside the log, as the
	// opens timed after it find it.
	var warm openResult
	if _, err := runChild(ctx, cfg, exe, roleOpen, o, &warm, progress); err != nil {
		if errors.Is(err, errOverRSS) {
			res.Failed = "open: " + err.Error()
			return res, nil
		}
		return nil, fmt.Errorf("untimed open: %w", err)
	}
	fmt.Fprintf(progress, "scale: untimed open: open %v, RSS %s\n", time.Duration(warm.OpenNS).Round(time.Millisecond), formatSize(warm.RSS))
	var opens []openResult
	for k := range cfg.opens {
		o.Seed = uint64(k + 1)
		var r openResult
		t0 := time.Now()
		if _, err := runChild(ctx, cfg, exe, roleOpen, o, &r, progress); err != nil {
			if errors.Is(err, errOverRSS) {
				res.Failed = "open: " + err.Error()
				return res, nil
			}
			return nil, fmt.Errorf("open %d: %w", k+1, err)
		}
		fmt.Fprintf(progress, "scale: open %d of %d: open %v, RSS %s (child %v)\n", k+1, cfg.opens,
			time.Duration(r.OpenNS).Round(time.Millisecond), formatSize(r.RSS), time.Since(t0).Round(time.Millisecond))
		opens = append(opens, r)
	}
	res.Opens = len(opens)
	pick := func(f func(openResult) float64) []float64 {
		var x []float64
		for _, r := range opens {
			x = append(x, f(r))
		}
		slices.Sort(x)
		return x
	}
	open := pick(func(r openResult) float64 { return r.OpenNS })
	res.OpenNS, res.OpenMin, res.OpenMax = median(open), open[0], open[len(open)-1]
	res.RSS = int64(median(pick(func(r openResult) float64 { return float64(r.RSS) })))
	res.HWM = int64(median(pick(func(r openResult) float64 { return float64(r.HWM) })))
	res.HeapLive = int64(median(pick(func(r openResult) float64 { return float64(r.HeapLive) })))
	res.HeapSys = int64(median(pick(func(r openResult) float64 { return float64(r.HeapSys) })))
	res.RSSAfter = int64(median(pick(func(r openResult) float64 { return float64(r.RSSAfter) })))
	var cold, hot, query []float64
	for _, r := range opens {
		cold, hot, query = append(cold, r.Cold...), append(hot, r.Hot...), append(query, r.Query...)
		res.Results = r.Results
	}
	res.Cold, res.Hot, res.Query = nsFigures(cold), nsFigures(hot), nsFigures(query)

	res.Sync, err = repoSyncScale(ctx, cfg, exe, progress)
	if errors.Is(err, errOverRSS) {
		res.Failed = "sync: " + err.Error()
		return res, nil
	}
	return res, err
}

// nsFigures summarizes latencies in nanoseconds.
func nsFigures(ns []float64) latencyFigures {
	lat := make([]time.Duration, len(ns))
	for i, x := range ns {
		lat[i] = time.Duration(x)
	}
	return figuresOf(lat)
}

// repoSyncScale serves a copy of the big repository (a server child) and
// syncs one new commit from another copy (a sync child), then more.
func repoSyncScale(ctx context.Context, cfg *scaleConfig, exe string, progress io.Writer) (res *repoSync, err error) {
	tmp, err := os.MkdirTemp(cfg.dir, "goatdb-scale-sync-")
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, os.RemoveAll(tmp)) }()
	t0 := time.Now()
	a, b := filepath.Join(tmp, "server"), filepath.Join(tmp, "client")
	if err := errors.Join(copyData(cfg.repoDir(), a, true), copyData(cfg.repoDir(), b, false)); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "scale: sync: copied the data twice in %v\n", time.Since(t0).Round(time.Millisecond))
	o := cfg.orders()
	o.Dir = a
	srv, err := startServeChild(ctx, cfg, exe, o, progress)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, srv.stop()) }()
	res = &repoSync{}
	c := newGetClient()
	t0 = time.Now()
	if err := c.get(srv.url, scalePath(0), `"title":"`+scaleRecord(cfg.items, 0, cfg.writesOf(0)-1).Title+`"`); err != nil {
		return nil, err
	}
	res.ServerLoadNS = float64(time.Since(t0).Nanoseconds())
	o.Dir, o.URL, o.Seed = b, srv.url, 99
	var sr syncResult
	if _, err := runChild(ctx, cfg, exe, roleSync, o, &sr, progress); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	res.ServerRSS = procStatusBytes(srv.cmd.Process.Pid, "VmRSS")
	res.ClientOpenNS, res.ClientRSS, res.First, res.Later = sr.OpenNS, sr.RSS, sr.First, sr.Later
	med := func(f func(syncStat) float64) float64 {
		var x []float64
		for _, s := range sr.Later {
			x = append(x, f(s))
		}
		slices.Sort(x)
		return median(x)
	}
	res.LaterMedian = syncStat{NS: med(func(s syncStat) float64 { return s.NS }),
		Sent: int64(med(func(s syncStat) float64 { return float64(s.Sent) })), Received: int64(med(func(s syncStat) float64 { return float64(s.Received) })),
		Rounds: int(med(func(s syncStat) float64 { return float64(s.Rounds) })), Commits: 1}
	fmt.Fprintf(progress, "scale: sync: first %v, later %v\n", time.Duration(res.First.NS).Round(time.Microsecond), time.Duration(res.LaterMedian.NS).Round(time.Microsecond))
	return res, nil
}

// serveChildProc is a running server child.
type serveChildProc struct {
	*child
	url string
}

// startServeChild starts a server child on o.Dir and returns once it
// answers /healthz.
func startServeChild(ctx context.Context, cfg *scaleConfig, exe string, o scaleOrders, progress io.Writer) (*serveChildProc, error) {
	c, err := startChild(cfg, exe, roleServe, o, progress)
	if err != nil {
		return nil, err
	}
	var hello struct {
		URL string `json:"url"`
	}
	if err := c.readLine(&hello); err != nil {
		c.kill()
		return nil, fmt.Errorf("server: %w", err)
	}
	p := &serveChildProc{child: c, url: hello.URL}
	for start := time.Now(); ; time.Sleep(2 * time.Millisecond) {
		resp, err := http.Get(p.url + "/healthz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		if ctx.Err() != nil || time.Since(start) > time.Minute {
			c.kill()
			return nil, fmt.Errorf("the server does not answer /healthz: %v", errors.Join(err, ctx.Err()))
		}
	}
}

// stop closes the server's stdin, which stops it, and waits for it.
func (p *serveChildProc) stop() error {
	p.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- p.wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		p.cmd.Process.Kill()
		return errors.Join(errors.New("the server did not stop within a minute"), <-done)
	}
}

// getClient reads items over the JSON API, one keep-alive connection.
type getClient struct{ c *http.Client }

func newGetClient() *getClient {
	return &getClient{c: &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}}
}

// get reads an item, which must answer 200 and contain want.
func (g *getClient) get(url, path, want string) error {
	resp, err := g.c.Get(url + "/v1/items" + path)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return err
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("GET %s: %s: %.200s", path, resp.Status, body)
	case !bytes.Contains(body, []byte(want)):
		return fmt.Errorf("GET %s: no %s in %.200s", path, want, body)
	}
	return nil
}

// serverScale are the figures of the server of many repositories.
type serverScale struct {
	Repos     int       `json:"repos"`
	RepoItems int       `json:"repo_items"`
	Build     *builtSet `json:"build"`

	StartNS  float64        `json:"start_ns"` // from the process's start until /healthz answers
	RSSStart int64          `json:"rss_start"`
	Touched  int            `json:"touched"`
	First    latencyFigures `json:"first_touch_get"`
	Hot      latencyFigures `json:"hot_get"`
	RSSAfter int64          `json:"rss_after"`
	HWM      int64          `json:"hwm"`
	Failed   string         `json:"failed,omitempty"`
}

func (c *scaleConfig) serverSizes() string {
	return fmt.Sprintf("server repos=%d items=%d", c.repos, c.repoItems)
}

// runServerScale builds (or finds) the server's data and measures a
// server child on it: start-up, then a GET of one item from each of
// cfg.touch random repositories, then cfg.hot GETs of them.
func runServerScale(ctx context.Context, cfg *scaleConfig, exe string, progress io.Writer) (*serverScale, error) {
	o := cfg.orders()
	o.Dir = cfg.serverDir()
	res := &serverScale{Repos: cfg.repos, RepoItems: cfg.repoItems}
	built, err := ensureBuilt(ctx, cfg, exe, o.Dir, cfg.serverSizes(), roleBuildServer, o, progress)
	if errors.Is(err, errOverRSS) {
		res.Failed = err.Error()
		return res, nil
	}
	if err != nil {
		return nil, err
	}
	res.Build = built
	o.Bounded = true
	t0 := time.Now()
	srv, err := startServeChild(ctx, cfg, exe, o, progress)
	if err != nil {
		return nil, err
	}
	res.StartNS = float64(time.Since(t0).Nanoseconds())
	res.RSSStart = procStatusBytes(srv.cmd.Process.Pid, "VmRSS")
	err = serverGets(ctx, cfg, srv, res)
	res.RSSAfter = procStatusBytes(srv.cmd.Process.Pid, "VmRSS")
	res.HWM = procStatusBytes(srv.cmd.Process.Pid, "VmHWM")
	if err = errors.Join(err, srv.stop()); err != nil {
		if errors.Is(err, errOverRSS) {
			res.Failed = err.Error()
			return res, nil
		}
		return nil, err
	}
	fmt.Fprintf(progress, "scale: server: start %v, first touch p50 %s, hot p50 %s\n", time.Duration(res.StartNS).Round(time.Millisecond),
		formatNS(res.First.P50), formatNS(res.Hot.P50))
	return res, nil
}

func serverGets(ctx context.Context, cfg *scaleConfig, srv *serveChildProc, res *serverScale) error {
	rng := rand.New(rand.NewPCG(uint64(cfg.repos), 3))
	touched := rng.Perm(cfg.repos)[:min(cfg.touch, cfg.repos)]
	res.Touched = len(touched)
	c := newGetClient()
	get := func(j int) (time.Duration, error) {
		k := rng.IntN(cfg.repoItems)
		t0 := time.Now()
		err := c.get(srv.url, scaleRepoItem(j, k), `"title":"Item `+strconv.Itoa(k)+`"`)
		return time.Since(t0), err
	}
	// An untimed GET of /healthz opens the connection.
	resp, err := c.c.Get(srv.url + "/healthz")
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	var first, hot []time.Duration
	for _, j := range touched {
		if err := ctx.Err(); err != nil {
			return err
		}
		d, err := get(j)
		if err != nil {
			return err
		}
		first = append(first, d)
	}
	for range cfg.hot {
		d, err := get(touched[rng.IntN(len(touched))])
		if err != nil {
			return err
		}
		hot = append(hot, d)
	}
	res.First, res.Hot = figuresOf(first), figuresOf(hot)
	return nil
}
