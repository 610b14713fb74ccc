// Command bench compares goatdb with SQLite (modernc.org/sqlite, pure Go)
// and bbolt on GoatDB's workload, and measures goatdb's sync, in one run:
//
//	go run .            # full run: 100,000 items, then sync: a few minutes
//	go run . --quick    # smaller sizes, under a minute
//	go run . --json     # figures for programs
//	go run . --only 'goatdb|sqlite-full'   # engines and operations matching
//	go run . --only '^sync'                # the sync section alone
//	go run . --sync=false                  # without the sync section
//	go run . --only ' compact$'            # the compaction rows alone: 30–45 s
//	go run . --only 'http get'             # the HTTP GET section alone: about 25 s
//	go run . --only cluster                # the cluster section alone: about 10 s
//
// The workload: schema test/1 = {title string, count number (default 0),
// tags set (default empty)}; item i = {title: "Item i", count: i, tags:
// {"tag"+i, "category"+(i%5)}}; the repository /test/basic.
//
// Every operation runs on every engine in rounds: each round runs each
// engine once, in a new random order, so that drift (caches, the disk,
// other processes) hits all engines alike. The figures are grouped by
// durability class, since a write that returns before it is on stable
// storage is not comparable with one that returns after.
//
// Every engine checks what it reads: the item's count, the number of
// items and the sum of their counts, the exact results of each query. A
// failed check or operation stops the run with the engine and operation
// named. The data lives in a temporary directory, removed at exit.
//
// The compaction rows (compact.go) compact a database of N items each
// written 5 times: goatdb's garbage collection (gc.Collect, with a clock
// 100 days on so that all but the current state is below the horizon),
// SQLite's VACUUM and bbolt's Compact into a new file, each sample on a
// fresh copy of the same database. Beside the time, a table gives the
// sizes before and after and how long writers wait.
//
// The sync section (sync.go, measured by internal/syncbench) reports the
// bytes and round trips of goatdb syncs over HTTP on 127.0.0.1 in a few
// scenarios, and the latency from a write on one client to its arrival on
// another.
//
// The http get section (httpget.go) measures the server CPU that a GET of
// one item over HTTP costs: goatdb's JSON API with a bearer token and
// without authentication, beside SQLite behind a minimal net/http
// handler, each serving 10,000 items in this process to a client that is
// this binary started again (so that this process's CPU time is the
// server's alone).
//
// The cluster section (cluster.go) measures replication between the
// nodes of one deployment: a client's write and sync to node 1 of 3 nodes
// with AckReplicas 1 beside the same to a single node, and the latency
// from a write on a client of node 1 to its arrival on a client of node 3.
//
// The abuse benchmark (abuse*.go) is a mode of its own: it builds
// cmd/goatdb, and runs each attack on a server's resources against a
// fresh 'goatdb serve' process on 127.0.0.1 (authentication on, the
// default rules), while ordinary clients (goatdb databases that log in)
// write and sync; the report gives per attack the server's peak RSS
// (VmHWM), what the attacker got (statuses, streams held, repositories
// created...), the ordinary clients' sync latency beside a baseline run
// without attack, and /healthz's. Linux only (/proc; attackers bind to
// 127.0.0.2 and on). Attacks: 300 never-reading clients, 60 zstd bombs,
// a push flood, 4,083 new repositories per request, 1,100 slow bodies,
// 10,000 event streams, 200 more sessions behind one address, one session
// from 20 addresses.
//
//	go run . --abuse > results-abuse.txt   # every attack, 15 s each: about three minutes
//	go run . --abuse --quick               # smaller attacks, 5 s each
//	go run . --abuse --only 'bomb|streams' # some attacks (and the baseline)
//	go run . --abuse --bin ./goatdb --serve-flag=--rate=50   # another binary, more serve flags
//	go run . --abuse -h                    # the sizes and the other flags
//	go test -run TestAbuse -v              # every attack at tiny sizes, as a test
//
// The scale benchmark (scale*.go) is a mode of its own too: goatdb at
// large sizes. One repository of --scale-items items of the workload's
// shape (1,000,000) written --scale-commits times in all (10 times as
// many): its open time, RSS after open (and per item), reads by path cold
// (a key's first read after open) and hot, a query (DB.QueryOnce), and the
// sync of one new commit with a server holding the same data, first
// without and then with a resume point; and a server of --scale-repos
// repositories (10,000) of --scale-repo-items items (100): its start-up
// until /healthz answers, its RSS, and GETs over the JSON API of one item
// from each of 1,000 random repositories (a first touch), then of the
// same repositories (hot). Every figure comes from a child process (this
// binary started again) so that its RSS is that of what it measures
// alone; once the children running pass --scale-max-rss-gib (16) of RSS
// together, the largest is stopped and the report says so. The data sets
// are built once (signed commits, Async durability, large batches on
// every core) and kept under --scale-cache
// (TMPDIR/goatdb-scale-ITEMS-COMMITS), so a rerun skips the build. Linux
// only (/proc).
//
//	go run . --scale                       # the full sizes: the build takes minutes and gigabytes
//	go run . --scale --scale-items 100000 --scale-commits 1000000 --scale-repos 2000   # about a minute once built
//	go run . --scale --scale-server=false  # the repository alone
//	go test -run TestScale -v              # tiny sizes, as a test
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"syscall"
)

