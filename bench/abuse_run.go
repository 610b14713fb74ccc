package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// scenarioResult is what one run of the baseline or an attack measured.
type scenarioResult struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	// PeakRSS is the server's VmHWM at the end (its peak resident memory
	// since it started, set-up included); SampledRSS the highest VmRSS
	// sampled every 100 ms while the attack ran; StartRSS its VmRSS just
	// before. -1: not measured.
	PeakRSS    int64         `json:"peak_rss_bytes"`
	SampledRSS int64         `json:"sampled_rss_bytes"`
	StartRSS   int64         `json:"start_rss_bytes"`
	Outcome    attackOutcome `json:"outcome"`
	Ordinary   latencyStats  `json:"ordinary"`
	Crowd      *latencyStats `json:"crowd,omitempty"`
	Health     probeStats    `json:"healthz"`
	// HealthLoaded are the /healthz probes sent while at least
	// slowTarget attacker connections were open (attack 5).
	HealthLoaded *probeStats `json:"healthz_loaded,omitempty"`
	// Streams are the ordinary sessions' own event streams, opened half
	// way through: "ok" or why not.
	Streams    []string           `json:"streams"`
	StreamsMax float64            `json:"streams_ready_max_ns"`
	Server     map[string]float64 `json:"server_metrics,omitempty"` // the last scrape, if serve has --metrics-addr
	Gauges     map[string]float64 `json:"server_gauge_peaks,omitempty"`
	ServerExit string             `json:"server_exit,omitempty"` // set if the server died during the run
	NewRepos   int                `json:"new_repos"`             // repositories the run added, every client's included
	Problems   []string           `json:"problems,omitempty"`    // what went wrong on the bench's side
}

// slowTarget is how many slow connections attack 5's /healthz target is
// about.
const slowTarget = 1000

