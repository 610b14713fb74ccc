package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/gc"
	"github.com/goatdb/goatdb/server"
)

var serveCommand = &command{
	name:    "serve",
	args:    "",
	summary: "run the sync server on the data directory",
	about: `Serve runs the HTTP sync server on --addr (default 127.0.0.1:8080; port 0
picks a free one) until SIGINT or SIGTERM, then shuts down gracefully: event
streams end, requests in flight finish, every repository is flushed. It
prints the URL it listens on. Like init, and unlike every other command,
it makes DIR a data directory when it is not one yet, and then says so
in its first line. Peers sync with 'goatdb sync URL' or the Go
API (DB.Sync, DB.StartSync).

Several servers replicate with each other as nodes of one deployment:
'goatdb root init' makes the deployment's root key, 'goatdb node init'
makes each node's directory, and --peer URL (repeatable) names the other
nodes. --ack-replicas N answers a client's sync only once N of them stored
its commits (503 after --ack-timeout, default 5s: the client keeps its
commits and retries, here or on another node). Nodes whose rules differ
refuse to replicate. 'goatdb dev cluster' runs a local cluster.

A sharded cluster places each repository on --replicas members (rendezvous
hashing), its membership kept by a raft group of the members: the first
starts it with --cluster-raft HOST:PORT --cluster-init, the others join
with --cluster-raft HOST:PORT --cluster-join URL (any member). A member
hands the repositories it holds to their new owners before a change takes
effect, drops those it no longer owns once they hold them, and replicates
each repository with its co-owners. Raft's state is in DIR/raft/. There,
--ack-replicas N counts the other owners of each repository written: at
most --replicas minus 1.

Every client logs in: 'goatdb user add NAME' (beside the running server or
while it is stopped) prints a one-time login code, which the client gives
to 'goatdb login URL NAME --code CODE'. Every request is then signed by the
client's session key. The deployment's identity (its root and node keys)
is kept in DIR/auth/, created at the first start; keep it private and back
it up with the data.

Who may read and write what is decided by rules: by default, logged-in
users read and write everything under /data/, each user its own /user/NAME/,
and only the server /sys/. --rules FILE takes a rules file instead (JSON of
path patterns with read and write expressions; see the README); a file that
does not compile stops serve with the entry at fault. --rules open lets
every session read and write everything outside /sys/ and /user/: for
development only, and serve warns about it at every start. --anonymous
lets sessions that never logged in act as the anonymous user (off by
default: they are refused).

Routes: POST /v1/sync (the sync protocol), GET /v1/events (change notices,
Server-Sent Events), /v1/auth/ (login, register, renew, logout, revoke,
whoami), the JSON API under /v1 (items, queries, history, diffs and a change
feed for curl and browsers, which log in with POST /v1/auth/token and send
its token; GET /v1/openapi.json describes it), the web console at / (serve
prints its address), and, open to all, GET /healthz (the storage state as
JSON, naming no repository; 503 while writes fail or shutting down), GET
/livez (200 while the process serves) and GET /readyz (200 when it should
take traffic; 503 while starting, shutting down or while writes fail).
--metrics-addr (or --ops-addr) serves the operator's routes on a separate
address, which must be a loopback one (127.0.0.1, [::1] or localhost):
/metrics (Prometheus), /healthz naming the repositories, /livez and
/readyz. It answers even while the main address is at its connection cap;
metrics are served only there, since they name repositories and figures
that clients may not see.

--cors-origin ORIGIN (repeatable; scheme://host[:port], or * for any) lets
the pages of another origin call the JSON API from a browser, with a token;
without it only the server's own pages (the console) do.

--tls-cert FILE and --tls-key FILE (both, PEM) serve HTTPS. Account
administration ('goatdb user', 'goatdb session') reaches the running
server through the Unix socket DIR/auth/admin.sock (mode 0600); if DIR's path is
too long for a Unix socket, serve warns and runs without it.

--peer URL (repeatable) replicates with another server: every repository
here is kept in sync with it, and every one it announces is created here.
Quotas are per session (and per user, over its sessions): --rate
requests per second (100), --push-mib MiB and --push-commits commits pushed
per 10 minutes (64, 250000), --repos-per-hour new repositories (100),
--streams event streams open (16); a user may use 4 times a session's (2
times its new repositories), and --user-rate sets its request rate (400).
Requests that fail authentication, and anonymous sessions, count per
address: --ip-rate (200/s); behind a reverse proxy, --client-ip-header
X-Forwarded-For takes the address the proxy reports. A request over a
whole quota gets 413, one over what remains 429 with Retry-After. 0 turns
a limit off. --max-connections (4096), --max-streams (10000) and
--min-body-rate KIB (8 KiB/s after 5 s; slower bodies get 408) bound the
server as a whole. --memory-budget MIB bounds the memory sync
requests in flight hold at once (bodies, decompressed payloads, answers
not yet read; default 256, 0: no limit): a request that finds no room
gets 503 with Retry-After, and clients retry. Repositories are opened when
a request needs them, and closed again when idle once more than
--max-open-repos are open (default: a quarter of the process's file limit,
at most 1000) or their estimated memory passes --repo-memory MIB (512); 0
turns either bound off. Access logs go to standard error at --log-level
(debug, info, warn, error), as text or, with --log-json, JSON lines.`,
	setup: func(fs *flag.FlagSet) runFunc {
		var o serveOptions
		fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "listen on `HOST:PORT`")
		fs.Var((*listFlag)(&o.peers), "peer", "replicate with the server at `URL` (repeatable)")
		o.cluster.register(fs)
		fs.IntVar(&o.ackReplicas, "ack-replicas", 0, "answer a client's sync only once `N` peers (--peer) stored its commits; 503 after --ack-timeout")
		fs.DurationVar(&o.ackTimeout, "ack-timeout", 5*time.Second, "how long a client's sync waits for --ack-replicas peers before it is answered 503")
		fs.Float64Var(&o.rate, "rate", server.DefaultQuotas().Session.Requests, "requests per second per session on /v1/ routes; without authentication, per client address (0: no limit)")
		o.limits.register(fs)
		fs.BoolVar(&o.gc, "gc", true, "collect history older than the horizon by itself (see 'goatdb help gc'), at most once a day per repository")
		fs.Int64Var(&o.memoryMiB, "memory-budget", server.DefaultMemoryBudget>>20, "memory sync requests in flight may hold, in `MIB` (0: no limit)")
		fs.IntVar(&o.openRepos, "max-open-repos", defaultMaxOpenRepos(), "keep at most `N` repositories open; idle ones are closed (default: a quarter of the file limit, at most 1000; 0: no bound)")
		fs.Int64Var(&o.repoMiB, "repo-memory", defaultRepoMemoryMiB, "estimated memory open repositories may take, in `MIB`; idle ones are closed (0: no bound)")
		fs.StringVar(&o.level, "log-level", "info", "log `LEVEL`: debug, info, warn or error")
		fs.BoolVar(&o.logJSON, "log-json", false, "log JSON lines")
		fs.StringVar(&o.rules, "rules", "", "read and write rules from `FILE`, or \"open\" (development only: everyone reads and writes)")
		fs.BoolVar(&o.anonymous, "anonymous", false, "let sessions that never logged in act as the anonymous user")
		fs.StringVar(&o.tlsCert, "tls-cert", "", "serve HTTPS with the certificate chain in `FILE` (PEM; needs --tls-key)")
		fs.StringVar(&o.tlsKey, "tls-key", "", "serve HTTPS with the private key in `FILE` (PEM; needs --tls-cert)")
		fs.StringVar(&o.metricsAddr, "metrics-addr", "", "serve /metrics and the health routes (/healthz, /livez, /readyz) on the loopback address `HOST:PORT` (default: not served)")
		fs.StringVar(&o.metricsAddr, "ops-addr", "", "the same as --metrics-addr")
		fs.Var((*listFlag)(&o.corsOrigins), "cors-origin", "let the pages of `ORIGIN` (scheme://host[:port], or * for any) call the JSON API from a browser (repeatable)")
		return func(e *env, args []string) error { return serve(e, args, &o) }
	},
}

