package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/authz"
	"github.com/goatdb/goatdb/commit"
)

// rawSession is a logged-in session that speaks HTTP itself, as an
// attacker's script would: it has its key, and signs (v1) or, once the
// server named its node key, MACs (v2) each request as goatdb's client
// does.
type rawSession struct {
	key    ed25519.PrivateKey
	sid    commit.SessionID
	aud    string
	host   string            // the Host signed and sent
	reqKey *authz.RequestKey // nil: sign with v1
}

// auth returns a Goat-Auth header for a request.
func (s *rawSession) auth(method, pathQuery string, body []byte) string {
	r := authz.Request{Method: method, Host: s.host, PathQuery: pathQuery, Body: authz.BodyDigest(body)}
	var h string
	var err error
	if s.reqKey != nil {
		h, err = authz.MACRequest(s.reqKey, r, time.Now(), authz.NewNonce(), "")
	} else {
		h, err = authz.SignRequest(s.key, s.aud, r, time.Now(), authz.NewNonce(), "")
	}
	if err != nil {
		panic(err) // only for malformed parts, which these are not
	}
	return h
}

// sourceClient returns an HTTP client whose connections come from ip.
func sourceClient(ip net.IP, conns int) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{
		DialContext: d.DialContext, MaxIdleConnsPerHost: conns, DisableCompression: true,
		ResponseHeaderTimeout: 60 * time.Second,
	}}
}

// dialFrom opens a TCP connection from ip to host.
func dialFrom(ctx context.Context, ip net.IP, host string) (net.Conn, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 3 * time.Second}
	return d.DialContext(ctx, "tcp", host)
}

// discoverAudience learns the deployment's audience as any client does:
// from the 401 an unsigned request gets.
func discoverAudience(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/auth/login", strings.NewReader("{}"))
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	aud := resp.Header.Get("Goat-Audience")
	if aud == "" {
		return "", fmt.Errorf("an unsigned login got %s without a Goat-Audience header", resp.Status)
	}
	return aud, nil
}

// loginRaw logs a new session in as user with code, from the client's
// address, retrying while the server answers 429 or 503 (for up to a
// minute).
func loginRaw(ctx context.Context, c *http.Client, url, host, aud, user, code string) (*rawSession, error) {
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	s := &rawSession{key: key, aud: aud, host: host}
	copy(s.sid[:], key.Public().(ed25519.PublicKey))
	body, _ := json.Marshal(map[string]string{"user": user, "code": code})
	deadline := time.Now().Add(time.Minute)
	for {
		status, answer, wait, err := s.post(ctx, c, url, "/v1/auth/login", "application/json", body, true)
		if err != nil {
			return nil, err
		}
		if status == http.StatusOK {
			var ans authz.LoginAnswer
			if err := json.Unmarshal(answer, &ans); err != nil {
				return nil, fmt.Errorf("login %s: %v", user, err)
			}
			if node, err := base64.StdEncoding.DecodeString(ans.Node); err == nil && len(node) == ed25519.PublicKeySize {
				if k, err := authz.NewRequestKey(key, node, aud); err == nil {
					s.reqKey = k
				}
			}
			return s, nil
		}
		if status != http.StatusTooManyRequests && status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			return nil, fmt.Errorf("login %s: %d %s", user, status, strings.TrimSpace(string(answer)))
		}
		if !sleepCtx(ctx, min(max(wait, 50*time.Millisecond), 2*time.Second)) {
			return nil, ctx.Err()
		}
	}
}

// post sends a signed POST and returns the status, the body (read in
// full if keep, else discarded) and the Retry-After the server asked for.
func (s *rawSession) post(ctx context.Context, c *http.Client, url, path, contentType string, body []byte, keep bool) (int, []byte, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, 0, err
	}
	req.Host = s.host
	req.Header.Set("Content-Type", contentType)
	req.Header.Set(authz.AuthHeaderName, s.auth(http.MethodPost, path, body))
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, 0, err
	}
	defer resp.Body.Close()
	var out []byte
	if keep {
		out, err = io.ReadAll(resp.Body)
	} else {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	return resp.StatusCode, out, retryAfter(resp), err
}

