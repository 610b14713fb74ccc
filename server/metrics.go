package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"

	"github.com/goatdb/goatdb"
	"github.com/goatdb/goatdb/commit"
	"github.com/goatdb/goatdb/repo"
	"github.com/goatdb/goatdb/syncproto"
)

// metrics are one server's series. They live in a metrics.Set of
// github.com/VictoriaMetrics/metrics, written at /metrics in the
// Prometheus text exposition format (0.0.4) and followed by the Go
// runtime and process series the library writes (go_*, process_*: see
// metrics.WriteProcessMetrics and WriteFDMetrics).
//
// That library rather than prometheus/client_golang: it writes the same
// text format with two small dependencies (valyala/fastrand and
// valyala/histogram; golang.org/x/sys goatdb has already), where
// client_golang brings protobuf, client_model, common, procfs and more;
// each Server has its own Set (metrics.NewSet), so several servers in one
// process (tests, an application embedding them) keep separate series
// and share no global registry; and it writes the runtime and process
// series itself.
//
// Counters are atomic adds, so call sites stay cheap; gauges are
// callbacks read at each scrape (the atomics here, the memory budget, the
// database's storage state, the peer syncer's status). The library writes
// no HELP or TYPE lines; write adds both to every goatdb_ family from
// families, which is also the table of what each series means.
type metrics struct {
	set *vm.Set

	requestsMu sync.Mutex // guards requests
	requests   map[routeCode]*vm.Counter

	bytesIn, bytesOut     *vm.Counter
	commitsIn, commitsOut *vm.Counter
	rounds                *vm.Counter
	rejected              map[string]*vm.Counter // by rejectionClass; read-only after newMetrics
	badRequests           *vm.Counter
	rateLimited           *vm.Counter
	unauthorized          *vm.Counter
	panics                *vm.Counter
	storageErrors         *vm.Counter
	limits                map[string]*vm.Counter // by limit name; read-only after newMetrics
	// Refusals by the limits the server always had: each counts in its
	// own series and in goatdb_limit_hits_total.
	overBudget, slowBodies, tooLarge, nonces limitCounter

	memInUse     func() int64 // the memory budget's bytes in use; set by New
	streams      atomic.Int64
	connections  atomic.Int64
	repositories atomic.Int64 // stored at each scrape
	// storage state, read from the database at each scrape
	quarantined, unavailable, failing atomic.Int64
	syncSeconds                       *vm.PrometheusHistogram
	ackSeconds                        *vm.PrometheusHistogram
	ackTimeouts                       *vm.Counter
	handoffBytes, handoffRepos        *vm.Counter
	droppedRepos                      *vm.Counter
	peers                             atomic.Pointer[peerSyncer]
}

// family is a goatdb_ series family: its name, type and help.
type family struct{ name, typ, help string }

