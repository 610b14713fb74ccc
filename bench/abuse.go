package main

// The abuse benchmark (go run . --abuse): each attack of abuseScenarios
// runs against a fresh 'goatdb serve' process on 127.0.0.1 while ordinary
// clients sync, and the report gives, per attack, the server's peak RSS,
// what the attacker got, and the ordinary clients' sync latency next to a
// baseline run without attack. See the package comment for how to run it.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"time"
)

// abuseConfig is what one abuse run measures.
type abuseConfig struct {
	mode       string         // "full" or "quick"
	dir        string         // where the temporary directory goes
	bin        string         // a goatdb binary to serve with; "" builds one
	only       *regexp.Regexp // attacks whose id matches; nil runs all (the baseline always runs)
	rules      string         // serve --rules; "" for the server's default rules
	serveFlags []string       // more flags for goatdb serve

	window       time.Duration // how long each attack runs
	clients      int           // ordinary clients measured
	interval     time.Duration // between the starts of an ordinary client's rounds
	roundTimeout time.Duration // a round that has not succeeded by then failed
	addrs        int           // attacker source addresses 127.0.0.2…
	items        int           // items of the big repository

	neverReading  int           // attack 1: connections (one session each)
	bombs         int           // attack 2: bombs in flight at once
	bombMiB       int           // attack 2: what a bomb decompresses to
	pushMiB       int           // attack 3: commit bytes pushed at most
	pushBatchKiB  int           // attack 3: commit bytes per request
	newRepos      int           // attack 4: new repositories per request
	repoRequests  int           // attack 4: requests naming new repositories
	slowConns     int           // attack 5: slow-body connections kept open
	streams       int           // attack 6: event streams
	crowd         int           // attack 7a: more sessions behind the ordinary clients' address
	crowdInterval time.Duration // attack 7a: between a crowd client's rounds
	evaders       int           // attack 7b: requests in flight at once
}

// fullAbuseConfig is the default run: the sizes, 15 s per attack,
// about three minutes in all on 2 cores.
func fullAbuseConfig() abuseConfig {
	return abuseConfig{
		mode: "full", window: 15 * time.Second, clients: 8, interval: 250 * time.Millisecond,
		roundTimeout: 10 * time.Second, addrs: 20, items: 20_000,
		neverReading: 300, bombs: 60, bombMiB: 60, pushMiB: 500, pushBatchKiB: 4096,
		newRepos: 4083, repoRequests: 2, slowConns: 1100, streams: 10_000,
		crowd: 200, crowdInterval: 2 * time.Second, evaders: 32,
	}
}

// quickAbuseConfig is --quick: smaller attacks, 5 s each, about a minute
// and a half in all.
func quickAbuseConfig() abuseConfig {
	c := fullAbuseConfig()
	c.mode, c.window, c.clients, c.items = "quick", 5*time.Second, 4, 5_000
	c.neverReading, c.bombs, c.pushMiB = 100, 20, 100
	c.repoRequests, c.slowConns, c.streams, c.crowd = 1, 300, 2_000, 50
	return c
}

// abuseMode reports whether args ask for the abuse benchmark (--abuse
// before any "--").
func abuseMode(args []string) bool { return modeFlag(args, "abuse") }

// modeFlag reports whether args hold the boolean flag name, set, before
// any "--": the benchmark modes (--abuse, --scale) are chosen before the
// flags are parsed, since each has flags of its own.
func modeFlag(args []string, name string) bool {
	for _, a := range args {
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		switch strings.TrimLeft(a, "-") {
		case name, name + "=true", name + "=1", name + "=t", name + "=TRUE", name + "=True":
			return true
		}
	}
	return false
}

// runAbuseCommand is run for --abuse: 0 on success, 1 if the benchmark
// failed, 2 on bad usage. Progress goes to stderr, the report to stdout.
func runAbuseCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, asJSON, err := parseAbuseFlags(args, stderr)
	if err != nil {
		return 2
	}
	res, err := runAbuse(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bench: abuse: %v\n", err)
		return 1
	}
	rep := buildAbuseReport(cfg, res)
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