// runScenario runs the baseline or an attack on a fresh server: it copies
// the template, starts the server, logs the clients in, warms them up,
// then runs the attack for cfg.window while the ordinary clients sync and
// /healthz is probed.
func runScenario(ctx context.Context, cfg *abuseConfig, run *abuseRun, tpl *template, pool *sourcePool, base, bin string, sc *scenario, progress io.Writer) (_ *scenarioResult, err error) {
	dir := filepath.Join(base, sc.id)
	data := filepath.Join(dir, "data")
	if err := copyDir(tpl.dir, data); err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	srv, err := startServer(ctx, bin, data, filepath.Join(dir, "server.log"), run.ServeFlags)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	res := &scenarioResult{ID: sc.id, Title: sc.title(cfg), PeakRSS: -1, SampledRSS: -1, StartRSS: -1}
	aud, err := discoverAudience(ctx, srv.url)
	if err != nil {
		return nil, err
	}
	// The ordinary clients, and a raw session of each for its event
	// stream, all from 127.0.0.1.
	ords := make([]*ordinary, cfg.clients)
	probes := make([]*rawSession, cfg.clients)
	errs := make([]error, cfg.clients)
	var wg sync.WaitGroup
	for i := range cfg.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, err := tpl.code(ordinaryUser(i), 0)
			if err == nil {
				ords[i], err = openOrdinary(ctx, filepath.Join(dir, "clients"), srv.url, ordinaryUser(i), code, fmt.Sprintf("/data/ordinary-%d", i))
			}
			if err == nil {
				code, err = tpl.code(probeUser(i), 0)
			}
			if err == nil {
				probes[i], err = loginRaw(ctx, http.DefaultClient, srv.url, srv.host, aud, probeUser(i), code)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	defer func() {
		for _, o := range ords {
			if o != nil {
				o.db.Close()
			}
		}
	}()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	e, err := attackerEnv(ctx, cfg, tpl, pool, srv, aud, dir, sc)
	defer func() {
		for _, c := range e.crowd {
			c.db.Close()
		}
		for _, c := range e.clients {
			c.CloseIdleConnections()
		}
	}()
	if err != nil {
		return nil, err
	}
	for _, o := range ords {
		r, err := o.round(ctx, srv.url, cfg.roundTimeout)
		if err != nil || !r.ok {
			return nil, fmt.Errorf("warm-up round of %s: %v (first try %s)", o.repo, err, r.first)
		}
	}
	// Let the per-address buckets that the logins drained fill again.
	if !sleepCtx(ctx, 2*time.Second) {
		return nil, ctx.Err()
	}
	pid := srv.cmd.Process.Pid
	res.StartRSS = procStatusBytes(pid, "VmRSS")

	wctx, wcancel := context.WithTimeout(ctx, cfg.window)
	defer wcancel()
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	samp := newSampler(pid, srv.metricsURL)
	sampled := make(chan struct{})
	go func() { samp.run(sctx); close(sampled) }()
	healthc := make(chan []probeResult, 1)
	go func() { healthc <- probeHealth(wctx, srv.url, &e.open) }()
	var lat latencies
	measure, mcancel := context.WithCancel(ctx)
	defer mcancel()
	clientErrs := make(chan error, 1)
	clients := runClients(wctx, measure, ords, srv.url, cfg.interval, cfg.roundTimeout, &lat, clientErrs)
	streamc := make(chan []string, 1)
	go func() { streamc <- probeStreams(wctx, probes, srv.host, cfg.window/2, &res.StreamsMax) }()
	outcome := make(chan attackOutcome, 1)
	go func() { outcome <- sc.run(wctx, e) }()
	select {
	case res.Outcome = <-outcome:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	clients.Wait()
	scancel()
	<-sampled
	res.Ordinary = lat.stats()
	health := <-healthc
	res.Health = healthStats(health, 0)
	if sc.id == "slow-body" {
		h := healthStats(health, slowTarget)
		res.HealthLoaded = &h
	}
	res.Streams = <-streamc
	if sc.id == "shared-address" {
		s := e.crowdLat.stats()
		res.Crowd = &s
	}
	select {
	case err := <-clientErrs:
		res.Problems = append(res.Problems, fmt.Sprintf("an ordinary client stopped: %v", err))
	default:
	}
	res.PeakRSS = procStatusBytes(pid, "VmHWM")
	res.SampledRSS = samp.maxRSS
	res.Gauges = samp.maxGauge
	if srv.metricsURL != "" && srv.alive() {
		if m, err := scrapeMetrics(srv.metricsURL); err == nil {
			res.Server = m
		}
	}
	if !srv.alive() {
		res.ServerExit = fmt.Sprintf("the server exited during the attack: %v; its log ends:\n%s", srv.waitErr, tail(srv.logPath, 10))
	}
	srv.stop()
	for k, v := range res.Outcome.Figures {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			delete(res.Outcome.Figures, k) // not a figure JSON can carry
		}
	}
	res.NewRepos = countRepos(data) - tpl.repos
	if sc.id == "repo-flood" {
		spam, _ := filepath.Glob(filepath.Join(data, "data", "spam-*.log"))
		res.Outcome.Figures["repos_created"] = float64(len(spam))
		res.Outcome.Summary = fmt.Sprintf("%s repositories created; %s", thousands(len(spam)), res.Outcome.Summary)
	}
	return res, nil
}

// attackerEnv readies the attacker: its addresses, HTTP clients, sessions
// (logged in from those addresses), and the attack's own preparation.
func attackerEnv(ctx context.Context, cfg *abuseConfig, tpl *template, pool *sourcePool, srv *serverProc, aud, dir string, sc *scenario) (*attackEnv, error) {
	e := &attackEnv{cfg: cfg, root: ctx, url: srv.url, host: srv.host, pool: pool, workDir: filepath.Join(dir, "crowd"), tpl: tpl}
	if sc.oneHost {
		e.pool = pool.first()
	}
	for _, ip := range e.pool.ips {
		e.clients = append(e.clients, sourceClient(ip, 64))
	}
	n := 0
	if sc.sessions != nil {
		n = sc.sessions(cfg)
	}
	e.sessions = make([]*rawSession, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			code, err := tpl.code(attackerUser, i)
			if err == nil {
				e.sessions[i], err = loginRaw(ctx, e.client(i), srv.url, srv.host, aud, attackerUser, code)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return e, fmt.Errorf("attacker login: %w", err)
	}
	if sc.prepare != nil {
		if err := sc.prepare(ctx, e); err != nil {
			return e, fmt.Errorf("prepare: %w", err)
		}
	}
	return e, nil
}

// probeStreams waits until after, then opens every probe session's event
// stream at once, and returns each one's outcome; readyMax gets the
// slowest "ready".
func probeStreams(ctx context.Context, probes []*rawSession, host string, after time.Duration, readyMax *float64) []string {
	if !sleepCtx(ctx, after) {
		return nil
	}
	out := make([]string, len(probes))
	lats := make([]time.Duration, len(probes))
	var wg sync.WaitGroup
	for i, p := range probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lats[i], out[i] = streamProbe(ctx, p, host)
		}()
	}
	wg.Wait()
	for _, l := range lats {
		*readyMax = max(*readyMax, float64(l.Nanoseconds()))
	}
	return out
}