// families are every goatdb_ family /metrics writes, and what each means.
var families = []family{
	{"goatdb_http_requests_total", "counter", "HTTP requests served, by route pattern and status code."},
	{"goatdb_http_connections", "gauge", "Connections open (at most Options.MaxConnections)."},
	{"goatdb_http_panics_total", "counter", "Handler panics recovered."},
	{"goatdb_http_rate_limited_total", "counter", "Requests refused with 429 by a request-rate limit (of a session, a user or an address; goatdb_limit_hits_total counts every limit)."},
	{"goatdb_http_slow_bodies_total", "counter", "Requests cut (408) because their body arrived slower than the minimum rate."},
	{"goatdb_http_unauthorized_total", "counter", "Requests refused with 401: unsigned, badly signed, replayed, stale, or from a session without a valid certificate."},
	{"goatdb_limit_hits_total", "counter", "Requests refused by a limit, by limit: rate, ip_rate, push_bytes, push_commits, repos_created, registrations, event_streams (a quota), max_event_streams (the server's cap), memory_budget, slow_body, body_size, connections (the connection cap reached: new connections wait), nonces (the nonce cache full)."},
	{"goatdb_memory_budget_in_use_bytes", "gauge", "Bytes of the memory budget that requests in flight hold."},
	{"goatdb_memory_budget_refused_total", "counter", "Sync requests answered 503 because the memory budget for requests had no room."},
	{"goatdb_event_streams", "gauge", "Event streams connected."},
	{"goatdb_repositories", "gauge", "Repositories served (open, and followed for event streams)."},
	{"goatdb_repositories_open", "gauge", "Repositories open in the database."},
	{"goatdb_storage_quarantined_ranges", "gauge", "Damaged log ranges quarantined and not yet resolved by a sync."},
	{"goatdb_storage_unavailable_repositories", "gauge", "Repositories that cannot be opened."},
	{"goatdb_storage_failing_repositories", "gauge", "Repositories whose writes are failing (full or failing disk)."},
	{"goatdb_storage_errors_total", "counter", "Storage failures met serving requests: requests answered 5xx because storing failed, and repositories of a sync request that could not be opened or read (/healthz has the latest)."},
	{"goatdb_sync_rounds_total", "counter", "Sync requests answered (200)."},
	{"goatdb_sync_received_bytes_total", "counter", "Sync request bytes received (on the wire, compressed)."},
	{"goatdb_sync_sent_bytes_total", "counter", "Sync response bytes sent (on the wire, compressed)."},
	{"goatdb_sync_commits_received_total", "counter", "Commits received in sync requests, accepted or not."},
	{"goatdb_sync_commits_sent_total", "counter", "Commits sent in sync responses."},
	{"goatdb_sync_commits_rejected_total", "counter", "Received commits refused, by reason: malformed, signature, future (stamped ahead of the clock), parents (missing or not fitting), schema, author (Policy.AcceptCommit: no valid certificate, revoked, past the grace), forbidden (the write rules), other."},
	{"goatdb_sync_bad_requests_total", "counter", "Sync requests refused as malformed, oversized or of an unknown version."},
	{"goatdb_sync_duration_seconds", "histogram", "Time to read, handle and answer a sync request."},
	{"goatdb_cluster_handoff_bytes_total", "counter", "Bytes on the wire (both ways) of the syncs that handed repositories to their new owners when the cluster's membership changed (Options.Cluster)."},
	{"goatdb_cluster_handoff_repos_total", "counter", "Repositories handed to a new owner when the cluster's membership changed."},
	{"goatdb_cluster_dropped_repos_total", "counter", "Repositories dropped once their new owners held them."},
	{"goatdb_ack_wait_seconds", "histogram", "Time a client's sync waited for Options.AckReplicas peers to store its commits."},
	{"goatdb_ack_timeouts_total", "counter", "Client syncs answered 503 because too few peers stored their commits within Options.AckTimeout."},
	{"goatdb_peer_replication_lag_seconds", "gauge", "How far behind each peer (Options.Peers) this server may be: 0 while its event stream is connected and the last sync succeeded, else the seconds since the last successful sync (or since replication started)."},
	{"goatdb_peer_sync_errors_total", "counter", "Failed syncs and event-stream connections, by peer (Options.Peers)."},
}

var familyOf = func() map[string]family {
	m := make(map[string]family, len(families))
	for _, f := range families {
		m[f.name] = f
	}
	return m
}()

// syncBuckets are goatdb_sync_duration_seconds' upper bounds.
var syncBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// limitNames are the limits of goatdb_limit_hits_total, registered up
// front so that each shows (at 0) before it is first hit.
var limitNames = []string{"rate", "ip_rate", "push_bytes", "push_commits", "repos_created", "registrations",
	"event_streams", "max_event_streams", "memory_budget", "slow_body", "body_size", "connections", "nonces"}

type routeCode struct {
	route string
	code  int
}

