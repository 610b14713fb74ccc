package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/item"
	"github.com/goatdb/goatdb/syncproto"
)

// scenario is the baseline or one attack.
type scenario struct {
	id    string
	title func(c *abuseConfig) string
	// sessions is how many attacker sessions (user mallory) log in before
	// the attack; 0 for none.
	sessions func(c *abuseConfig) int
	// onePool: the attacker uses one source address (127.0.0.2), not the
	// pool.
	oneHost bool
	// prepare, if set, readies what run needs before the attack starts.
	prepare func(ctx context.Context, e *attackEnv) error
	// run attacks until ctx ends (at most a short grace after), and
	// returns what the attacker got.
	run func(ctx context.Context, e *attackEnv) attackOutcome
}

// attackEnv is what an attack has: the server, the attacker's addresses,
// clients and sessions.
type attackEnv struct {
	cfg      *abuseConfig
	root     context.Context // the run's: ends only if the run is stopped
	url      string          // http://127.0.0.1:PORT
	host     string          // 127.0.0.1:PORT
	pool     *sourcePool
	clients  []*http.Client // one per address of pool
	sessions []*rawSession
	open     gaugeMax // attacker connections open, which /healthz probes record
	workDir  string   // for the crowd's databases
	tpl      *template
	crowd    []*ordinary
	crowdLat latencies
	state    any // what prepare made for run
}

func (e *attackEnv) client(i int) *http.Client { return e.clients[i%len(e.clients)] }

// attackOutcome is what the attacker got.
type attackOutcome struct {
	Statuses map[string]int     `json:"statuses"` // by HTTP status, or kind of failure
	Figures  map[string]float64 `json:"figures,omitempty"`
	Summary  string             `json:"summary"`
}

const baselineID = "baseline"

func oneSession(*abuseConfig) int { return 1 }

// abuseScenarios are the baseline and the attacks of the issue, in order.
var abuseScenarios = []scenario{
	{id: baselineID, title: func(*abuseConfig) string { return "baseline: no attack" },
		run: func(ctx context.Context, e *attackEnv) attackOutcome {
			<-ctx.Done()
			return attackOutcome{Summary: "-"}
		}},
	{id: "never-reading", title: func(c *abuseConfig) string {
		return fmt.Sprintf("1. %d never-reading clients, everything of %s items", c.neverReading, thousands(c.items))
	}, sessions: func(c *abuseConfig) int { return c.neverReading }, run: attackNeverReading},
	{id: "zstd-bomb", title: func(c *abuseConfig) string {
		return fmt.Sprintf("2. %d zstd bombs of %d MiB at a time", c.bombs, c.bombMiB)
	}, sessions: oneSession, oneHost: true, run: attackBombs},
	{id: "push-flood", title: func(c *abuseConfig) string {
		return fmt.Sprintf("3. one client pushing up to %d MiB of commits", c.pushMiB)
	}, sessions: oneSession, oneHost: true, run: attackPush},
	{id: "repo-flood", title: func(c *abuseConfig) string {
		return fmt.Sprintf("4. %d× a request naming %s new repositories", c.repoRequests, thousands(c.newRepos))
	}, sessions: oneSession, oneHost: true, run: attackRepos},
	{id: "slow-body", title: func(c *abuseConfig) string {
		return fmt.Sprintf("5. %s slow-body connections", thousands(c.slowConns))
	}, sessions: oneSession, run: attackSlowBodies},
	{id: "event-streams", title: func(c *abuseConfig) string {
		return fmt.Sprintf("6. %s event streams, one session", thousands(c.streams))
	}, sessions: oneSession, run: attackStreams},
	{id: "shared-address", title: func(c *abuseConfig) string {
		return fmt.Sprintf("7a. %d more sessions behind the clients' address", c.crowd)
	}, prepare: prepareCrowd, run: attackCrowd},
	{id: "address-evasion", title: func(c *abuseConfig) string {
		return fmt.Sprintf("7b. one session from %d addresses", c.addrs)
	}, sessions: oneSession, run: attackEvasion},
}

