package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/server"
)

// The "http get" section: the server CPU that a GET of one item over HTTP
// costs, goatdb's JSON API (GET /v1/items/{type}/{repo}/{key}, with and
// without authentication) beside SQLite behind a minimal net/http
// handler, in one run. Each server holds the same httpItems items and
// runs in this process; the client is this binary started again
// (httpget_client.go), so that this process's CPU time (getrusage, user
// and system) over the timed requests is the server's alone. Each sample
// is a new client process: it opens its keep-alive connections with
// untimed requests, then sends the timed ones, closed-loop, a random item
// each; samples run in rounds, every server once per round in a new
// random order, as the other operations do.

const (
	httpGetPart   = "http get" // what --only matches
	httpSectionID = "http-get"
	httpItems     = 10_000
	httpRepo      = "/user/bench" // the user's own repository: the built-in rules let it read
	httpUser      = "bench"
	httpBatch     = 1000
)

// httpGetTarget is the section's goal for goatdb with authentication.
const (
	httpGetGoal  = "GET of one item over HTTP (keep-alive, authenticated): server CPU ≤ 50 µs"
	httpGetLimit = 50 * time.Microsecond
)

// httpGetConfig is what the section measures.
type httpGetConfig struct {
	on       bool
	requests int // timed requests per sample, over all connections
	samples  int // timed samples per server
	warmups  int // untimed rounds first
	warm     int // untimed requests per connection before each sample
	conns    int // keep-alive connections, each with one request at a time
	// profile, if set, is where a CPU profile of this process goes,
	// taken during one more sample of goatdb with authentication after
	// the timed ones (not in the figures).
	profile string
}

// The servers measured, in report order.
const (
	httpGoatAuth = "goatdb-auth"
	httpGoatOpen = "goatdb-noauth"
	httpSQLite   = "sqlite"
)

// httpServer is one server under measure, serving in this process.
type httpServer struct {
	id, name string
	url      string // item i is url + "i" + i
	auth     string // the Authorization header the client sends
	accepts  *atomic.Int64
	close    func() error

	cpu []float64 // server CPU ns per request, per timed sample
	res []clientResult
}

// httpGetResults are the section's figures.
type httpGetResults struct {
	Items    int              `json:"items"`
	Conns    int              `json:"connections"`
	Requests int              `json:"requests_per_sample"`
	Servers  []httpGetFigures `json:"servers"`
	Profile  string           `json:"profile,omitempty"`
}

// httpGetFigures are one server's figures: medians over the samples.
type httpGetFigures struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	CPU     float64   `json:"cpu_ns_per_request"` // median
	CPUMin  float64   `json:"cpu_ns_per_request_min"`
	CPUMax  float64   `json:"cpu_ns_per_request_max"`
	Samples []float64 `json:"cpu_ns_per_request_samples"`
	P50     float64   `json:"p50_ns"` // medians of the samples' percentiles
	P99     float64   `json:"p99_ns"`
	RPS     float64   `json:"requests_per_second"` // median
	// VsSQLite is CPU over SQLite's.
	VsSQLite float64 `json:"cpu_over_sqlite,omitempty"`
}

// httpSelected reports whether the run includes the section.
func (c *config) httpSelected() bool {
	return c.http.on && (c.only == nil || c.only.MatchString(httpGetPart))
}

func httpKey(i int) string { return "i" + strconv.Itoa(i) }