// listFlag collects a repeatable flag's values.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func parseAbuseFlags(args []string, stderr io.Writer) (*abuseConfig, bool, error) {
	fs := flag.NewFlagSet("bench --abuse", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := fullAbuseConfig()
	fs.Bool("abuse", true, "run the abuse benchmark (this mode)")
	quick := fs.Bool("quick", false, "smaller attacks, 5 s each (about a minute and a half)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	only := fs.String("only", "", "run only the attacks whose id matches this `regexp` (the baseline always runs); ids: "+scenarioIDs())
	dir := fs.String("dir", os.TempDir(), "`directory` for the temporary data")
	bin := fs.String("bin", "", "serve with this goatdb `binary` instead of building ../cmd/goatdb")
	rules := fs.String("rules", "", "serve --rules `VALUE` (a file or \"open\"; default: the server's default rules)")
	var extra listFlag
	fs.Var(&extra, "serve-flag", "pass `FLAG` to goatdb serve, e.g. --serve-flag=--rate=50 (repeatable)")
	window := fs.Duration("duration", 0, "how long each attack runs (default 15s, 5s with --quick)")
	clients := fs.Int("clients", 0, fmt.Sprintf("ordinary clients measured (default %d)", def.clients))
	interval := fs.Duration("interval", 0, fmt.Sprintf("between an ordinary client's rounds (default %v)", def.interval))
	addrs := fs.Int("addrs", 0, fmt.Sprintf("attacker source addresses, 127.0.0.2 on (default %d)", def.addrs))
	items := fs.Int("items", 0, fmt.Sprintf("items of the big repository (default %d)", def.items))
	neverReading := fs.Int("never-reading", 0, fmt.Sprintf("attack 1: never-reading clients (default %d)", def.neverReading))
	bombs := fs.Int("bombs", 0, fmt.Sprintf("attack 2: zstd bombs at once (default %d)", def.bombs))
	bombMiB := fs.Int("bomb-mib", 0, fmt.Sprintf("attack 2: MiB a bomb decompresses to (default %d)", def.bombMiB))
	pushMiB := fs.Int("push-mib", 0, fmt.Sprintf("attack 3: MiB of commits pushed at most (default %d)", def.pushMiB))
	newRepos := fs.Int("new-repos", 0, fmt.Sprintf("attack 4: new repositories per request, at most 4096 (default %d)", def.newRepos))
	repoRequests := fs.Int("repo-requests", 0, fmt.Sprintf("attack 4: requests naming new repositories (default %d)", def.repoRequests))
	slowConns := fs.Int("slow-conns", 0, fmt.Sprintf("attack 5: slow-body connections (default %d)", def.slowConns))
	streams := fs.Int("streams", 0, fmt.Sprintf("attack 6: event streams (default %d)", def.streams))
	crowd := fs.Int("crowd", 0, fmt.Sprintf("attack 7a: sessions added behind the ordinary clients' address (default %d)", def.crowd))
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run . --abuse [--quick] [--json] [--only REGEXP] [--bin GOATDB] [--serve-flag FLAG]... [sizes]\n\n"+
			"Runs each attack against its own 'goatdb serve' on 127.0.0.1 while ordinary clients sync, after a\n"+
			"baseline run without attack; prints the server's peak RSS, what the attacker got, and the ordinary\n"+
			"clients' sync latency. Linux only (/proc, source addresses 127.0.0.2 on).\n\nattacks: %s\n\nflags:\n", scenarioIDs())
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
	if *quick {
		cfg = quickAbuseConfig()
	}
	cfg.dir, cfg.bin, cfg.rules, cfg.serveFlags = *dir, *bin, *rules, extra
	setDur := func(dst *time.Duration, v time.Duration) {
		if v > 0 {
			*dst = v
		}
	}
	setInt := func(dst *int, v int) {
		if v > 0 {
			*dst = v
		}
	}
	setDur(&cfg.window, *window)
	setDur(&cfg.interval, *interval)
	for _, p := range []struct {
		dst *int
		v   int
	}{{&cfg.clients, *clients}, {&cfg.addrs, *addrs}, {&cfg.items, *items}, {&cfg.neverReading, *neverReading},
		{&cfg.bombs, *bombs}, {&cfg.bombMiB, *bombMiB}, {&cfg.pushMiB, *pushMiB}, {&cfg.newRepos, *newRepos},
		{&cfg.repoRequests, *repoRequests}, {&cfg.slowConns, *slowConns}, {&cfg.streams, *streams}, {&cfg.crowd, *crowd}} {
		setInt(p.dst, p.v)
	}
	switch {
	case cfg.newRepos > 4096:
		fmt.Fprintf(stderr, "bench: --new-repos %d: a request names at most 4096 repositories\n", cfg.newRepos)
		return nil, false, flag.ErrHelp
	case cfg.addrs > 250:
		fmt.Fprintf(stderr, "bench: --addrs %d: at most 250 (127.0.0.2 to 127.0.0.251)\n", cfg.addrs)
		return nil, false, flag.ErrHelp
	case cfg.bombMiB > 64:
		fmt.Fprintf(stderr, "bench: --bomb-mib %d: at most 64 (a sync payload's limit)\n", cfg.bombMiB)
		return nil, false, flag.ErrHelp
	}
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			fmt.Fprintf(stderr, "bench: --only: %v\n", err)
			return nil, false, err
		}
		cfg.only = re
	}
	return &cfg, *asJSON, nil
}

// scenarioIDs lists the attacks' ids for the usage.
func scenarioIDs() string {
	var ids []string
	for _, s := range abuseScenarios {
		if s.id != baselineID {
			ids = append(ids, s.id)
		}
	}
	return strings.Join(ids, " ")
}

// selected reports whether the run includes the scenario.
func (c *abuseConfig) selected(s *scenario) bool {
	return s.id == baselineID || c.only == nil || c.only.MatchString(s.id)
}