func retryAfter(resp *http.Response) time.Duration {
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	return 0
}

// requestHead is the head of an HTTP/1.1 request a raw connection sends.
func requestHead(method, path, host, auth, contentType string, contentLength int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: goatdb-abuse\r\n%s: %s\r\n", method, path, host, authz.AuthHeaderName, auth)
	if contentType != "" {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", contentType)
	}
	if contentLength >= 0 {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", contentLength)
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

// readStatus reads an HTTP response's status line and returns its code as
// text, or why there is none: "timeout", "closed" or "error".
func readStatus(br *bufio.Reader) string {
	line, err := br.ReadString('\n')
	if err != nil {
		return connErrorKind(err)
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return "garbled"
	}
	return f[1]
}

// connErrorKind names a connection error for the status counts.
func connErrorKind(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), strings.Contains(err.Error(), "reset by peer"),
		strings.Contains(err.Error(), "broken pipe"):
		return "closed"
	case strings.Contains(err.Error(), "connection refused"):
		return "refused"
	}
	return "error"
}

// requestErrorKind names the error of an http.Client request.
func requestErrorKind(err error) string {
	if errors.Is(err, context.Canceled) {
		return "cancelled"
	}
	return connErrorKind(err)
}

// counter counts outcomes by name, safely from many goroutines.
type counter struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counter) add(k string, n int) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[k] += n
	c.mu.Unlock()
}

func (c *counter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.m))
	for k, v := range c.m {
		out[k] = v
	}
	return out
}

// gaugeMax is a level that goes up and down, with its peak.
type gaugeMax struct {
	cur, peak atomic.Int64
}

func (g *gaugeMax) add(n int64) {
	v := g.cur.Add(n)
	for {
		p := g.peak.Load()
		if v <= p || g.peak.CompareAndSwap(p, v) {
			return
		}
	}
}

// formatCounts formats status counts as "200×12 429×3", codes first in
// order, then the other kinds.
func formatCounts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		_, ea := strconv.Atoi(a)
		_, eb := strconv.Atoi(b)
		switch {
		case ea == nil && eb != nil:
			return -1
		case ea != nil && eb == nil:
			return 1
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s×%s", k, thousands(m[k]))
	}
	return strings.Join(parts, " ")
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// ordinary is an ordinary client: a goatdb database that logged in and
// syncs its own repository, a write then a sync per round.
type ordinary struct {
	db   *goatdb.DB
	repo string
	n    int // writes so far
}

// openOrdinary opens a client database (Async durability: the figures
// are the server's and the network's, not the client's disk) and logs it
// in as user.
func openOrdinary(ctx context.Context, dir, url, user, code, repo string) (*ordinary, error) {
	db, err := goatdb.Open(filepath.Join(dir, user), &goatdb.Options{Durability: goatdb.Async})
	if err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(time.Minute); ; {
		_, err = db.LoginCode(ctx, url, user, code)
		var se *goatdb.ServerError
		if err == nil || !errors.As(err, &se) || !se.Temporary() || time.Now().After(deadline) {
			break
		}
		if !sleepCtx(ctx, min(max(se.RetryAfter, 50*time.Millisecond), 2*time.Second)) {
			break
		}
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("login %s: %w", user, err), db.Close())
	}
	return &ordinary{db: db, repo: repo}, nil
}

// roundResult is one round of an ordinary client.
type roundResult struct {
	lat   time.Duration // from the sync's start until it succeeded
	ok    bool
	first string // the first attempt's outcome: "200", a status, or an error kind
	tries int
}