// runHTTPGet runs the section, with its data in a temporary directory
// under cfg.dir, removed at the end.
func runHTTPGet(ctx context.Context, cfg *config, progress io.Writer) (res *httpGetResults, err error) {
	if _, err := processCPU(); err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	base, err := os.MkdirTemp(cfg.dir, "goatdb-http-")
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, os.RemoveAll(base)) }()
	var servers []*httpServer
	defer func() {
		for _, s := range servers {
			if cerr := s.close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("%s: close: %w", s.name, cerr))
			}
		}
	}()
	for _, start := range []func(string) (*httpServer, error){
		func(dir string) (*httpServer, error) { return startGoatHTTP(dir, true) },
		func(dir string) (*httpServer, error) { return startGoatHTTP(dir, false) },
		startSQLiteHTTP,
	} {
		t0 := time.Now()
		s, err := start(base)
		if err != nil {
			return nil, err
		}
		servers = append(servers, s)
		fmt.Fprintf(progress, "setup %-22s %v\n", s.name, time.Since(t0).Round(time.Millisecond))
	}
	h := &cfg.http
	t0 := time.Now()
	order := slices.Clone(servers)
	seed := uint64(1)
	for r := range h.warmups + h.samples {
		rand.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		for _, s := range order {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			seed++
			cpu, cr, err := s.sample(ctx, exe, h, seed)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", httpGetPart, s.name, err)
			}
			if r >= h.warmups {
				s.cpu, s.res = append(s.cpu, cpu), append(s.res, cr)
			}
		}
	}
	fmt.Fprintf(progress, "%-28s %v\n", httpGetPart, time.Since(t0).Round(time.Millisecond))
	res = &httpGetResults{Items: httpItems, Conns: h.conns, Requests: h.conns * (h.requests / h.conns)}
	for _, s := range servers {
		res.Servers = append(res.Servers, s.figures())
	}
	if sq := res.server(httpSQLite); sq != nil {
		for i := range res.Servers {
			if f := &res.Servers[i]; f.ID != httpSQLite {
				f.VsSQLite = f.CPU / sq.CPU
			}
		}
	}
	if h.profile != "" {
		if err := profileSample(ctx, exe, h, servers[0]); err != nil {
			return nil, err
		}
		res.Profile = h.profile
		fmt.Fprintf(progress, "%-28s %s\n", "http get profile", h.profile)
	}
	return res, nil
}

// profileSample takes a CPU profile of this process during one more
// sample of s, five times as long as the timed ones (the profile takes
// 100 samples a second).
func profileSample(ctx context.Context, exe string, h *httpGetConfig, s *httpServer) (err error) {
	f, err := os.Create(h.profile)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	long := *h
	long.requests *= 5
	_, _, err = s.sample(ctx, exe, &long, 1<<40)
	pprof.StopCPUProfile()
	return err
}

func (r *httpGetResults) server(id string) *httpGetFigures {
	for i := range r.Servers {
		if r.Servers[i].ID == id {
			return &r.Servers[i]
		}
	}
	return nil
}

func (s *httpServer) figures() httpGetFigures {
	cpu := slices.Sorted(slices.Values(s.cpu))
	var p50, p99, rps []float64
	for _, r := range s.res {
		p50, p99 = append(p50, r.P50), append(p99, r.P99)
		rps = append(rps, float64(r.Requests)/(r.WallNS/1e9))
	}
	for _, x := range [][]float64{p50, p99, rps} {
		slices.Sort(x)
	}
	f := httpGetFigures{ID: s.id, Name: s.name, CPU: median(cpu), Samples: s.cpu, P50: median(p50), P99: median(p99), RPS: median(rps)}
	if len(cpu) > 0 {
		f.CPUMin, f.CPUMax = cpu[0], cpu[len(cpu)-1]
	}
	return f
}

// sample runs one client process against s and returns this process's
// CPU time per timed request, in nanoseconds, and what the client saw.
func (s *httpServer) sample(ctx context.Context, exe string, h *httpGetConfig, seed uint64) (float64, clientResult, error) {
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), httpClientEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, clientResult{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, clientResult{}, err
	}
	killWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return 0, clientResult{}, err
	}
	fail := func(err error) (float64, clientResult, error) {
		cmd.Process.Kill()
		cmd.Wait()
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			err = fmt.Errorf("%w (client: %s)", err, msg)
		}
		return 0, clientResult{}, err
	}
	orders, _ := json.Marshal(clientOrders{URL: s.url, Auth: s.auth, Items: httpItems, Conns: h.conns, Warmup: h.warm, N: h.requests, Seed: seed})
	if _, err := stdin.Write(append(orders, '\n')); err != nil {
		return fail(err)
	}
	out := bufio.NewReader(stdout)
	line, err := out.ReadString('\n')
	if err != nil || line != "ready\n" {
		return fail(clientError(line, err))
	}
	runtime.GC() // earlier samples' garbage, not this one's
	accepted := s.accepts.Load()
	cpu0, err := processCPU()
	if err != nil {
		return fail(err)
	}
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		return fail(err)
	}
	line, err = out.ReadString('\n')
	cpu1, cerr := processCPU()
	var res clientResult
	if err != nil || json.Unmarshal([]byte(line), &res) != nil || res.Error != "" || res.Requests == 0 {
		return fail(clientError(line, err))
	}
	if cerr != nil {
		return fail(cerr)
	}
	if n := s.accepts.Load() - accepted; n != 0 {
		return fail(fmt.Errorf("the client opened %d connections during the timed requests, want none (keep-alive)", n))
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		return fail(err)
	}
	return float64((cpu1 - cpu0).Nanoseconds()) / float64(res.Requests), res, nil
}