// attackNeverReading: each session asks, on a connection of its own, for
// every commit of the big repository and never reads the answer; the
// connections are held until the attack ends, then the status line the
// server sent (if any) is read.
func attackNeverReading(ctx context.Context, e *attackEnv) attackOutcome {
	var st counter
	var wg sync.WaitGroup
	var size atomic.Int64
	for i, s := range e.sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, err := syncproto.EncodeRequest(&syncproto.Request{Session: s.sid, Repos: []syncproto.RepoRequest{{Path: bigRepo}}})
			if err != nil {
				st.add("encode error", 1)
				return
			}
			size.Store(int64(len(body)))
			conn, err := dialFrom(ctx, e.pool.ip(i), e.host)
			if err != nil {
				st.add("dial "+connErrorKind(err), 1)
				return
			}
			defer conn.Close()
			if tc, ok := conn.(*net.TCPConn); ok {
				tc.SetReadBuffer(4096) // take as little of the answer as the kernel allows
			}
			head := requestHead(http.MethodPost, "/v1/sync", s.host, s.auth(http.MethodPost, "/v1/sync", body), goatdb.SyncContentType, len(body))
			if _, err := conn.Write(append(head, body...)); err != nil {
				st.add("write "+connErrorKind(err), 1)
				return
			}
			e.open.add(1)
			<-ctx.Done()
			e.open.add(-1)
			conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			st.add(readStatus(bufio.NewReaderSize(conn, 256)), 1)
		}()
	}
	wg.Wait()
	o := attackOutcome{Statuses: st.snapshot(), Figures: map[string]float64{"held_peak": float64(e.open.peak.Load()), "request_bytes": float64(size.Load())}}
	o.Summary = fmt.Sprintf("%d requests of %d B held unread (peak %d); status lines found at the end: %s",
		len(e.sessions), size.Load(), e.open.peak.Load(), formatCounts(o.Statuses))
	return o
}

// zstdBomb returns a sync request whose zstd frame decompresses to n zero
// bytes: RLE blocks of 128 KiB, 4 bytes each. declared is the content
// size the frame states, or -1 for none.
func zstdBomb(n int, declared int64) []byte {
	// The envelope (syncproto/doc.go): version, kind 1 (request), codec 1
	// (zstd).
	b := []byte{syncproto.Version, 1, 1}
	b = append(b, 0x28, 0xB5, 0x2F, 0xFD) // zstd magic
	if declared < 0 {
		b = append(b, 0x00, 0x38) // no content size; window 128 KiB
	} else {
		b = append(b, 0x80, 0x38) // 4-byte content size; window 128 KiB
		b = binary.LittleEndian.AppendUint32(b, uint32(declared))
	}
	const block = 128 << 10
	for left := n; left > 0; {
		sz := min(left, block)
		left -= sz
		h := uint32(sz)<<3 | 1<<1 // an RLE block
		if left == 0 {
			h |= 1 // the last
		}
		b = append(b, byte(h), byte(h>>8), byte(h>>16), 0)
	}
	return b
}

// bombKinds are the bombs sent in turn: a frame that states its size, one
// that states none, and one that states 1,000 bytes.
var bombKinds = []struct {
	name     string
	declared func(n int) int64
}{
	{"declared", func(n int) int64 { return int64(n) }},
	{"undeclared", func(int) int64 { return -1 }},
	{"lying", func(int) int64 { return 1000 }},
}