// round writes one item and syncs the client's repository, retrying while
// the server asks to (429, 503, 408, unreachable) as goatdb's background
// syncer does, for up to timeout.
func (o *ordinary) round(ctx context.Context, url string, timeout time.Duration) (roundResult, error) {
	o.n++
	if _, err := o.db.Put(fmt.Sprintf("%s/k%06d", o.repo, o.n), goatdb.Fields{"n": float64(o.n), "at": time.Now().Format(time.RFC3339Nano)}); err != nil {
		return roundResult{}, err
	}
	start := time.Now()
	deadline := start.Add(timeout)
	var r roundResult
	backoff := 50 * time.Millisecond
	for {
		rctx, cancel := context.WithDeadline(ctx, deadline)
		_, err := o.db.Sync(rctx, url, o.repo)
		cancel()
		r.tries++
		kind, retry, wait := syncErrorKind(err)
		if r.tries == 1 {
			r.first = kind
		}
		if err == nil {
			r.lat, r.ok = time.Since(start), true
			return r, nil
		}
		if ctx.Err() != nil {
			return r, ctx.Err()
		}
		if !retry || time.Now().Add(max(wait, backoff)).After(deadline) {
			r.lat = time.Since(start)
			return r, nil
		}
		if !sleepCtx(ctx, max(wait, backoff)) {
			return r, ctx.Err()
		}
		backoff = min(2*backoff, time.Second)
	}
}

// syncErrorKind names a sync's outcome, says whether a client retries it,
// and how long the server asked it to wait.
func syncErrorKind(err error) (kind string, retry bool, wait time.Duration) {
	var se *goatdb.ServerError
	switch {
	case err == nil:
		return "200", false, 0
	case errors.As(err, &se):
		return strconv.Itoa(se.Status), se.Temporary() || se.Status == http.StatusRequestTimeout, se.RetryAfter
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout", false, 0
	case errors.Is(err, goatdb.ErrUnreachable):
		return "unreachable", true, 0
	case errors.Is(err, goatdb.ErrRejected):
		return "rejected", false, 0
	}
	return "error", false, 0
}

// latencies collects the rounds of a set of clients.
type latencies struct {
	mu     sync.Mutex
	rounds []roundResult
}

func (l *latencies) add(r roundResult) {
	l.mu.Lock()
	l.rounds = append(l.rounds, r)
	l.mu.Unlock()
}

// latencyStats summarises rounds: failed rounds count as slower than any
// that succeeded.
type latencyStats struct {
	Rounds  int            `json:"rounds"`
	Failed  int            `json:"failed"`
	First   map[string]int `json:"first_try"` // the first attempt's outcomes
	Retried int            `json:"retried"`   // rounds that took more than one attempt
	P50     float64        `json:"p50_ns"`    // +Inf (null in JSON) if the rank falls on a failed round
	P99     float64        `json:"p99_ns"`
	Max     float64        `json:"max_ns"`
}

func (l *latencies) stats() latencyStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := latencyStats{Rounds: len(l.rounds), First: map[string]int{}}
	ns := make([]float64, 0, len(l.rounds))
	for _, r := range l.rounds {
		s.First[r.first]++
		if r.tries > 1 {
			s.Retried++
		}
		if !r.ok {
			s.Failed++
			ns = append(ns, math.Inf(1))
			continue
		}
		ns = append(ns, float64(r.lat.Nanoseconds()))
	}
	slices.Sort(ns)
	s.P50, s.P99 = nearestRank(ns, 0.50), nearestRank(ns, 0.99)
	if len(ns) > 0 {
		s.Max = ns[len(ns)-1]
	} else {
		s.Max = math.NaN()
	}
	return s
}

// MarshalJSON writes the infinite and missing figures as null.
func (s latencyStats) MarshalJSON() ([]byte, error) {
	type plain latencyStats
	fix := func(f float64) any {
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return nil
		}
		return f
	}
	return json.Marshal(struct {
		plain
		P50 any `json:"p50_ns"`
		P99 any `json:"p99_ns"`
		Max any `json:"max_ns"`
	}{plain(s), fix(s.P50), fix(s.P99), fix(s.Max)})
}