func newMetrics() *metrics {
	s := vm.NewSet()
	m := &metrics{
		set:           s,
		requests:      map[routeCode]*vm.Counter{},
		bytesIn:       s.NewCounter("goatdb_sync_received_bytes_total"),
		bytesOut:      s.NewCounter("goatdb_sync_sent_bytes_total"),
		commitsIn:     s.NewCounter("goatdb_sync_commits_received_total"),
		commitsOut:    s.NewCounter("goatdb_sync_commits_sent_total"),
		rounds:        s.NewCounter("goatdb_sync_rounds_total"),
		rejected:      map[string]*vm.Counter{},
		badRequests:   s.NewCounter("goatdb_sync_bad_requests_total"),
		rateLimited:   s.NewCounter("goatdb_http_rate_limited_total"),
		unauthorized:  s.NewCounter("goatdb_http_unauthorized_total"),
		panics:        s.NewCounter("goatdb_http_panics_total"),
		storageErrors: s.NewCounter("goatdb_storage_errors_total"),
		limits:        map[string]*vm.Counter{},
		syncSeconds:   s.NewPrometheusHistogramExt("goatdb_sync_duration_seconds", syncBuckets),
		ackSeconds:    s.NewPrometheusHistogramExt("goatdb_ack_wait_seconds", syncBuckets),
		ackTimeouts:   s.NewCounter("goatdb_ack_timeouts_total"),
		handoffBytes:  s.NewCounter("goatdb_cluster_handoff_bytes_total"),
		handoffRepos:  s.NewCounter("goatdb_cluster_handoff_repos_total"),
		droppedRepos:  s.NewCounter("goatdb_cluster_dropped_repos_total"),
	}
	for _, c := range rejectionClasses {
		m.rejected[c] = s.NewCounter(`goatdb_sync_commits_rejected_total{reason="` + c + `"}`)
	}
	for _, l := range limitNames {
		m.limits[l] = s.NewCounter(`goatdb_limit_hits_total{limit="` + l + `"}`)
	}
	m.overBudget = limitCounter{s.NewCounter("goatdb_memory_budget_refused_total"), m.limits["memory_budget"]}
	m.slowBodies = limitCounter{s.NewCounter("goatdb_http_slow_bodies_total"), m.limits["slow_body"]}
	m.tooLarge = limitCounter{m.badRequests, m.limits["body_size"]}
	m.nonces = limitCounter{m.rateLimited, m.limits["nonces"]}
	gauge := func(name string, v *atomic.Int64) {
		s.NewGauge(name, func() float64 { return float64(v.Load()) })
	}
	gauge("goatdb_event_streams", &m.streams)
	gauge("goatdb_http_connections", &m.connections)
	gauge("goatdb_repositories", &m.repositories)
	gauge("goatdb_repositories_open", &m.repositories) // the hub's count until the database reports its own
	gauge("goatdb_storage_quarantined_ranges", &m.quarantined)
	gauge("goatdb_storage_unavailable_repositories", &m.unavailable)
	gauge("goatdb_storage_failing_repositories", &m.failing)
	s.NewGauge("goatdb_memory_budget_in_use_bytes", func() float64 {
		if m.memInUse == nil {
			return 0
		}
		return float64(m.memInUse())
	})
	s.RegisterMetricsWriter(m.writePeers)
	return m
}

// limitCounter counts a refusal in its own series and in its limit's.
type limitCounter struct{ own, limit *vm.Counter }

func (c limitCounter) Add(n int) {
	c.own.Add(n)
	c.limit.Add(n)
}

// limitHit counts a request refused by limit (one of limitNames; another
// name gets its own series, so names must be constants).
func (m *metrics) limitHit(limit string) {
	if c := m.limits[limit]; c != nil {
		c.Inc()
		return
	}
	m.set.GetOrCreateCounter(`goatdb_limit_hits_total{limit=` + labelValue(limit) + `}`).Inc()
}

// connectionsFull counts the connection cap reached: the next connection
// waits in the listen backlog.
func (m *metrics) connectionsFull() { m.limits["connections"].Inc() }

func (m *metrics) request(route string, code int) {
	k := routeCode{route, code}
	m.requestsMu.Lock()
	c := m.requests[k]
	if c == nil {
		c = m.set.NewCounter(`goatdb_http_requests_total{route=` + labelValue(route) + `,code="` + strconv.Itoa(code) + `"}`)
		m.requests[k] = c
	}
	m.requestsMu.Unlock()
	c.Inc()
}

// synced counts a sync request answered, begun at began.
func (m *metrics) synced(began time.Time) {
	m.rounds.Inc()
	m.syncSeconds.UpdateDuration(began)
}

// ackWait records a wait for replicas (Options.AckReplicas).
func (m *metrics) ackWait(d time.Duration, err error) {
	m.ackSeconds.Update(d.Seconds())
	if err != nil {
		m.ackTimeouts.Inc()
	}
}

// rejections counts the commits resp refuses, by reason.
func (m *metrics) rejections(resp *syncproto.Response) {
	for i := range resp.Repos {
		for _, rj := range resp.Repos[i].Rejected {
			m.rejected[rejectionClass(rj.Reason)].Inc()
		}
	}
}

// rejectionClasses are the reason label values of
// goatdb_sync_commits_rejected_total: a fixed set, whatever the reasons
// say.
var rejectionClasses = []string{"malformed", "signature", "future", "parents", "schema", "author", "forbidden", "other"}

// rejectionPrefixes sort a rejection's reason into its class by how it
// begins: reasons are text (they cross the wire), written by
// syncproto.Responder (a Policy's AcceptCommit refusal), repo.Repo's
// Receive (decoding, signature, clock, parents, schema, and a Policy's
// AdmitCommit refusal) and package commit (its sentinel errors' texts).
// TestMetricsRejections checks each class against the real producers.
var rejectionPrefixes = []struct{ prefix, class string }{
	{"not accepted", "author"},                    // syncproto.Responder.accept: Policy.AcceptCommit
	{"not allowed", "forbidden"},                  // repo admitLocked: Policy.AdmitCommit
	{"does not fit its schema", "schema"},         // repo admitLocked: Options.Validator
	{commit.ErrBadSignature.Error(), "signature"}, // commit.VerifySignature
	{commit.ErrCorrupt.Error(), "malformed"},      // commit.Decode
	{commit.ErrInvalid.Error(), "malformed"},      //
	{"commit is stamped", "future"},               // repo fits: past the clock and MaxSkew
	{repo.MissingParents, "parents"},              // repo receive: parents or delta base not here
	{"parent ", "parents"},                        // repo link: of another item
	{"timestamp ", "parents"},                     // repo link: before a parent's
	{"delta base ", "parents"},                    // repo link: not a full-snapshot ancestor
	{"merge differs", "parents"},                  // repo checkMerge
	{"cannot recompute merge", "parents"},         // repo checkMerge
}