// attackBombs sends cfg.bombs zstd bombs at a time from one host and one
// session, wave after wave until the attack ends, reading each answer.
func attackBombs(ctx context.Context, e *attackEnv) attackOutcome {
	n := e.cfg.bombMiB << 20
	bodies := make([][]byte, len(bombKinds))
	for i, k := range bombKinds {
		bodies[i] = zstdBomb(n, k.declared(n))
	}
	var st counter
	byKind := make([]counter, len(bombKinds))
	s := e.sessions[0]
	c := e.client(0)
	waves := 0
	for ctx.Err() == nil {
		waves++
		var wg sync.WaitGroup
		for i := range e.cfg.bombs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k := i % len(bombKinds)
				status, _, _, err := s.post(ctx, c, e.url, "/v1/sync", goatdb.SyncContentType, bodies[k], false)
				kind := fmt.Sprint(status)
				if err != nil && status == 0 {
					kind = requestErrorKind(err)
				}
				if kind == "cancelled" {
					return
				}
				st.add(kind, 1)
				byKind[k].add(kind, 1)
			}()
		}
		wg.Wait()
	}
	o := attackOutcome{Statuses: st.snapshot(), Figures: map[string]float64{"waves": float64(waves), "bomb_bytes": float64(len(bodies[0]))}}
	var parts []string
	for i, k := range bombKinds {
		parts = append(parts, fmt.Sprintf("%s size: %s", k.name, formatCounts(byKind[i].snapshot())))
	}
	o.Summary = fmt.Sprintf("%d waves of %d bombs of %s B; %s", waves, e.cfg.bombs, thousands(len(bodies[0])), strings.Join(parts, "; "))
	return o
}

// Attack 3's commits.
const (
	pushCommitKiB = 16 // bytes of one commit's value, about
	pushLanes     = 2  // requests in flight, each lane to its own repository
)

// pushBatch is one request of attack 3, ready to send.
type pushBatch struct {
	body    []byte
	ids     []commit.ID
	rawSize int
}

// pushLane is one lane's repository, as the client holds it.
type pushLane struct {
	repo   string
	count  uint64
	digest syncproto.Digest
	n      int
	rng    *rand.ChaCha8
}

// next makes the lane's next batch of new commits (each a new item with
// a random value of about pushCommitKiB KiB), counting them as held.
func (l *pushLane) next(s *rawSession, batchBytes int) (*pushBatch, error) {
	raw := make([]byte, pushCommitKiB<<10*3/4)
	b := &pushBatch{}
	var encs [][]byte
	for b.rawSize < batchBytes {
		l.rng.Read(raw)
		c, err := commit.New(commit.Fields{Repo: l.repo, Key: fmt.Sprintf("k%08d", l.n), Time: time.Now().UnixMilli(), Session: s.sid, Full: true,
			Value: item.New(map[string]item.Value{"blob": item.String(base64.StdEncoding.EncodeToString(raw))})}, s.key)
		if err != nil {
			return nil, err
		}
		l.n++
		enc := c.Encode()
		encs = append(encs, enc)
		b.ids = append(b.ids, c.ID())
		b.rawSize += len(enc)
		l.count++
		l.digest = l.digest.Add(c.ID())
	}
	body, err := syncproto.EncodeRequest(&syncproto.Request{Session: s.sid, Repos: []syncproto.RepoRequest{{Path: l.repo, Count: l.count, Digest: l.digest, Commits: encs}}})
	b.body = body
	return b, err
}

// forget takes commits the server did not keep out of what the lane
// holds, so its next count and digest match the server's.
func (l *pushLane) forget(ids []commit.ID) {
	for _, id := range ids {
		l.count--
		l.digest = l.digest.Sub(id)
	}
}