func main() {
	if os.Getenv(httpClientEnv) != "" { // the http get section's client
		os.Exit(httpClientMain(os.Stdin, os.Stdout))
	}
	if role := os.Getenv(scaleChildEnv); role != "" { // a scale benchmark's child
		os.Exit(scaleChildMain(role, os.Stdin, os.Stdout))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs the command: 0 on success, 1 if the benchmark failed, 2 on bad
// usage. Progress goes to stderr, the report to stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if abuseMode(args) {
		return runAbuseCommand(ctx, args, stdout, stderr)
	}
	if scaleMode(args) {
		return runScaleCommand(ctx, args, stdout, stderr)
	}
	cfg, asJSON, err := parseFlags(args, stderr)
	if err != nil {
		return 2
	}
	results, err := runAll(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	var syncRes *syncResults
	if cfg.sync.on {
		if syncRes, err = runSync(ctx, cfg, stderr); err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
	}
	var httpRes *httpGetResults
	if cfg.httpSelected() {
		if httpRes, err = runHTTPGet(ctx, cfg, stderr); err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
	}
	var clusterRes *clusterResults
	if cfg.clusterSelected() {
		if clusterRes, err = runCluster(ctx, cfg, stderr); err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
	}
	rep := buildReport(cfg, results, syncRes)
	rep.addHTTPGet(cfg, httpRes)
	rep.addCluster(cfg, clusterRes)
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

func parseFlags(args []string, stderr io.Writer) (*config, bool, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "smaller sizes and fewer samples (under a minute)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	only := fs.String("only", "", "run only the engines' operations whose \"ENGINE OP\" matches this `regexp`, e.g. 'goatdb|sqlite-full' or ' (create|update)$', "+
		"and the sync section's parts whose \"sync PART\" matches, e.g. '^sync' or '^sync (wire|arrival-1)$'")
	syncOn := fs.Bool("sync", true, "run the sync section")
	eventCommits := fs.Bool("event-commits", true, "let the sync server's change events carry small commits; false measures write-to-arrival by sync alone")
	httpOn := fs.Bool("http", true, "run the http get section (--only matches it as \"http get\")")
	clusterOn := fs.Bool("cluster", true, "run the cluster section (--only matches it as \"cluster\")")
	httpProfile := fs.String("http-cpuprofile", "", "write a CPU profile of the server process during one more http get sample of goatdb with a token to `file`")
	dir := fs.String("dir", os.TempDir(), "`directory` for the temporary data")
	fs.Bool("abuse", false, "run the abuse benchmark instead: attacks on a goatdb serve process ('go run . --abuse -h' for its flags)")
	fs.Bool("scale", false, "run the scale benchmark instead: goatdb at large sizes ('go run . --scale -h' for its flags)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run . [--quick] [--json] [--only REGEXP] [--sync=false] [--event-commits=false] [--http=false] [--http-cpuprofile FILE] [--cluster=false] [--dir DIR]\n\nengines:")
		for _, e := range engineSpecs {
			fmt.Fprintf(stderr, " %s", e.id)
		}
		fmt.Fprintf(stderr, "\noperations:")
		for _, o := range ops {
			fmt.Fprintf(stderr, " %s", o.id)
		}
		fmt.Fprintf(stderr, "\nsync parts (full run; --quick has arrival-1 and arrival-50): sync %s sync %s", syncWirePart, syncFirstContactPart)
		for _, a := range fullConfig().sync.arrival {
			fmt.Fprintf(stderr, " sync %s", a.part())
		}
		fmt.Fprintf(stderr, "\nHTTP section: %s\ncluster section: %s", httpGetPart, clusterPart)
		fmt.Fprintf(stderr, "\n\nflags:\n")
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
	cfg := fullConfig()
	if *quick {
		cfg = quickConfig()
	}
	cfg.dir = *dir
	cfg.sync.on = *syncOn
	cfg.sync.eventCommits = *eventCommits
	cfg.http.on = *httpOn
	cfg.http.profile = *httpProfile
	cfg.cluster.on = *clusterOn
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