// serveOptions are serve's flags.
type serveOptions struct {
	addr        string
	peers       []string
	rate        float64
	memoryMiB   int64
	level       string
	logJSON     bool
	rules       string // "", "open" or a file
	anonymous   bool
	tlsCert     string
	tlsKey      string
	metricsAddr string
	corsOrigins []string      // --cors-origin
	ackReplicas int           // --ack-replicas
	ackTimeout  time.Duration // --ack-timeout
	cluster     clusterFlags
	limits      limitFlags
	openRepos   int   // --max-open-repos
	repoMiB     int64 // --repo-memory
	gc          bool  // --gc
}

// listFlag collects a repeatable flag's values.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// openRulesWarning is logged at every start with --rules open.
const openRulesWarning = "--rules open: every session may read and write every path outside /sys/ and /user/; for development only, never in production"

// maxSocketPath is the longest Unix socket path every supported system
// takes (sun_path is 108 bytes on Linux, 104 on macOS and the BSDs, both
// with the terminating NUL).
const maxSocketPath = 103

func serve(e *env, args []string, o *serveOptions) error {
	if len(args) > 0 {
		return usagef("serve", "serve takes no arguments")
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(o.level)); err != nil {
		return usagef("serve", "--log-level %q: want debug, info, warn or error", o.level)
	}
	if o.rate < 0 {
		return usagef("serve", "--rate %g: want 0 (no limit) or more", o.rate)
	}
	if o.memoryMiB < 0 || o.memoryMiB > 1<<30 {
		return usagef("serve", "--memory-budget %d: want MiB from 0 (no limit) to %d", o.memoryMiB, 1<<30)
	}
	if o.openRepos < 0 || o.repoMiB < 0 || o.repoMiB > 1<<30 {
		return usagef("serve", "--max-open-repos %d --repo-memory %d: want 0 (no bound) or more", o.openRepos, o.repoMiB)
	}
	for _, p := range o.peers {
		if _, err := goatdb.NormalizeServerURL(p); err != nil {
			return usagef("serve", "--peer: %v", err)
		}
	}
	if o.ackReplicas < 0 || o.ackReplicas > len(o.peers) && o.cluster.raft == "" {
		return usagef("serve", "--ack-replicas %d: want 0 to the number of --peer (%d)", o.ackReplicas, len(o.peers))
	}
	if o.ackTimeout <= 0 {
		return usagef("serve", "--ack-timeout %v: want a positive duration", o.ackTimeout)
	}
	for _, origin := range o.corsOrigins {
		if err := checkOrigin(origin); err != nil {
			return usagef("serve", "--cors-origin %q: %v", origin, err)
		}
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return usagef("serve", "--tls-cert and --tls-key go together: give both for HTTPS, or neither")
	}
	selfURL, err := o.cluster.check(o, o.tlsCert != "")
	if err != nil {
		return err
	}
	if o.metricsAddr != "" {
		if err := checkLoopback(o.metricsAddr); err != nil {
			return usagef("serve", "--metrics-addr %s: %v", o.metricsAddr, err)
		}
	}
	hopts := &slog.HandlerOptions{Level: lv}
	var handler slog.Handler = slog.NewTextHandler(e.stderr, hopts)
	if o.logJSON {
		handler = slog.NewJSONHandler(e.stderr, hopts)
	}
	logger := slog.New(handler)
	rules, err := loadRules(o.rules)
	if err != nil {
		return err
	}
	var tlsConfig *tls.Config
	if o.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return final(fmt.Errorf("--tls-cert %s --tls-key %s: %v; give a PEM certificate chain and its private key", o.tlsCert, o.tlsKey, err))
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	}
	reg, err := e.reg()
	if err != nil {
		return err
	}
	db, err := e.openServed(goatdb.Options{Schemas: reg, Logger: logger,
		MaxOpenRepos: o.openRepos, MaxOpenRepoBytes: o.repoMiB << 20})
	if err != nil {
		return e.openError(err, "in use by another goatdb process; stop it, or give another --dir")
	}
	id, err := server.OpenIdentity(e.dir)
	if err != nil {
		return errors.Join(final(err), db.Close())
	}
	if o.rules == "open" {
		logger.Warn(openRulesWarning)
	}
	budget := o.memoryMiB << 20
	if o.memoryMiB == 0 {
		budget = -1 // no limit
	}
	sopts := &server.Options{Logger: logger, Peers: o.peers, MemoryBudget: budget, CORSOrigins: o.corsOrigins,
		AckReplicas: o.ackReplicas, AckTimeout: o.ackTimeout,
		Auth: &server.AuthOptions{Identity: id, Rules: rules, Anonymous: o.anonymous}}
	var stopCluster func() error
	if o.cluster.raft != "" {
		if sopts.Cluster, stopCluster, err = startCluster(e.dir, &o.cluster, id, selfURL, logger); err != nil {
			return errors.Join(err, db.Close())
		}
		defer func() {
			if err := stopCluster(); err != nil {
				logger.Warn("cluster: stop", "err", err)
			}
		}()
	}
	if err := o.limits.apply(sopts, o.rate); err != nil {
		return errors.Join(err, db.Close())
	}
	srv, err := server.New(db, sopts)
	if err != nil {
		return errors.Join(err, db.Close())
	}
	var col *gc.Collector
	if o.gc {
		if col, err = gc.Start(db, &gc.CollectorOptions{Options: gc.Options{Policy: srv.GCPolicy(), Drop: srv.ShunDrop()}, Logger: logger}); err != nil {
			return errors.Join(err, srv.Close(), db.Close())
		}
	}
	if sopts.Cluster != nil {
		cctx, ccancel := context.WithCancel(e.ctx)
		var entering sync.WaitGroup
		entering.Go(func() { enterCluster(cctx, &o.cluster, sopts.Cluster, srv, selfURL, logger) })
		defer func() { ccancel(); entering.Wait() }()
	}
	err = serveListening(e, o, srv, logger, tlsConfig)
	if col != nil {
		col.Stop()
	}
	err = errors.Join(err, srv.Close(), db.Close())
	if err == nil {
		fmt.Fprintln(e.stdout, "goatdb: stopped")
	}
	return err
}