// attackPush pushes batches of new commits as fast as the server takes
// them, pushLanes requests at a time, until cfg.pushMiB are sent or the
// attack ends.
func attackPush(ctx context.Context, e *attackEnv) attackOutcome {
	s := e.sessions[0]
	c := e.client(0)
	budget := int64(e.cfg.pushMiB) << 20
	var st counter
	var sent, accepted, acceptedBytes, wire, rejected atomic.Int64
	var firstRefusal atomic.Int64 // ns after the start, 0 if none
	start := time.Now()
	var wg sync.WaitGroup
	for lane := range pushLanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := &pushLane{repo: fmt.Sprintf("/data/flood-%d", lane), rng: rand.NewChaCha8([32]byte{byte(lane), 'p', 'u', 's', 'h'})}
			for ctx.Err() == nil && sent.Load() < budget {
				b, err := l.next(s, e.cfg.pushBatchKiB<<10)
				if err != nil {
					st.add("encode error", 1)
					return
				}
				sent.Add(int64(b.rawSize))
				status, answer, wait, err := s.post(ctx, c, e.url, "/v1/sync", goatdb.SyncContentType, b.body, true)
				if err != nil && status == 0 {
					if k := requestErrorKind(err); k != "cancelled" {
						st.add(k, 1)
					}
					l.forget(b.ids)
					continue
				}
				wire.Add(int64(len(b.body)))
				st.add(fmt.Sprint(status), 1)
				if status != http.StatusOK {
					if (status == http.StatusTooManyRequests || status == http.StatusRequestEntityTooLarge) && firstRefusal.Load() == 0 {
						firstRefusal.CompareAndSwap(0, int64(time.Since(start)))
					}
					l.forget(b.ids)
					if wait > 0 {
						sleepCtx(ctx, min(wait, time.Second)) // an attacker does not wait long
					}
					continue
				}
				resp, err := syncproto.DecodeResponse(answer)
				if err != nil || len(resp.Repos) != 1 {
					st.add("bad answer", 1)
					continue
				}
				var refused []commit.ID
				for _, r := range resp.Repos[0].Rejected {
					refused = append(refused, r.ID)
				}
				l.forget(refused)
				rejected.Add(int64(len(refused)))
				accepted.Add(int64(len(b.ids) - len(refused)))
				acceptedBytes.Add(int64(b.rawSize) * int64(len(b.ids)-len(refused)) / int64(len(b.ids)))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	o := attackOutcome{Statuses: st.snapshot(), Figures: map[string]float64{
		"sent_bytes": float64(sent.Load()), "wire_bytes": float64(wire.Load()), "accepted_commits": float64(accepted.Load()),
		"accepted_bytes": float64(acceptedBytes.Load()), "rejected_commits": float64(rejected.Load()),
		"first_refusal_s": float64(firstRefusal.Load()) / 1e9, "seconds": elapsed.Seconds(),
	}}
	refusal := "never refused with 429 or 413"
	if f := firstRefusal.Load(); f > 0 {
		refusal = fmt.Sprintf("first 429/413 after %.1f s", float64(f)/1e9)
	}
	o.Summary = fmt.Sprintf("%.0f MiB of commits sent in %.1f s, %.0f MiB (%s commits) stored, %s rejected; %s; statuses %s",
		float64(sent.Load())/(1<<20), elapsed.Seconds(), float64(acceptedBytes.Load())/(1<<20), thousands(int(accepted.Load())),
		thousands(int(rejected.Load())), refusal, formatCounts(o.Statuses))
	return o
}

// attackRepos sends cfg.repoRequests requests, one after the other, each
// naming cfg.newRepos new repositories with one commit each. A request is
// given up to a minute (the server's request timeout), past the attack's
// end if need be.
func attackRepos(ctx context.Context, e *attackEnv) attackOutcome {
	s := e.sessions[0]
	c := e.client(0)
	var st, sections counter
	var firstMsg string
	for r := range e.cfg.repoRequests {
		if ctx.Err() != nil {
			break
		}
		req := &syncproto.Request{Session: s.sid}
		for i := range e.cfg.newRepos {
			path := fmt.Sprintf("/data/spam-%d-%04d", r, i)
			cm, err := commit.New(commit.Fields{Repo: path, Key: "x", Time: time.Now().UnixMilli(), Session: s.sid, Full: true,
				Value: item.New(map[string]item.Value{"spam": item.String(path)})}, s.key)
			if err != nil {
				st.add("encode error", 1)
				break
			}
			req.Repos = append(req.Repos, syncproto.RepoRequest{Path: path, Count: 1, Digest: syncproto.Digest{}.Add(cm.ID()), Commits: [][]byte{cm.Encode()}})
		}
		body, err := syncproto.EncodeRequest(req)
		if err != nil {
			st.add("encode error", 1)
			break
		}
		rctx, cancel := context.WithTimeout(e.root, time.Minute)
		status, answer, _, err := s.post(rctx, c, e.url, "/v1/sync", goatdb.SyncContentType, body, true)
		cancel()
		if err != nil && status == 0 {
			st.add(requestErrorKind(err), 1)
			continue
		}
		st.add(fmt.Sprint(status), 1)
		if status != http.StatusOK {
			if firstMsg == "" {
				firstMsg = strings.TrimSpace(string(answer))
			}
			continue
		}
		resp, err := syncproto.DecodeResponse(answer)
		if err != nil {
			st.add("bad answer", 1)
			continue
		}
		for _, rr := range resp.Repos {
			k := rr.Status.String()
			if rr.Status == syncproto.StatusOK && len(rr.Rejected) > 0 {
				k = "commit rejected"
			}
			sections.add(k, 1)
			if rr.Status != syncproto.StatusOK && firstMsg == "" {
				firstMsg = rr.Message
			} else if len(rr.Rejected) > 0 && firstMsg == "" {
				firstMsg = rr.Rejected[0].Reason
			}
		}
	}
	<-ctx.Done()
	o := attackOutcome{Statuses: st.snapshot(), Figures: map[string]float64{}}
	secs := sections.snapshot()
	for k, v := range secs {
		o.Figures["sections_"+strings.ReplaceAll(k, " ", "_")] = float64(v)
	}
	o.Summary = fmt.Sprintf("requests %s; sections answered: %s", formatCounts(o.Statuses), formatCounts(secs))
	if firstMsg != "" {
		o.Summary += fmt.Sprintf("; first refusal: %.120q", firstMsg)
	}
	return o
}

// Attack 5's bodies: slowBody bytes announced, slowFirst sent at once,
// then one byte a second.
const (
	slowBody  = 64 << 10
	slowFirst = 16
)

// attackSlowBodies keeps cfg.slowConns connections, spread over the
// address pool, each sending a signed sync request's head and a few bytes
// of its body, then a byte a second. A connection the server answers or
// closes is replaced.
func attackSlowBodies(ctx context.Context, e *attackEnv) attackOutcome {
	s := e.sessions[0]
	body := make([]byte, slowBody)
	rand.NewChaCha8([32]byte{'s', 'l', 'o', 'w'}).Read(body)
	var st counter
	var conns atomic.Int64
	var wg sync.WaitGroup
	for i := range e.cfg.slowConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sleepCtx(ctx, time.Duration(i)*time.Millisecond) // a second to open them all
			for ctx.Err() == nil {
				conn, err := dialFrom(ctx, e.pool.ip(i), e.host)
				if err != nil {
					if ctx.Err() == nil {
						st.add("dial "+connErrorKind(err), 1)
						sleepCtx(ctx, 100*time.Millisecond)
					}
					continue
				}
				conns.Add(1)
				status := slowConn(ctx, conn, s, body, &e.open)
				conn.Close()
				if status == "" {
					status = "open at the end"
				}
				st.add(status, 1)
				if status != "" && status != "closed" && status != "408" {
					sleepCtx(ctx, 200*time.Millisecond) // refused: try again a little later
				}
			}
		}()
	}
	wg.Wait()
	o := attackOutcome{Statuses: st.snapshot(), Figures: map[string]float64{"open_peak": float64(e.open.peak.Load()), "connections": float64(conns.Load())}}
	o.Summary = fmt.Sprintf("%s connections over %d addresses, at most %s open at once; answers: %s",
		thousands(int(conns.Load())), len(e.pool.ips), thousands(int(e.open.peak.Load())), formatCounts(o.Statuses))
	return o
}