// clientError describes a client's failure from its last line of output.
func clientError(line string, err error) error {
	var res clientResult
	if json.Unmarshal([]byte(line), &res) == nil && res.Error != "" {
		return errors.New(res.Error)
	}
	if err != nil {
		return fmt.Errorf("client output: %w", err)
	}
	return fmt.Errorf("client output %q", line)
}

// countingListener counts the connections it accepts, so that a sample
// can check its requests all went over the connections it opened first.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func listenLoopback() (countingListener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	return countingListener{Listener: ln, n: new(atomic.Int64)}, err
}

// startGoatHTTP opens a goatdb database (default options: signed commits,
// Sync durability) of httpItems items in httpRepo and serves it with
// server.New on 127.0.0.1. With auth, the server authenticates (a new
// identity, the built-in rules) and the client sends a bearer token of
// user httpUser, from POST /v1/auth/token.
func startGoatHTTP(base string, auth bool) (_ *httpServer, err error) {
	s := &httpServer{id: httpGoatOpen, name: "goatdb, no auth"}
	if auth {
		s.id, s.name = httpGoatAuth, "goatdb, token"
	}
	schemas, err := testSchema()
	if err != nil {
		return nil, err
	}
	db, err := goatdb.Open(filepath.Join(base, s.id), &goatdb.Options{Schemas: schemas})
	if err != nil {
		return nil, err
	}
	var closers []func() error
	closeAll := func() error {
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			errs = append(errs, closers[i]())
		}
		return errors.Join(append(errs, db.Close())...)
	}
	defer func() {
		if err != nil {
			err = errors.Join(fmt.Errorf("%s: setup: %w", s.name, err), closeAll())
		}
	}()
	for lo := 0; lo < httpItems; lo += httpBatch {
		b := db.Batch()
		for i := lo; i < min(lo+httpBatch, httpItems); i++ {
			b.Put(httpRepo+"/"+httpKey(i), fieldsOf(recordOf(i)), withTest)
		}
		if _, err := b.Commit(); err != nil {
			return nil, err
		}
	}
	opts := &server.Options{RateLimit: -1}
	if auth {
		id, _, err := server.NewIdentity("bench")
		if err != nil {
			return nil, err
		}
		opts.Auth = &server.AuthOptions{Identity: id}
	}
	srv, err := server.New(db, opts)
	if err != nil {
		return nil, err
	}
	closers = append(closers, srv.Close)
	ln, err := listenLoopback()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	closers = append(closers, func() error { cancel(); return <-done })
	root := "http://" + ln.Addr().String()
	s.url, s.accepts = root+"/v1/items"+httpRepo+"/", ln.n
	if auth {
		if s.auth, err = goatToken(root, srv.Accounts()); err != nil {
			return nil, err
		}
	}
	s.close = closeAll
	return s, nil
}