// rejectionClass returns the class of a rejection reason (one of
// rejectionClasses).
func rejectionClass(reason string) string {
	for _, p := range rejectionPrefixes {
		if strings.HasPrefix(reason, p.prefix) {
			return p.class
		}
	}
	return "other"
}

// peerSyncer is the replication with Options.Peers, for the peer series.
type peerSyncer struct {
	syncer  *goatdb.Syncer
	started time.Time
}

// replicating starts the peer series for p (nil stops them).
func (m *metrics) replicating(p *goatdb.Syncer) {
	if p == nil {
		m.peers.Store(nil)
		return
	}
	m.peers.Store(&peerSyncer{syncer: p, started: time.Now()})
}

// writePeers writes the peer series from the syncer's status.
func (m *metrics) writePeers(w io.Writer) {
	p := m.peers.Load()
	if p == nil {
		return
	}
	now := time.Now()
	sts := p.syncer.Status()
	for _, st := range sts {
		var lag time.Duration // 0: following its events, and the last sync succeeded
		switch {
		case st.LastSync.IsZero():
			lag = now.Sub(p.started)
		case !st.Listening || st.LastError != nil:
			lag = now.Sub(st.LastSync)
		}
		fmt.Fprintf(w, "goatdb_peer_replication_lag_seconds{peer=%s} %g\n", labelValue(peerLabel(st.URL)), max(0, lag.Seconds()))
	}
	for _, st := range sts {
		fmt.Fprintf(w, "goatdb_peer_sync_errors_total{peer=%s} %d\n", labelValue(peerLabel(st.URL)), st.Failures)
	}
}

// peerLabel is a peer's URL without its user information (a password).
func peerLabel(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = nil
	return u.String()
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// labelValue quotes s as a label value of the text format.
func labelValue(s string) string { return `"` + labelEscaper.Replace(s) + `"` }

// write writes every series: the server's, each goatdb_ family after its
// HELP and TYPE, then the Go runtime's and the process's.
func (m *metrics) write(w io.Writer) error {
	var b bytes.Buffer
	m.set.WritePrometheus(&b)
	bw := bufio.NewWriter(w)
	annotate(bw, b.Bytes())
	vm.WriteProcessMetrics(bw)
	vm.WriteFDMetrics(bw)
	return bw.Flush()
}

// annotate writes the samples of text to w, each family of families
// after its HELP and TYPE. Comment lines in text are dropped (the
// library writes its own only when metrics.ExposeMetadata is on).
func annotate(w *bufio.Writer, text []byte) {
	done := map[string]bool{}
	for len(text) > 0 {
		var line []byte
		line, text, _ = bytes.Cut(text, []byte{'\n'})
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if f, ok := familyOfSample(line); ok && !done[f.name] {
			done[f.name] = true
			fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", f.name, f.help, f.name, f.typ)
		}
		w.Write(line)
		w.WriteByte('\n')
	}
}

// familyOfSample returns the family of a sample line, if in families.
func familyOfSample(line []byte) (family, bool) {
	name := line
	if i := bytes.IndexAny(line, "{ "); i >= 0 {
		name = line[:i]
	}
	if f, ok := familyOf[string(name)]; ok {
		return f, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := bytes.CutSuffix(name, []byte(suffix)); ok {
			if f, ok := familyOf[string(base)]; ok && f.typ == "histogram" {
				return f, true
			}
		}
	}
	return family{}, false
}

// storage reads the database's storage state into the gauges.
func (m *metrics) storage(db *goatdb.DB) {
	h, err := db.Health()
	if err != nil {
		return
	}
	var q, u, f int64
	for _, rh := range h.Repos {
		q += int64(len(rh.Quarantined))
		switch {
		case rh.Status == goatdb.StatusDegraded:
			f++
		case rh.Err != nil && len(rh.Quarantined) == 0:
			u++
		}
	}
	m.quarantined.Store(q)
	m.unavailable.Store(u)
	m.failing.Store(f)
}