// slowConn sends the head and slowFirst bytes, then a byte a second until
// the server answers or ctx ends; it returns the answer's status ("" if
// the attack ended first).
func slowConn(ctx context.Context, conn net.Conn, s *rawSession, body []byte, open *gaugeMax) string {
	head := requestHead(http.MethodPost, "/v1/sync", s.host, s.auth(http.MethodPost, "/v1/sync", body), goatdb.SyncContentType, len(body))
	if _, err := conn.Write(append(head, body[:slowFirst]...)); err != nil {
		return connErrorKind(err)
	}
	open.add(1)
	defer open.add(-1)
	answered := make(chan string, 1)
	go func() { answered <- readStatus(bufio.NewReaderSize(conn, 512)) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for sent := slowFirst; ; {
		select {
		case st := <-answered:
			return st
		case <-ctx.Done():
			conn.Close()
			<-answered
			return ""
		case <-tick.C:
			if sent < len(body) {
				conn.Write(body[sent : sent+1])
				sent++
			}
		}
	}
}

// attackStreams opens event streams from one session, over the address
// pool, until it holds cfg.streams or the attack ends; refused attempts
// are tried again after a short pause. The streams are read (and what
// they say dropped) until the attack ends.
func attackStreams(ctx context.Context, e *attackEnv) attackOutcome {
	s := e.sessions[0]
	target := int64(e.cfg.streams)
	var st counter
	var next atomic.Int64
	var mu sync.Mutex
	var held []net.Conn
	var readers, openers sync.WaitGroup
	for range min(e.cfg.streams, 512) {
		openers.Add(1)
		go func() {
			defer openers.Done()
			for ctx.Err() == nil && e.open.cur.Load() < target {
				i := int(next.Add(1))
				conn, err := dialFrom(ctx, e.pool.ip(i), e.host)
				if err != nil {
					if ctx.Err() == nil {
						st.add("dial "+connErrorKind(err), 1)
						sleepCtx(ctx, 100*time.Millisecond)
					}
					continue
				}
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := conn.Write(requestHead(http.MethodGet, "/v1/events", s.host, s.auth(http.MethodGet, "/v1/events", nil), "", -1)); err != nil {
					st.add("write "+connErrorKind(err), 1)
					conn.Close()
					continue
				}
				br := bufio.NewReaderSize(conn, 512)
				status := readStatus(br)
				if ctx.Err() != nil {
					conn.Close()
					return
				}
				st.add(status, 1)
				if status != "200" {
					conn.Close()
					sleepCtx(ctx, 100*time.Millisecond)
					continue
				}
				conn.SetDeadline(time.Time{})
				e.open.add(1)
				mu.Lock()
				held = append(held, conn)
				mu.Unlock()
				readers.Add(1)
				go func() {
					defer readers.Done()
					defer e.open.add(-1)
					buf := make([]byte, 512)
					for {
						if _, err := br.Read(buf); err != nil {
							return
						}
					}
				}()
			}
		}()
	}
	openers.Wait()
	<-ctx.Done()
	mu.Lock()
	for _, c := range held {
		c.Close()
	}
	mu.Unlock()
	readers.Wait()
	o := attackOutcome{Statuses: st.snapshot(), Figures: map[string]float64{"held_peak": float64(e.open.peak.Load())}}
	o.Summary = fmt.Sprintf("held %s streams at most over %d addresses; attempts: %s", thousands(int(e.open.peak.Load())), len(e.pool.ips), formatCounts(o.Statuses))
	return o
}

// prepareCrowd opens and logs in cfg.crowd more clients, from 127.0.0.1
// like the ordinary ones.
func prepareCrowd(ctx context.Context, e *attackEnv) error {
	cs := make([]*ordinary, e.cfg.crowd)
	errs := make([]error, e.cfg.crowd)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			code, err := e.tpl.code(crowdUser(i), 0)
			if err == nil {
				cs[i], err = openOrdinary(ctx, e.workDir, e.url, crowdUser(i), code, fmt.Sprintf("/data/crowd-%d", i))
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, c := range cs {
		if errs[i] != nil {
			return errs[i]
		}
		e.crowd = append(e.crowd, c)
	}
	return nil
}

// attackCrowd runs the crowd's rounds, each client every
// cfg.crowdInterval, beside the ordinary clients.
func attackCrowd(ctx context.Context, e *attackEnv) attackOutcome {
	measure, cancel := context.WithCancel(e.root)
	defer cancel()
	errs := make(chan error, 1)
	wg := runClients(ctx, measure, e.crowd, e.url, e.cfg.crowdInterval, e.cfg.roundTimeout, &e.crowdLat, errs)
	<-ctx.Done()
	wg.Wait()
	s := e.crowdLat.stats()
	o := attackOutcome{Statuses: s.First, Figures: map[string]float64{"rounds": float64(s.Rounds), "failed": float64(s.Failed), "p99_ns": s.P99}}
	o.Summary = fmt.Sprintf("the crowd's %s rounds (%d clients, one each %v): first tries %s, %d retried, %d failed, p99 %s",
		thousands(s.Rounds), len(e.crowd), e.cfg.crowdInterval, formatCounts(s.First), s.Retried, s.Failed, formatLatency(s.P99))
	select {
	case err := <-errs:
		o.Summary += fmt.Sprintf("; a crowd client stopped: %v", err)
	default:
	}
	return o
}

// attackEvasion sends small sync requests from one session as fast as
// cfg.evaders workers can, each request from the next address of the pool.
func attackEvasion(ctx context.Context, e *attackEnv) attackOutcome {
	s := e.sessions[0]
	body, err := syncproto.EncodeRequest(&syncproto.Request{Session: s.sid, Repos: []syncproto.RepoRequest{{Path: "/data/evade"}}})
	if err != nil {
		return attackOutcome{Summary: err.Error()}
	}
	var st counter
	var next, inWindow, sentInWindow, late atomic.Int64
	perAddr := make([]atomic.Int64, len(e.pool.ips))
	start := time.Now()
	end, dl := ctx.Deadline()
	if !dl {
		end = start.Add(e.cfg.window)
	}
	mid := start.Add(end.Sub(start) / 2) // the burst is spent by then
	var wg sync.WaitGroup
	for range e.cfg.evaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1))
				status, _, _, err := s.post(ctx, e.client(i), e.url, "/v1/sync", goatdb.SyncContentType, body, false)
				if err != nil && status == 0 {
					if k := requestErrorKind(err); k != "cancelled" {
						st.add(k, 1)
					}
					continue
				}
				st.add(fmt.Sprint(status), 1)
				if now := time.Now(); now.Before(end) {
					sentInWindow.Add(1)
					if status == http.StatusOK {
						inWindow.Add(1)
						perAddr[i%len(perAddr)].Add(1)
						if now.After(mid) {
							late.Add(1)
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	// Rates over the attack's own time: requests still in flight when it
	// ended count in the statuses, not in the rates.
	secs := end.Sub(start).Seconds()
	o := attackOutcome{Statuses: st.snapshot(), Figures: map[string]float64{}}
	ok := float64(inWindow.Load())
	total := sentInWindow.Load()
	var rates []float64
	for i := range perAddr {
		rates = append(rates, float64(perAddr[i].Load())/secs)
	}
	sort.Float64s(rates)
	o.Figures["accepted_per_s"] = ok / secs
	o.Figures["sustained_per_s"] = float64(late.Load()) / (secs / 2)
	o.Figures["requests_per_s"] = float64(total) / secs
	o.Figures["accepted_per_s_per_addr_max"] = rates[len(rates)-1]
	o.Summary = fmt.Sprintf("%.0f requests/s sent, %.0f/s answered 200 (%.0f/s per address at most, %d addresses), %.0f/s in the second half; statuses %s",
		float64(total)/secs, ok/secs, rates[len(rates)-1], len(e.pool.ips), o.Figures["sustained_per_s"], formatCounts(o.Statuses))
	return o
}