// goatToken adds user httpUser and logs it in through POST
// /v1/auth/token, and returns the Authorization header of its token.
func goatToken(root string, acc *server.Accounts) (string, error) {
	code, _, err := acc.AddUser(httpUser, nil)
	if err != nil {
		return "", err
	}
	body, _ := json.Marshal(map[string]string{"user": httpUser, "code": code})
	resp, err := http.Post(root+"/v1/auth/token", "application/json", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var ans struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || resp.StatusCode != http.StatusOK || ans.Token == "" {
		return "", fmt.Errorf("POST /v1/auth/token: %s, %v", resp.Status, err)
	}
	return "Bearer " + ans.Token, nil
}

// The SQLite server's table: a row per item, its JSON text and a version
// for the ETag.
const (
	sqlHTTPCreate = `CREATE TABLE items (key TEXT PRIMARY KEY, version INTEGER NOT NULL, doc TEXT NOT NULL)`
	sqlHTTPInsert = `INSERT INTO items (key, version, doc) VALUES (?, ?, ?)`
	sqlHTTPGet    = `SELECT version, doc FROM items WHERE key = ?`
)

// startSQLiteHTTP writes httpItems rows (each item's fields as JSON text)
// to a SQLite database (modernc.org/sqlite, WAL) and serves them on
// 127.0.0.1 with a minimal net/http handler: GET
// /v1/items/{type}/{repo}/{key} checks a static bearer token (a map
// lookup), reads the row with a prepared statement and answers it as
// JSON with an ETag.
func startSQLiteHTTP(base string) (_ *httpServer, err error) {
	s := &httpServer{id: httpSQLite, name: "SQLite + net/http"}
	db, err := (&sqliteEngine{synchronous: "NORMAL"}).open(filepath.Join(base, "sqlite-http.db"))
	if err != nil {
		return nil, err
	}
	var closers []func() error
	closeAll := func() error {
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			errs = append(errs, closers[i]())
		}
		return errors.Join(append(errs, db.Close())...)
	}
	defer func() {
		if err != nil {
			err = errors.Join(fmt.Errorf("%s: setup: %w", s.name, err), closeAll())
		}
	}()
	if err := sqliteFill(db); err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(4) // readers in parallel, as WAL allows
	db.SetMaxIdleConns(4)
	get, err := db.Prepare(sqlHTTPGet)
	if err != nil {
		return nil, err
	}
	closers = append(closers, get.Close)
	token := "static-" + strconv.FormatUint(rand.Uint64(), 36)
	tokens := map[string]string{token: httpUser}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/items/{type}/{repo}/{key}", func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if _, known := tokens[tok]; !ok || !known {
			http.Error(w, `{"error": "unauthorized"}`, http.StatusUnauthorized)
			return
		}
		if "/"+r.PathValue("type")+"/"+r.PathValue("repo") != httpRepo {
			http.Error(w, `{"error": "no such repository"}`, http.StatusNotFound)
			return
		}
		key := r.PathValue("key")
		var version int64
		var doc []byte
		switch err := get.QueryRowContext(r.Context(), key).Scan(&version, &doc); {
		case errors.Is(err, sql.ErrNoRows):
			http.Error(w, `{"error": "no such item"}`, http.StatusNotFound)
			return
		case err != nil:
			http.Error(w, `{"error": "storage"}`, http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("ETag", `"`+strconv.FormatInt(version, 10)+`"`)
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		b := make([]byte, 0, 64+2*len(key)+len(httpRepo)+len(doc))
		b = append(b, `{"path":"`+httpRepo+`/`...)
		b = append(b, key...)
		b = append(b, `","key":"`...)
		b = append(b, key...)
		b = append(b, `","fields":`...)
		b = append(b, doc...)
		b = append(b, "}\n"...)
		w.Write(b)
	})
	ln, err := listenLoopback()
	if err != nil {
		return nil, err
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	closers = append(closers, func() error {
		err := hs.Close()
		if serr := <-done; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		return err
	})
	s.url, s.accepts, s.auth = "http://"+ln.Addr().String()+"/v1/items"+httpRepo+"/", ln.n, "Bearer "+token
	s.close = closeAll
	return s, nil
}

// sqliteFill writes the httpItems rows in one transaction.
func sqliteFill(db *sql.DB) error {
	if _, err := db.Exec(sqlHTTPCreate); err != nil {
		return err
	}
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	ins, err := tx.Prepare(sqlHTTPInsert)
	if err != nil {
		return errors.Join(err, tx.Rollback())
	}
	for i := range httpItems {
		doc, _ := json.Marshal(recordOf(i))
		if _, err := ins.Exec(httpKey(i), 1, string(doc)); err != nil {
			return errors.Join(err, tx.Rollback())
		}
	}
	return errors.Join(ins.Close(), tx.Commit())
}