// abuseRun is what runAbuse measured, with what the report says of the
// set-up.
type abuseRun struct {
	Server      string            `json:"server"`       // the binary's version line
	Source      string            `json:"source"`       // where it was built from
	ServeFlags  []string          `json:"serve_flags"`  // what every server ran with, less --dir and --addr
	ServerFlags map[string]string `json:"server_flags"` // the flags 'goatdb serve -h' lists, with their defaults
	NoFile      uint64            `json:"nofile"`       // this process's descriptor limit, which the servers inherit
	Addrs       int               `json:"addrs"`        // attacker source addresses that work
	Results     []*scenarioResult `json:"results"`
	Notes       []string          `json:"-"`
}

// runAbuse builds (or takes) the server binary, makes the template data
// directory once, and runs the baseline and every selected attack on a
// copy of it, each with its own server process. Everything lives in a
// temporary directory under cfg.dir, removed at the end.
func runAbuse(ctx context.Context, cfg *abuseConfig, progress io.Writer) (run *abuseRun, err error) {
	if !abuseSupported {
		return nil, errors.New("the abuse benchmark runs on Linux only: it reads /proc and binds to 127.0.0.2 and on")
	}
	run = &abuseRun{}
	run.NoFile = raiseFileLimit()
	base, err := os.MkdirTemp(cfg.dir, "goatdb-abuse-")
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, os.RemoveAll(base)) }()
	start := time.Now()
	bin := cfg.bin
	if bin == "" {
		if bin, run.Source, err = buildServer(ctx, base); err != nil {
			return nil, err
		}
	} else {
		run.Source = "binary " + bin
	}
	run.Server = serverVersion(bin)
	if run.ServerFlags, err = serveFlags(bin); err != nil {
		return nil, err
	}
	run.ServeFlags = baseServeFlags(cfg, run.ServerFlags)
	fmt.Fprintf(progress, "abuse: server %s (%s), built in %v\n", run.Server, run.Source, time.Since(start).Round(time.Millisecond))
	pool, err := newSourcePool(cfg.addrs)
	if err != nil {
		return nil, err
	}
	run.Addrs = len(pool.ips)
	if run.Addrs < cfg.addrs {
		run.Notes = append(run.Notes, fmt.Sprintf("Only %d of %d attacker source addresses could be bound.", run.Addrs, cfg.addrs))
	}
	start = time.Now()
	tpl, err := makeTemplate(ctx, cfg, base)
	if err != nil {
		return nil, fmt.Errorf("template data directory: %w", err)
	}
	fmt.Fprintf(progress, "abuse: template with %s items and %d login codes in %v\n", thousands(cfg.items), tpl.codeCount(), time.Since(start).Round(time.Millisecond))
	for i := range abuseScenarios {
		sc := &abuseScenarios[i]
		if !cfg.selected(sc) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		start := time.Now()
		res, err := runScenario(ctx, cfg, run, tpl, pool, base, bin, sc, progress)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sc.id, err)
		}
		run.Results = append(run.Results, res)
		fmt.Fprintf(progress, "abuse: %-16s %v: peak RSS %s, %s\n", sc.id, time.Since(start).Round(time.Millisecond), formatMiB(res.PeakRSS), res.Outcome.Summary)
	}
	return run, nil
}

// baseServeFlags are the flags every server runs with besides --dir and
// --addr: the rules, the log level, metrics on a loopback port if serve
// has --metrics-addr, and --serve-flag's.
func baseServeFlags(cfg *abuseConfig, have map[string]string) []string {
	var out []string
	if cfg.rules != "" {
		out = append(out, "--rules", cfg.rules)
	}
	if _, ok := have["log-level"]; ok {
		out = append(out, "--log-level", "warn")
	}
	if _, ok := have["metrics-addr"]; ok {
		out = append(out, "--metrics-addr", "127.0.0.1:0")
	}
	return append(out, cfg.serveFlags...)
}

// sourcePool is the attacker's source addresses, 127.0.0.2 on, that
// this machine lets a socket bind to (any address of 127.0.0.0/8 on
// Linux).
type sourcePool struct {
	ips []net.IP
}

func newSourcePool(n int) (*sourcePool, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	p := &sourcePool{}
	for i := range n {
		ip := net.IPv4(127, 0, 0, byte(2+i))
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 2 * time.Second}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			continue
		}
		c.Close()
		p.ips = append(p.ips, ip)
	}
	if len(p.ips) == 0 {
		return nil, errors.New("no attacker source address (127.0.0.2 on) can be bound")
	}
	return p, nil
}

// ip returns the i-th address, round robin.
func (p *sourcePool) ip(i int) net.IP { return p.ips[i%len(p.ips)] }

// first returns the pool of the first address alone: one host.
func (p *sourcePool) first() *sourcePool { return &sourcePool{ips: p.ips[:1]} }

// formatMiB formats bytes as MiB, or "n/a" for a figure not measured.
func formatMiB(b int64) string {
	if b < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}