// openServed opens the data directory for serve, which makes it a data
// directory if it is not one yet, and then says so first: a mistyped
// --dir shows as a new, empty database.
func (e *env) openServed(o goatdb.Options) (*goatdb.DB, error) {
	o.MustExist = true
	db, err := goatdb.Open(e.dir, &o)
	if !errors.Is(err, goatdb.ErrNotDataDir) {
		return db, err
	}
	_, serr := os.Stat(e.dir)
	o.MustExist = false
	if db, err = goatdb.Open(e.dir, &o); err != nil {
		return nil, err
	}
	// Saves the new session key now (or logs why not), so that the other
	// commands find a data directory while the server runs.
	db.Session()
	if serr == nil {
		fmt.Fprintf(e.stdout, "goatdb: %s was not a goatdb data directory: made it one, a new, empty database\n", e.dir)
	} else {
		fmt.Fprintf(e.stdout, "goatdb: created the data directory %s, a new, empty database\n", e.dir)
	}
	return db, nil
}

// loadRules returns the rules --rules names: authz's defaults for "",
// authz.OpenRules for "open", else the rules file.
func loadRules(flagValue string) (*authz.Rules, error) {
	switch flagValue {
	case "":
		return authz.DefaultRules(), nil
	case "open":
		return authz.OpenRules(), nil
	}
	r, err := authz.LoadRulesFile(flagValue)
	if err != nil {
		return nil, final(fmt.Errorf("--rules: %w; fix the file (its format is in the README)", err))
	}
	return r, nil
}