// runClients runs rounds on every client, each every interval (starting
// at a random phase), until ctx ends; a round started before then may
// finish after, within its timeout, under measure.
func runClients(ctx, measure context.Context, cs []*ordinary, url string, interval, timeout time.Duration, lat *latencies, errs chan<- error) *sync.WaitGroup {
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !sleepCtx(ctx, rand.N(interval)) {
				return
			}
			next := time.Now()
			for ctx.Err() == nil {
				r, err := c.round(measure, url, timeout)
				if err != nil {
					if measure.Err() == nil {
						select {
						case errs <- fmt.Errorf("%s: %w", c.repo, err):
						default:
						}
					}
					return
				}
				lat.add(r)
				next = next.Add(interval)
				if d := time.Until(next); d > 0 {
					if !sleepCtx(ctx, d) {
						return
					}
				} else {
					next = time.Now()
				}
			}
		}()
	}
	return &wg
}

// probeResult is a /healthz probe.
type probeResult struct {
	lat    time.Duration
	status string
	open   int64 // attacker connections open when it was sent
}

// probeHealth asks /healthz from 127.0.0.1 on a new connection every
// 50 ms (one at a time) until ctx ends. open, if not nil, is the count of
// attacker connections open, recorded with each probe.
func probeHealth(ctx context.Context, url string, open *gaugeMax) []probeResult {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var out []probeResult
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return out
		case <-t.C:
		}
		var p probeResult
		if open != nil {
			p.open = open.cur.Load()
		}
		start := time.Now()
		resp, err := c.Get(url + "/healthz")
		if err != nil {
			if ctx.Err() != nil {
				return out
			}
			p.status = requestErrorKind(err)
		} else {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			p.status = strconv.Itoa(resp.StatusCode)
		}
		p.lat = time.Since(start)
		out = append(out, p)
	}
}

// probeStats summarises /healthz probes.
type probeStats struct {
	N      int            `json:"n"`
	Status map[string]int `json:"status"`
	P50    float64        `json:"p50_ns"`
	Max    float64        `json:"max_ns"`
}

// healthStats summarises the probes sent while at least minOpen attacker
// connections were open (all of them if minOpen is 0).
func healthStats(ps []probeResult, minOpen int64) probeStats {
	s := probeStats{Status: map[string]int{}, P50: math.NaN(), Max: math.NaN()}
	var ns []float64
	for _, p := range ps {
		if p.open < minOpen {
			continue
		}
		s.N++
		s.Status[p.status]++
		ns = append(ns, float64(p.lat.Nanoseconds()))
	}
	if len(ns) > 0 {
		slices.Sort(ns)
		s.P50, s.Max = median(ns), ns[len(ns)-1]
	}
	return s
}

// MarshalJSON writes the missing figures as null.
func (s probeStats) MarshalJSON() ([]byte, error) {
	type plain probeStats
	fix := func(f float64) any {
		if math.IsNaN(f) {
			return nil
		}
		return f
	}
	return json.Marshal(struct {
		plain
		P50 any `json:"p50_ns"`
		Max any `json:"max_ns"`
	}{plain(s), fix(s.P50), fix(s.Max)})
}

// streamProbe opens an event stream as an ordinary client would, from
// 127.0.0.1, and reports how long until its "ready" event, or why it got
// none within 5 s.
func streamProbe(ctx context.Context, s *rawSession, host string) (time.Duration, string) {
	start := time.Now()
	conn, err := dialFrom(ctx, net.IPv4(127, 0, 0, 1), host)
	if err != nil {
		return 0, "dial " + connErrorKind(err)
	}
	defer conn.Close()
	conn.SetDeadline(start.Add(5 * time.Second))
	if _, err := conn.Write(requestHead(http.MethodGet, "/v1/events", s.host, s.auth(http.MethodGet, "/v1/events", nil), "", -1)); err != nil {
		return 0, connErrorKind(err)
	}
	br := bufio.NewReaderSize(conn, 4096)
	if st := readStatus(br); st != "200" {
		return 0, st
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return 0, "no ready event: " + connErrorKind(err)
		}
		if strings.TrimSpace(line) == "event: ready" {
			return time.Since(start), "ok"
		}
	}
}