// httpSection lays out the figures.
func httpSection(res *httpGetResults) section {
	s := section{ID: httpSectionID, Title: fmt.Sprintf("HTTP GET of one item: server CPU per request, %s items, a client process on 127.0.0.1 with %d keep-alive connections",
		thousands(res.Items), res.Conns), Data: res}
	t := table{Columns: []column{
		{name: "server"}, {name: "CPU/request", right: true}, {name: "min–max", right: true}, {name: "÷ SQLite", right: true},
		{name: "p50", right: true}, {name: "p99", right: true}, {name: "requests/s", right: true}, {name: "n", right: true},
	}}
	for _, f := range res.Servers {
		ratio := ""
		if f.VsSQLite > 0 {
			ratio = formatRatio(f.VsSQLite)
		}
		t.Rows = append(t.Rows, []string{f.Name, formatNS(f.CPU), formatNS(f.CPUMin) + "–" + formatNS(f.CPUMax), ratio,
			formatNS(f.P50), formatNS(f.P99), thousands(int(f.RPS)), fmt.Sprintf("%d×%s", len(f.Samples), thousands(res.Requests))})
	}
	s.Tables = []table{t}
	return s
}

func httpNotes(cfg *config, res *httpGetResults) []string {
	h := &cfg.http
	out := []string{
		fmt.Sprintf("HTTP GET: every server runs in the bench process and holds the same %s items (the workload's); a client process (the bench binary "+
			"started again) sends GET /v1/items%s/KEY of a random item over %d keep-alive connections, one request at a time on each, and checks each answer "+
			"(200, the item's title). CPU/request: the bench process's CPU time (getrusage: user + system, every thread, the Go GC included) over "+
			"a sample's %s timed requests, divided by them: the server's work alone, the client's being in its own process. "+
			"Each sample is a new client that first opens its connections with %d untimed requests each (no connection is opened during the timed requests: checked); "+
			"%d samples per server after %s, in rounds, each in a new random order. min–max: of the samples. "+
			"p50, p99: as the client times each request (median of the samples' percentiles); the client shares the machine's CPUs with the server.",
			thousands(res.Items), httpRepo, res.Conns, thousands(res.Requests), h.warm, h.samples, plural(h.warmups, "untimed round")),
		"goatdb: server.New on a database with the default options (signed commits), rate limits off (Options.RateLimit -1), the other quotas at their defaults; " +
			"token: authentication on (server.NewIdentity, the built-in rules) and Authorization: Bearer with a token of POST /v1/auth/token, the user reading its own " +
			"/user/NAME repository; no auth: the same without authentication. The server decodes the item and encodes its JSON answer (path, key, head, schema, time, fields) " +
			"with an ETag on each request.",
		"SQLite + net/http: modernc.org/sqlite (WAL) behind an http.ServeMux handler: a static bearer token checked by a map lookup, the row (the item's fields as JSON text, " +
			"and a version for the ETag) read by primary key with a prepared statement, answered as JSON around the stored text.",
	}
	if res.Profile != "" {
		out = append(out, "A CPU profile of the bench process during one more sample of goatdb with a token, of "+thousands(5*res.Requests)+" requests (not in the figures), is in "+res.Profile+".")
	}
	return out
}

// judgeHTTP judges the section's target.
func judgeHTTP(res *httpGetResults) verdict {
	v := verdict{Target: httpGetGoal, Engine: httpGoatAuth, Status: statusNotJudged, Detail: "not measured in this run"}
	g := res.server(httpGoatAuth)
	if g == nil || len(g.Samples) == 0 {
		return v
	}
	v.Status = metIf(g.CPU <= float64(httpGetLimit))
	v.Detail = fmt.Sprintf("%s %s CPU per request (limit %s)", g.Name, formatNS(g.CPU), formatNS(float64(httpGetLimit)))
	if sq := res.server(httpSQLite); sq != nil {
		v.Detail += fmt.Sprintf("; %s %s: %s", sq.Name, formatNS(sq.CPU), formatRatio(g.VsSQLite))
	}
	return v
}

// plural says "1 thing" or "n things".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return strconv.Itoa(n) + " " + thing + "s"
}