// checkLoopback checks that a HOST:PORT names a loopback address.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want HOST:PORT (%v)", err)
	}
	if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || strings.EqualFold(host, "localhost") {
		return nil
	}
	return errors.New("metrics are served only on a loopback address (127.0.0.1, [::1] or localhost), because they name repositories and figures that clients may not see; put a proxy in front to reach them from elsewhere")
}

// checkOrigin checks a --cors-origin: "*", or a browser's Origin
// (scheme://host[:port], no path), which the server compares as sent.
func checkOrigin(origin string) error {
	if origin == "*" {
		return nil
	}
	u, err := url.Parse(strings.TrimSuffix(origin, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return errors.New("want an origin as a browser sends it, scheme://host[:port] (like https://app.example.com), or * for any")
	}
	return nil
}

// serveListening listens on the main and metrics addresses, runs the
// admin socket, and serves until e.ctx ends.
func serveListening(e *env, o *serveOptions, srv *server.Server, logger *slog.Logger, tlsConfig *tls.Config) error {
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return final(fmt.Errorf("listen on %s: %v; is another server running there? give another --addr", o.addr, err))
	}
	var mln net.Listener
	if o.metricsAddr != "" {
		if mln, err = net.Listen("tcp", o.metricsAddr); err != nil {
			return errors.Join(final(fmt.Errorf("--metrics-addr: listen on %s: %v; give another --metrics-addr", o.metricsAddr, err)), ln.Close())
		}
	}
	ctx, cancel := context.WithCancel(e.ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	runAdmin(ctx, &wg, srv, e.dir, logger)
	var metricsErr error
	if mln != nil {
		ms := &http.Server{Handler: metricsMux(srv), ReadHeaderTimeout: 10 * time.Second}
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := ms.Serve(mln); !errors.Is(err, http.ErrServerClosed) {
				metricsErr = fmt.Errorf("serve metrics on %s: %w", mln.Addr(), err)
			}
		}()
		go func() {
			defer wg.Done()
			<-ctx.Done()
			sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer scancel()
			_ = ms.Shutdown(sctx)
		}()
	}
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
		ln = tls.NewListener(ln, tlsConfig)
	}
	fmt.Fprintf(e.stdout, "goatdb: serving %s on %s://%s\n", e.dir, scheme, ln.Addr())
	fmt.Fprintf(e.stdout, "goatdb: console on %s://%s/\n", scheme, ln.Addr())
	if mln != nil {
		fmt.Fprintf(e.stdout, "goatdb: metrics on http://%s/metrics\n", mln.Addr())
		fmt.Fprintf(e.stdout, "goatdb: health on http://%s/healthz, /livez and /readyz\n", mln.Addr())
	}
	err = srv.Serve(ctx, ln)
	cancel()
	wg.Wait()
	return errors.Join(err, metricsErr)
}

// metricsMux serves the server's operator routes: /metrics and the
// health routes (server.Server.OpsHandler).
func metricsMux(srv *server.Server) http.Handler { return srv.OpsHandler() }

// runAdmin serves the admin socket DIR/auth/admin.sock until ctx ends, and
// returns once it answers (or could not be served: serve then warns and
// goes on without it, and 'goatdb user' says to stop the server).
func runAdmin(ctx context.Context, wg *sync.WaitGroup, srv *server.Server, dir string, logger *slog.Logger) {
	path := filepath.Join(dir, server.AdminSocket)
	if len(path) > maxSocketPath {
		logger.Warn("no admin socket: its path is too long for a Unix socket; 'goatdb user add' and the revoke commands work only while the server is stopped, or serve from a shorter --dir path",
			"path", path, "bytes", len(path), "max", maxSocketPath)
		return
	}
	failed := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.ServeAdmin(ctx, path); err != nil {
			failed <- err
		}
	}()
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for !adminReady(path) {
		select {
		case err := <-failed:
			logger.Warn("no admin socket; 'goatdb user add' and the revoke commands work only while the server is stopped", "err", err)
			return
		case <-deadline.C:
			logger.Warn("the admin socket does not answer yet", "path", path)
			return
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// adminReady reports whether the admin socket at path answers and has its
// final mode (on Windows, which has no file modes, whether it answers).
func adminReady(path string) bool {
	info, err := os.Stat(path)
	if err != nil || runtime.GOOS != "windows" && (info.Mode().Type() != fs.ModeSocket || info.Mode().Perm() != 0o600) {
		return false
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
